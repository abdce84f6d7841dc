"""Onset envelope, pitch-class filter and beat tracking for the tempo analysis, in numpy.

The same algorithms and parameters as librosa's ``stft``, ``onset_strength``, ``filters.chroma`` and
``beat.beat_track`` (Ellis' dynamic-programming tracker), which the analysis used before: librosa's numba kernels
cost each import worker about 3 s of compilation at start, more than the analysis of many tracks. The beat
tracker's recurrence runs a block of frames at a time (each frame's predecessors lie at least half a beat back).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.fft

from musicemb_core.common.config import FeatureConfig
from musicemb_core.features.mel_scale import mel_filterbank

ONSET_BANDS = 64
TIGHTNESS = 100.0  # how closely the tracked beats keep to the tempo (librosa's default)


@lru_cache(maxsize=4)
def _hann(n: int) -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)  # periodic, as an STFT's


def stft_magnitude(y: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """|STFT| (1 + n_fft // 2, frames) of centred Hann frames (zero padding of n_fft // 2 on both sides)."""
    x = np.pad(np.asarray(y, np.float32), n_fft // 2)
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]
    return np.abs(scipy.fft.rfft(frames * _hann(n_fft), axis=1)).T


@lru_cache(maxsize=4)
def _mel(sr: int, n_fft: int) -> np.ndarray:
    return mel_filterbank(FeatureConfig(sr=sr, n_fft=n_fft, n_mels=ONSET_BANDS))


def onset_strength(S: np.ndarray, sr: int, hop: int) -> np.ndarray:
    """Spectral flux of a magnitude STFT ``S`` on a 64-band dB mel scale (80 dB range under its peak): the mean
    over bands of each band's rise since the previous frame, delayed by 5 frames as librosa centres it."""
    mel = _mel(sr, 2 * (S.shape[0] - 1)) @ (S.astype(np.float32) ** 2)
    db = 10.0 * np.log10(np.maximum(mel, 1e-10)) - 10.0 * np.log10(max(float(mel.max(initial=0.0)), 1e-10))
    db = np.maximum(db, db.max(initial=0.0) - 80.0)
    flux = np.maximum(0.0, db[:, 1:] - db[:, :-1]).mean(axis=0)
    return np.pad(flux, (1 + 2048 // (2 * hop), 0))[: S.shape[1]].astype(np.float32)


@lru_cache(maxsize=4)
def chroma_filter(sr: int, n_fft: int) -> np.ndarray:
    """(12, 1 + n_fft // 2) pitch-class weights of FFT bins, C first, A at 440 Hz: Gaussian bumps in pitch, each
    bin's column of unit norm, weighted by a Gaussian over octaves centred at C5 (two octaves wide)."""
    freqs = np.linspace(0, sr, n_fft, endpoint=False)[1:]
    bins = 12 * np.log2(freqs / (440.0 / 16))
    bins = np.concatenate(([bins[0] - 18.0], bins))
    width = np.concatenate((np.maximum(bins[1:] - bins[:-1], 1.0), [1.0]))
    d = np.subtract.outer(bins, np.arange(12.0)).T
    d = np.remainder(d + 6 + 120, 12) - 6
    w = np.exp(-0.5 * (2 * d / width) ** 2)
    w /= np.maximum(np.sqrt((w ** 2).sum(axis=0, keepdims=True)), np.finfo(np.float64).tiny)
    w *= np.exp(-0.5 * ((bins / 12 - 5.0) / 2.0) ** 2)
    return np.ascontiguousarray(np.roll(w, -3, axis=0)[:, : 1 + n_fft // 2], dtype=np.float32)


def _local_maxima(x: np.ndarray) -> np.ndarray:
    pad = np.concatenate(([x[0]], x, [x[-1]]))
    return (x > pad[:-2]) & (x >= pad[2:])


def beat_track(env: np.ndarray, bpm: float, fps: float) -> np.ndarray:
    """Frames of the beats tracked in onset envelope ``env`` at tempo ``bpm`` (``fps`` envelope frames per
    second); weak beats at either end trimmed. Empty for an envelope without onsets."""
    env = np.asarray(env, np.float64)
    if len(env) == 0 or not env.any():
        return np.zeros(0, int)
    period = float(np.round(fps * 60.0 / bpm))
    norm = env / (env.std(ddof=1) + np.finfo(np.float64).tiny) if len(env) > 1 else env
    window = np.exp(-0.5 * (np.arange(-period, period + 1) * 32.0 / period) ** 2)
    local = np.convolve(norm, window, "same")
    n = len(local)
    offsets = np.arange(int(np.round(period / 2)), int(2 * period) + 1)  # predecessor i - offset, nearest first
    penalty = TIGHTNESS * (np.log(offsets) - np.log(period)) ** 2
    cum = np.empty(n)
    back = np.full(n, -1, dtype=np.int64)
    step = max(1, int(offsets[0]))
    for s in range(0, n, step):
        i = np.arange(s, min(n, s + step))
        loc = i[:, None] - offsets[None, :]
        cand = np.where(loc >= 0, cum[np.maximum(loc, 0)] - penalty, -np.inf)
        j = np.argmax(cand, axis=1)
        best = cand[np.arange(len(i)), j]
        found = np.isfinite(best)
        cum[i] = local[i] + np.where(found, best, 0.0)
        back[i] = np.where(found, loc[np.arange(len(i)), j], -1)
    strong = np.flatnonzero(local >= 0.01 * local.max())
    back[: strong[0] if len(strong) else n] = -1  # no beat leads into the first strong onset
    peaks = _local_maxima(cum)
    tail = n - 1
    if peaks.any():
        ok = np.flatnonzero(peaks & (cum >= 0.5 * np.median(cum[peaks])))
        tail = int(ok[-1]) if len(ok) else n - 1
    beats = np.zeros(n, bool)
    while tail >= 0:
        beats[tail] = True
        tail = back[tail]
    smooth = np.convolve(local[beats], np.hanning(5))[2:]
    threshold = 0.5 * np.sqrt(np.mean(smooth ** 2)) if len(smooth) else 0.0
    weak = local <= threshold
    lead = int(np.argmin(weak)) if not weak.all() else n
    trail = int(np.argmin(weak[::-1])) if not weak.all() else n
    beats[:lead] = False
    beats[n - trail:] = False
    return np.flatnonzero(beats)
