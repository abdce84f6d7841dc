"""Argument checks for the array functions of the public API: one-line :class:`ConfigError`\\ s naming the argument."""

from __future__ import annotations

import numpy as np

from musicemb_core.common.errors import ConfigError


def check_count(value, name: str = "k", *, least: int = 1) -> int:
    """``value`` as an int; a :class:`ConfigError` naming ``name`` unless it is a whole number >= ``least``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
        raise ConfigError(f"{name} must be a whole number >= {least}, got {value!r}")
    return int(value)


def check_vectors(X, name: str = "X", *, dtype=np.float32) -> np.ndarray:
    """``X`` as a (points, dims) array of ``dtype`` (None: float as given, float32 for integers); a
    :class:`ConfigError` naming ``name`` for another shape, a dtype that is not numbers, or NaN/Inf values (the
    row of the first)."""
    a = np.asarray(X)
    if a.dtype.kind not in "fiu" or a.ndim != 2:
        raise ConfigError(f"{name} must be a 2-d array of numbers (points, dims), got {a.ndim}-d {a.dtype}")
    a = a.astype(dtype or (a.dtype if a.dtype.kind == "f" else np.float32), copy=False)
    finite = np.isfinite(a).all(axis=1)
    if not finite.all():
        raise ConfigError(f"{name}: NaN/Inf in {int((~finite).sum())} of {len(a)} rows (first: row "
                          f"{int(finite.argmin())})")
    return a


def check_per_row(values, n: int, name: str, *, integers: bool = False) -> np.ndarray:
    """``values`` as an array of one entry per row of an ``n``-row ``X``; with ``integers``, whole numbers (labels
    as ints, -1 for none)."""
    a = np.asarray(values)
    if a.shape != (n,):
        raise ConfigError(f"{name} must have one entry per row of X ({n}), got shape {a.shape}")
    if integers and a.dtype.kind not in "iu":
        if a.dtype.kind != "f" or not np.array_equal(a, np.round(a)):
            raise ConfigError(f"{name} must be whole numbers (-1: none), got {a.dtype}; encode text labels with "
                              "np.unique(labels, return_inverse=True)")
        a = a.astype(np.int64)
    return a
