"""The fault spectrogram: rows from 20 Hz on a log or linear axis, calibrated to dB re full scale."""

from __future__ import annotations

import numpy as np
import pytest

from musicemb_core.common.errors import ConfigError
from musicemb_core.features.spectrogram import fault_spectrogram


@pytest.mark.parametrize("log_freq", [True, False])
def test_a_50_hz_line_shows_at_its_level(log_freq):
    sr = 44100
    t = np.arange(2 * sr) / sr
    y = 0.1 * np.sin(2 * np.pi * 50 * t)  # -20 dB re a full-scale sine
    S, row_hz, hop = fault_spectrogram(y, sr, log_freq=log_freq)
    assert row_hz[0] == pytest.approx(20.0) and row_hz[-1] == pytest.approx(sr / 2)
    steps = np.diff(np.log(row_hz)) if log_freq else np.diff(row_hz)
    assert np.allclose(steps, steps[0])
    assert hop == pytest.approx(0.02, abs=1e-4) and S.shape[1] == 1 + (len(y) - 16384) // 882  # 16384: 0.37 s
    level = S.mean(axis=1)
    at50 = int(np.argmin(abs(row_hz - 50)))
    assert int(np.argmax(level)) == at50 or abs(row_hz[np.argmax(level)] - 50) < 5
    if log_freq:  # rows near 50 Hz are a few Hz apart only on the log axis
        assert level[abs(row_hz - 50) < 5].max() == pytest.approx(-20, abs=1.5)  # Hann scalloping between bins
        assert level[np.argmin(abs(row_hz - 1000))] < -100


def test_bad_range_is_a_clear_error():
    with pytest.raises(ConfigError, match="0 < fmin < fmax"):
        fault_spectrogram(np.zeros(1000), 8000, fmin=20, fmax=5000)
