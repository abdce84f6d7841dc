"""Space in the library table plays the selected track (a DJ previewing the crate from the keyboard): it replayed
whatever was heard last, a map point or another track, whichever row was selected."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

from tests.gui.helpers import tone_library  # noqa: E402
from tests.gui.test_gui_sweep import boxes, bugs, window  # noqa: E402, F401 (fixtures)


def _select(qtbot, panel, name: str) -> int:
    """Select the track named ``name`` and focus the table, as a click on its row would; its track id."""
    row = next(r for r in range(panel.proxy.rowCount()) if panel.proxy.index(r, 0).data() == name)
    panel.table.selectRow(row)
    panel.table.setFocus()
    qtbot.waitUntil(panel.table.hasFocus)
    return int(panel.track_id_at(row))


def _space(panel) -> None:
    QTest.keyClick(panel.window().focusWidget(), Qt.Key.Key_Space)


def test_space_plays_the_selected_track_then_stops_it(qtbot, window, tmp_path, bugs):  # noqa: F811
    assert window.open_library(tone_library(tmp_path))
    panel, playback, player = window.library_panel, window.playback, window.player
    names = sorted(Path(t.path).name for t in window.session.tracks.values())
    first = _select(qtbot, panel, names[0])
    _space(panel)
    qtbot.waitUntil(lambda: playback.current == ("track", first) and player.playing, timeout=10000)
    _space(panel)  # the track heard: the window's Space stops it
    assert not player.playing
    second = _select(qtbot, panel, names[1])
    _space(panel)  # another row selected: that track, not the one heard last
    qtbot.waitUntil(lambda: playback.current == ("track", second) and player.playing, timeout=10000)
    assert len(window.backend.calls) == 2  # one sound per track asked, nothing replayed
