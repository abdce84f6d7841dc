"""A long file's melody index (QBH) and landmarks are computed in chunks: the same results as the whole file at
once, and no spectrum longer than a chunk (with its context) is ever computed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musicemb_core.features import landmarks as lm
from musicemb_core.models.qbh import QBHModel
from musicemb_core.search.qbh import qbh_model_folder, song_features, track_melody

WHOLE = 1e6  # a chunk longer than any file here: computed at once


def _song(sr: int, seconds: float, seed: int = 0) -> np.ndarray:
    """Notes of three partials (a new pitch every 0.3 s), a drone, noise, and 1.5 s of digital silence."""
    rng = np.random.default_rng(seed)
    n, note = int(seconds * sr), int(0.3 * sr)
    t = np.arange(n) / sr
    f0 = 440.0 * 2.0 ** ((rng.integers(55, 80, n // note + 1).repeat(note)[:n] - 69) / 12)
    y = sum(0.25 / h * np.sin(2 * np.pi * h * f0 * t) for h in range(1, 4)) + 0.1 * np.sin(2 * np.pi * 110 * t)
    y = (y + 0.02 * rng.standard_normal(n)).astype(np.float32)
    y[int(5.2 * sr):int(6.7 * sr)] = 0.0
    return y


def _largest(monkeypatch, module, name: str, size) -> list[int]:
    """Record ``size(args)`` of every call of ``module.name``."""
    seen, real = [], getattr(module, name)

    def spy(*args, **kw):
        seen.append(size(args))
        return real(*args, **kw)

    monkeypatch.setattr(module, name, spy)
    return seen


@pytest.fixture(scope="module")
def model() -> QBHModel:
    return QBHModel.load(qbh_model_folder(None))


@pytest.mark.parametrize("chunk_s", [0.5, 3.3])  # shorter than the extractor's context, and a few seconds
def test_melody_and_top_voice_in_chunks_equal_the_whole_file(model, chunk_s):
    cfg = model.cfg
    y = _song(cfg.sr, 20.3)
    starts = np.arange(0.0, 17.0, 3.0)
    whole = track_melody(model, y, starts, chunk_s=WHOLE)
    chunked = track_melody(model, y, starts, chunk_s=chunk_s)
    names = ("bins", "probs", "vectors", "top_bins", "top_probs")
    assert len(whole[0]) == (1 + len(y) // cfg.hop_length) // cfg.pool and (whole[1] > 0).any() and (whole[4] == 255).any()
    for name, a, b in zip(names, whole, chunked, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype, name
        if name == "vectors":  # float32 sums over chunks of other widths: rounding only
            np.testing.assert_allclose(a, b, atol=1e-5)
        else:
            assert np.array_equal(a, b), name
    P, _ = song_features(model, y, starts, chunk_s=WHOLE)
    P2, _ = song_features(model, y, starts, chunk_s=chunk_s)
    # convolutions over chunks of other widths sum in another order (on an AMD EPYC here: up to 2.7e-6); a chunk
    # missing its context would be off by far more
    np.testing.assert_allclose(P, P2, atol=2e-5)


def test_melody_index_never_takes_the_whole_file_spectrum(model, monkeypatch):
    cfg = model.cfg
    y = _song(cfg.sr, 20.0)
    seen = _largest(monkeypatch, torch, "stft", lambda a: a[0].shape[-1])
    track_melody(model, y, np.arange(0.0, 14.0, 3.0), chunk_s=3.0)
    frames = int(3.0 * cfg.sr / cfg.hop_length)
    assert seen and max(seen) <= (frames - 1) * cfg.hop_length + 4096 < len(y) / 4  # the top voice's n_fft


@pytest.mark.parametrize("chunk_s", [0.01, 2.0, 3.3])  # one 1-s block per chunk, and a few
def test_landmarks_in_chunks_equal_the_whole_file(chunk_s):
    y = _song(lm.SR, 12.7, seed=1)
    h, t = lm.landmarks(y, lm.SR, chunk_s=WHOLE)
    assert len(h) > 500 and t.max() > 0.9 * 12.7 / lm.frame_seconds()
    h2, t2 = lm.landmarks(y, lm.SR, chunk_s=chunk_s)
    assert np.array_equal(h, h2) and np.array_equal(t, t2) and h2.dtype == np.uint32 and t2.dtype == np.int32
    f, ft = lm.peaks(y, lm.SR, chunk_s=WHOLE)
    f2, ft2 = lm.peaks(y, lm.SR, chunk_s=chunk_s)
    assert np.array_equal(f, f2) and np.array_equal(ft, ft2)


def test_landmarks_never_take_the_whole_file_spectrogram(monkeypatch):
    y = _song(lm.SR, 12.0, seed=2)
    seen = _largest(monkeypatch, np.fft, "rfft", lambda a: a[0].shape[0])
    lm.landmarks(y, lm.SR, chunk_s=2.0)
    block = round(lm.SR / lm.HOP)
    assert seen and max(seen) <= 2 * block + lm.PEAK_SIZE[1] - 1 < lm.n_frames(len(y)) / 4
