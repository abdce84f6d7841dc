"""Space in the map's lists (nearest segments, more like this), the hum results, a built set and an inspection
finding's evidence plays the selected row, as a click or double-click does, and Space again stops it, as in the
library table: it replayed whatever was heard last (a track of the library, say), whichever row was selected; in
the set's win it did nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

from musicemb_gui.panels.inspection_panel import InspectionPanel  # noqa: E402
from tests.gui.helpers import tone_library  # noqa: E402
from tests.gui.test_gui_sweep import boxes, bugs, window  # noqa: E402, F401 (fixtures)
from tests.gui.test_inspection_panel import ROWS, _select  # noqa: E402


@pytest.fixture
def opened(qtbot, window, tmp_path):  # noqa: F811
    """The window on two tones, tone440.wav played and stopped (what was heard last); track ids and segment ids
    by track name."""
    assert window.open_library(tone_library(tmp_path))
    s = window.session
    tracks = {Path(t.path).name: t.id for t in s.tracks.values()}
    window.play_track(tracks["tone440.wav"])
    qtbot.waitUntil(lambda: window.player.playing, timeout=10000)
    window.player.stop()
    segments = {name: [int(i) for i in s.segments["id"][s.segments["track_id"] == tid]] for name, tid in tracks.items()}
    return window, tracks, segments


def _space_plays(qtbot, win, table, row: int, key) -> None:
    """Select ``row`` of ``table`` (not played: the table has no focus yet), focus it, press Space: ``key`` plays;
    Space again stops it."""
    table.clearFocus()
    table.selectRow(row)
    table.setFocus()
    qtbot.waitUntil(table.hasFocus)
    QTest.keyClick(table, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: win.player.playing, timeout=10000)
    assert win.playback.current == key
    QTest.keyClick(table, Qt.Key.Key_Space)
    assert not win.player.playing and win.playback.current == key


def _show_neighbours(win, segments) -> list[int]:
    """The map's nearest-segments list in front, holding tone660.wav's segments (returned) as tone440's neighbours."""
    other = segments["tone660.wav"]
    win.map_panel._show_neighbours(segments["tone440.wav"][0], [
        {"segment_id": seg, "score": 0.9 - i / 10, "path": "tone660.wav", "start_s": 3.0 * i, "name": "tone660.wav"}
        for i, seg in enumerate(other)])
    win.map_panel.lists.setCurrentIndex(0)
    return other


def test_space_in_the_map_lists_plays_the_selected_row_then_stops_it(qtbot, opened):
    win, tracks, segments = opened
    mp, other = win.map_panel, _show_neighbours(win, segments)
    _space_plays(qtbot, win, mp.neighbours, 1, other[1])
    _space_plays(qtbot, win, mp.neighbours, 2, other[2])  # another row: that one, not the one heard last
    mp._show_similar(tracks["tone440.wav"], [
        {"track_id": tracks["tone660.wav"], "score": 0.5, "label": None, "path": "tone660.wav"}])
    mp.lists.setCurrentIndex(1)
    _space_plays(qtbot, win, mp.similar, 0, ("track", tracks["tone660.wav"]))
    assert len(win.backend.calls) == 4  # the first track, then one sound per Space that played


def test_space_in_the_hum_results_plays_the_selected_match_then_stops_it(qtbot, opened):
    win, tracks, segments = opened
    win.docks["Hum"].raise_()
    hum = win.hum_panel
    seg = segments["tone660.wav"]
    hum.set_results([{"track_id": tracks["tone660.wav"], "path": "tone660.wav", "label": None, "score": 0.8 - i / 10,
                      "segment_id": s, "start_s": 3.0 * i} for i, s in enumerate(seg[:2])])
    _space_plays(qtbot, win, hum.results, 1, seg[1])
    _space_plays(qtbot, win, hum.results, 0, seg[0])
    assert len(win.backend.calls) == 3


def test_space_in_a_built_set_plays_the_selected_track_then_stops_it(qtbot, opened):
    win, tracks, _segments = opened
    dialog = win.library_controller.set_dialog
    dialog.show_set([(tracks["tone660.wav"], "tone660", "tone660.wav", None, "", None),
                     (tracks["tone440.wav"], "tone440", "tone440.wav", None, "", 0.2)], "2 tracks")
    dialog.show()
    dialog.activateWindow()
    qtbot.waitExposed(dialog)
    _space_plays(qtbot, win, dialog.table, 0, ("track", tracks["tone660.wav"]))
    _space_plays(qtbot, win, dialog.table, 1, ("track", tracks["tone440.wav"]))
    assert len(win.backend.calls) == 3


def test_space_in_a_findings_evidence_plays_the_selected_segment(qtbot):
    """The panel alone, its player holding what it asked for last: Space plays the selected evidence segment; on
    the segment the player holds it asks nothing (the window's Space stops it)."""
    panel = InspectionPanel()
    qtbot.addWidget(panel)
    panel.set_findings(ROWS)
    played = []
    panel.playRequested.connect(played.append)
    panel.now_playing = lambda: played[-1] if played else None
    _select(panel, 1)  # its evidence: segments 71 and 72
    panel.play.click()  # the finding's own segment, 71

    def space(row: int) -> None:
        panel.evidence.setCurrentRow(row)
        QTest.keyClick(panel.evidence, Qt.Key.Key_Space)

    space(0)  # 71: heard last
    space(1)
    space(1)  # 72: heard last
    space(0)
    assert played == [71, 72, 71]


def test_space_plays_the_selected_row_after_another_panel_played(qtbot, opened):
    """Each panel remembered what it had played itself: after a neighbour played from the map's list and a track
    from the library table, Space on that neighbour (still selected) stopped the library's track instead of
    playing it. Space now compares the row with what the player holds."""
    win, tracks, segments = opened
    mp, other = win.map_panel, _show_neighbours(win, segments)
    _space_plays(qtbot, win, mp.neighbours, 1, other[1])
    win.play_track(tracks["tone440.wav"])
    qtbot.waitUntil(lambda: win.player.playing and win.playback.current == ("track", tracks["tone440.wav"]),
                    timeout=10000)
    win.player.stop()
    _space_plays(qtbot, win, mp.neighbours, 1, other[1])  # the neighbour again, not the library's track
