"""A sweep of the Hum panel driven as a demanding user would: a recording that reaches the length limit, searches
overlapping library changes, odd hum files. Each test fails on an exception in a Qt slot (``bugs``)."""

from __future__ import annotations

import time

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("PySide6")
from PySide6.QtCore import QObject, Signal  # noqa: E402

from musicemb_gui.panels import hum_panel  # noqa: E402
from musicemb_gui.panels.hum_controller import HumController  # noqa: E402
from musicemb_gui.panels.hum_panel import NO_CONFIDENT_MATCH, HumPanel  # noqa: E402
from tests.gui.helpers import tone_library  # noqa: E402
from tests.gui.test_gui_sweep import boxes, bugs, window  # noqa: E402, F401 (fixtures)
from tests.gui.test_hum_confidence import StubSearcher, StubSession, hum  # noqa: E402, F401 (a fixture)
from tests.gui.test_hum_panel import SR_MIC, FakeRecorder, hum_signal  # noqa: E402


def test_a_recording_that_reaches_the_limit_stops_and_is_searched(qtbot, monkeypatch, bugs):  # noqa: F811
    """At the limit the drain stopped the recording, whose last drain stopped it again, and so on: a
    RecursionError in the timer's slot, the microphone never let go and Record disabled for good."""
    monkeypatch.setattr(hum_panel, "MAX_SECONDS", 1.5)
    FakeRecorder.signal = hum_signal(4.0)
    panel = hum_panel.HumPanel(recorder_factory=FakeRecorder)
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.queryReady, timeout=5000) as got:
        panel.start_recording()
    y, sr, what = got.args
    assert (sr, what) == (SR_MIC, "recording") and 1.0 * SR_MIC < len(y) <= 1.6 * SR_MIC
    assert panel.recorder is None and panel.record.isEnabled() and not panel.stop.isEnabled()
    assert 1.5 <= len(panel.recorded) / SR_MIC < 1.6


def test_recording_while_a_hum_file_decodes_keeps_its_live_spectrogram(qtbot, hum, bugs, tmp_path,  # noqa: F811
                                                                         monkeypatch):
    """Record pressed while a loaded hum file was still decoding: the file's spectrogram replaced the live one, so
    every drain raised "call start_live() before append_columns()", Stop raised too and the recording never
    stopped (Record disabled, the microphone held); the file's songs were listed over the recording."""
    import musicemb_core.audio.decode as decode

    panel, controller = hum
    controller._searcher = StubSearcher(True)
    load = decode.load
    monkeypatch.setattr(decode, "load", lambda *a, **k: time.sleep(0.4) or load(*a, **k))
    sf.write(tmp_path / "hum.wav", hum_signal(2.0), SR_MIC)
    controller.search_file(str(tmp_path / "hum.wav"))
    FakeRecorder.signal = hum_signal(1.5)
    panel.start_recording()
    qtbot.waitUntil(lambda: panel.recorder._sent == len(FakeRecorder.signal), timeout=5000)
    qtbot.wait(300)  # the file's decode has ended meanwhile
    assert panel.results.rowCount() == 0 and panel.state.text().startswith("Recording from fake mic")
    with qtbot.waitSignal(controller.resultsShown, timeout=5000):
        panel.stop_recording()
    assert panel.recorder is None and panel.record.isEnabled() and controller._searcher.queries == 1
    assert np.isfinite(panel.spectrogram.data()).all(axis=0).sum() > 100  # the recording's columns


class SlowSearcher(StubSearcher):
    def query(self, y, sr, *, k=10):
        time.sleep(0.5)
        return super().query(y, sr, k=k)


def test_a_label_edit_during_a_search_keeps_no_confident_match(qtbot, hum, bugs):  # noqa: F811
    """A label edited (the library re-read) while a hum was searched dropped the open searcher, and the answer was
    then shown as a confident match: "no confident match" was lost."""
    panel, controller = hum
    controller._searcher = SlowSearcher(False)
    with qtbot.waitSignal(controller.resultsShown, timeout=5000):
        controller.search(np.zeros(16000, np.float32), 16000, "hum.wav")
        controller.session.libraryChanged.emit()
    assert panel.results.rowCount() == 2 and not panel.confident
    assert panel.state.text().startswith(NO_CONFIDENT_MATCH)


