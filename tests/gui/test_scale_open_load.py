"""Scale hunt of the window at 20,000 tracks and 1.6M segments: opening the library froze the window for 3.5-10 s
(tables read, the table's rows, the findings' rows and the map's search tree made on the GUI thread). Now those
are made on threads while the window's events go on, and a library opened meanwhile wins. Tiny libraries, with
the sizes above which the work leaves the GUI thread made small; the tests check where the work runs and that
the window shows what it showed before."""

from __future__ import annotations

import threading

import numpy as np
import pytest

pytest.importorskip("PySide6")
from PySide6.QtCore import QTimer  # noqa: E402

from musicemb_core.data.library import Library  # noqa: E402
from musicemb_gui.panels import findings_table, library_panel, map_panel, track_table  # noqa: E402
from musicemb_gui.widgets import scatter_view  # noqa: E402
from tests.conftest import embedded_tones  # noqa: E402
from tests.gui.helpers import shown_window, tone_library  # noqa: E402

MAIN = threading.main_thread


@pytest.fixture
def window(qtbot, tmp_path):
    yield from shown_window(qtbot, tmp_path)


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    """Four embedded tones (12 segments) with an outlier finding on each segment."""
    root = embedded_tones(tmp_path_factory.mktemp("emb"))
    with Library(root) as lib:
        seg = lib.segments()
        lib.replace_findings([{"kind": "outlier", "segment_id": int(s), "track_id": int(t), "start_s": float(st),
                               "end_s": float(st) + 3, "score": 0.1 * i, "reason": "far from its track",
                               "details": {}}
                              for i, (s, t, st) in enumerate(zip(seg["id"], seg["track_id"], seg["start_s"],
                                                                 strict=True))], kinds=["outlier"])
    return root


def _spy(monkeypatch, owner, name: str) -> list[bool]:
    """For each call of ``owner.name`` from now on: whether it ran on the main (GUI) thread."""
    calls, real = [], getattr(owner, name)

    def spy(*args, **kwargs):
        calls.append(threading.current_thread() is MAIN())
        return real(*args, **kwargs)
    monkeypatch.setattr(owner, name, spy)
    return calls


def test_the_window_runs_while_the_library_is_read(qtbot, window, tmp_path, monkeypatch):
    """The tables are read on another thread while the window's timers fire (the read waits here for one)."""
    lib = tone_library(tmp_path)
    fired = threading.Event()
    beat = QTimer(interval=1)
    beat.timeout.connect(fired.set)
    real = Library.segments
    seen = []

    def segments(self):
        seen.append((threading.current_thread() is MAIN(), fired.wait(10)))
        return real(self)
    monkeypatch.setattr(Library, "segments", segments)
    beat.start()
    assert window.open_library(lib)
    beat.stop()
    assert seen == [(False, True)]
    assert len(window.session.segments["id"]) == 6 and len(window.session.tracks) == 2
    assert window.library_panel.proxy.rowCount() == 2


def test_a_library_opened_while_another_is_read_is_the_one_open(qtbot, window, tmp_path, monkeypatch):
    """Another library opened while the first one's tables are read: it stays open, the first is dropped (its
    open says so), and everything shows the second one."""
    first, second = tone_library(tmp_path / "a"), tone_library(tmp_path / "b")
    real, opened = Library.segments, threading.Event()
    results = []

    def segments(self):
        if self.root == first.resolve() and not opened.is_set():  # the first read ends after the second open
            QTimer.singleShot(0, window, lambda: (results.append(window.open_library(second)), opened.set()))
            opened.wait(20)
        return real(self)
    monkeypatch.setattr(Library, "segments", segments)
    results.insert(0, window.open_library(first))
    assert results == [False, True]
    s = window.session
    assert s.lib_path == second.resolve() and len(s.segments["id"]) == 6
    assert {t.path.startswith(str((tmp_path / "b").resolve())) for t in s.tracks.values()} == {True}
    shown = [window.library_panel.model._rows[i].path for i in range(window.library_panel.model.rowCount())]
    assert sorted(shown) == sorted(t.path for t in s.tracks.values())
    assert window.settings.value("last_library") == str(second.resolve())


