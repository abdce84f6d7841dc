"""Landmark fingerprints (peak pairs, in the manner of Wang 2003 / Shazam) for exact-recording identification.

Spectrogram peaks are paired with later peaks in a target zone; each pair gives a 24-bit hash
(anchor bin, target bin, time gap) and the anchor's frame. Two recordings of the same audio share many hashes at
a constant frame offset; noise, codecs, EQ and gain leave most peaks in place, a speed change moves them.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import maximum_filter

from musicemb_core.audio.resample import mono_samples, resample

SR = 8000
N_FFT, HOP = 1024, 256          # 32 ms hop at 8 kHz
FREQ_BITS, DT_BITS = 9, 6       # bins 0..511, gaps 1..63 frames
PEAK_SIZE = (15, 11)            # neighbourhood (bins, frames) a peak must dominate
PEAKS_PER_S = 24
FAN_OUT, MAX_DF = 6, 96
CHUNK_S = 60.0                  # long signals' peaks are found this many seconds at a time


def _log_spectrogram(y: np.ndarray, start: int = 0, stop: int | None = None) -> np.ndarray:
    """(bins=512, frames) log magnitude of an 8 kHz signal (at least ``N_FFT`` samples): frames ``start..stop-1``."""
    stop = n_frames(len(y)) if stop is None else stop
    y = y[start * HOP:(stop - 1) * HOP + N_FFT]
    frames = np.lib.stride_tricks.sliding_window_view(y, N_FFT)[::HOP] * np.hanning(N_FFT).astype(np.float32)
    mag = np.abs(np.fft.rfft(frames, axis=1))[:, : 1 << FREQ_BITS].T
    return np.log(mag + 1e-6)


def n_frames(n_samples: int) -> int:
    """Spectrogram frames of a signal of ``n_samples`` (at least ``N_FFT``)."""
    return 1 + (n_samples - N_FFT) // HOP


def peaks(y: np.ndarray, sr: int, *, chunk_s: float = CHUNK_S) -> tuple[np.ndarray, np.ndarray]:
    """Spectral peaks of mono ``y``: (bins, frames) int arrays sorted by frame, about ``PEAKS_PER_S`` per second.
    Computed ``chunk_s`` seconds (whole 1-s blocks) at a time with the peak neighbourhood's frames on both sides:
    the same peaks as at once, without a long file's whole spectrogram in memory."""
    y = mono_samples(y)
    y = resample(y, sr, SR) if sr != SR else y
    if len(y) < N_FFT:
        y = np.pad(y, (0, N_FFT - len(y)))
    block = max(1, int(round(SR / HOP)))
    step = block * max(1, int(round(chunk_s * SR / HOP / block)))
    reach = PEAK_SIZE[1] // 2
    n = n_frames(len(y))
    out = [_chunk_peaks(y, a, min(n, a + step), reach, block) for a in range(0, n, step)]
    f, t = (np.concatenate(x) for x in zip(*out, strict=True))
    order = np.lexsort((f, t))
    return f[order], t[order]


def _chunk_peaks(y: np.ndarray, a: int, b: int, reach: int, block: int) -> tuple[np.ndarray, np.ndarray]:
    """The peaks of frames ``a..b-1`` (``a`` a multiple of ``block``), from the spectrogram ``reach`` frames
    wider on both sides."""
    lo = max(0, a - reach)
    spec = _log_spectrogram(y, lo, min(n_frames(len(y)), b + reach))
    is_peak = spec == maximum_filter(spec, size=PEAK_SIZE, mode="constant", cval=-np.inf)
    is_peak &= spec > np.log(1e-3)  # not in digital silence
    f, t = np.nonzero(is_peak[:, a - lo:b - lo])
    # the strongest peaks of each ~1 s block, so quiet passages keep landmarks and a snippet finds the same ones
    keep = np.zeros(len(f), dtype=bool)
    strength = spec[f, t + (a - lo)]
    for k in np.unique(t // block):
        idx = np.flatnonzero(t // block == k)
        keep[idx[np.argsort(-strength[idx])[:PEAKS_PER_S]]] = True
    return f[keep], t[keep] + a


def landmarks(y: np.ndarray, sr: int, *, chunk_s: float = CHUNK_S) -> tuple[np.ndarray, np.ndarray]:
    """Hashes (n,) uint32 and anchor frames (n,) int32 of mono ``y`` at ``sr`` (peaks found ``chunk_s`` seconds at
    a time, see :func:`peaks`)."""
    f, t = peaks(y, sr, chunk_s=chunk_s)
    hashes, times = [], []
    for i in range(len(f)):
        j = i + 1
        n = 0
        while j < len(f) and n < FAN_OUT:
            dt = t[j] - t[i]
            if dt >= 1 << DT_BITS:
                break
            if dt >= 1 and abs(int(f[j]) - int(f[i])) <= MAX_DF:
                hashes.append((int(f[i]) << (FREQ_BITS + DT_BITS)) | (int(f[j]) << DT_BITS) | int(dt))
                times.append(t[i])
                n += 1
            j += 1
    return np.array(hashes, dtype=np.uint32), np.array(times, dtype=np.int32)


def frame_seconds() -> float:
    """Seconds per landmark frame."""
    return HOP / SR
