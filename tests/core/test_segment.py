"""Segment start times: windows, random sub-sampling, the seeds' dense scheme, cutting samples."""

from __future__ import annotations

import numpy as np
import pytest

from musicemb_core.audio.segment import cut, dense_starts, random_starts, window_starts
from musicemb_core.common.config import SegmentConfig
from musicemb_core.common.errors import ConfigError


@pytest.mark.parametrize("duration,window,hop,expected", [
    (9.0, 3.0, 3.0, [0, 3, 6]),             # exact fit
    (10.0, 3.0, 3.0, [0, 3, 6]),            # 1 s tail < half a window: dropped
    (11.0, 3.0, 3.0, [0, 3, 6, 8]),         # 2 s tail: a last window aligned to the end
    (2.0, 3.0, 3.0, [0]),                   # shorter than a window: one short segment
    (10.0, 3.0, 1.5, [0, 1.5, 3, 4.5, 6]),   # 1 s tail < 1.5 s: dropped
    (10.5, 3.0, 1.5, [0, 1.5, 3, 4.5, 6, 7.5]),
    (30.0, 10.0, 10.0, [0, 10, 20]),        # the seeds' 10 s windows
])
def test_window_starts(duration, window, hop, expected):
    got = window_starts(duration, SegmentConfig(window_s=window, hop_s=hop))
    assert np.allclose(got, expected)
    assert np.all(got + min(window, duration) <= duration + 1e-9)


def test_window_starts_empty_track():
    assert len(window_starts(0.0)) == 0


def test_random_starts_seeded_and_in_range():
    a = random_starts(60.0, 8, window_s=3.0, random_state=1)
    b = random_starts(60.0, 8, window_s=3.0, random_state=1)
    assert np.array_equal(a, b) and len(a) == 8
    assert a.min() >= 0 and a.max() <= 57.0 and np.all(np.diff(a) >= 0)
    assert not np.array_equal(a, random_starts(60.0, 8, window_s=3.0, random_state=2))
    with pytest.raises(ConfigError):
        random_starts(60.0, -1, window_s=3.0)


def test_dense_scheme_20_clips_within_5s_at_250ms():
    starts = dense_starts(55.0)  # 10 s clips, 5 s span, 250 ms steps, groups every 15 s
    first = starts[:20]
    assert np.allclose(first, np.arange(20) * 0.25)
    assert np.allclose(starts[20:40], 15 + np.arange(20) * 0.25)
    assert np.all(starts + 10 <= 55 + 1e-9)
    assert len(starts) == 20 * 3 + 1  # the group at 45 s only fits its first clip (45 + 10 = 55)


def test_cut_pads_past_the_end():
    sr = 10
    y = np.arange(25, dtype=np.float32)
    out = cut(y, sr, np.array([0.0, 2.0]), window_s=1.0)
    assert out.shape == (2, 10)
    assert np.array_equal(out[0], y[:10])
    assert np.array_equal(out[1, :5], y[20:25]) and np.all(out[1, 5:] == 0)
