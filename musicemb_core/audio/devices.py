"""Sound devices through PortAudio: list them, play, record in the background, trim silence.

sounddevice (and with it the PortAudio library) is imported on the first device call only, so
``import musicemb_core`` works on machines without sound. Every device failure becomes an
:class:`AudioDeviceError` whose message says what to do.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable

import numpy as np

from musicemb_core.audio.resample import resample
from musicemb_core.audio.ringbuffer import RingBuffer
from musicemb_core.common.errors import ConfigError, MusicEmbError

COMMON_RATES = (8000, 11025, 16000, 22050, 32000, 44100, 48000, 88200, 96000, 192000)
_PA_INVALID_SAMPLE_RATE = -9997  # PortAudio error codes (portaudio.h)
_PA_DEVICE_UNAVAILABLE = -9985


class AudioDeviceError(MusicEmbError):
    """A sound device cannot be used: no PortAudio, no device, device busy, unsupported settings."""


def _sd():
    try:
        import sounddevice as sd
    except OSError as e:
        raise AudioDeviceError("PortAudio library not found: install libportaudio2 "
                               "(e.g. apt-get install libportaudio2)") from e
    except ImportError as e:
        raise AudioDeviceError("the sounddevice package is not installed: pip install sounddevice") from e
    return sd


def _channels_key(kind: str) -> str:
    if kind not in ("input", "output"):
        raise ConfigError(f"kind must be 'input' or 'output', got {kind!r}")
    return f"max_{kind}_channels"


def list_devices(kind: str = "input") -> list[dict]:
    """Devices with ``kind`` ("input" or "output") channels.

    Returns
    -------
    list of dict with keys ``index, name, channels, default_samplerate, is_default``
    """
    key = _channels_key(kind)
    sd = _sd()
    try:
        default = sd.query_devices(kind=kind)["index"]
    except (sd.PortAudioError, ValueError):
        default = -1
    return [{"index": d["index"], "name": d["name"], "channels": d[key],
             "default_samplerate": d["default_samplerate"], "is_default": d["index"] == default}
            for d in sd.query_devices() if d[key] > 0]


def _choices(kind: str) -> str:
    return ", ".join(f"{d['index']}: {d['name']}" for d in list_devices(kind)) or "none"


def _resolve(sd, device, kind: str) -> dict:
    """PortAudio's info dict of ``device`` (index, name substring, or None for the default)."""
    key = _channels_key(kind)
    if device is None:
        if not list_devices(kind):
            raise AudioDeviceError(f"no audio {kind} devices found "
                                   "(is a sound server such as PulseAudio or PipeWire running?)")
        try:
            device = sd.query_devices(kind=kind)["index"]
        except (sd.PortAudioError, ValueError) as e:
            raise AudioDeviceError(f"no default audio {kind} device; choose one of: {_choices(kind)}") from e
    try:
        info = sd.query_devices(device)
    except (sd.PortAudioError, ValueError) as e:
        raise AudioDeviceError(f"no audio device {device!r}; {kind} devices: {_choices(kind)}") from e
    if info[key] < 1:
        raise AudioDeviceError(f"device {info['name']!r} (index {info['index']}) has no {kind} channels; "
                               f"{kind} devices: {_choices(kind)}")
    return info


def _error(sd, e, info: dict, kind: str, samplerate: float, channels: int) -> AudioDeviceError:
    """An :class:`AudioDeviceError` explaining PortAudio's ``e``."""
    code = e.args[1] if len(e.args) > 1 else None
    name = f"{info['name']!r} (index {info['index']})"
    if code == _PA_INVALID_SAMPLE_RATE:
        check = sd.check_input_settings if kind == "input" else sd.check_output_settings
        ok = []
        for rate in COMMON_RATES:
            try:
                check(device=info["index"], samplerate=rate, channels=1)
                ok.append(str(rate))
            except sd.PortAudioError:
                pass
        return AudioDeviceError(f"device {name} does not support {samplerate:.10g} Hz for {kind}; "
                                f"supported: {', '.join(ok) or 'none of the common rates'} Hz")
    if code == _PA_DEVICE_UNAVAILABLE:
        return AudioDeviceError(f"device {name} is busy or unavailable (another program may be using it): "
                                f"{e.args[0]}")
    return AudioDeviceError(f"cannot open device {name} for {kind} at {samplerate:.10g} Hz with {channels} "
                            f"channel(s): {e.args[0]}")


def _check(sd, info: dict, kind: str, samplerate: float, channels: int) -> None:
    check = sd.check_input_settings if kind == "input" else sd.check_output_settings
    try:
        check(device=info["index"], samplerate=samplerate, channels=channels, dtype="float32")
    except sd.PortAudioError as e:
        raise _error(sd, e, info, kind, samplerate, channels) from e


def play(y: np.ndarray, sr: int, *, device=None, blocking: bool = False) -> None:
    """Play ``y`` ((n,) or (channels, n)) at ``sr`` Hz, replacing whatever :func:`play` was playing.

    ``device`` is an index, a name substring or None (the default output). Returns at once unless ``blocking``.
    """
    sd = _sd()
    info = _resolve(sd, device, "output")
    data = np.ascontiguousarray(np.atleast_2d(np.asarray(y, dtype=np.float32)).T)
    _check(sd, info, "output", sr, data.shape[1])
    try:
        # "low" latency: PortAudio 19.6 through ALSA's pulse plugin was seen to run ahead of the sound server
        # (finishing early, dropping audio) with its "high" default
        sd.play(data, sr, device=info["index"], blocking=blocking, latency="low")
    except sd.PortAudioError as e:
        raise _error(sd, e, info, "output", sr, data.shape[1]) from e