def test_labels_edited_are_the_labels_of_the_next_answers_without_reopening(qtbot, hum, bugs):  # noqa: F811
    """A label edit re-read the whole library and dropped the open searcher (its melody index read again, seconds
    at 20,000 tracks); now the searcher is kept and answers with the new labels."""
    panel, controller = hum
    searcher = controller._searcher = StubSearcher(True)
    searcher.tracks = {1: {"path": "/music/a.wav", "label": "rock"}, 2: {"path": "/music/b.wav", "label": None}}
    controller.session.labelsChanged.emit({1: "jazz", 3: "dub"})
    assert controller._searcher is searcher
    assert searcher.tracks == {1: {"path": "/music/a.wav", "label": "jazz"}, 2: {"path": "/music/b.wav", "label": None}}


class OpeningSession(StubSession):
    """Records the melody index jobs asked for; the test ends them."""

    def __init__(self):
        super().__init__()
        self.asked = []

    def library_job(self, name, work, *, writes=False):
        job = FakeJob()
        self.asked.append(job)
        return job


class FakeJob(QObject):
    finished = Signal(object)
    failed = Signal(str, str)
    cancelled = Signal()

    def cancel(self):
        self.was_cancelled = True


def test_a_hum_waiting_for_the_searcher_is_not_answered_by_an_earlier_one(qtbot, bugs):  # noqa: F811
    """A hum asked while the searcher was being opened again (the library was re-read during an earlier search)
    got the earlier hum's songs first, shown as its answer until its own came."""
    panel = HumPanel(recorder_factory=FakeRecorder)
    qtbot.addWidget(panel)
    session = OpeningSession()
    controller = HumController(session, panel)
    controller._searcher = SlowSearcher(True)
    shown = []
    controller.resultsShown.connect(lambda rows, _lat: shown.append(len(rows)))
    controller.search(np.zeros(16000, np.float32), 16000, "first.wav")
    session.libraryChanged.emit()  # an import ended: the searcher is opened again for the next hum
    controller.search(np.zeros(16000, np.float32), 16000, "second.wav")
    assert len(session.asked) == 1
    qtbot.wait(800)  # the first hum's answer has come meanwhile
    assert shown == [] and panel.results.rowCount() == 0
    with qtbot.waitSignal(controller.resultsShown, timeout=5000):
        session.asked[0].finished.emit(StubSearcher(True))
    assert shown == [2] and panel.results.rowCount() == 2


def test_a_melody_index_failing_during_a_recording_leaves_it_said(qtbot, bugs):  # noqa: F811
    """The melody index's job failed while the user hummed: its message replaced "Recording from…" (the panel
    looked idle while the microphone still ran). Now both are said, and the stop asks for the index again."""
    panel = HumPanel(recorder_factory=FakeRecorder)
    qtbot.addWidget(panel)
    session = OpeningSession()
    controller = HumController(session, panel)
    FakeRecorder.signal = hum_signal(3.0)
    panel.start_recording()
    assert len(session.asked) == 1
    session.asked[0].failed.emit("disk full", "")
    assert panel.recorder is not None and panel.state.text().startswith("Recording from fake mic")
    assert "cannot search by humming yet: disk full" in panel.state.text() and controller._job is None
    qtbot.waitUntil(lambda: panel.recorder._sent == len(FakeRecorder.signal), timeout=5000)
    panel.stop_recording()
    assert len(session.asked) == 2  # asked again for this hum
    session.asked[1].failed.emit("disk full", "")
    assert panel.state.text() == "⚠ cannot search by humming: disk full"


