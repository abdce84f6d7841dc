"""The spectrogram under the map shows the point clicked last: a slower spectrogram of a point clicked before
(the finding picked in the inspection panel, then a point of the map) arrived after it and took its place, under
its own title, while the neighbour lists and the player spoke of the newer point."""

# ruff: noqa: F811 (the fixtures imported from test_gui_sweep are the tests' arguments)
from __future__ import annotations

import threading

import pytest

pytest.importorskip("PySide6")

from musicemb_gui import workers  # noqa: E402
from tests.gui.test_gui_sweep import boxes, bugs, embedded, library_copy, window  # noqa: E402, F401 (fixtures)


def test_a_spectrogram_finishing_after_a_newer_one_is_not_shown(qtbot, window, library_copy, monkeypatch, bugs):
    assert window.open_library(library_copy)
    s, ctl, view = window.session, window.map_controller, window.map_panel.spectrogram
    seg = s.segments
    older, newer = (int(seg["id"][seg["track_id"] == t][0]) for t in sorted(set(seg["track_id"].tolist()))[:2])
    real, gate = s.segment_logmel, threading.Event()

    def held(seg_id):
        result = real(seg_id)
        if seg_id == older:
            gate.wait(30)
        return result
    monkeypatch.setattr(s, "segment_logmel", held)

    def title(seg_id):
        info = s.segment(seg_id)
        return f"{s.track_name(info['track_id'])} @ {info['start_s']:.1f} s"

    ctl.request_spectrogram(older)
    ctl.request_spectrogram(newer)
    qtbot.waitUntil(lambda: view._title == title(newer), timeout=20000)
    gate.set()
    qtbot.waitUntil(lambda: not workers._pending, timeout=20000)
    qtbot.wait(50)
    assert view._title == title(newer) != title(older)
    assert bugs == []
