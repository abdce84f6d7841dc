"""A library the window may not write (a read-only mount, a backup, chmod a-w) is said once, in the title and the
status bar, and the actions that would write are off with a tooltip saying why, while reading goes on; a library
that may be written (another one opened, or the same one again writable) has them back."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDropEvent  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QAbstractItemView  # noqa: E402

from musicemb_core.data import edits  # noqa: E402
from musicemb_core.data.library import Library  # noqa: E402
from musicemb_gui.panels.inspection_panel import RUN_TIP  # noqa: E402
from musicemb_gui.panels.track_table import LABEL  # noqa: E402
from tests.conftest import embedded_tones  # noqa: E402
from tests.gui.helpers import shown_window  # noqa: E402


@pytest.fixture(scope="module")
def embedded(tmp_path_factory) -> Path:
    """Four 9 s tones, imported and embedded (the built-in spaces), a track relabelled (Undo has an edit to
    undo) and a finding stored."""
    lib_path = embedded_tones(tmp_path_factory.mktemp("readonly"))
    with Library(lib_path) as lib:
        first = min(lib.tracks(), key=lambda t: t.id)
        edits.relabel_tracks(lib, [first.id], "drone")
        lib.replace_findings([{"kind": "clipping", "segment_id": None, "track_id": first.id, "start_s": 0.0,
                               "end_s": 3.0, "score": 0.8, "reason": "clipped peaks"}], kinds=["clipping"])
    return lib_path


@pytest.fixture
def window(qtbot, tmp_path):
    windows = shown_window(qtbot, tmp_path)
    yield next(windows)
    next(windows, None)


@pytest.fixture
def locked(monkeypatch):
    """Folders this user may not write, as ``os.access`` tells them (permission bits do not stop root): the
    paths under any folder added to the returned set."""
    folders: set[str] = set()
    access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, *a, **k: False if mode == os.W_OK and any(
        str(p).startswith(f) for f in folders) else access(p, mode, *a, **k))
    return folders


def _copy(embedded: Path, to: Path) -> Path:
    shutil.copytree(embedded.parent, to)
    return to / embedded.name


def _files(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root``: (size, mtime) by relative path; not SQLite's -wal and -shm, which a reader makes
    here (the folder is writable in truth; on a read-only one it cannot)."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")
            if p.is_file() and not p.name.endswith(("-wal", "-shm"))}


def _writers(win) -> dict[str, object]:
    """The widgets and actions that write to the library, by name."""
    lp, ip, tp = win.library_panel, win.inspection_panel, win.training_panel
    acts = {a.text().replace("&", ""): a for a in win.writers}
    return {"Add files button": lp.add_files, "Add folder button": lp.add_folder,
            "Add files… menu": acts["Add files…"], "Add folder… menu": acts["Add folder…"],
            "Embed menu": acts["Embed with the current model"], "Inspect menu": acts["Inspect"],
            "Start training": tp.start, "Run inspection": ip.run, "Accept": ip.accept, "Dismiss": ip.dismiss,
            "Label selection": win.map_panel.label_sel, "Undo": win.undo_action}


def _select_some(win) -> None:
    """A finding selected in the inspection table, three segments on the map."""
    win.inspection_panel.table.selectRow(0)
    win.map_panel._on_selection(win.session.segments["id"][:3])


def _label_editing_starts(qtbot, win) -> bool:
    """Whether F2 on the first track's label cell opens its editor (closed again after)."""
    table = win.library_panel.table
    table.setCurrentIndex(win.library_panel.proxy.index(0, LABEL))
    table.setFocus()
    QTest.keyClick(table, Qt.Key.Key_F2)
    qtbot.wait(50)
    editing = table.state() == QAbstractItemView.State.EditingState
    if editing:
        QTest.keyClick(table.focusWidget(), Qt.Key.Key_Escape)
    return editing


def test_a_read_only_library_says_so_once_and_its_writing_actions_are_off(qtbot, window, embedded, tmp_path,
                                                                          locked):
    lib_path = _copy(embedded, tmp_path / "backup")
    locked.add(str(lib_path))
    before = _files(lib_path)
    assert window.open_library(lib_path)
    _select_some(window)
    note = f"The library is read-only here (Permission denied): {lib_path}"
    assert window.windowTitle() == "musicemb — lib (read-only)"
    assert window.read_only_label.isVisible()
    assert window.read_only_label.text() == "Read-only library: Permission denied"
    assert window.read_only_label.toolTip().startswith(note)
    writers = _writers(window)
    assert [name for name, w in writers.items() if w.isEnabled()] == []
    assert {name: w.toolTip() for name, w in writers.items()} == dict.fromkeys(writers, note)
    assert not _label_editing_starts(qtbot, window)
    dropped: list = []
    window.library_panel.addPaths.connect(dropped.append)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path))])
    window.library_panel.dropEvent(QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, mime,
                                              Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier))
    assert dropped == []
    # reading works: the map (PCA, drawn and not kept), a track played, a segment's neighbours, more like this
    qtbot.waitUntil(lambda: len(window.map_controller.ids) == 12, timeout=30000)
    track = min(window.session.tracks)
    window.play_track(track)
    qtbot.waitUntil(lambda: len(window.backend.calls) == 1, timeout=10000)
    near: list = []
    window.map_controller.neighboursReady.connect(lambda _seg, rows: near.append(rows))
    window.map_controller.request_neighbours(int(window.session.embedding_ids[0]), 3)
    qtbot.waitUntil(lambda: bool(near), timeout=30000)
    assert len(near[0]) == 3 and all(-1.01 <= r["score"] <= 1.01 for r in near[0])
    similar: list = []
    window.map_controller.similarTracksReady.connect(lambda _t, rows: similar.append(rows))
    window.more_like_track(track)
    qtbot.waitUntil(lambda: bool(similar), timeout=30000)
    assert len(similar[0]) == 3 and track not in [r["track_id"] for r in similar[0]]
    assert window.jobs.wait(30000)
    assert _files(lib_path) == before  # nothing was written into it


def test_the_writing_actions_come_back_when_the_library_may_be_written(qtbot, window, embedded, tmp_path, locked):
    """The same library becomes writable (a drive remounted read-write), or another library is opened."""
    lib_path = _copy(embedded, tmp_path / "backup")
    locked.add(str(lib_path))
    assert window.open_library(lib_path)
    _select_some(window)
    assert not any(w.isEnabled() for w in _writers(window).values())
    locked.clear()
    window.check_elsewhere()  # the window's timer looks again
    assert window.windowTitle() == "musicemb — lib"
    assert not window.read_only_label.isVisibleTo(window)
    writers = _writers(window)
    assert [name for name, w in writers.items() if not w.isEnabled()] == []
    assert window.inspection_panel.run.toolTip() == RUN_TIP
    assert "read-only" not in window.undo_action.toolTip()
    assert _label_editing_starts(qtbot, window)
    # read-only again (remounted read-only), then another, writable library opened
    locked.add(str(lib_path))
    window.check_elsewhere()
    assert not any(w.isEnabled() for w in _writers(window).values())
    assert window.open_library(_copy(embedded, tmp_path / "other"))
    _select_some(window)
    assert window.windowTitle() == "musicemb — lib"
    assert [name for name, w in _writers(window).items() if not w.isEnabled()] == []
    assert not window.read_only_label.isVisibleTo(window)
