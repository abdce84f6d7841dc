"""The library panel, import and the map as a DJ with a big library drives them: filters over a large selection,
files changed or added and imported again while the map shows the library. Every test fails on an exception
raised in a Qt slot (``bugs``)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")

from tests.conftest import write_tone  # noqa: E402
from tests.gui.test_gui_sweep import boxes, bugs, embedded, library_copy, window  # noqa: E402, F401 (fixtures)


def test_a_filter_over_a_large_selection_signals_it_once(qtbot):
    """A third of 3,000 rows selected (a lasso on the map), then a BPM filter hiding half of them: the panel
    handled every range of hidden rows Qt signalled, each with a selectedRows() quadratic in the selection (20,000
    rows froze the window for 80 s). Now the selection left is signalled once."""
    from musicemb_gui.panels.library_panel import LibraryPanel

    panel = LibraryPanel()
    qtbot.addWidget(panel)
    panel.set_rows([(i, f"/music/t{i}.mp3", 180.0, "", 20, "ok") for i in range(1, 3001)])
    panel.select_tracks(range(1, 3001, 3))
    assert len(panel.selected_tracks()) == 1000
    sent: list[list[int]] = []
    panel.tracksSelected.connect(sent.append)
    panel.set_allowed_tracks(range(1, 3001, 2))
    assert [sorted(ids) for ids in sent] == [list(range(1, 3001, 6))]  # the rows are sorted by name
    panel.filter.setText("t1")
    assert [sorted(ids) for ids in sent[1:]] == [[t for t in range(1, 3001, 6) if f"t{t}".startswith("t1")]]
    assert panel.selected_track() == 1 and panel.more_like.isEnabled()


@pytest.fixture
def slow_maps(monkeypatch):
    """Map jobs that take 2 s more (a large library's PCA): the window works meanwhile with the map it shows."""
    import musicemb_gui.panels.map_controller as mc

    real = mc.iter_map

    def slow(*a, **k):
        time.sleep(2.0)
        return (yield from real(*a, **k))
    monkeypatch.setattr(mc, "iter_map", slow)


def _import_until_the_map_job(qtbot, win, paths) -> None:
    """Import ``paths`` and wait until only the map of the new vectors is left to make."""
    win.import_paths([str(p) for p in paths])
    qtbot.waitUntil(lambda: [j.name for j in win.jobs.jobs] == ["PCA map"], timeout=60000)


def test_a_file_changed_and_imported_again_while_the_map_shows_it(qtbot, window, library_copy, bugs, request):  # noqa: F811
    """A track's file changed and its folder added again while the map shows the library: until the new map was
    drawn the map kept the track's old segments, and the library table refilling, the filter and the colourings
    raised KeyError in their slots. Now the old segments leave the map at once."""
    window.map_panel.method.setCurrentText("PCA")
    assert window.open_library(library_copy)
    qtbot.waitUntil(lambda: len(window.map_controller.ids) == 12, timeout=30000)
    request.getfixturevalue("slow_maps")
    first = min(window.session.tracks.values(), key=lambda t: t.id)
    write_tone(Path(first.path), 470, seconds=12.0, sr=16000, seed=99)  # new content, segments cut again
    _import_until_the_map_job(qtbot, window, [Path(first.path).parent])
    s, ctl = window.session, window.map_controller
    assert len(ctl.ids) == 9 and set(ctl.ids.tolist()) <= set(s.seg_row)
    assert len(window.map_panel.scatter._ids) == 9
    window.library_panel.filter.setText("tone")
    for mode in ("label", "track", "BPM", "key"):
        window.map_panel.colour.setCurrentText(mode)
    qtbot.wait(300)
    assert not bugs
    qtbot.waitUntil(lambda: not window.jobs.jobs and len(ctl.ids) == 13, timeout=30000)


def test_cluster_colours_asked_while_the_map_of_new_tracks_is_made(qtbot, window, library_copy, bugs, request,  # noqa: F811
                                                                  tmp_path):
    """A folder imported, and "cluster" chosen while the map of the new vectors was still being made: k-means
    coloured every new vector, 16 colours for the 12 points shown, a ValueError in the scatter's slot. Now the
    clusters come with the new map, one per point."""
    window.map_panel.method.setCurrentText("PCA")
    assert window.open_library(library_copy)
    qtbot.waitUntil(lambda: len(window.map_controller.ids) == 12, timeout=30000)
    request.getfixturevalue("slow_maps")
    write_tone(tmp_path / "new" / "new300.wav", 300, seconds=12.0, sr=16000, seed=7)
    _import_until_the_map_job(qtbot, window, [tmp_path / "new"])
    window.map_panel.colour.setCurrentText("cluster")
    qtbot.wait(1000)
    assert not bugs
    ctl = window.map_controller
    qtbot.waitUntil(lambda: not window.jobs.jobs and len(ctl.ids) == 16 and "cluster" in ctl._extra, timeout=30000)
    assert len(ctl._extra["cluster"]) == 16 == len(window.map_panel.scatter._ids)


def test_a_selection_on_the_map_drawn_again_keeps_only_its_segments_still_there(qtbot, window, library_copy,  # noqa: F811
                                                                                bugs):  # noqa: F811
    """Segments lassoed, then their track's file changed and imported again: the map drawn again had no rings but
    "Label 6 selected…" still labelled the old segments (KeyError in the slot for whole tracks). Now the selection
    keeps the segments still on the map, ringed."""
    from musicemb_core.common.progress import drive
    from musicemb_core.data.ingest import iter_ingest
    from musicemb_core.data.library import Library

    window.map_panel.method.setCurrentText("PCA")
    assert window.open_library(library_copy)
    qtbot.waitUntil(lambda: len(window.map_controller.ids) == 12, timeout=30000)
    s, panel = window.session, window.map_panel
    first, second = sorted(s.tracks)[:2]
    picked = s.segments["id"][np.isin(s.segments["track_id"], [first, second])]
    panel.scatter.selectionChanged.emit(picked)  # as a lasso around both tracks' points
    assert panel.label_sel.text() == "Label 6 selected…"
    with Library(library_copy) as lib:
        write_tone(Path(lib.track(first).path), 470, seconds=12.0, sr=16000, seed=99)
        drive(iter_ingest(lib, [Path(lib.track(first).path).parent], jobs=1))
    s.refresh()
    qtbot.waitUntil(lambda: not window.jobs.jobs, timeout=30000)
    kept = sorted(int(i) for i in picked if int(i) in s.seg_row)  # the second track's: the first's were cut again
    assert len(kept) == 3 and {s.segment(i)["track_id"] for i in kept} == {second}
    assert sorted(panel.selected_ids.tolist()) == kept == sorted(panel.scatter.ringed_ids.tolist())
    assert panel.label_sel.text() == "Label 3 selected…"
