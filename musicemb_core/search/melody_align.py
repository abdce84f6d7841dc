"""Melody alignment: how well a hummed pitch contour fits somewhere in a song's melody chromagram, in any key
and at any tempo from half to double speed.

The hum's contour (fractional MIDI per frame, unvoiced frames dropped) is first re-tuned to the equal-tempered
grid (a hummer's pitch rarely is). For each of the 12 transpositions, subsequence DTW aligns it to the song's
chromagram: a hum frame costs ``1 - p`` where ``p`` is the song frame's probability of the hummed pitch class
(interpolated between neighbouring semitones); steps (1,1), (1,2) and (2,1) allow tempo ratios from 1/2 to 2,
every hum frame is paid for exactly once, and the alignment may start and end anywhere in the song. The score
is ``1 - mean cost`` of the best alignment, in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

N_PC = 12


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
    P = np.ascontiguousarray(chroma[:, :N_PC], dtype=np.float64)
    if len(P) < 2:
        return Alignment(0.0, 0, 0, 0)
    best = Alignment(-1.0, 0, 0, 0)
    for shift in range(N_PC):
        c, a, b = _sdtw(query, P, float(shift))
        if 1.0 - c > best.score:
            best = Alignment(float(1.0 - c), shift, int(a), int(b))
    return best
