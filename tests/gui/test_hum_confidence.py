"""Hum panel: a hum whose tune is not in the library (no confident match) is said so, the closest songs listed;
recorded with the fake, real-time paced recorder of test_hum_panel."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
from PySide6.QtCore import QObject, Signal  # noqa: E402

from musicemb_gui.panels.hum_controller import HumController  # noqa: E402
from musicemb_gui.panels.hum_panel import NO_CONFIDENT_MATCH, HumPanel  # noqa: E402
from tests.gui.test_hum_panel import FakeRecorder, hum_signal  # noqa: E402

ROWS = [{"track_id": 3, "path": "/music/a/song3.wav", "label": "folk", "score": 0.71, "segment_id": 31,
         "start_s": 6.0, "confidence": 0.12},
        {"track_id": 1, "path": "/music/b/song1.wav", "label": None, "score": 0.69, "segment_id": 12,
         "start_s": 0.0, "confidence": 0.05}]


class StubSession(QObject):
    libraryChanged = Signal()
    lib_path = "/music/lib"


class StubSearcher:
    """A searcher already opened: ranked rows, and whether the best is a confident match."""

    def __init__(self, confident: bool):
        self.confident, self.queries = confident, 0

    def query(self, y, sr, *, k=10):
        self.queries += 1
        return [dict(r) for r in ROWS[:k]]

    def is_confident(self, rows, method="rerank"):
        return bool(rows) and self.confident


@pytest.fixture
def hum(qtbot):
    panel = HumPanel(recorder_factory=FakeRecorder)
    qtbot.addWidget(panel)
    panel.show()
    controller = HumController(StubSession(), panel)
    return panel, controller


@pytest.mark.parametrize("confident", [False, True])
def test_recorded_hum_says_whether_the_match_is_confident(qtbot, hum, confident):
    panel, controller = hum
    controller._searcher = StubSearcher(confident)
    FakeRecorder.signal = hum_signal(1.5)
    panel.start_recording()
    qtbot.waitUntil(lambda: panel.recorder._sent == len(FakeRecorder.signal), timeout=10000)
    with qtbot.waitSignal(controller.resultsShown, timeout=10000) as got:
        panel.stop_recording()
    assert controller._searcher.queries == 1 and len(got.args[0]) == 2
    assert panel.results.rowCount() == 2 and panel.results.item(0, 2).text() == "song3.wav"  # still listed
    assert panel.confident is confident
    assert (NO_CONFIDENT_MATCH in panel.state.text()) is not confident, panel.state.text()
    assert panel.results.item(0, 1).toolTip() == "confidence 12%"


def test_panel_alone_shows_no_confident_match():
    panel = HumPanel(recorder_factory=FakeRecorder)
    panel.set_results(ROWS, confident=False)
    assert panel.state.text() == NO_CONFIDENT_MATCH and not panel.confident
    panel.set_results(ROWS)
    assert panel.state.text() == "2 songs, best first." and panel.confident
    panel.set_results([], confident=False)
    assert "No tune recognised" in panel.state.text() and not panel.confident