def _shown(win) -> dict:
    """What the window shows of the library: the table's rows, the findings' rows, the map's points."""
    table = win.library_panel.model
    findings = win.inspection_panel.model
    scatter = win.map_panel.scatter
    return {"table": [table._rows[i].text for i in range(table.rowCount())],
            "findings": [findings.finding(i)["id"] for i in range(findings.rowCount())],
            "ids": scatter._ids.tolist(), "xy": scatter._xy.tolist(), "tree": scatter._tree.data.tolist(),
            "orders": (scatter._id_order.tolist(), scatter._x_order.tolist()), "cats": scatter._cat.tolist()}


def _open(qtbot, win, lib) -> dict:
    assert win.open_library(lib)
    qtbot.waitUntil(lambda: len(win.map_panel.scatter._ids) == 12 and not win.jobs.jobs, timeout=60000)
    return _shown(win)


def test_big_tables_and_maps_are_made_on_threads_as_small_ones_are_made_here(qtbot, window, embedded, tmp_path,
                                                                                monkeypatch):
    """The table's rows, the findings' rows and the map's search tree of a big library are made on other threads,
    and show what they show made on the GUI thread."""
    small = _open(qtbot, window, embedded)
    assert window.open_library(tone_library(tmp_path))  # other rows: the next are all made again
    for owner, name in ((library_panel, "BIG_TABLE"), (findings_table, "BIG"), (map_panel, "BIG_MAP")):
        monkeypatch.setattr(owner, name, 0)
    rows = _spy(monkeypatch, track_table.TrackTable, "make_rows")
    findings = _spy(monkeypatch, findings_table, "_Finding")
    index = _spy(monkeypatch, map_panel, "index_points")
    big = _open(qtbot, window, embedded)
    assert rows and not any(rows) and findings and not any(findings) and index and not any(index)
    assert big == small
    assert np.array_equal(scatter_view.index_points(np.array(small["xy"]), np.array(small["ids"]))["x_order"],
                          small["orders"][1])


def _relabel_elsewhere(lib, track_id: int, label: str) -> None:
    """Another program relabels a track (a connection of its own, not the window's)."""
    from musicemb_core.data import edits

    with Library(lib) as other:
        edits.relabel_tracks(other, [track_id], label)


def test_a_look_for_other_programs_changes_in_a_big_library_runs_on_a_thread(qtbot, window, tmp_path,
                                                                              monkeypatch):
    """The look for other programs' changes, every few seconds (1-3 s at 20,000 tracks and 1.6M tags), runs on a
    thread for a big library and says what it says on the GUI thread; one during which the window read the library
    again says nothing (it compared with tables replaced meanwhile) and the next look compares again."""
    from musicemb_gui import change_watch

    lib = tone_library(tmp_path)
    assert window.open_library(lib)
    monkeypatch.setattr(change_watch, "BIG_LOOK", (0, 0))
    _relabel_elsewhere(lib, min(window.session.tracks), "from elsewhere")
    window.session.watch.seen = None
    real, looks, read_again = change_watch.ChangeWatch.changes, [], threading.Event()

    def again():
        window.session.watch.look_again()
        read_again.set()

    def look(self, findings=None):
        looks.append(threading.current_thread() is MAIN())
        if len(looks) == 1:  # the window reads the library again during the first look (and before it ends:
            QTimer.singleShot(0, window, again)  # else, on a loaded machine, the look could end first)
            assert read_again.wait(30)
        return real(self, findings)
    monkeypatch.setattr(change_watch.ChangeWatch, "changes", look)
    window.check_elsewhere()
    assert not window.notice.isVisibleTo(window)
    window.check_elsewhere()
    assert looks == [False, False]
    assert window.notice.isVisibleTo(window) and "labels of 1 track changed" in window.notice_text.text()
