"""Sample-rate conversion (soxr) and channel downmix."""

from __future__ import annotations

import numbers

import numpy as np
import soxr

from musicemb_core.common.errors import ConfigError

MAX_CHANNELS = 64
"""More rows than this (and than columns) in a 2-d array of audio are samples, not channels."""
MAX_PEAK = 1e6
"""Samples beyond this (120 dB over full scale) are not audio: float audio lies in [-1, 1], and the features'
squares overflowed near 1e18."""
MIN_RATE, MAX_RATE = 1, 10_000_000
"""The sample rates (Hz) audio may be given at."""


def samples(y, name: str = "y") -> np.ndarray:
    """``y`` as float32 audio, (n,) or (channels, n); a :class:`ConfigError` naming ``name`` for what is not:
    integer or boolean samples (unscaled: int16 full scale would read as 32767), a scalar or 3-d array, a
    (samples, channels) array as soundfile reads it (more rows than columns and than :data:`MAX_CHANNELS`, or none),
    NaN or Inf samples, samples beyond :data:`MAX_PEAK`."""
    a = np.asarray(y)
    if a.dtype.kind != "f":
        hint = f" (int16: {name} / 32768)" if a.dtype.kind in "iu" else ""
        raise ConfigError(f"{name}: {a.dtype} samples; give float audio in [-1, 1]{hint}")
    if a.ndim not in (1, 2):
        raise ConfigError(f"{name}: a {a.ndim}-d array; audio is (samples,) or (channels, samples)")
    if a.ndim == 2 and (a.shape[0] > max(a.shape[1], MAX_CHANNELS) or a.shape[0] == 0 < a.shape[1]):
        raise ConfigError(f"{name}: shape {a.shape} is (samples, channels), as soundfile reads it; "
                          f"give {name}.T (channels, samples)")
    a = a.astype(np.float32, copy=False)
    peak = float(np.abs(a).max()) if a.size else 0.0  # NaN carries through: one pass for sound audio
    if not peak <= MAX_PEAK:
        finite = np.isfinite(a) if a.ndim == 1 else np.isfinite(a).all(axis=0)
        if not finite.all():
            raise ConfigError(f"{name}: NaN/Inf samples (first at sample {int(finite.argmin())})")
        raise ConfigError(f"{name}: samples far beyond full scale (peak {peak:.3g}); float audio lies in [-1, 1]")
    return a


def mono_samples(y, name: str = "y") -> np.ndarray:
    """``y`` as mono float32 audio (n,), checked as by :func:`samples`; one channel as (1, n) or (n, 1) is taken,
    several are a :class:`ConfigError` (downmix them first)."""
    a = np.asarray(y)
    if a.ndim == 2 and 1 in a.shape:
        a = a.reshape(-1)
    if a.ndim == 2 and a.dtype.kind == "f":
        how = f"to_mono({name}.T)" if a.shape[0] > a.shape[1] or not a.shape[0] else f"to_mono({name})"
        raise ConfigError(f"{name}: shape {a.shape} is not mono; downmix it first (musicemb_core.audio.{how})")
    return samples(a, name)


def mono_at(y, sr: int | None, rate: int, name: str = "y") -> np.ndarray:
    """``y`` checked by :func:`mono_samples`, resampled from ``sr`` to ``rate`` Hz (None: ``y`` is at ``rate``)."""
    y = mono_samples(y, name)
    return y if sr is None or sr == rate else resample(y, sr, rate)


def to_mono(y: np.ndarray) -> np.ndarray:
    """Average channels. ``y``: (n,) or (channels, n) -> (n,) float32 (checked by :func:`samples`)."""
    y = samples(y)
    return y if y.ndim == 1 else y.mean(axis=0, dtype=np.float32)


def downmix(block: np.ndarray) -> np.ndarray:
    """A decoded block (frames, channels) -> mono (frames,) float32, the mean of the channels (equal to
    :func:`to_mono` of its transpose; a matrix-vector product, 10x faster than a mean over the channel axis)."""
    ch = block.shape[1]
    return block[:, 0] if ch == 1 else block @ np.full(ch, 1.0 / ch, np.float32)


def check_rate(sr, name: str = "sr") -> float:
    """``sr`` as a sample rate in Hz; a :class:`ConfigError` naming ``name`` for what is not a finite number from
    :data:`MIN_RATE` to :data:`MAX_RATE` (soxr spun forever on NaN or Inf, and ran out of memory on 0.001)."""
    if isinstance(sr, bool) or not isinstance(sr, numbers.Real) or not MIN_RATE <= sr <= MAX_RATE:
        raise ConfigError(f"{name}: a sample rate is a number of Hz from {MIN_RATE:,} to {MAX_RATE:,}, got {sr!r}")
    return sr


def resample(y: np.ndarray, orig_sr: int, target_sr: int, *, quality: str = "HQ") -> np.ndarray:
    """Resample ``y`` ((n,) or (channels, n)) from ``orig_sr`` to ``target_sr`` Hz with soxr."""
    check_rate(orig_sr), check_rate(target_sr, "target rate")
    y = samples(y)
    if orig_sr == target_sr or y.shape[-1] == 0:
        return y
    if y.ndim == 1:
        return soxr.resample(y, orig_sr, target_sr, quality=quality).astype(np.float32, copy=False)
    out = soxr.resample(np.ascontiguousarray(y.T), orig_sr, target_sr, quality=quality)
    return np.ascontiguousarray(out.T, dtype=np.float32)


class StreamResampler:
    """Mono float32 blocks at ``orig_sr`` in, blocks at ``target_sr`` out (soxr); their concatenation equals
    :func:`resample` of the whole signal. Call :meth:`flush` after the last block."""

    def __init__(self, orig_sr: int, target_sr: int, *, quality: str = "HQ"):
        check_rate(orig_sr), check_rate(target_sr, "target rate")
        self._rs = None if orig_sr == target_sr else soxr.ResampleStream(orig_sr, target_sr, 1, dtype="float32",
                                                                         quality=quality)

    def __call__(self, block: np.ndarray) -> np.ndarray:
        block = np.asarray(block, np.float32)
        return block if self._rs is None else self._rs.resample_chunk(block)

    def flush(self) -> np.ndarray:
        return np.zeros(0, np.float32) if self._rs is None else self._rs.resample_chunk(np.zeros(0, np.float32),
                                                                                         last=True)
