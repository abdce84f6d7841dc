"""Hum panel: live spectrogram from a (fake, real-time paced) recorder, every sample reaches the query, silence is
trimmed, errors are shown; and in the whole app a hummed file finds its song on a small library."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("PySide6")
from PySide6.QtCore import QSettings, Qt  # noqa: E402

from musicemb_core.audio.devices import AudioDeviceError  # noqa: E402
from musicemb_core.audio.ringbuffer import RingBuffer  # noqa: E402
from musicemb_gui.panels.hum_panel import DRAIN_MS, LIVE, HumPanel  # noqa: E402

SR_MIC = 48000


class FakeRecorder:
    """Delivers ``signal`` at real-time pace through a RingBuffer, as the PortAudio callback would."""

    signal = np.zeros(0, np.float32)

    def __init__(self, device=None, *, seconds_capacity: float = 60.0):
        self.samplerate, self.device_name = SR_MIC, "fake mic"
        self.buffer = RingBuffer(int(seconds_capacity * SR_MIC))
        self.level_dbfs = -math.inf
        self._t0, self._sent = None, 0

    unplugged_after_s = None  # the device goes away that long into the recording (None: never)

    @property
    def active(self):
        return self._t0 is not None and (self.unplugged_after_s is None
                                         or time.perf_counter() - self._t0 < self.unplugged_after_s)

    def start(self):
        self._t0 = time.perf_counter()

    def stop(self):
        self._pump()
        self._t0 = None

    def _pump(self):
        if self._t0 is None:
            return
        elapsed = time.perf_counter() - self._t0
        if self.unplugged_after_s is not None:
            elapsed = min(elapsed, self.unplugged_after_s)
        due = min(len(self.signal), int(elapsed * SR_MIC))
        block = self.signal[self._sent:due]
        if len(block):
            self.buffer.write(block[:, None])
            self.level_dbfs = 20 * math.log10(max(1e-9, float(np.abs(block).max())))
        self._sent = due

    def read(self):
        self._pump()
        return self.buffer.read()[:, 0]


def hum_signal(seconds: float, *, lead_s: float = 0.4) -> np.ndarray:
    """Silence, then a vibrato tone with harmonics (a crude hum), then silence."""
    t = np.arange(int(seconds * SR_MIC)) / SR_MIC
    f = 220 * 2 ** (np.floor(t * 2) % 5 / 12) * (1 + 0.004 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(f) / SR_MIC
    y = 0.3 * np.sin(phase) + 0.1 * np.sin(2 * phase)
    y[t < lead_s] = 0
    y[t > seconds - lead_s] = 0
    return y.astype(np.float32)


@pytest.fixture
def panel(qtbot):
    p = HumPanel(recorder_factory=FakeRecorder)
    qtbot.addWidget(p)
    p.resize(1000, 400)
    p.show()
    return p


def test_live_spectrogram_updates_25_times_a_second_and_no_sample_is_lost(qtbot, panel):
    FakeRecorder.signal = hum_signal(2.5)
    panel.start_recording()
    assert panel.recorder is not None and not panel.record.isEnabled() and panel.stop.isEnabled()
    t0 = time.perf_counter()
    levels = []
    qtbot.waitUntil(lambda: levels.append(panel.level.level_db) or panel.recorder._sent == len(FakeRecorder.signal),
                    timeout=10000)
    elapsed = time.perf_counter() - t0
    rate = panel.updates / elapsed
    assert panel._timer.interval() == DRAIN_MS <= 40 and panel._timer.timerType() == Qt.TimerType.PreciseTimer
    # 25+ a second is what the timer gives on an idle machine (bench/bench_gui_stalls.py measures how late the GUI
    # thread runs); a loaded shared machine delays timers, so this only fails updates drawn in bursts or at the end
    assert rate >= 10, f"{rate:.1f} spectrogram updates a second (timer every {DRAIN_MS} ms)"
    assert min(levels) <= -60 and max(levels) > -20  # the meter follows the input (silence, then the hum)
    with qtbot.waitSignal(panel.queryReady, timeout=2000) as got:
        panel.stop_recording()
    y, sr, what = got.args
    assert sr == SR_MIC and what == "recording"
    np.testing.assert_array_equal(panel.recorded, FakeRecorder.signal)  # every sample, in order
    voiced = np.flatnonzero(FakeRecorder.signal)
    assert abs(len(y) - (voiced[-1] - voiced[0])) < 0.25 * SR_MIC  # silence cut down to the 0.1 s pads
    cols = panel.spectrogram.data()
    assert cols.shape[0] == LIVE.n_mels
    filled = np.isfinite(cols).all(axis=0).sum()
    assert abs(filled - 2.5 * LIVE.sr / LIVE.hop_length) < 10  # 100 columns a second, all shown


def test_silence_is_not_searched_and_device_errors_are_shown(qtbot, panel):
    FakeRecorder.signal = np.zeros(SR_MIC, np.float32)
    panel.start_recording()
    qtbot.wait(300)
    with qtbot.assertNotEmitted(panel.queryReady):
        panel.stop_recording()
    assert "Nothing heard" in panel.state.text()

    def broken(*_a, **_k):
        raise AudioDeviceError("device 'USB mic' is busy")
    panel.recorder_factory = broken
    panel.start_recording()
    assert "cannot record: device 'USB mic' is busy" in panel.state.text() and panel.record.isEnabled()


def test_a_microphone_unplugged_while_recording_stops_it_and_searches_what_was_heard(qtbot, panel, monkeypatch):
    """PortAudio stops the stream of a device that goes away: the panel went on 'recording' silence until the
    user pressed Stop (or for 30 s). Now it stops, says why, and searches the hum it has."""
    FakeRecorder.signal = hum_signal(4.0)
    monkeypatch.setattr(FakeRecorder, "unplugged_after_s", 2.0)
    panel.start_recording()
    with qtbot.waitSignal(panel.queryReady, timeout=5000) as got:
        pass
    y, sr, what = got.args
    assert panel.recorder is None and panel.record.isEnabled() and not panel.stop.isEnabled()
    assert what == "recording" and 1.0 * SR_MIC < len(y) < 2.0 * SR_MIC  # the hum heard before the unplug
    assert panel.state.text().startswith("⚠ fake mic stopped recording after 2.0 s (unplugged?)\nSearching")
    assert panel.stop_note.startswith("⚠ fake mic stopped recording")


def test_results_play_and_show_on_map(qtbot, panel):
    rows = [{"track_id": 3, "path": "/music/a/song3.wav", "label": "folk", "score": 0.91, "segment_id": 31,
             "start_s": 6.0}, {"track_id": 1, "path": "/music/b/song1.wav", "label": None, "score": 0.4,
                               "segment_id": 12, "start_s": 0.0}]
    panel.set_results(rows)
    assert panel.results.rowCount() == 2 and panel.results.item(0, 2).text() == "song3.wav"
    with qtbot.waitSignal(panel.playRequested) as got:
        panel.play.click()
    assert got.args == [31]
    panel.results.selectRow(1)
    with qtbot.waitSignal(panel.showOnMap) as got:
        panel.show_map.click()
    assert got.args == [12]


def test_in_the_app_a_hummed_file_finds_its_song(qtbot, tmp_path):
    from musicemb_core.common.errors import MusicEmbError
    from musicemb_core.common.progress import drive
    from musicemb_core.data.hum_synthesis import render_hum, render_melody_song
    from musicemb_core.data.ingest import iter_ingest
    from musicemb_core.data.library import Library
    from musicemb_core.data.melodies import generated_melodies
    from musicemb_core.search.qbh import qbh_model_folder
    from musicemb_gui.main_window import MainWindow
    from musicemb_gui.widgets.audio_player import AudioPlayer
    from tests.gui.helpers import FakeBackend

    try:
        qbh_model_folder(None)
    except MusicEmbError:
        pytest.skip("no shipped QBH model yet")
    sr = 16000
    tunes = generated_melodies(4, n_notes=40, random_state=77)
    timelines = []
    for i, m in enumerate(tunes):
        y, timeline, _style = render_melody_song(m, seed=900 + i, sr=sr, max_s=20.0)
        sf.write(tmp_path / f"song{i}.wav", y, sr)
        timelines.append(timeline)
    with Library(tmp_path / "lib", create=True) as lib:
        drive(iter_ingest(lib, [tmp_path / f"song{i}.wav" for i in range(4)], jobs=1))
    tl = timelines[2]
    sel = tl[(tl[:, 0] >= tl[3, 0]) & (tl[:, 0] < tl[3, 0] + 8.0)]
    hum = render_hum(np.stack([sel[:, 0] - sel[0, 0], sel[:, 1], sel[:, 2]], 1), seed=4242, sr=sr)
    sf.write(tmp_path / "hum.wav", hum.y, sr)

    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings, player=AudioPlayer(backend=FakeBackend()))
    qtbot.addWidget(win)
    assert win.open_library(tmp_path / "lib")
    win.hum_panel.recordingStarted.emit()  # the searcher gets ready (index built, warmed up) while one hums
    qtbot.waitUntil(lambda: win.hum._searcher is not None, timeout=180000)
    with qtbot.waitSignal(win.hum.resultsShown, timeout=60000) as got:
        win.hum_panel.fileChosen.emit(str(tmp_path / "hum.wav"))  # what "Load a file instead…" emits
    rows, latency = got.args
    assert latency < 5.0
    assert rows and rows[0]["path"].endswith("song2.wav"), [r["path"] for r in rows]
    assert win.hum_panel.results.item(0, 2).text() == "song2.wav"
    with qtbot.waitSignal(win.hum.resultsShown, timeout=60000) as got:  # the searcher is kept: quick now
        win.hum_panel.fileChosen.emit(str(tmp_path / "hum.wav"))
    assert got.args[0][0]["path"].endswith("song2.wav") and got.args[1] < 5.0
    win.hum_panel.play.click()
    qtbot.waitUntil(lambda: win.player.last_key == rows[0]["segment_id"], timeout=10000)
    win.jobs.wait(30000)


class InstantRecorder(FakeRecorder):
    """Hands over its whole signal at the first read (a recording already made): nothing to wait for."""

    def _pump(self):
        if self._t0 is not None and self._sent < len(self.signal):
            self.buffer.write(self.signal[self._sent:, None])
            self._sent = len(self.signal)


def _record(panel, signal):
    FakeRecorder.signal = signal.astype(np.float32)
    panel.recorder_factory = InstantRecorder
    panel.start_recording()
    panel.stop_recording()


def test_a_blip_is_too_short_silence_is_nothing_and_a_clipped_hum_is_searched(qtbot, panel):
    """A 0.1 s hum was answered "Nothing heard above -45 dBFS: hum louder", though it was heard (and loud)."""
    quiet = np.zeros(int(0.5 * SR_MIC))
    blip = 0.9 * np.sin(2 * np.pi * 220 * np.arange(int(0.1 * SR_MIC)) / SR_MIC)
    with qtbot.assertNotEmitted(panel.queryReady):
        _record(panel, np.concatenate([quiet, blip, quiet]))
    assert "too short to search" in panel.state.text() and "Nothing heard" not in panel.state.text()
    assert panel.record.isEnabled() and panel.recorder is None
    with qtbot.assertNotEmitted(panel.queryReady):
        _record(panel, np.zeros(SR_MIC))
    assert panel.state.text().startswith("Nothing heard above -45 dBFS in 1.0 s")
    clipped = np.clip(4 * hum_signal(3.0), -1, 1)
    with qtbot.waitSignal(panel.queryReady, timeout=2000) as got:
        _record(panel, clipped)
    assert got.args[2] == "recording" and len(got.args[0]) > 2 * SR_MIC


def test_an_import_ending_while_the_melody_index_waits_does_not_build_it_twice(qtbot, tmp_path, monkeypatch):
    """A hum asked during an import waits for the melody index job queued behind it; the import's end dropped that
    job and asked a second one, so the index was built twice, one job waiting behind the other."""
    import threading

    from PySide6.QtCore import QThreadPool

    from musicemb_core.data.library import Library
    from musicemb_core.search.qbh import HumSearcher
    from musicemb_gui.panels.hum_controller import HumController
    from musicemb_gui.session import Session
    from musicemb_gui.workers import JobManager

    def opened(lib, cancel):  # the melody index job, cut short: this test is about which jobs are asked
        cancel.check()
        return None
        yield
    monkeypatch.setattr(HumSearcher, "iter_open", staticmethod(opened))
    Library(tmp_path / "lib", create=True).close()
    session = Session(JobManager(QThreadPool()))
    session.open(tmp_path / "lib")
    panel = HumPanel(recorder_factory=InstantRecorder)
    qtbot.addWidget(panel)
    hum = HumController(session, panel)
    release = threading.Event()

    def import_(lib, token):
        release.wait(10)
        return None
        yield
    session.library_job("import 1 item(s)", import_, writes=True)
    panel.queryReady.emit(hum_signal(2.0), SR_MIC, "recording")
    melody = [j for j in session.jobs.jobs if j.name == "melody index for humming"]
    assert len(melody) == 1 and hum._pending is not None
    session.refresh()  # what the import's end does
    assert [j for j in session.jobs.jobs if j.name == "melody index for humming"] == melody
    assert hum._job is melody[0] and hum._pending is not None  # the hum still waits for it
    qtbot.wait(1)
    session.jobs.cancel_all()
    release.set()
    assert session.jobs.wait(10000)
    qtbot.waitUntil(lambda: "cannot search by humming: the melody index was cancelled" in panel.state.text(),
                    timeout=5000)


def test_closing_the_hum_dock_while_recording_stops_and_searches_what_was_heard(qtbot):
    """Closing the Hum dock left the microphone recording unseen until the 30 s cap; the panel hidden otherwise
    (another tab in front) goes on recording."""
    from PySide6.QtWidgets import QDockWidget, QMainWindow

    win = QMainWindow()
    qtbot.addWidget(win)
    panel = HumPanel(recorder_factory=InstantRecorder)
    dock = QDockWidget("Hum", win)
    dock.setWidget(panel)
    win.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
    win.show()
    qtbot.waitExposed(win)
    FakeRecorder.signal = hum_signal(2.0)
    panel.start_recording()
    panel.hide()
    panel.show()
    assert panel.recorder is not None
    with qtbot.waitSignal(panel.queryReady, timeout=2000) as got:
        dock.close()
    assert panel.recorder is None and panel.record.isEnabled() and got.args[2] == "recording"
    assert panel.stop_note.startswith("Recording stopped: the Hum panel was closed.")
