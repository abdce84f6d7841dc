"""Hum panel: pick a microphone, record with a level meter and a live scrolling mel spectrogram, stop (or load a
file instead), then the ranked songs: play the matched segment, show it on the map.

The recorder's PortAudio callback fills a ring buffer; a 30 ms GUI timer drains it (every sample is kept for
the query), resamples to the display rate and appends the new spectrogram columns. Searching is the
controller's job (``queryReady``); results come back through :meth:`set_results`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soxr
from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from musicemb_core.audio.devices import Recorder, list_devices, trim_silence
from musicemb_core.common.config import FeatureConfig
from musicemb_core.common.errors import MusicEmbError
from musicemb_core.features.streaming import StreamingLogMel
from musicemb_gui.widgets.level_meter import LevelMeter
from musicemb_gui.widgets.plain_text import tooltip
from musicemb_gui.widgets.space_play import SpacePlays
from musicemb_gui.widgets.spectrogram_view import SpectrogramView

LIVE = FeatureConfig(sr=16000, n_fft=512, hop_length=160, n_mels=64, fmin=50.0, fmax=4000.0)
DRAIN_MS = 30          # about 33 spectrogram updates a second (25+ even when the timer runs late)
MAX_SECONDS = 30.0     # recording stops by itself after this
MIN_SECONDS = 0.5      # shorter than this after trimming silence: nothing to search
DEFAULT_INPUT = "(default input)"
HINT = "Hum or sing a tune for a few seconds, then stop."
NO_CONFIDENT_MATCH = "No confident match: the tune may not be in this library. The closest songs are below."


def query_spectrogram(y: np.ndarray, sr: int) -> np.ndarray:
    """The log-mel of a loaded query as the panel shows it (seconds for a long file: call it off the GUI thread)."""
    from musicemb_core.audio.resample import resample
    from musicemb_core.features.logmel import log_mel

    return log_mel(resample(y, sr, LIVE.sr), LIVE)


class HumPanel(QWidget):
    queryReady = Signal(object, int, str)  # y (mono float32), sr, what it is ("recording" or a file path)
    fileChosen = Signal(str)               # the controller decodes it off the GUI thread
    recordingStarted = Signal()            # the controller gets the searcher ready meanwhile
    playRequested = Signal(int)            # segment id
    showOnMap = Signal(int)                # segment id

    def __init__(self, parent: QWidget | None = None, *,
                 recorder_factory: Callable[..., Recorder] = Recorder):
        super().__init__(parent)
        self.recorder_factory = recorder_factory
        self.recorder: Recorder | None = None
        self.device = QComboBox()
        self.refresh = QPushButton("↻")
        self.refresh.setToolTip("Look for microphones again")
        self.refresh.setFixedWidth(self.refresh.fontMetrics().horizontalAdvance("↻") + 24)  # not a wide button
        self.threshold = QDoubleSpinBox(minimum=-90.0, maximum=-10.0, value=-45.0, suffix=" dBFS", decimals=0)
        self.threshold.setToolTip("Silence gate: quieter audio at the start and end is cut before searching")
        self.record = QPushButton("● Record")
        self.stop = QPushButton("■ Stop and search")
        self.stop.setEnabled(False)
        self.load = QPushButton("Load a file instead…")
        self.level = LevelMeter()
        self.level.setMaximumWidth(220)
        self.state = QLabel(HINT)
        self.confident = False  # whether the results shown hold a confident match
        self.state.setWordWrap(True)
        self.state.setTextFormat(Qt.TextFormat.PlainText)  # errors name files
        self.spectrogram = SpectrogramView(max_frames=int(10 * LIVE.sr / LIVE.hop_length),
                                           empty_text="Press ● Record and hum: the live spectrogram scrolls here.")
        self.results = QTableWidget(0, 5)
        self.results.setHorizontalHeaderLabels(["#", "score", "track", "label", "at (s)"])
        head = self.results.horizontalHeader()
        for col in range(5):
            head.setSectionResizeMode(col, QHeaderView.ResizeMode.Stretch if col == 2 else
                                      QHeaderView.ResizeMode.ResizeToContents)
        self.results.verticalHeader().hide()
        self.results.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.results.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.results.setWordWrap(False)
        self.results.setTextElideMode(Qt.TextElideMode.ElideRight)  # a title's start reads
        self.play = QPushButton("Play match")
        self.show_map = QPushButton("Show on map")

        bar = QHBoxLayout()
        for w in (QLabel("Microphone:"), self.device, self.refresh, QLabel("Gate:"), self.threshold, self.record,
                  self.stop, self.level, self.load):
            bar.addWidget(w)
        bar.addStretch(1)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.results)
        buttons = QHBoxLayout()
        buttons.addWidget(self.play)
        buttons.addWidget(self.show_map)
        buttons.addStretch(1)
        rl.addLayout(buttons)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.spectrogram)
        split.addWidget(right)
        split.setSizes([600, 500])
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.state)
        layout.addWidget(split, 1)

        self._timer = QTimer(self, interval=DRAIN_MS, timerType=Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._drain)
        self.refresh.clicked.connect(self.find_devices)
        self.record.clicked.connect(self.start_recording)
        self.stop.clicked.connect(lambda: self.stop_recording())  # not clicked(checked) as the reason
        self.load.clicked.connect(self._ask_file)
        self.now_playing: Callable[[], object] = lambda: None  # what the window's player holds (a player key)
        self.results.cellDoubleClicked.connect(lambda row, _c: self._play(row))
        self.play.clicked.connect(lambda: self._play(self._selected_row()))
        self.show_map.clicked.connect(self._show_on_map)
        SpacePlays(self.results, self._segment_at, self._play, lambda: self.now_playing())
        self.results.itemSelectionChanged.connect(self._selection_changed)
        self._selection_changed()
        self.updates = 0          # spectrogram updates of the current recording
        self.stop_note = ""       # why the last recording stopped by itself (a microphone unplugged), or ""
        self.stopped_at = 0.0     # perf_counter() when the last query was handed over
        self.find_devices()

    # -- devices -------------------------------------------------------------------------------------------
    def find_devices(self) -> None:
        """List input devices; without any the panel still searches files and says why the mic is off."""
        self.device.clear()
        try:
            devices = list_devices("input")
        except MusicEmbError as e:
            devices, why = [], str(e)
        else:
            why = "no input device found (is a microphone connected, is a sound server running?)"
        self.device.addItem(DEFAULT_INPUT, None)
        for d in devices:
            self.device.addItem(f"{d['name']} ({d['default_samplerate']:.0f} Hz)", d["index"])
            if d["is_default"]:
                self.device.setItemText(0, f"{DEFAULT_INPUT}: {d['name']}")
        self.record.setEnabled(bool(devices) and self.recorder is None)  # looked for again while recording
        self.record.setToolTip("" if devices else why)
        self.idle = HINT if devices else f"Microphone off: {why}. You can still load a recording."
        if not devices and self.recorder is None:
            self.state.setText(self.idle)

    # -- recording -----------------------------------------------------------------------------------------
    def start_recording(self) -> None:
        try:
            rec = self.recorder_factory(self.device.currentData(), seconds_capacity=MAX_SECONDS + 5)
            rec.start()
        except MusicEmbError as e:
            self.state.setText(f"⚠ cannot record: {e}")
            return
        self.recorder, self._chunks, self.updates, self.stop_note = rec, [], 0, ""
        self._mel = StreamingLogMel(LIVE)
        self._rs = None if rec.samplerate == LIVE.sr else soxr.ResampleStream(rec.samplerate, LIVE.sr, 1,
                                                                              dtype="float32")
        self.spectrogram.start_live(LIVE.n_mels, sr=LIVE.sr, hop_length=LIVE.hop_length, fmin=LIVE.fmin,
                                    fmax=LIVE.fmax, unit="dB", title=f"recording from {rec.device_name}")
        self.results.setRowCount(0)
        self.record.setEnabled(False)
        self.stop.setEnabled(True)
        self.load.setEnabled(False)
        self.state.setText(f"Recording from {rec.device_name} at {rec.samplerate} Hz… hum, then stop.")
        self._timer.start()
        self.recordingStarted.emit()

    def _drain(self) -> None:
        """Move new samples from the ring buffer into the query and the spectrogram (GUI thread, ~1 ms)."""
        rec = self.recorder
        if rec is None:
            return
        y = rec.read()
        if len(y):
            self._chunks.append(y)
            x = self._rs.resample_chunk(y) if self._rs is not None else y
            cols = self._mel.push(x)
            if cols.shape[1]:
                self.spectrogram.append_columns(cols)
                self.updates += 1
        level = rec.level_dbfs
        self.level.set_level(level)
        seconds = sum(map(len, self._chunks)) / rec.samplerate
        if not self._timer.isActive():  # the last drain of stop_recording itself
            return
        if not rec.active:  # PortAudio stopped the stream: the microphone was unplugged or failed
            self.stop_recording(why=f"⚠ {rec.device_name} stopped recording after {seconds:.1f} s (unplugged?)")
        elif seconds >= MAX_SECONDS:
            self.stop_recording()

    def stop_recording(self, why: str = "") -> None:
        """Stop, keep every recorded sample, cut silence at both ends and hand the hum over for searching;
        ``why``: a line saying why the recording stopped before the user stopped it, shown above the outcome."""
        rec = self.recorder
        if rec is None:
            return
        self._timer.stop()
        rec.stop()
        self._drain()  # what arrived since the last tick
        self.recorder = None
        self.record.setEnabled(True)
        self.stop.setEnabled(False)
        self.load.setEnabled(True)
        self.level.set_level(-np.inf)
        y = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.float32)
        self.recorded = y
        lost = rec.buffer.overflows
        hum = trim_silence(y, rec.samplerate, threshold_dbfs=self.threshold.value())
        self.stop_note = lead = f"{why}\n" if why else ""  # kept above the answers too
        gate = f"{self.threshold.value():.0f} dBFS"
        if not len(hum):
            self.state.setText(f"{lead}Nothing heard above {gate} in {len(y) / rec.samplerate:.1f} s: hum louder or "
                               "lower the gate.")
            return
        if len(hum) < MIN_SECONDS * rec.samplerate:  # heard, but a blip: too short to search
            self.state.setText(f"{lead}Under {MIN_SECONDS:g} s heard above {gate}: too short to search, hum the "
                               "tune for a few seconds.")
            return
        note = f" ({lost} blocks lost)" if lost else ""
        self.state.setText(f"{lead}Searching {len(hum) / rec.samplerate:.1f} s of humming{note}…")
        self.stopped_at = time.perf_counter()
        self.queryReady.emit(hum.astype(np.float32), int(rec.samplerate), "recording")

    def showEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().showEvent(event)
        if isinstance(self.parentWidget(), QDockWidget):  # watched for closing (installed once, however often)
            self.parentWidget().installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        """The panel's dock closed while recording: stop and search what was heard (it went on recording unseen,
        the microphone held, for up to 30 s)."""
        if event.type() == QEvent.Type.Close and self.recorder is not None:
            self.stop_recording(why="Recording stopped: the Hum panel was closed.")
        return False

    def discard_recording(self) -> None:
        """Stop recording without searching (the window closes): the microphone is let go at once."""
        rec = self.recorder
        if rec is None:
            return
        self._timer.stop()
        self.recorder = None
        rec.stop()
        self.record.setEnabled(True)
        self.stop.setEnabled(False)
        self.load.setEnabled(True)
        self.level.set_level(-np.inf)

    def _ask_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "A recording of humming or singing")
        if path:
            self.fileChosen.emit(path)

    def show_query(self, S: np.ndarray, title: str) -> None:
        """Show a loaded query's spectrogram (:func:`query_spectrogram`; the recorded one is already on screen)."""
        self.spectrogram.set_spectrogram(S, sr=LIVE.sr, hop_length=LIVE.hop_length, fmin=LIVE.fmin,
                                         fmax=LIVE.fmax, unit="dB", title=title)

    # -- results -------------------------------------------------------------------------------------------
    def set_results(self, rows: list[dict], message: str = "", *, confident: bool = True) -> None:
        """Ranked ``[{track_id, path, label, score, segment_id, start_s, confidence}]``, best first; with
        ``confident`` False the best is no confident match (the tune may not be in the library): said so, and
        the closest songs are still listed."""
        self.results.setRowCount(len(rows))
        for r, row in enumerate(rows):
            name = row.get("name") or Path(row["path"]).name
            values = (r + 1, f"{row['score']:.3f}", name, row.get("label") or "", f"{row.get('start_s', 0.0):.1f}")
            for c, v in enumerate(values):
                item = QTableWidgetItem(str(v))
                item.setData(Qt.ItemDataRole.UserRole, int(row.get("segment_id", -1)))
                if c == 1 and row.get("confidence") is not None:
                    item.setToolTip(f"confidence {row['confidence']:.0%}")
                if c == 2:
                    item.setToolTip(tooltip(row["path"]))
                self.results.setItem(r, c, item)
        if rows:
            self.results.selectRow(0)
        self.confident = bool(rows) and confident
        self.state.setText(message or (NO_CONFIDENT_MATCH if rows and not confident else
                                       f"{len(rows)} songs, best first." if rows else
                                       "No tune recognised: was it hummed long and clearly enough?"))

    def clear_results(self) -> None:
        """Forget the results shown (another library opened): the panel says what to do, or goes on recording."""
        self.set_results([], self.state.text() if self.recorder is not None else self.idle)

    def _selection_changed(self) -> None:
        ok = bool(self.results.selectionModel().selectedRows())
        self.play.setEnabled(ok)
        self.show_map.setEnabled(ok)

    def _selected_row(self) -> int | None:
        rows = self.results.selectionModel().selectedRows()
        return rows[0].row() if rows else None

    def _segment_at(self, row: int | None) -> int | None:
        """The segment id of the match in ``row``; None for no row or a match without one."""
        seg = None if row is None else self.results.item(row, 0).data(Qt.ItemDataRole.UserRole)
        return int(seg) if seg is not None and seg >= 0 else None

    def _play(self, row: int | None) -> None:
        if (seg := self._segment_at(row)) is not None:
            self.playRequested.emit(seg)

    def _show_on_map(self) -> None:
        if (seg := self._segment_at(self._selected_row())) is not None:
            self.showOnMap.emit(seg)
