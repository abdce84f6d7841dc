"""Melody alignment: how well a hummed pitch contour fits somewhere in a song's melody chromagram, in any key
and at any tempo from half to double speed.

The hum's contour (fractional MIDI per frame, unvoiced frames dropped) is first re-tuned to the equal-tempered
grid (a hummer's pitch rarely is). For each of the 12 transpositions, subsequence DTW aligns it to the song's
chromagram: a hum frame costs ``1 - p ** PROB_EXPONENT`` where ``p`` is the song frame's probability of the hummed
pitch class (interpolated between neighbouring semitones; the exponent < 1 lets a pitch class the extractor
half-believes, a melody note it shares with an accompanying voice, cost less than a wrong one); steps (1,1), (1,2) and (2,1) allow tempo ratios from 1/2 to 2,
every hum frame is paid for exactly once, and the alignment may start and end anywhere in the song. The score
is ``1 - mean cost`` of the best alignment, in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

N_PC = 12
PROB_EXPONENT = 0.5  # chosen on the QBH tune split (0.3-1.0 tried; README)


@dataclass
class Alignment:
    """Best fit of a hum in one song: ``score`` in [0, 1], ``shift`` (semitones added to the hum), the song
    frames where the alignment starts and ends."""

    score: float
    shift: int
    start: int
    end: int


def prepare_query(midi: np.ndarray, *, min_voiced: int = 8) -> np.ndarray | None:
    """Voiced frames of a hum contour, re-tuned to the semitone grid; None if fewer than ``min_voiced``."""
    midi = np.asarray(midi, dtype=np.float64)
    q = midi[~np.isnan(midi)]
    if len(q) < min_voiced:
        return None
    frac = 2 * np.pi * (q % 1.0)
    offset = np.angle(np.exp(1j * frac).mean()) / (2 * np.pi)  # circular mean of the tuning, in (-0.5, 0.5]
    return q - offset


@numba.njit(cache=True)
def _sdtw(q, P, shift):  # pragma: no cover - compiled
    L, N = len(q), P.shape[0]
    cost = np.empty((L, N))
    for i in range(L):
        x = (q[i] + shift) % 12.0
        b0 = int(np.floor(x)) % 12
        fr = x - np.floor(x)
        b1 = (b0 + 1) % 12
        for j in range(N):
            cost[i, j] = 1.0 - ((1.0 - fr) * P[j, b0] + fr * P[j, b1])
    D = np.full((L, N), 1e18)
    S = np.zeros((L, N), np.int64)
    for j in range(N):
        D[0, j] = cost[0, j]
        S[0, j] = j
    for i in range(1, L):
        for j in range(1, N):
            best, src = D[i - 1, j - 1], S[i - 1, j - 1]
            if j >= 2 and D[i - 1, j - 2] < best:
                best, src = D[i - 1, j - 2], S[i - 1, j - 2]
            if i >= 2:
                v = D[i - 2, j - 1] + cost[i - 1, j]
                if v < best:
                    best, src = v, S[i - 2, j - 1]
            D[i, j] = cost[i, j] + best
            S[i, j] = src
    end = 0
    for j in range(N):
        if D[L - 1, j] < D[L - 1, end]:
            end = j
    return D[L - 1, end] / L, S[L - 1, end], end


def align(query: np.ndarray, chroma: np.ndarray) -> Alignment:
    """Best alignment of a prepared query (see :func:`prepare_query`) in a song chromagram (frames, 12)."""
    P = np.ascontiguousarray(chroma[:, :N_PC], dtype=np.float64) ** PROB_EXPONENT
    if len(P) < 2:
        return Alignment(0.0, 0, 0, 0)
    best = Alignment(-1.0, 0, 0, 0)
    for shift in range(N_PC):
        c, a, b = _sdtw(query, P, float(shift))
        if 1.0 - c > best.score:
            best = Alignment(float(1.0 - c), shift, int(a), int(b))
    return best


# -- coarse pass over a whole library ------------------------------------------------------------------------
# The same subsequence DTW at half the frame rate, in the 3 keys whose pitch-class histograms agree best, on
# uint8 chromagrams, many tracks in one parallel call: ~40x cheaper than :func:`align`, good enough to pick the
# tracks that :func:`align` then scores exactly.

@numba.njit(cache=True)
def _coarse_chroma(bins, probs, bounds):  # pragma: no cover - compiled
    n = len(bounds) - 1
    bounds2 = np.zeros(n + 1, np.int64)
    for t in range(n):
        bounds2[t + 1] = bounds2[t] + (bounds[t + 1] - bounds[t] + 1) // 2
    C = np.zeros((bounds2[-1], N_PC), np.uint8)
    for t in range(n):
        for f in range(bounds[t], bounds[t + 1]):
            row = bounds2[t] + (f - bounds[t]) // 2
            for k in range(bins.shape[1]):
                b = bins[f, k]
                if probs[f, k] > C[row, b]:
                    C[row, b] = probs[f, k]
    return C, bounds2


@numba.njit(parallel=True, cache=True)
def _coarse_scores(q, shifts, C, starts, ends):  # pragma: no cover - compiled
    n, L = len(starts), len(q)
    out = np.zeros(n)
    for t in numba.prange(n):
        a, N = starts[t], ends[t] - starts[t]
        if N < 2:
            continue
        best = 1e18
        d2, d1, cur, c1, c0 = np.empty(N), np.empty(N), np.empty(N), np.empty(N), np.empty(N)  # rows reused per key
        for s in shifts[t]:
            d2[:] = 1e18
            for j in range(N):
                c1[j] = 1.0 - C[a + j, (q[0] + s) % N_PC] / 255.0
                d1[j] = c1[j]
            for i in range(1, L):
                b = (q[i] + s) % N_PC
                for j in range(N):
                    c0[j] = 1.0 - C[a + j, b] / 255.0
                cur[0] = 1e18
                for j in range(1, N):
                    v = d1[j - 1]
                    if j >= 2 and d1[j - 2] < v:
                        v = d1[j - 2]
                    w = d2[j - 1] + c1[j]
                    if w < v:
                        v = w
                    cur[j] = c0[j] + v
                for j in range(N):
                    d2[j] = d1[j]
                    d1[j] = cur[j]
                    c1[j] = c0[j]
            for j in range(N):
                if d1[j] < best:
                    best = d1[j]
        out[t] = 1.0 - best / L
    return out


class CoarseMelodies:
    """Stored melodies (sparse pitch classes ``bins`` / uint8 ``probs`` per frame, track frame ``bounds``) at half
    the frame rate (the max of each frame pair), dense uint8 (frames / 2, 12), with each track's pitch-class
    histogram; :meth:`scores` approximates :func:`align` for many tracks at once."""

    def __init__(self, bins: np.ndarray, probs: np.ndarray, bounds: np.ndarray):
        soft = np.round(255 * (np.arange(256) / 255) ** PROB_EXPONENT).astype(np.uint8)  # as align's cost
        self.C_, b2 = _coarse_chroma(np.ascontiguousarray(bins, np.int64), soft[np.asarray(probs, np.uint8)],
                                     np.ascontiguousarray(bounds, np.int64))
        self.starts_, self.ends_ = b2[:-1].copy(), b2[1:].copy()
        G = np.zeros((len(self.starts_), N_PC), np.float32)
        nonempty = self.ends_ > self.starts_
        if len(self.C_):
            G[nonempty] = np.add.reduceat(self.C_.astype(np.float32), self.starts_[nonempty], axis=0)
        self.hist_ = G

    @property
    def frames(self) -> np.ndarray:
        """Half-rate frames per track."""
        return self.ends_ - self.starts_

    def scores(self, query: np.ndarray, rows: np.ndarray, *, keys: int = 3) -> np.ndarray:
        """Approximate alignment scores of a prepared query (:func:`prepare_query`) against the tracks at
        ``rows``, trying only the ``keys`` transpositions whose pitch-class histograms (hum vs track) agree best."""
        q = np.round(query[::2]).astype(np.int64) % N_PC
        h = np.bincount(q, minlength=N_PC).astype(np.float32)
        roll = np.stack([np.roll(h, s) for s in range(N_PC)])  # roll[s, (b + s) % 12] = h[b]
        r = self.hist_[rows] @ roll.T  # r[t, s]: how much of the hum, shifted by s, lands on the track's notes
        shifts = np.ascontiguousarray(np.argsort(-r, axis=1)[:, :keys], np.int64)
        return _coarse_scores(q, shifts, self.C_, self.starts_[rows], self.ends_[rows])
