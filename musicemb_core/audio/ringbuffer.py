"""A lock-free single-producer single-consumer ring buffer of audio frames.

The producer (an audio callback thread) only calls :meth:`RingBuffer.write`; the consumer (the GUI or a worker
thread) only calls :meth:`RingBuffer.read` and :meth:`RingBuffer.clear`. Each side advances its own ever-growing
frame counter after copying the samples, and Python ints are replaced atomically under the GIL, so neither side
ever sees a half-written block. More than one producer or consumer at a time is not supported.
"""

from __future__ import annotations

import numpy as np

from musicemb_core.common.errors import ConfigError


class RingBuffer:
    """Fixed-capacity FIFO of frames, shape (capacity_frames, channels); never blocks, drops on overflow.

    Parameters
    ----------
    capacity_frames : int
        Frames it holds before writes start dropping.
    channels : int
        Samples per frame.
    dtype : numpy dtype
        Sample type stored and returned.
    """

    def __init__(self, capacity_frames: int, channels: int = 1, dtype=np.float32):
        if capacity_frames < 1 or channels < 1:
            raise ConfigError(f"capacity_frames and channels must be >= 1, got {capacity_frames}, {channels}")
        self._data = np.zeros((capacity_frames, channels), dtype)  # calloc: pages are touched only when used
        self._written = 0  # frames ever written; changed by the producer only
        self._read = 0  # frames ever read or discarded; changed by the consumer only
        self._overflows = 0

    @property
    def capacity(self) -> int:
        return len(self._data)

    @property
    def channels(self) -> int:
        return self._data.shape[1]

    @property
    def available(self) -> int:
        """Frames written and not yet read."""
        return self._written - self._read

    @property
    def overflows(self) -> int:
        """Frames dropped so far because the buffer was full."""
        return self._overflows

    def write(self, block: np.ndarray) -> int:
        """Append ``block`` ((frames,) or (frames, channels)); returns the frames stored, dropping the rest."""
        block = np.asarray(block)
        if block.ndim == 1:
            block = block[:, None]
        if block.shape[1] != self.channels:
            raise ConfigError(f"block has {block.shape[1]} channels, the buffer {self.channels}")
        cap = self.capacity
        n = min(len(block), cap - (self._written - self._read))
        self._overflows += len(block) - n
        start = self._written % cap
        first = min(n, cap - start)
        self._data[start:start + first] = block[:first]
        self._data[:n - first] = block[first:n]
        self._written += n  # publish only after the samples are in place
        return n

    def read(self, max_frames: int | None = None) -> np.ndarray:
        """Remove and return up to ``max_frames`` (all available by default), shape (frames, channels)."""
        n = self.available if max_frames is None else min(self.available, max_frames)
        cap = self.capacity
        start = self._read % cap
        first = min(n, cap - start)
        out = np.concatenate((self._data[start:start + first], self._data[:n - first]))
        self._read += n  # release the space only after copying it out
        return out

    def clear(self) -> None:
        """Discard everything unread (consumer side)."""
        self._read = self._written
