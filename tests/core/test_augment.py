"""Waveform and spectrogram augmentations: shapes, determinism, exact SNRs, filters, speed, reverb, masks."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from musicemb_core.common.config import FeatureConfig
from musicemb_core.common.errors import ConfigError
from musicemb_core.data import augment as A
from musicemb_core.features.logmel import log_mel
from tests.conftest import dominant_freq, sine

SR = 16000


def _power_db(x) -> float:
    return 10 * np.log10(np.mean(np.square(x, dtype=np.float64)))


def _band_power(y, sr, lo, hi) -> float:
    spec = np.abs(np.fft.rfft(y)) ** 2
    f = np.fft.rfftfreq(len(y), 1 / sr)
    return float(spec[(f >= lo) & (f < hi)].sum())


def _music(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    """Notes with harmonics and decaying envelopes plus noise clicks: a music-like test clip."""
    rng = np.random.default_rng(seed)
    n_notes, note = 8, int(SR * seconds / 8)
    t = np.arange(note) / SR
    parts = []
    for _ in range(n_notes):
        f0 = 110 * 2 ** (rng.integers(0, 24) / 12)
        tone = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 6))
        click = rng.standard_normal(note) * np.exp(-t * 80)
        parts.append(np.exp(-t * 3) * tone * 0.3 + 0.2 * click)
    return np.concatenate(parts).astype(np.float32)


CLIP = _music()
NOISE_CLIP = np.random.default_rng(9).standard_normal(3000).astype(np.float32)
OPS = {
    "gain": A.gain,
    "add_noise": functools.partial(A.add_noise, colour="random"),
    "mix_clip": lambda y, sr, rng: A.mix_clip(y, NOISE_CLIP, sr, rng, snr_db=(0, 20)),
    "lowpass": A.lowpass,
    "eq": A.eq,
    "band_limit": A.band_limit,
    "reverb": A.reverb,
    "speed": A.speed,
    "random_filter": A.random_filter,
    "default_views": A.default_views(),
}


@pytest.mark.parametrize("name", list(OPS))
def test_wave_ops_shape_dtype_determinism(name):
    op = OPS[name]
    a = op(CLIP, SR, np.random.default_rng(0))
    b = op(CLIP, SR, np.random.default_rng(0))
    outs = [op(CLIP, SR, np.random.default_rng(seed)) for seed in range(1, 4)]
    for out in [a, *outs]:
        assert out.shape == CLIP.shape and out.dtype == np.float32 and np.isfinite(out).all()
    np.testing.assert_array_equal(a, b)
    assert any(not np.allclose(a, o) for o in outs)
    assert not np.shares_memory(a, CLIP)


@pytest.mark.parametrize("colour", ["white", "pink", "brown", "random"])
def test_add_noise_exact_snr(colour):
    for seed in range(5):
        snr = float(np.random.default_rng(100 + seed).uniform(-5, 30))
        out = A.add_noise(CLIP, SR, np.random.default_rng(seed), snr_db_range=(snr, snr), colour=colour)
        assert abs(_power_db(CLIP) - _power_db(out - CLIP) - snr) < 0.1


def test_noise_colours_have_their_slopes():
    y = sine(1000.0, sr=SR, seconds=4.0)
    lows, highs = {}, {}
    for colour in ("white", "pink", "brown"):
        noise = A.add_noise(y, SR, np.random.default_rng(0), snr_db_range=(0, 0), colour=colour) - y
        lows[colour] = _band_power(noise, SR, 100, 200)
        highs[colour] = _band_power(noise, SR, 4000, 8000)
    ratio = {c: 10 * np.log10(lows[c] / highs[c]) for c in lows}
    # bands of 100 Hz and 4 kHz: white noise gives their width ratio (-16 dB); pink and brown tilt to the lows
    assert ratio["white"] < ratio["pink"] < ratio["brown"]
    assert abs(ratio["white"] - 10 * np.log10(100 / 4000)) < 1.0


def test_mix_clip_exact_snr_and_loops_short_clip():
    for snr in (-3.0, 0.0, 7.5, 20.0):
        out = A.mix_clip(CLIP, NOISE_CLIP, SR, np.random.default_rng(1), snr_db=snr)
        assert out.shape == CLIP.shape
        assert abs(_power_db(CLIP) - _power_db(out - CLIP) - snr) < 0.1
    noise = out - CLIP        # the 3000-sample clip is looped: the added noise repeats with its period
    np.testing.assert_allclose(noise[:3000], noise[3000:6000], atol=1e-5)


def test_silent_input_stays_silent():
    y = np.zeros(SR, dtype=np.float32)
    np.testing.assert_array_equal(A.add_noise(y, SR, np.random.default_rng(0)), y)
    np.testing.assert_array_equal(A.mix_clip(y, NOISE_CLIP, SR, np.random.default_rng(0), snr_db=5), y)


def test_lowpass_removes_10k_keeps_500():
    sr = 32000
    hi, lo = sine(10000.0, sr=sr), sine(500.0, sr=sr)
    for seed in range(5):
        core = slice(2000, -2000)    # skip the filter's edge transients
        out_hi = A.lowpass(hi, sr, np.random.default_rng(seed))
        out_lo = A.lowpass(lo, sr, np.random.default_rng(seed))
        assert _power_db(hi[core]) - _power_db(out_hi[core]) > 30
        assert abs(_power_db(lo[core]) - _power_db(out_lo[core])) < 1


def test_eq_response_within_gain_limits():
    impulse = np.zeros(8192, dtype=np.float32)
    impulse[0] = 1
    spans = []
    for seed in range(20):
        h = A.eq(impulse, SR, np.random.default_rng(seed), n_bands=1, db_range=(-9, 9))
        mag_db = 20 * np.log10(np.abs(np.fft.rfft(h)) + 1e-12)
        assert mag_db.max() < 9.1 and mag_db.min() > -9.1
        spans.append(np.ptp(mag_db))
    assert max(spans) > 6                    # peaks and shelves reach several dB
    np.testing.assert_array_equal(A.eq(CLIP, SR, np.random.default_rng(0), n_bands=0), CLIP)


def test_band_limit_removes_energy_above_8k():
    sr = 32000
    y = np.random.default_rng(3).standard_normal(sr).astype(np.float32) * 0.3
    for seed in range(6):
        out = A.band_limit(y, sr, np.random.default_rng(seed))
        assert _band_power(y, sr, 8000, 16000) / _band_power(out, sr, 8000, 16000) > 1e3     # > 30 dB
        assert _band_power(out, sr, 0, 40) < 0.1 * _band_power(y, sr, 0, 40)                # high-pass
        assert _band_power(out, sr, 500, 2500) > 0.5 * _band_power(y, sr, 500, 2500)       # passband


def test_band_limit_quantisation_adds_broadband_noise():
    y = sine(440.0, sr=SR)
    clean = A.band_limit(y, SR, np.random.default_rng(0), quantise_p=0.0, cutoff_range=(7000, 7000))
    coarse = A.band_limit(y, SR, np.random.default_rng(0), quantise_p=1.0, bits=4, cutoff_range=(7000, 7000))
    assert _band_power(coarse, SR, 2000, 6000) > 100 * _band_power(clean, SR, 2000, 6000)


def test_reverb_extends_decay():
    y = np.zeros(SR, dtype=np.float32)
    y[:1600] = np.random.default_rng(0).standard_normal(1600).astype(np.float32)    # 0.1 s burst
    for seed in range(4):
        out = A.reverb(y, SR, np.random.default_rng(seed), rt60_range=(0.5, 1.0), wet_range=(0.3, 0.5))
        assert out.shape == y.shape
        tail = np.sum(out[2400:] ** 2)
        assert tail > 1e-3 * np.sum(out[:1600] ** 2)
        assert np.sum(out[8000:] ** 2) < np.sum(out[2400:4000] ** 2)     # and decays


def test_speed_moves_pitch():
    y = sine(1000.0, sr=SR, seconds=2.0)
    fast = A.speed(y, SR, np.random.default_rng(0), range_=(1.03, 1.03))
    slow = A.speed(y, SR, np.random.default_rng(0), range_=(0.97, 0.97))
    n_fast = int(len(y) / 1.03)
    assert abs(dominant_freq(fast[:n_fast], SR) - 1030) < 3
    assert abs(dominant_freq(slow, SR) - 970) < 3
    assert np.abs(fast[n_fast + 10:]).max() == 0        # padded with silence after the shorter output


def test_gain_within_range():
    for seed in range(20):
        out = A.gain(CLIP, SR, np.random.default_rng(seed), db_range=(-12, 6))
        assert -12 - 1e-4 <= _power_db(out) - _power_db(CLIP) <= 6 + 1e-4
    out = A.gain(CLIP, SR, np.random.default_rng(0), db_range=(-6, -6))
    np.testing.assert_allclose(_power_db(out) - _power_db(CLIP), -6, atol=1e-4)


def test_bad_parameters_raise():
    rng = np.random.default_rng(0)
    with pytest.raises(ConfigError, match="db_range"):
        A.gain(CLIP, SR, rng, db_range=(6, -6))
    with pytest.raises(ConfigError, match="colour"):
        A.add_noise(CLIP, SR, rng, colour="purple")
    with pytest.raises(ConfigError, match="1-D"):
        A.gain(np.zeros((2, 100), np.float32), SR, rng)
    with pytest.raises(ConfigError, match="range_"):
        A.speed(CLIP, SR, rng, range_=(-1.0, -1.0))
    with pytest.raises(ConfigError, match="step"):
        A.WaveAugment([(A.gain, 1.5, {})])


def test_wave_augment_probabilities():
    calls = []

    def record(y, sr, rng, *, tag):
        calls.append(tag)
        return y

    aug = A.WaveAugment([(record, 1.0, {"tag": "always"}), (record, 0.0, {"tag": "never"})])
    out = aug(CLIP, SR, np.random.default_rng(0))
    assert calls == ["always"] and out.dtype == np.float32
    assert "record" in repr(aug)


def test_default_views_differ_but_correlate():
    cfg = FeatureConfig(sr=16000, n_fft=512, hop_length=160, n_mels=64)
    src = log_mel(CLIP, cfg).ravel()
    aug = A.default_views()
    rng = np.random.default_rng(0)
    for _ in range(6):
        v1, v2 = aug(CLIP, SR, rng), aug(CLIP, SR, rng)
        assert not np.allclose(v1, v2)
        for v in (v1, v2):
            assert np.corrcoef(src, log_mel(v, cfg).ravel())[0, 1] > 0.3


# -- spectrogram ops ---------------------------------------------------------------------------------------

def _spec(*shape):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("rng_kind", ["torch", "numpy"])
def test_roll_time_is_torch_roll(rng_kind):
    S = _spec(8, 1, 16, 50)
    def make():
        return torch.Generator().manual_seed(5) if rng_kind == "torch" else np.random.default_rng(5)

    out = A.roll_time(S, make(), max_shift=7)
    np.testing.assert_array_equal(out.numpy(), A.roll_time(S, make(), max_shift=7).numpy())
    shifts = []
    for i in range(len(S)):
        match = [s for s in range(-7, 8) if torch.equal(out[i], torch.roll(S[i], s, dims=-1))]
        assert len(match) == 1
        shifts += match
    assert len(set(shifts)) > 1                     # each item draws its own shift
    S2 = _spec(16, 50)
    out2 = A.roll_time(S2, make(), max_shift=3)
    assert any(torch.equal(out2, torch.roll(S2, s, dims=-1)) for s in range(-3, 4))
    assert torch.equal(A.roll_time(S2, make(), max_shift=0), S2)


@pytest.mark.parametrize("axis", ["freq", "time"])
@pytest.mark.parametrize("rng_kind", ["torch", "numpy"])
def test_masks_fill_bands_within_limits(axis, rng_kind):
    op = A.freq_mask if axis == "freq" else A.time_mask
    S = _spec(32, 1, 40, 60)
    rng = torch.Generator().manual_seed(1) if rng_kind == "torch" else np.random.default_rng(1)
    widths = []
    for value in (0.0, None):
        out = op(S, rng, max_width=9, value=value)
        assert out.shape == S.shape and not torch.equal(out, S)
        for i in range(len(S)):
            x, o = S[i, 0], out[i, 0]
            if axis == "time":
                x, o = x.T, o.T
            changed = np.flatnonzero((x != o).any(dim=1).numpy())
            width = len(changed)
            assert width <= 9
            if width:
                assert changed[-1] - changed[0] + 1 == width                    # one contiguous band
                fill = x.mean() if value is None else torch.tensor(value)     # default: the item's mean
                assert torch.allclose(o[changed], fill.expand_as(o[changed]))
            rest = np.setdiff1d(np.arange(x.shape[0]), changed)
            assert torch.equal(o[rest], x[rest])
            widths.append(width)
    assert max(widths) >= 5 and 0 < np.mean(widths) < 9


def test_masks_several_and_2d_and_reproducible():
    S = _spec(40, 60)
    out = A.time_mask(S, np.random.default_rng(2), max_width=5, n_masks=3, value=-1.0)
    assert out.shape == S.shape
    masked = (out == -1.0).all(dim=0)
    assert 0 < int(masked.sum()) <= 15
    assert torch.equal(out[:, ~masked], S[:, ~masked])
    again = A.time_mask(S, np.random.default_rng(2), max_width=5, n_masks=3, value=-1.0)
    assert torch.equal(out, again)
    assert torch.equal(A.freq_mask(S, np.random.default_rng(2), max_width=0), S)
    with pytest.raises(ConfigError, match="max_width"):
        A.freq_mask(S, np.random.default_rng(2), max_width=-1)
    with pytest.raises(ConfigError, match="n_mels, frames"):
        A.time_mask(torch.zeros(10), np.random.default_rng(2), max_width=2)


def test_spec_augment():
    S = _spec(4, 1, 64, 100)
    aug = A.SpecAugment(freq_width=10, time_width=20, n_masks=2, roll=10, value=0.0)
    a = aug(S, torch.Generator().manual_seed(3))
    b = aug(S, torch.Generator().manual_seed(3))
    assert a.shape == S.shape and torch.equal(a, b) and not torch.equal(a, S)
    assert (a == 0).sum() > 0
    assert "SpecAugment(" in repr(aug)
