"""Signal fault detectors: each fault planted in clean synthetic music is found and named, with its own
parameters (not the benchmark's); clean music and noise-free tones give nothing."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from scipy import signal

from musicemb_core.analysis import fault_judge as J
from musicemb_core.analysis import faults as F
from musicemb_core.data.synthesis import render_song

SR = 22050


PREFIX = {"clipping": "clipped:", "dc_offset": "DC offset:", "dead": "dead"}


def judge_clip(y: np.ndarray, sr: int = SR, window_s: float = 3.0) -> list[list[F.Fault]]:
    """Faults per 3 s segment of a clip, judged as one track (as the workflow does)."""
    y = np.atleast_2d(y)
    n = int(window_s * sr)
    starts = np.arange(0, max(1, y.shape[1] - n + 1), n)
    return J.judge([F.measure(y[:, a:a + n], sr) for a in starts], starts=starts / sr)


def kinds(found: list[list[F.Fault]]) -> Counter:
    return Counter(f.kind for seg in found for f in seg)


@pytest.fixture(scope="module")
def music() -> dict[str, np.ndarray]:
    return {f"{style}{seed}": render_song(style, seed=seed, duration_s=12.0, sr=SR).astype(np.float64)
            for style in ("rock", "folk") for seed in (11, 12)}


def plant(kind: str, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n, t = len(x), np.arange(len(x)) / SR
    rms = np.sqrt(np.mean(x ** 2))
    if kind == "clipping":
        c = 0.4 * np.abs(x).max()
        return np.clip(x, -c, c) / c * 0.9
    if kind == "dropouts":
        y = x.copy()
        for s in (1.2, 4.5, 7.7, 10.1):
            y[int(s * SR):int((s + 0.03) * SR)] = 0.0
        return y
    if kind == "dc_offset":
        return 0.8 * x + 0.1
    if kind == "hum":
        hum = sum(a * np.sin(2 * np.pi * 60 * h * t) for h, a in ((1, 1.0), (2, 0.6), (3, 0.4), (4, 0.3)))
        return x + hum * rms / np.sqrt(np.mean(hum ** 2)) * 10 ** (-15 / 20)
    if kind == "crackle":
        y = x.copy()
        for p in rng.integers(0, n - 30, 10 * n // SR):
            length = int(rng.integers(2, 20))
            y[p:p + length] += rng.choice([-1, 1]) * rng.uniform(0.3, 0.8) * np.exp(-np.arange(length) / 3)
        return np.clip(y, -1, 1)
    if kind == "dead":
        return x / rms * 10 ** (-65 / 20)
    if kind == "noise":
        w = rng.standard_normal(n)
        return x + w * rms / np.sqrt(np.mean(w ** 2)) * 10 ** (-3 / 20)
    if kind == "muffled":
        return signal.sosfilt(signal.butter(8, 800, fs=SR, output="sos"), x)
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", F.KINDS)
def test_planted_fault_is_found_and_named(music, kind):
    rng = np.random.default_rng(7)
    for name, x in music.items():
        found = judge_clip(plant(kind, x, rng))
        got = kinds(found)
        assert got[kind] >= 1, f"{kind} missed in {name}: {got}"
        assert set(got) == {kind}, f"{kind} in {name} also reported {got}"
        fault = max((f for seg in found for f in seg), key=lambda f: f.score)
        assert fault.score >= 1 and fault.reason.startswith(PREFIX.get(kind, kind + ":")), fault
        assert {"value", "threshold"} <= set(fault.details)


def test_reasons_carry_the_numbers(music):
    x = music["rock11"]
    clipped = judge_clip(plant("clipping", x, np.random.default_rng(0)))
    frac = max(f.details["value"] for seg in clipped for f in seg)
    assert frac > 0.01  # clipped at 0.4 of the peak: many samples sit on the rails
    assert any(f"{100 * frac:.2g} % of samples at full scale" in f.reason for seg in clipped for f in seg)
    dc = judge_clip(plant("dc_offset", x, np.random.default_rng(0)))[0][0]
    assert abs(dc.details["value"] - 0.1) < 0.005 and dc.reason == f"DC offset: mean {dc.details['value']:+.3f} of full scale"
    hum = judge_clip(plant("hum", x, np.random.default_rng(0)))[0][0]
    assert hum.details["f0_hz"] == 60 and "60 Hz mains lines" in hum.reason
    drops = [f for seg in judge_clip(plant("dropouts", x, np.random.default_rng(0))) for f in seg]
    assert sum(f.details["gaps"] for f in drops) == 4  # one 30 ms gap in each 3 s segment
    assert all(abs(f.details["value"] - 0.03) < 0.002 for f in drops)


@pytest.mark.parametrize("style", ["ambient", "chiptune", "rock", "folk"])
@pytest.mark.parametrize("sr", [16000, 22050, 44100])
def test_clean_synthetic_music_is_not_flagged(style, sr):
    # (the techno style is left out: its bass notes end with one-sample steps, which are real clicks)
    for seed in (1, 2):
        y = render_song(style, seed=seed, duration_s=12.0, sr=sr)
        assert not kinds(judge_clip(y, sr)), (style, seed)


@pytest.mark.parametrize("freq", [50.0, 60.0, 100.0, 220.0, 440.0, 1000.0, 3000.0])
@pytest.mark.parametrize("sr", [16000, 44100])
def test_noise_free_tones_are_not_flagged(freq, sr):
    t = np.arange(4 * sr) / sr
    for amp in (0.05, 0.5, 0.99):
        y = amp * np.sin(2 * np.pi * freq * t)
        for version in (y, np.round(y * 32767) / 32767):  # float, and 16-bit quantised
            assert not kinds(judge_clip(version, sr)), (freq, amp)


def test_dead_channel_and_silence():
    x = render_song("folk", seed=3, duration_s=6.0, sr=SR).astype(np.float64)
    stereo = np.stack([x, x * 10 ** (-70 / 20)])
    found = judge_clip(stereo)
    assert all([f.kind for f in seg] == ["dead"] for seg in found)
    assert "channel 2" in found[0][0].reason
    silent = judge_clip(np.zeros(3 * SR))
    assert [f.kind for f in silent[0]] == ["dead"]  # a dead segment gets no other finding


def test_muffled_from_a_point_on():
    x = render_song("rock", seed=5, duration_s=30.0, sr=SR).astype(np.float64)
    y = x.copy()
    y[15 * SR:] = signal.sosfilt(signal.butter(8, 600, fs=SR, output="sos"), x)[15 * SR:]
    found = judge_clip(y)
    assert [bool(seg) for seg in found] == [False] * 5 + [True] * 5
    assert all([f.kind for f in seg] == ["muffled"] for seg in found[5:])


def test_hum_is_pooled_over_neighbouring_segments():
    x = render_song("rock", seed=8, duration_s=30.0, sr=SR).astype(np.float64)
    t = np.arange(len(x)) / SR
    hum = np.sin(2 * np.pi * 50 * t) + 0.5 * np.sin(2 * np.pi * 100 * t) + 0.3 * np.sin(2 * np.pi * 150 * t)
    y = x + hum * np.sqrt(np.mean(x ** 2) / np.mean(hum ** 2)) * 10 ** (-15 / 20)
    n = 3 * SR
    ms = [F.measure(y[a:a + n], SR) for a in range(0, len(y) - n + 1, n)]
    starts = np.arange(len(ms)) * 3.0
    pooled = J.judge(ms, starts=starts)
    for i, seg in enumerate(pooled):
        near = [m["hum_prom"] for m, s in zip(ms, starts, strict=True) if abs(s - starts[i]) <= 12.0]
        strength, f0, lines = F.hum_strength(np.mean(near, axis=0))
        assert [f.kind for f in seg] == ["hum"] and f0 == 50 and {1, 2, 3} <= set(lines)
        assert seg[0].details["value"] == pytest.approx(strength, abs=1e-4)
    alone = J.judge(ms)  # without start times each segment is judged on its own lines (a comb of 3 or more)
    own = [F.hum_strength(m["hum_prom"]) for m in ms]
    expected = [s for s, _, lines in own if s >= 6 and J._mains_comb(lines)]
    assert 0 < len(expected) < len(ms)
    assert [f.details["value"] for seg in alone for f in seg] == pytest.approx(expected, abs=1e-4)


def test_thresholds_can_be_overridden():
    x = render_song("folk", seed=4, duration_s=6.0, sr=SR).astype(np.float64) + 0.03
    assert not kinds(judge_clip(x))
    found = J.judge([F.measure(x[:3 * SR], SR)], thresholds={"dc_offset": 0.02})
    assert [f.kind for f in found[0]] == ["dc_offset"] and found[0][0].details["threshold"] == 0.02
