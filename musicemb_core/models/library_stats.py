"""A library's own statistics, with which the similarity model standardises its descriptors (numpy only: read and
computed without the model)."""

from __future__ import annotations

import numpy as np

from musicemb_core.common.blocks import row_blocks

LIBRARY_PRIOR = 100
"""Segments' worth of weight the training music's statistics keep in a library's standardisation (a library of a
few tracks is standardised mostly as the training music was)."""


def library_statistics(Z: np.ndarray,
                       prior: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of a library's rows ``Z`` (n, dim) shrunk towards ``prior`` (mean, std; by default mean 0,
    std 1: descriptors already standardised on the training music) by :data:`LIBRARY_PRIOR` rows."""
    Z = np.asarray(Z)
    dim = Z.shape[-1]
    m0, s0 = (np.zeros(dim), np.ones(dim)) if prior is None else (np.asarray(p, np.float64) for p in prior)
    n = len(Z)
    if n == 0:
        return m0.astype(np.float32), s0.astype(np.float32)
    z_mean = sum(Z[b].sum(0, dtype=np.float64) for b in row_blocks(n)) / n  # in blocks: 1.6M rows are 2.3 GB as
    z_var = sum(((Z[b] - z_mean) ** 2).sum(0) for b in row_blocks(n)) / n  # float64, and var's temporaries more
    w = n / (n + LIBRARY_PRIOR)
    mean = w * z_mean + (1 - w) * m0
    var = w * (z_var + z_mean**2) + (1 - w) * (s0**2 + m0**2) - mean**2
    return mean.astype(np.float32), np.sqrt(np.maximum(var, 1e-6)).astype(np.float32)
