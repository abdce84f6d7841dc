"""The top voice of a mix: a non-learnt second melody line for query by humming.

The learnt melody extractor (:class:`musicemb_core.models.qbh.MelodyExtractor`) picks the voice that moves like a
melody; among three or four close voices of one timbre (a hymn, a chorale, a consort) it often follows an inner
voice. The tune of such a piece is its top voice, which this module finds without learning:

1. the magnitude spectrum (4096-point STFT, the salience's hop) is whitened: compressed by its own smoothed
   envelope, so loud low voices do not drown the rest;
2. per frame, an iterative estimate-and-cancel multi-pitch search (after Klapuri 2006): the candidate f0 (MIDI
   ``lo..hi`` in half semitones) whose weighted harmonics (``(f0 + 52) / (h f0 + 320)``) sum highest is taken,
   its partials (smoothed across harmonics, so a partial shared with another voice keeps the excess) are
   subtracted, and the search repeats, ``voices`` times;
3. the top voice is the highest of the found pitches whose salience is at least ``ratio`` of the frame's first,
   then a running median over ``smooth`` frames keeps it continuous.

:func:`top_voice_chroma` gives it as a chromagram the alignment reads like the extractor's.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.ndimage import uniform_filter1d

from musicemb_core.features.pitch import CHUNK_S, centred_frames

N_PC = 12


def _whitened(y: np.ndarray, n_fft: int, hop_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Step 1 on the frames of ``y`` (an uncentred STFT): the whitened spectrum (frames, bins) and each frame's
    summed magnitude."""
    X = torch.stft(torch.from_numpy(np.ascontiguousarray(y, np.float32)), n_fft, hop_length,
                   window=torch.hann_window(n_fft), center=False,
                   return_complex=True).abs().numpy().T  # (frames, bins) float32: as exact here, 1.4x faster
    env = np.sqrt(np.maximum(uniform_filter1d(X * X, 41, axis=1), 0.0)) + 1e-9
    return X * env ** (0.33 - 1.0), X.sum(axis=1, dtype=np.float64)


def voice_candidates(y: np.ndarray, sr: int, *, hop_length: int, n_fft: int = 4096, lo: float = 45.0,
                     hi: float = 92.0, harmonics: int = 10, voices: int = 4,
                     chunk_s: float = CHUNK_S) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps 1-2 of the module docstring: (found, salience, silent), the ``voices`` pitches (MIDI, in the order
    found) and their saliences per frame (frames, voices), and the frames where the mix is silent (frames,).
    Every step is per frame: frames are computed ``chunk_s`` seconds at a time (a long file's whole spectrum
    is never held)."""
    n = 1 + len(y) // hop_length
    step = max(1, int(chunk_s * sr / hop_length))
    found, sal, loud = np.full((n, voices), np.nan), np.zeros((n, voices)), np.zeros(n)
    for a in range(0, n, step):
        b = min(n, a + step)
        Y, loud[a:b] = _whitened(centred_frames(y, a, b, n_fft, hop_length), n_fft, hop_length)
        found[a:b], sal[a:b] = _cancel_voices(Y, sr, n_fft, lo, hi, harmonics, voices)
    return found, sal, loud < 1e-3 * max(float(loud.max()), 1e-12)


def _cancel_voices(Y: np.ndarray, sr: int, n_fft: int, lo: float, hi: float, harmonics: int,
                   voices: int) -> tuple[np.ndarray, np.ndarray]:
    """Step 2 on whitened frames ``Y`` (changed in place): the found pitches and their saliences (frames, voices)."""
    T, n_bins = Y.shape
    cands = np.arange(lo, hi + 0.01, 0.5)
    f0 = 440.0 * 2.0 ** ((cands - 69.0) / 12.0)
    h = np.arange(1, harmonics + 1)
    hb = np.rint(np.outer(f0, h) * n_fft / sr).astype(np.int64)  # (candidates, harmonics) -> bins
    w = ((f0[:, None] + 52.0) / (np.outer(f0, h) + 320.0)).astype(Y.dtype)
    w[hb >= n_bins - 3] = 0.0
    hb = np.minimum(hb, n_bins - 3)
    used, at = np.unique(hb, return_inverse=True)  # the bins harmonics fall on: only these are searched
    at, below = at.reshape(hb.shape), np.maximum(used - 1, 0)  # (at bin 0 the filter's reflection is bin 0)
    found = np.full((T, voices), np.nan)
    sal = np.zeros((T, voices))
    rows = np.arange(T)[:, None]
    for k in range(voices):
        Ym = np.maximum(np.maximum(Y[:, below], Y[:, used]), Y[:, used + 1])  # a 3-bin maximum at those bins
        S = np.einsum("tch,ch->tc", Ym[:, at], w)
        c = S.argmax(axis=1)
        found[:, k], sal[:, k] = cands[c], S[rows[:, 0], c]
        b = hb[c]  # (T, harmonics)
        a = Ym[rows, at[c]]
        cut = np.minimum(a, uniform_filter1d(a, 3, axis=1, mode="nearest"))
        for j in range(-2, 3):
            idx = np.clip(b + j, 0, n_bins - 1)
            Y[rows, idx] = np.maximum(Y[rows, idx] - cut, 0.0)
    return found, sal


def top_voice(y: np.ndarray, sr: int, *, hop_length: int, ratio: float = 0.55, smooth: int = 5, **kw) -> np.ndarray:
    """The top voice of ``y`` (mono, at ``sr``): fractional MIDI per frame (every ``hop_length`` samples,
    centred), NaN where the mix is silent. See the module docstring for the parameters."""
    found, sal, silent = voice_candidates(y, sr, hop_length=hop_length, **kw)
    top = np.where(sal >= ratio * sal[:, :1], found, -np.inf).max(axis=1)
    top[silent | ~np.isfinite(top)] = np.nan
    if smooth > 1 and np.isfinite(top).any():  # running median of the voiced frames within the window
        half = smooth // 2
        win = np.lib.stride_tricks.sliding_window_view(np.pad(top, half, constant_values=np.nan), smooth)
        voiced = np.isfinite(top)
        top[voiced] = np.nanmedian(win[voiced], axis=1)
    return top


def top_voice_chroma(y: np.ndarray, sr: int, *, hop_length: int, pool: int, n_frames: int, **kw) -> np.ndarray:
    """The top voice as a chromagram (``n_frames``, 12) at the salience rate / ``pool``: 1 at the pitch class
    the voice holds in any of a frame's ``pool`` salience frames, 0 elsewhere (and where it is silent)."""
    m = top_voice(y, sr, hop_length=hop_length, **kw)
    out = np.zeros((n_frames, N_PC))
    t = np.flatnonzero(np.isfinite(m))
    f = t // pool
    ok = f < n_frames
    out[f[ok], np.rint(m[t[ok]]).astype(np.int64) % N_PC] = 1.0
    return out
