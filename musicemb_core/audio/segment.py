"""Where segments start: fixed windows, random sub-sampling, and the seeds' dense sampling scheme.

All functions work on times in seconds and return float64 arrays of start times (sorted); cutting the
samples is ``cut``'s job.
"""

from __future__ import annotations

import numpy as np

from musicemb_core.common.config import SegmentConfig
from musicemb_core.common.errors import ConfigError


def window_starts(duration_s: float, cfg: SegmentConfig = SegmentConfig()) -> np.ndarray:
    """Start times of ``cfg.window_s`` windows every ``cfg.hop_s`` seconds covering ``duration_s``.

    A track shorter than one window gives ``[0.0]`` (one short segment). If the part after the last
    full window is at least ``cfg.min_tail`` of a window, a last window ending at the track's end is added.
    """
    if duration_s <= 0:
        return np.zeros(0)
    w, h = cfg.window_s, cfg.hop_s
    if duration_s <= w:
        return np.zeros(1)
    n = int(np.floor((duration_s - w) / h + 1e-9)) + 1
    starts = np.arange(n) * h
    tail = duration_s - (starts[-1] + w)
    if tail > 1e-9 and tail >= cfg.min_tail * w and duration_s - w > starts[-1] + 1e-9:
        starts = np.append(starts, duration_s - w)
    return starts


def random_starts(duration_s: float, n: int, *, window_s: float, random_state: int | None = None) -> np.ndarray:
    """``n`` random window starts (uniform, sorted, distinct where possible) within ``duration_s``."""
    if n < 0:
        raise ConfigError(f"n must be >= 0, got {n}")
    if duration_s <= window_s:
        return np.zeros(min(n, 1))
    rng = np.random.default_rng(random_state)
    return np.sort(rng.uniform(0.0, duration_s - window_s, size=n))


def dense_starts(duration_s: float, *, window_s: float = 10.0, span_s: float = 5.0, step_s: float = 0.25,
                 group_hop_s: float | None = None) -> np.ndarray:
    """The seeds' dense scheme: groups of clips starting every ``step_s`` within ``span_s`` (20 clips of 10 s
    within 5 s at 250 ms steps), one group every ``group_hop_s`` (default ``span_s + window_s``, so groups
    do not overlap), repeated to the end of the track. Only clips that fit in the track are kept.
    """
    if min(window_s, span_s, step_s) <= 0:
        raise ConfigError("window_s, span_s and step_s must be > 0")
    group_hop_s = span_s + window_s if group_hop_s is None else group_hop_s
    offsets = np.arange(0.0, span_s - 1e-9, step_s)
    groups = np.arange(0.0, max(duration_s - window_s, 0.0) + 1e-9, group_hop_s)
    starts = (groups[:, None] + offsets[None, :]).ravel()
    return starts[starts + window_s <= duration_s + 1e-9]


def cut(y: np.ndarray, sr: int, starts: np.ndarray, *, window_s: float) -> np.ndarray:
    """Cut windows from mono ``y`` at ``starts`` (seconds), zero-padding past the end.

    Returns
    -------
    np.ndarray, float32, shape (len(starts), round(window_s * sr))
    """
    n = int(round(window_s * sr))
    out = np.zeros((len(starts), n), dtype=np.float32)
    for i, s in enumerate(starts):
        a = int(round(s * sr))
        chunk = y[a:a + n]
        out[i, :len(chunk)] = chunk
    return out
