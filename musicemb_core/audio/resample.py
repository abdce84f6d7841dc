"""Sample-rate conversion (soxr) and channel downmix."""

from __future__ import annotations

import numpy as np
import soxr

from musicemb_core.common.errors import ConfigError


def to_mono(y: np.ndarray) -> np.ndarray:
    """Average channels. ``y``: (n,) or (channels, n) -> (n,) float32."""
    y = np.asarray(y, dtype=np.float32)
    return y if y.ndim == 1 else y.mean(axis=0, dtype=np.float32)


def downmix(block: np.ndarray) -> np.ndarray:
    """A decoded block (frames, channels) -> mono (frames,) float32, the mean of the channels (equal to
    :func:`to_mono` of its transpose; a matrix-vector product, 10x faster than a mean over the channel axis)."""
    ch = block.shape[1]
    return block[:, 0] if ch == 1 else block @ np.full(ch, 1.0 / ch, np.float32)


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


class StreamResampler:
    """Mono float32 blocks at ``orig_sr`` in, blocks at ``target_sr`` out (soxr); their concatenation equals
    :func:`resample` of the whole signal. Call :meth:`flush` after the last block."""

    def __init__(self, orig_sr: int, target_sr: int, *, quality: str = "HQ"):
        if orig_sr <= 0 or target_sr <= 0:
            raise ConfigError(f"sample rates must be > 0, got {orig_sr} -> {target_sr}")
        self._rs = None if orig_sr == target_sr else soxr.ResampleStream(orig_sr, target_sr, 1, dtype="float32",
                                                                         quality=quality)

    def __call__(self, block: np.ndarray) -> np.ndarray:
        block = np.asarray(block, np.float32)
        return block if self._rs is None else self._rs.resample_chunk(block)

    def flush(self) -> np.ndarray:
        return np.zeros(0, np.float32) if self._rs is None else self._rs.resample_chunk(np.zeros(0, np.float32),
                                                                                         last=True)