def test_a_hum_file_is_checked_and_drawn_off_the_gui_thread(qtbot, hum, bugs, tmp_path, monkeypatch):  # noqa: F811
    """Any file was loaded as a hum (`musicemb hum` refuses more than 10 min), its spectrogram computed on the GUI
    thread: an hour-long recording froze the window for seconds and was searched for minutes."""
    import threading

    import musicemb_core.features.logmel as logmel

    panel, controller = hum
    controller._searcher = StubSearcher(True)
    sf.write(tmp_path / "long.wav", np.zeros(11 * 60 * 1000, np.int16), 1000)
    controller.search_file(str(tmp_path / "long.wav"))
    qtbot.waitUntil(lambda: panel.state.text().startswith("⚠"), timeout=5000)
    assert panel.state.text() == f"⚠ {tmp_path / 'long.wav'}: 11.0 min long; hums may be at most 10 min (trim it first)"
    assert controller._searcher.queries == 0

    threads = []
    log_mel = logmel.log_mel
    monkeypatch.setattr(logmel, "log_mel", lambda *a: threads.append(threading.current_thread()) or log_mel(*a))
    sf.write(tmp_path / "hum.wav", hum_signal(2.0), SR_MIC)
    with qtbot.waitSignal(controller.resultsShown, timeout=5000):
        controller.search_file(str(tmp_path / "hum.wav"))
    assert threads and threading.main_thread() not in threads
    assert panel.spectrogram.data().shape[0] == hum_panel.LIVE.n_mels


def test_looking_for_microphones_while_recording_keeps_record_off(qtbot, bugs, monkeypatch):  # noqa: F811
    """↻ pressed during a recording enabled Record again: a second press started another recorder and the first
    was never stopped (the microphone held until the app quit)."""
    mic = {"name": "fake mic", "default_samplerate": SR_MIC, "index": 3, "is_default": True}
    monkeypatch.setattr(hum_panel, "list_devices", lambda kind: [mic])
    panel = HumPanel(recorder_factory=FakeRecorder)
    qtbot.addWidget(panel)
    FakeRecorder.signal = hum_signal(2.0)
    panel.record.click()
    first = panel.recorder
    panel.refresh.click()
    assert first is not None and panel.recorder is first and not panel.record.isEnabled() and panel.stop.isEnabled()
    panel.stop.click()
    assert panel.recorder is None and first._t0 is None and panel.record.isEnabled()


def test_opening_a_library_does_not_say_no_tune_was_recognised(qtbot, window, tmp_path):  # noqa: F811
    """Opening a library cleared the Hum panel's results with "No tune recognised: was it hummed long and clearly
    enough?" before anything was hummed (and over "Microphone off: ..." on a machine without one)."""
    lib = tone_library(tmp_path)
    panel = window.hum_panel
    idle = panel.state.text()
    assert window.open_library(lib)
    assert panel.state.text() == idle == panel.idle and panel.results.rowCount() == 0
    panel.recorder_factory = FakeRecorder
    FakeRecorder.signal = hum_signal(3.0)
    panel.start_recording()
    assert window.open_library(lib)  # opened again while recording: the recording goes on, and says so
    assert panel.results.rowCount() == 0 and panel.state.text().startswith("Recording from fake mic")
    panel.discard_recording()


def test_a_hum_waiting_for_the_old_librarys_index_is_dropped_with_it(qtbot, bugs):  # noqa: F811
    """Another library opened while a hum waited for the melody index: the hum was searched in the new library
    and the old library's index job went on, holding the new library's writing jobs behind it."""
    panel = HumPanel(recorder_factory=FakeRecorder)
    qtbot.addWidget(panel)
    session = OpeningSession()
    controller = HumController(session, panel)
    shown = []
    controller.resultsShown.connect(lambda rows, _lat: shown.append(len(rows)))
    controller.search(np.zeros(16000, np.float32), 16000, "hum.wav")
    old = session.asked[0]
    session.libraryOpened.emit()
    session.libraryChanged.emit()
    assert getattr(old, "was_cancelled", False) and len(session.asked) == 1  # no index job for the new library yet
    old.finished.emit(StubSearcher(True))  # had it ended anyway: not the open library's
    qtbot.wait(300)
    assert shown == [] and controller._searcher is None
