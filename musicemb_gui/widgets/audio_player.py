"""The app's one audio player: click a point, hear its segment; it never blocks the GUI and never crashes it.

Playback runs in PortAudio's thread (a sounddevice OutputStream fed from the array by a callback); the GUI thread
only opens and closes streams. Without a usable output (no PortAudio, no device) ``unavailable`` is emitted and
plays are silent, still emitting ``started`` and ``finished`` so the UI stays consistent; a device that failed
is tried again by a play at least ``RETRY_S`` later (it may be back), a missing library never.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal, Slot

RETRY_S = 3.0  # after a device failed to start, plays within this are silent: a click flood tries it once

class AudioCache:
    """Least-recently-used store of decoded segments (key -> anything), safe to fill from worker threads."""

    def __init__(self, max_items: int = 256):
        self.max_items = max_items
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def peek(self, key: Hashable):
        """The value cached under ``key`` (marked recently used), else None."""
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: Hashable, value) -> None:
        """Store ``value`` under ``key``, evicting the least recently used beyond ``max_items``."""
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)

    def get(self, key: Hashable, loader: Callable[[], object]):
        """The value cached under ``key``, else ``loader()`` stored under it (decoded outside the lock)."""
        value = self.peek(key)
        if value is None:
            value = loader()
            self.put(key, value)
        return value

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class _ArrayFeeder:
    """PortAudio callback copying ``data`` ((frames, channels) float32) out block by block, each block scaled by
    ``gain()`` (read per block, so a volume change is heard at once), then ``stop_exc``."""

    def __init__(self, data: np.ndarray, stop_exc: type[Exception], gain: Callable[[], float] = lambda: 1.0):
        self.data = data
        self.pos = 0
        self.stop_exc = stop_exc
        self.gain = gain

    def __call__(self, outdata, frames, time_info, status) -> None:
        chunk = self.data[self.pos:self.pos + frames]
        np.multiply(chunk, self.gain(), out=outdata[:len(chunk)])
        outdata[len(chunk):] = 0
        self.pos += len(chunk)
        if self.pos >= len(self.data):
            raise self.stop_exc


class SoundDeviceBackend:
    """Default backend: a sounddevice OutputStream on the default output; PortAudio is loaded on first use.

    A backend has one method, ``start(data, sr, on_finished, gain) -> handle``: play ``data`` ((frames, channels)
    float32) at ``sr`` Hz, each block scaled by ``gain()``, without blocking, call ``on_finished()`` from any
    thread when playback ends, and return a handle whose ``close()`` stops playback at once; it raises when
    there is no usable output.
    """

    def start(self, data: np.ndarray, sr: int, on_finished: Callable[[], None], gain: Callable[[], float]):
        import sounddevice as sd

        try:
            sd.query_devices(kind="output")
        except (sd.PortAudioError, ValueError) as e:
            raise RuntimeError("no audio output device found (is a sound server running?)") from e
        # "low" latency: a click is heard at once, and PortAudio 19.6 through ALSA's pulse plugin was seen
        # to run ahead of the sound server (finishing early, dropping audio) with its "high" default
        stream = sd.OutputStream(samplerate=sr, channels=data.shape[1], dtype="float32", latency="low",
                                 callback=_ArrayFeeder(data, sd.CallbackStop, gain), finished_callback=on_finished)
        try:
            stream.start()
        except BaseException:
            stream.close()
            raise
        return stream  # close() aborts a running stream and frees it


def _message(e: Exception) -> str:
    if isinstance(e, ImportError):
        reason = "the sounddevice package is not installed (pip install sounddevice)"
    elif isinstance(e, OSError):
        reason = f"the PortAudio library could not be loaded (install libportaudio2): {e}"
    else:
        return f"Sound is off: no usable audio output: {e}. Tried again when you play; everything else keeps working."
    return f"Sound is off: {reason}. Everything else keeps working."


class AudioPlayer(QObject):
    """Plays one sound at a time; a new :meth:`play` stops the previous sound first.

    Signal order: ``finished(old key)`` before ``started(new key)``; every ``started`` is followed by exactly one
    ``finished``, emitted on the GUI thread, whether the sound ended, was stopped, or could not play.

    Parameters
    ----------
    backend : object with ``start(data, sr, on_finished)``, optional
        See :class:`SoundDeviceBackend` (the default); tests pass a fake.
    cache_items : int
        Capacity of ``cache``.

    Attributes
    ----------
    cache : AudioCache
        For callers to decode segments ahead: ``player.cache.get(key, loader)``.
    last_key : object
        Key of the last :meth:`play` request (what the UI asked to hear), None before any.
    available : bool
        False while the backend fails: plays are silent, a device tried again ``RETRY_S`` after it failed.
    volume : float
        Gain in [0, 1] applied to every block as it is played (a change is heard at once).
    """

    started = Signal(object)
    finished = Signal(object)
    unavailable = Signal(str)
    _done = Signal(int)  # from PortAudio's thread: the play with this token ended

    def __init__(self, parent: QObject | None = None, *, backend=None, cache_items: int = 256):
        super().__init__(parent)
        self.backend = backend or SoundDeviceBackend()
        self.cache = AudioCache(cache_items)
        self.available = True
        self._retry_at: float | None = 0.0  # time.monotonic() from which a failed output is tried again; None: never
        self.volume = 1.0
        self.last_key = None
        self._token = 0
        self._playing = None  # (token, key, handle)
        self._started_at = 0.0  # time.monotonic() of the sound playing now
        self._length_s = 0.0
        self._done.connect(self._on_done, Qt.ConnectionType.QueuedConnection)

    def play(self, key, y: np.ndarray, sr: int) -> None:
        """Stop the current sound and play ``y`` ((n,) or (channels, n)) at ``sr`` Hz; returns at once."""
        self.stop()
        self.last_key = key
        self._token += 1
        token = self._token
        data = np.ascontiguousarray(np.atleast_2d(np.asarray(y, dtype=np.float32)).T)
        self.started.emit(key)

        def on_finished() -> None:  # PortAudio's thread: hand over to the GUI thread
            self._done.emit(token)

        now = time.monotonic()
        if len(data) and (self.available or (self._retry_at is not None and now >= self._retry_at)):
            try:
                handle = self.backend.start(data, int(sr), on_finished, lambda: self.volume)
            except Exception as e:  # no PortAudio, no device, device gone: the sound is off, the app goes on
                self.available = False  # a library missing stays missing; a device may come back
                self._retry_at = None if isinstance(e, ImportError | OSError) else now + RETRY_S
                self.unavailable.emit(_message(e))
            else:
                self.available = True
                self._playing = (token, key, handle)
                self._started_at, self._length_s = time.monotonic(), len(data) / sr
                return
        self.finished.emit(key)

    @property
    def playing(self) -> bool:
        """Whether a sound is playing now."""
        return self._playing is not None

    def position(self) -> float:
        """Seconds played of the current sound (by the clock, capped at its length); 0 when none plays."""
        if self._playing is None:
            return 0.0
        return min(time.monotonic() - self._started_at, self._length_s)

    def stop(self) -> None:
        """Stop the current sound, if any, and emit ``finished`` for it."""
        if self._playing is None:
            return
        _, key, handle = self._playing
        self._playing = None
        handle.close()
        self.finished.emit(key)

    @Slot(int)
    def _on_done(self, token: int) -> None:
        if self._playing is not None and self._playing[0] == token:
            self.stop()
