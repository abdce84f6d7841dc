"""Torch log-mel equals librosa on real audio; batching, normalisation, tiles, config round trips."""

from __future__ import annotations

import json
from pathlib import Path

import librosa
import music21
import numpy as np
import pytest
import torch

from musicemb_core.audio import load
from musicemb_core.common.config import FeatureConfig
from musicemb_core.common.errors import ConfigError
from musicemb_core.features.logmel import LogMel, log_mel, tiles
from musicemb_core.features.mel_scale import mel_filterbank

REAL = Path(music21.__file__).parent / "audioSearch" / "test_audio.wav"  # a real recording shipped by music21

CONFIGS = [
    FeatureConfig(),                                                         # librosa's defaults
    FeatureConfig(sr=16000, n_fft=512, hop_length=160, n_mels=64),
    FeatureConfig(sr=22050, n_fft=1024, hop_length=256, n_mels=128, fmin=30.0, fmax=8000.0),
    FeatureConfig(sr=16000, n_fft=1024, hop_length=320, win_length=800, n_mels=64, htk=True),
]


def _librosa(y, c: FeatureConfig):
    S = librosa.feature.melspectrogram(y=y, sr=c.sr, n_fft=c.n_fft, hop_length=c.hop_length,
                                       win_length=c.win_length, n_mels=c.n_mels, fmin=c.fmin, fmax=c.fmax,
                                       htk=c.htk, power=c.power)
    return librosa.power_to_db(S, top_db=c.top_db)


@pytest.fixture(scope="module")
def real_audio():
    return {sr: load(REAL, sr=sr, duration=20.0)[0] for sr in (16000, 22050)}


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.sr}-{c.n_fft}-{c.n_mels}-htk{c.htk}")
def test_filterbank_equals_librosa(cfg):
    ref = librosa.filters.mel(sr=cfg.sr, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax,
                              htk=cfg.htk)
    assert np.abs(mel_filterbank(cfg) - ref).max() < 1e-6


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.sr}-{c.n_fft}-{c.n_mels}-htk{c.htk}")
def test_log_mel_equals_librosa_on_real_audio(real_audio, cfg):
    y = real_audio[cfg.sr]
    ref = _librosa(y, cfg)
    exact = log_mel(y, cfg.replace(precision="float64"))
    assert exact.shape == ref.shape
    assert np.abs(exact - ref).max() < 1e-3
    fast = log_mel(y, cfg)  # float32 STFT: rounding shows only near the top_db floor
    assert np.abs(fast - ref).max() < 5e-3
    assert np.median(np.abs(fast - ref)) < 1e-4


def test_batched_equals_one_by_one(real_audio):
    cfg = CONFIGS[1]
    y = real_audio[16000][: 16000 * 12].reshape(4, -1)
    batch = log_mel(y, cfg)
    assert batch.shape == (4, 64, cfg.n_frames(y.shape[1]))
    for i in range(4):
        assert np.allclose(batch[i], log_mel(y[i], cfg), atol=1e-4)


def test_top_db_applies_per_item():
    cfg = FeatureConfig(sr=16000, n_fft=512, hop_length=160, n_mels=64)
    rng = np.random.default_rng(0)
    y = np.stack([rng.standard_normal(16000), 1e-3 * rng.standard_normal(16000)]).astype(np.float32)
    S = log_mel(y, cfg)
    for i in range(2):
        assert S[i].max() - S[i].min() <= 80.0 + 1e-4
    assert S[0].max() - S[1].max() == pytest.approx(60.0, abs=1.0)  # 1000x amplitude = 60 dB


def test_normalisations(real_audio):
    y = real_audio[16000][:32000]
    base = FeatureConfig(sr=16000, n_fft=512, hop_length=160, n_mels=64)
    mm = log_mel(y, base.replace(normalise="minmax"))
    assert mm.min() == pytest.approx(0.0, abs=1e-6) and mm.max() == pytest.approx(1.0, abs=1e-6)
    db = log_mel(y, base)
    st = log_mel(y, base.replace(normalise="standard", mean=-30.0, std=12.0))
    assert np.allclose(st, (db + 30.0) / 12.0, atol=1e-5)


def test_module_runs_on_available_devices(real_audio):
    cfg = CONFIGS[1]
    y = torch.from_numpy(real_audio[16000][:16000])
    ref = LogMel(cfg)(y)
    if torch.cuda.is_available():
        assert torch.allclose(LogMel(cfg).cuda()(y.cuda()).cpu(), ref, atol=1e-3)
    assert ref.shape == (64, 101)


def test_tiles_64x64():
    S = np.arange(64 * 200, dtype=np.float32).reshape(64, 200)
    T = tiles(S)
    assert T.shape == (3, 64, 64) and np.array_equal(T[1], S[:, 64:128])
    assert tiles(S, hop=32).shape == (5, 64, 64)
    short = tiles(S[:, :10])
    assert short.shape == (1, 64, 64) and np.all(short[0, :, 10:] == 0)


def test_config_round_trips_and_validates(tmp_path):
    cfg = FeatureConfig(sr=16000, n_mels=64, fmax=7000.0, normalise="minmax")
    assert FeatureConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    (tmp_path / "f.toml").write_text('sr = 16000\nn_mels = 64\nfmax = 7000.0\nnormalise = "minmax"\n')
    assert FeatureConfig.load(tmp_path / "f.toml") == cfg
    with pytest.raises(ConfigError, match="n_melz"):
        FeatureConfig.from_dict({"n_melz": 64})
    with pytest.raises(ConfigError, match="fmax"):
        FeatureConfig(sr=16000, fmax=9000.0)
    with pytest.raises(ConfigError, match="normalise"):
        FeatureConfig(normalise="zscore")
    for field, typo in (("sr", 10**12), ("n_fft", 2**30), ("n_mels", 10**6)):  # asked for gigabytes: "out of memory"
        with pytest.raises(ConfigError, match=f"{field} must be at most"):
            FeatureConfig.from_dict({field: typo})
    assert FeatureConfig(sr=384_000, n_fft=65_536, n_mels=1024, fmax=20_000.0).sr == 384_000  # the largest allowed
