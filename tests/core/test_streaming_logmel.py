"""Streaming log-mel: blocks of any size give the offline log-mel of the concatenated audio."""

from __future__ import annotations

import numpy as np
import pytest

from musicemb_core.common.config import FeatureConfig
from musicemb_core.common.errors import ConfigError
from musicemb_core.features.logmel import log_mel
from musicemb_core.features.streaming import StreamingLogMel


def _audio(seconds=3.0, sr=16000, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    y = 0.4 * np.sin(2 * np.pi * (220 + 80 * t) * t) + 0.05 * rng.standard_normal(len(t))
    y[: sr // 2] *= 2.0  # loudest at the start, so a running maximum equals the global one early
    return y.astype(np.float32)


def _stream(cfg, y, sizes, *, flush=True):
    s = StreamingLogMel(cfg)
    cols, i, k = [], 0, 0
    while i < len(y):
        n = sizes[k % len(sizes)]
        cols.append(s.push(y[i:i + n]))
        assert cols[-1].shape[0] == cfg.n_mels and cols[-1].dtype == np.float32
        i, k = i + n, k + 1
    if flush:
        cols.append(s.flush())
    return np.concatenate(cols, axis=1), s


@pytest.mark.parametrize("cfg", [
    FeatureConfig(sr=16000, n_fft=512, hop_length=160, n_mels=64, top_db=None),
    FeatureConfig(sr=16000, n_fft=1024, hop_length=256, win_length=800, n_mels=40, top_db=None, htk=True,
                  normalise="standard", mean=-30.0, std=12.0),
    FeatureConfig(sr=16000, n_fft=512, hop_length=160, n_mels=64, top_db=80.0, normalise="peak", mean=-20.0,
                  std=10.0),
], ids=["db", "standard", "peak-topdb"])
@pytest.mark.parametrize("sizes", [[1024], [1, 7, 160, 3000, 333], [48000]], ids=["1024", "ragged", "whole"])
def test_stream_equals_offline(cfg, sizes):
    y = _audio()
    ref = log_mel(y, cfg)
    got, s = _stream(cfg, y, sizes)
    assert got.shape == ref.shape == (cfg.n_mels, cfg.n_frames(len(y)))
    assert s.frames_done == ref.shape[1] and s.samples_seen == len(y)
    scale = 1.0 if cfg.normalise == "none" else 1.0 / cfg.std
    # running maximum: exact from the loudest column on (every column when the whole clip comes in one block)
    loudest = int(log_mel(y, cfg.replace(top_db=None, normalise="none")).max(axis=0).argmax())
    first = 0 if cfg.normalise != "peak" and cfg.top_db is None or len(sizes) == 1 and sizes[0] >= len(y) else loudest
    assert np.abs(got[:, first:] - ref[:, first:]).max() < 2e-3 * scale
    if first:
        assert loudest < 40 and np.abs(got[:, :first] - ref[:, :first]).max() > 1e-2 * scale
    assert np.abs(got).max() > 1.0  # not trivially zero


def test_columns_appear_as_soon_as_complete():
    cfg = FeatureConfig(sr=16000, n_fft=512, hop_length=160, n_mels=32, top_db=None)
    s = StreamingLogMel(cfg)
    assert s.push(np.zeros(255, np.float32)).shape[1] == 0  # column 0 needs samples up to n_fft // 2
    assert s.push(np.zeros(1, np.float32)).shape[1] == 1
    assert s.push(np.zeros(159, np.float32)).shape[1] == 0
    assert s.push(np.zeros(1, np.float32)).shape[1] == 1
    assert s.push(np.zeros(1600, np.float32)).shape[1] == 10
    assert s.frames_done == 12 and s.flush().shape[1] == cfg.n_frames(2016) - 12 == 1
    assert s.flush().shape[1] == 0
    with pytest.raises(ConfigError, match="reset"):
        s.push(np.zeros(10, np.float32))
    s.reset()
    assert s.frames_done == 0 and s.push(np.zeros(256, np.float32)).shape[1] == 1


def test_away_from_the_right_edge_without_flush():
    cfg = FeatureConfig(sr=16000, n_fft=512, hop_length=160, n_mels=64, top_db=None)
    y = _audio(2.0, seed=3)
    got, _ = _stream(cfg, y, [500], flush=False)
    ref = log_mel(y, cfg)
    assert got.shape[1] == ref.shape[1] - 2  # the last columns need the closing padding
    assert np.abs(got - ref[:, :got.shape[1]]).max() < 2e-3


def test_minmax_is_refused():
    with pytest.raises(ConfigError, match="minmax"):
        StreamingLogMel(FeatureConfig(normalise="minmax"))
