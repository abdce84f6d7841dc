"""What plays: the current item (the segment or track heard last), Space to play or stop it, the volume, and the
player bar's waveform and playhead. Playing itself is the main window's ``play_segment`` / ``play_track``,
asked through ``playSegment`` / ``playTrack``."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QWidget

from musicemb_core.audio.decode import info, stream
from musicemb_core.audio.resample import StreamResampler, downmix
from musicemb_gui.panels.player_bar import PlayerBar
from musicemb_gui.session import Session
from musicemb_gui.widgets.audio_player import AudioPlayer
from musicemb_gui.widgets.waveform_view import envelope
from musicemb_gui.workers import run_in_thread

WAVEFORM_SR = 2000   # decoding rate of the overview: its shape, not its sound
WAVEFORM_BINS = 1500
TRACK_PREVIEW_S = 30.0  # how much of a track ``play_track`` plays


def overview(path: str, bins: int = WAVEFORM_BINS) -> tuple[np.ndarray, np.ndarray, float]:
    """The min/max envelope of a track (see :func:`envelope`) and its length in seconds, decoded block by block at
    :data:`WAVEFORM_SR`: a 2-hour mix takes 0.1 GB, not the 3 GB of decoding it whole at its own rate."""
    to_rate = StreamResampler(info(path).sample_rate, WAVEFORM_SR)
    y = np.concatenate([*(to_rate(downmix(b)) for b in stream(path)), to_rate.flush()])
    return (*envelope(y, bins), len(y) / WAVEFORM_SR)


class PlaybackController(QObject):
    playSegment = Signal(int)  # segment id
    playTrack = Signal(int)    # track id

    def __init__(self, session: Session, player: AudioPlayer, bar: PlayerBar, window: QWidget,
                 settings: QSettings | None = None):
        super().__init__(window)
        self.session, self.player, self.bar = session, player, bar
        self.current = None      # the player's key of the current item: a segment id or ("track", track id)
        self.pending = None      # key of the sound asked for and still decoding (of quick requests the last wins)
        self._offset_s = 0.0     # where the current item starts in its track
        self._track = None       # track id whose waveform is shown
        self._timer = QTimer(self, interval=30, timeout=self._tick)
        self.space = QShortcut(QKeySequence(Qt.Key.Key_Space), window, self.toggle)
        player.started.connect(self._started)
        player.finished.connect(self._finished)
        bar.play.clicked.connect(self.toggle)
        self.settings = settings  # remembers the volume
        if settings is not None:
            bar.volume.setValue(int(settings.value("volume", bar.volume.value())))
        bar.volume.valueChanged.connect(self._volume)
        self._volume(bar.volume.value())
        session.libraryOpened.connect(self._library_opened)

    def toggle(self) -> None:
        """Stop what plays or is still loading, else play the current item again."""
        if self.player.playing or self.pending is not None:
            self.pending = None
            self.player.stop()
            self._show()
        elif isinstance(self.current, tuple):
            self.playTrack.emit(self.current[1])
        elif self.current is not None:
            self.playSegment.emit(self.current)

    def holds(self):
        """The player key of the sound loading, else of the current item (None: nothing yet): what Space in a
        list compares its selected row with."""
        return self.pending if self.pending is not None else self.current

    def want(self, key) -> None:
        """``key`` is asked for and decodes: until it plays, the button (and Space) stops it."""
        self.pending = key
        self._show()

    def deliver(self, key, y: np.ndarray, sr: int) -> None:
        """A decode asked for ``key`` ended: play it if it is still the sound wanted (not stopped, nothing asked
        since)."""
        if self.pending == key:
            self.pending = None
            self.player.play(key, y, sr)

    def cannot_play(self, key, message: str) -> None:
        if self.pending == key:
            self.pending = None
            self._show()
        self.session.message.emit(f"cannot play: {message}")

    def _show(self) -> None:
        """The play button: Stop while a sound plays or loads, else Play (the current item again)."""
        busy = self.player.playing or self.pending is not None
        self.bar.play.setEnabled(busy or self.current is not None)
        self.bar.set_playing(busy)

    def _volume(self, percent: int) -> None:
        self.player.volume = percent / 100
        if self.settings is not None:
            self.settings.setValue("volume", percent)

    def _started(self, key) -> None:
        track_id, start, end, name, detail = self._describe(key)
        if track_id is None:
            return
        self.current = key
        self._offset_s = start
        self.bar.play.setEnabled(True)
        self.bar.set_playing(True)
        self.bar.show_title(name, detail)
        if track_id != self._track:
            self._track = track_id
            self._load_waveform(track_id)
        self.bar.waveform.set_region(start, end)
        self.bar.waveform.set_playhead(start)
        self._timer.start()

    def _describe(self, key) -> tuple[int | None, float, float, str, str]:
        """Track id, start and end (s) in the track, the track's name and the part played of a player key; (None,
        …) if unknown."""
        s = self.session
        if isinstance(key, tuple) and key[0] == "track" and key[1] in s.tracks:
            t = s.tracks[key[1]]
            end = min(t.duration_s, TRACK_PREVIEW_S)
            return t.id, 0.0, end, s.track_name(t.id), f"0–{end:.1f} s of {t.duration_s:.1f} s"
        if isinstance(key, int) and key in s.seg_row:
            g = s.segment(key)
            end = g["start_s"] + g["duration_s"]
            length = s.tracks[g["track_id"]].duration_s
            return (g["track_id"], g["start_s"], end, s.track_name(g["track_id"]),
                    f"{g['start_s']:.1f}–{end:.1f} s of {length:.1f} s")
        return None, 0.0, 0.0, "", ""

    def _load_waveform(self, track_id: int) -> None:
        path = self.session.tracks[track_id].path
        generation = self.session.generation

        def still(fn):  # the track still shown: an answer about an earlier one (a slow or broken file) is dropped
            return lambda arg: fn(arg) if self.session.is_current(generation) and self._track == track_id else None
        run_in_thread(lambda: overview(path), still(lambda r: self.bar.waveform.set_envelope(*r)),
                      still(lambda msg: self.bar.waveform.clear(f"No waveform: {msg}")))

    def _tick(self) -> None:
        self.bar.waveform.set_playhead(self._offset_s + self.player.position())

    def _finished(self, _key) -> None:
        if not self.player.playing:
            self._timer.stop()
            self._show()

    def _library_opened(self) -> None:
        self._timer.stop()
        self.current, self.pending, self._track, self._offset_s = None, None, None, 0.0
        self.bar.reset()
