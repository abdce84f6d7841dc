"""Which segments go into a batch: class caps for balance, Tile2Vec triplets, shuffled batches."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def cap_per_class(labels: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    """Indices with at most ``cap`` random samples of each label (unlabelled, -1, dropped), sorted."""
    keep = []
    for lab in np.unique(labels):
        if lab < 0:
            continue
        idx = np.flatnonzero(labels == lab)
        keep.append(idx if len(idx) <= cap else rng.choice(idx, cap, replace=False))
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, int)


def triplets(track_ids: np.ndarray, starts: np.ndarray, rng: np.random.Generator, *,
             neighbour_s: float = 10.0) -> np.ndarray:
    """Tile2Vec triplets (anchor, neighbour, opposite), one per segment, shape (n, 3).

    The neighbour is another segment of the anchor's track starting within ``neighbour_s`` seconds (the nearest
    other one if none is that close); the opposite is a segment of a different track. Segments of single-segment
    tracks are their own neighbour.
    """
    n = len(track_ids)
    out = np.empty((n, 3), dtype=np.int64)
    by_track = {t: np.flatnonzero(track_ids == t) for t in np.unique(track_ids)}
    for i in range(n):
        same = by_track[track_ids[i]]
        others = same[same != i]
        if len(others) == 0:
            nb = i
        else:
            close = others[np.abs(starts[others] - starts[i]) <= neighbour_s]
            nb = rng.choice(close) if len(close) else others[np.argmin(np.abs(starts[others] - starts[i]))]
        opp = rng.integers(n)
        for _ in range(100):
            if track_ids[opp] != track_ids[i]:
                break
            opp = rng.integers(n)
        out[i] = (i, nb, opp)
    return out


def shuffled_batches(n: int, batch_size: int, rng: np.random.Generator, *,
                     drop_last: bool = False) -> Iterator[np.ndarray]:
    """Index batches over a random permutation of ``range(n)``."""
    order = rng.permutation(n)
    stop = n - n % batch_size if drop_last and n >= batch_size else n
    for a in range(0, stop, batch_size):
        yield order[a:a + batch_size]
