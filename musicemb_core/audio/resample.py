"""Sample-rate conversion (soxr) and channel downmix."""

from __future__ import annotations

import numpy as np
import soxr

from musicemb_core.common.errors import ConfigError


def to_mono(y: np.ndarray) -> np.ndarray:
    """Average channels. ``y``: (n,) or (channels, n) -> (n,) float32."""
    y = np.asarray(y, dtype=np.float32)
    return y if y.ndim == 1 else y.mean(axis=0, dtype=np.float32)


def resample(y: np.ndarray, orig_sr: int, target_sr: int, *, quality: str = "HQ") -> np.ndarray:
    """Resample ``y`` ((n,) or (channels, n)) from ``orig_sr`` to ``target_sr`` Hz with soxr."""
    if orig_sr <= 0 or target_sr <= 0:
        raise ConfigError(f"sample rates must be > 0, got {orig_sr} -> {target_sr}")
    y = np.asarray(y, dtype=np.float32)
    if orig_sr == target_sr or y.shape[-1] == 0:
        return y
    if y.ndim == 1:
        return soxr.resample(y, orig_sr, target_sr, quality=quality).astype(np.float32, copy=False)
    out = soxr.resample(np.ascontiguousarray(y.T), orig_sr, target_sr, quality=quality)
    return np.ascontiguousarray(out.T, dtype=np.float32)
