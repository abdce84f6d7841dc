"""Row blocks: large arrays worked through a slice at a time, so no temporary is as large as the whole."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

BLOCK_ROWS = 1 << 16
"""Rows per block: 65,536 rows of 182 float64 values are 95 MB."""


def row_blocks(n: int, size: int | None = None) -> Iterator[slice]:
    """Consecutive slices covering ``range(n)``, ``size`` (default :data:`BLOCK_ROWS`) rows each, the last shorter."""
    size = size or BLOCK_ROWS
    return (slice(a, min(n, a + size)) for a in range(0, n, size))


def add_rows(acc: np.ndarray, rows: np.ndarray, x: np.ndarray) -> None:
    """``acc[rows[i]] += x[i]`` for every i, in order (as :func:`numpy.add.at`); runs of equal ``rows`` are summed
    first (:func:`numpy.add.reduceat`), much faster when a group's rows are consecutive, as a track's segments are."""
    if not len(rows):
        return
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    if len(np.unique(rows[starts])) == len(starts):  # every group in one run: one add per group
        acc[rows[starts]] += np.add.reduceat(x, starts, axis=0)
    else:
        np.add.at(acc, rows, x)