def stop() -> None:
    """Stop what :func:`play` is playing; does nothing if nothing plays or PortAudio was never loaded."""
    sd = sys.modules.get("sounddevice")
    if sd is not None:
        sd.stop()


class Recorder:
    """Record an input device in the background into a :class:`RingBuffer`; fetch new samples with :meth:`read`.

    Parameters
    ----------
    device : int, str or None
        Index, name substring, or None for the default input.
    samplerate : int, optional
        Hz; the device's native rate by default.
    channels, block_frames : int
        Channels recorded; frames per callback.
    seconds_capacity : float
        Audio kept unread before new blocks are dropped (counted in ``buffer.overflows``).

    Attributes
    ----------
    samplerate : int
    level_dbfs : float
        Peak of the last block in dBFS, -inf before any audio: a level meter polls it.
    buffer : RingBuffer
    """

    def __init__(self, device=None, *, samplerate: int | None = None, channels: int = 1,
                 block_frames: int = 1024, seconds_capacity: float = 600.0):
        sd = _sd()
        self._info = _resolve(sd, device, "input")
        self.samplerate = int(samplerate or round(self._info["default_samplerate"]))
        self.channels = channels
        self.block_frames = block_frames
        _check(sd, self._info, "input", self.samplerate, channels)
        self.buffer = RingBuffer(max(1, int(seconds_capacity * self.samplerate)), channels)
        self.level_dbfs = -math.inf
        self._stream = None

    @property
    def device_name(self) -> str:
        return self._info["name"]

    @property
    def active(self) -> bool:
        """Whether the stream is recording: False before :meth:`start`, after :meth:`stop`, and once PortAudio
        stopped it (the device unplugged or failing)."""
        return self._stream is not None and bool(self._stream.active)

    def _callback(self, indata, frames, time_info, status) -> None:  # PortAudio's thread: the only producer
        self.buffer.write(indata)
        peak = float(np.abs(indata).max()) if frames else 0.0
        self.level_dbfs = 20 * math.log10(peak) if peak > 0 else -math.inf

    def start(self) -> None:
        """Open the input stream and start recording (no-op if already recording)."""
        if self._stream is not None:
            return
        sd = _sd()
        stream = None
        try:
            stream = sd.InputStream(device=self._info["index"], samplerate=self.samplerate,
                                    channels=self.channels, dtype="float32", blocksize=self.block_frames,
                                    callback=self._callback)
            stream.start()
        except sd.PortAudioError as e:
            if stream is not None:
                stream.close()
            raise _error(sd, e, self._info, "input", self.samplerate, self.channels) from e
        self._stream = stream

    def stop(self) -> None:
        """Stop recording and close the stream; samples not yet read stay readable."""
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
            self._stream = None

    def read(self) -> np.ndarray:
        """Samples recorded since the last read: float32, (n,) for mono else (channels, n)."""
        y = self.buffer.read()
        return y[:, 0] if self.channels == 1 else np.ascontiguousarray(y.T)

    def __enter__(self) -> Recorder:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def record(seconds: float, *, device=None, samplerate: int | None = None,
           on_start: Callable[[str], None] | None = None) -> tuple[np.ndarray, int]:
    """Record ``seconds`` of mono audio, blocking; ``on_start(device name)`` once the device records (a prompt
    shown only then is never followed by a device error).

    Returns
    -------
    y : np.ndarray, float32, shape (round(seconds * sr),)
    sr : int, ``samplerate`` or the device's native rate
    """
    if seconds <= 0:
        raise ConfigError(f"seconds must be > 0, got {seconds}")
    with Recorder(device, samplerate=samplerate, seconds_capacity=seconds + 1.0) as rec:
        if on_start is not None:
            on_start(rec.device_name)
        n = int(round(seconds * rec.samplerate))
        wait = seconds + 5.0
        deadline = time.monotonic() + wait
        while rec.buffer.available < n:
            if time.monotonic() > deadline:
                raise AudioDeviceError(f"device {rec.device_name!r} delivered {rec.buffer.available} of {n} "
                                       f"frames in {wait:g} s")
            time.sleep(0.01)
    return rec.read()[:n], rec.samplerate


def trim_silence(y: np.ndarray, sr: int, *, threshold_dbfs: float = -45.0, pad_s: float = 0.1) -> np.ndarray:
    """Cut leading and trailing silence: 10 ms frames whose RMS is under ``threshold_dbfs``.

    ``y``: (n,) or (channels, n). Returns a view of ``y`` keeping ``pad_s`` seconds either side of the sound,
    empty along the last axis if every frame is silent.
    """
    y = np.asarray(y)
    n = y.shape[-1]
    if n == 0:
        return y
    frame = max(1, int(round(0.01 * sr)))
    power = np.square(y.reshape(-1, n), dtype=np.float64).mean(axis=0)
    starts = np.arange(0, n, frame)
    rms_db = 10 * np.log10(np.add.reduceat(power, starts) / np.diff(np.append(starts, n)) + 1e-20)
    loud = np.flatnonzero(rms_db > threshold_dbfs)
    if len(loud) == 0:
        return y[..., :0]
    pad = int(round(pad_s * sr))
    return y[..., max(0, loud[0] * frame - pad):min(n, (loud[-1] + 1) * frame + pad)]


def to_rate(y: np.ndarray, sr: int, target_sr: int) -> np.ndarray:
    """``y`` ((n,) or (channels, n)) resampled from ``sr`` to ``target_sr`` Hz (soxr)."""
    return resample(y, sr, target_sr)
