"""Tests for the synthetic demo corpus (musicemb_core.data.synthesis)."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
import soundfile as sf

from musicemb_core.data import synthesis
from musicemb_core.data.synthesis import STYLES, generate_melody, render_demo_corpus, render_song

SR = 16000
DUR = 4.0


def _descriptors(x: np.ndarray, sr: int) -> np.ndarray:
    """Loudness-invariant log band energies, their spread over time, and onset-strength statistics."""
    frame, hop = 1024, 256
    frames = np.lib.stride_tricks.sliding_window_view(x, frame)[::hop] * np.hanning(frame)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    freqs = np.fft.rfftfreq(frame, 1 / sr)
    edges = np.geomspace(40.0, sr / 2, 13)
    bands = np.stack(
        [
            power[:, (freqs >= lo) & (freqs < hi)].sum(axis=1)
            for lo, hi in zip(edges[:-1], edges[1:], strict=True)
        ],
        1,
    )
    log_bands = np.log(bands / bands.mean() + 1e-4)  # floor relative to loudness, 40 dB below average
    flux = np.maximum(np.diff(log_bands, axis=0), 0.0).sum(axis=1)
    onset = flux - flux.mean()
    ac = np.correlate(onset, onset, "full")[len(onset) - 1 :]
    return np.concatenate(
        [
            log_bands.mean(axis=0),
            log_bands.std(axis=0),
            [flux.mean(), flux.std(), ac[1:60].max() / (ac[0] + 1e-9)],
        ]
    )


def test_render_is_deterministic_and_seed_dependent():
    a = render_song("rock", seed=3, duration_s=DUR, sr=SR)
    b = render_song("rock", seed=3, duration_s=DUR, sr=SR)
    c = render_song("rock", seed=4, duration_s=DUR, sr=SR)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize(("duration_s", "sr"), [(DUR, SR), (1.2345, 22050)])
def test_render_shape_dtype_and_level(style, duration_s, sr):
    x = render_song(style, seed=1, duration_s=duration_s, sr=sr)
    assert x.dtype == np.float32
    assert x.shape == (round(duration_s * sr),)
    assert np.isfinite(x).all()
    assert 0.8 <= np.abs(x).max() <= 1.0


def test_given_melody_is_used_and_deterministic():
    melody = [(60, 1.0), (64, 1.0), (67, 1.0), (72, 2.0)]
    a = render_song("folk", seed=2, duration_s=DUR, sr=SR, melody=melody)
    b = render_song("folk", seed=2, duration_s=DUR, sr=SR, melody=melody)
    c = render_song("folk", seed=2, duration_s=DUR, sr=SR)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    with pytest.raises(ValueError):
        render_song("folk", seed=2, duration_s=DUR, sr=SR, melody=[])


def test_unknown_style_raises():
    with pytest.raises(ValueError, match="polka") as info:
        render_song("polka", seed=0, duration_s=DUR, sr=SR)
    assert all(style in str(info.value) for style in STYLES)


def test_generate_melody_is_plausible():
    melody = generate_melody(np.random.default_rng(7), n_notes=40, scale="minor")
    assert len(melody) == 40
    assert all(isinstance(p, int) and isinstance(d, float) and d > 0 for p, d in melody)
    minor = {0, 2, 3, 5, 7, 8, 10}
    assert all(p % 12 in minor for p, _ in melody)
    assert all(melody[i][0] % 12 == 0 for i in (7, 15, 23, 31, 39))  # phrase endings on the tonic
    intervals = np.abs(np.diff([p for p, _ in melody]))
    assert np.mean(intervals <= 2) >= 0.5  # mostly steps
    assert intervals.max() >= 3  # with some leaps
    assert len({d for _, d in melody}) >= 3  # varied rhythm
    assert generate_melody(np.random.default_rng(7), n_notes=40, scale="minor") == melody
    with pytest.raises(ValueError, match="blues"):
        generate_melody(np.random.default_rng(0), scale="blues")


def test_styles_are_separable_by_simple_descriptors():
    def features(seeds):
        return np.array(
            [_descriptors(render_song(s, seed=k, duration_s=DUR, sr=SR), SR) for s in STYLES for k in seeds]
        )

    labels = np.repeat(np.arange(len(STYLES)), 6)
    train, test = features(range(0, 6)), features(range(10, 16))
    mu, sd = train.mean(axis=0), train.std(axis=0) + 1e-9
    train, test = (train - mu) / sd, (test - mu) / sd
    centroids = np.stack([train[labels == i].mean(axis=0) for i in range(len(STYLES))])
    predicted = np.argmin(((test[:, None, :] - centroids[None]) ** 2).sum(axis=2), axis=1)
    assert np.mean(predicted == labels) >= 0.9


def test_render_demo_corpus_writes_atomically_and_is_idempotent(tmp_path):
    entries = render_demo_corpus(tmp_path, n_per_style=2, duration_s=1.5, sr=SR, random_state=5)
    expected = [(tmp_path / s / f"{s}_{i:02d}.flac", s) for s in STYLES for i in range(2)]
    assert entries == expected
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == sorted(p for p, _ in expected)
    for path, _ in entries:
        audio, sr = sf.read(path, dtype="float32")
        assert sr == SR
        assert audio.shape == (round(1.5 * SR),)
        assert sf.info(path).subtype == "PCM_16"
    mtimes = {p: p.stat().st_mtime_ns for p, _ in entries}
    assert render_demo_corpus(tmp_path, n_per_style=2, duration_s=1.5, sr=SR, random_state=5) == entries
    assert {p: p.stat().st_mtime_ns for p, _ in entries} == mtimes


def test_render_demo_corpus_is_deterministic(tmp_path):
    a = render_demo_corpus(tmp_path / "a", n_per_style=1, duration_s=1.0, sr=SR, random_state=3)
    b = render_demo_corpus(tmp_path / "b", n_per_style=1, duration_s=1.0, sr=SR, random_state=3)
    c = render_demo_corpus(tmp_path / "c", n_per_style=1, duration_s=1.0, sr=SR, random_state=4)
    for (pa, _), (pb, _), (pc, _) in zip(a, b, c, strict=True):
        xa, xb, xc = (sf.read(p, dtype="int16")[0] for p in (pa, pb, pc))
        np.testing.assert_array_equal(xa, xb)
        assert not np.array_equal(xa, xc)


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    def interrupted_write(file, *args, **kwargs):
        pathlib.Path(file).write_bytes(b"fLaC half")
        raise KeyboardInterrupt

    monkeypatch.setattr(synthesis.sf, "write", interrupted_write)
    with pytest.raises(KeyboardInterrupt):
        render_demo_corpus(tmp_path, n_per_style=1, duration_s=0.5, sr=SR)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
