"""Online, seeded augmentations for training: contrastive views of one segment, degraded snippets.

Waveform ops take ``y`` (n,) float32, ``sr`` and a ``numpy.random.Generator`` and return a new (n,) float32
array of the same length; every random draw comes from ``rng``, so a seed fixes the result.
Spectrogram ops take a torch tensor (..., n_mels, frames), e.g. (batch, 1, n_mels, frames) or
(n_mels, frames), and a ``torch.Generator`` or ``numpy.random.Generator``; each item (leading index)
gets its own draw.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import soxr
import torch
from scipy import signal

from musicemb_core.common.errors import ConfigError

__all__ = [
    "gain", "add_noise", "mix_clip", "lowpass", "eq", "band_limit", "reverb", "speed", "random_filter",
    "WaveAugment", "default_views", "roll_time", "freq_mask", "time_mask", "SpecAugment",
]

WaveOp = Callable[..., np.ndarray]
Rng = np.random.Generator | torch.Generator
_COLOUR_EXPONENT = {"white": 0.0, "pink": 1.0, "brown": 2.0}


def _check(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1 or y.size == 0:
        raise ConfigError(f"y must be a non-empty 1-D waveform, got shape {y.shape}")
    return y


def _uniform(rng: np.random.Generator, bounds: Sequence[float], name: str) -> float:
    lo, hi = bounds
    if lo > hi:
        raise ConfigError(f"{name} must be (low, high) with low <= high, got {tuple(bounds)}")
    return float(rng.uniform(lo, hi))


def _fit(x: np.ndarray, n: int) -> np.ndarray:
    """Crop the end or zero-pad ``x`` to length ``n``, as float32."""
    x = np.asarray(x[:n], dtype=np.float32)
    return np.pad(x, (0, n - x.size)) if x.size < n else x


def _zero_phase(sos: np.ndarray, y: np.ndarray) -> np.ndarray:
    padlen = min(3 * (2 * len(sos) + 1), y.size - 1)
    return _fit(signal.sosfiltfilt(sos, y, padlen=padlen), y.size)


def _power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64)))


def _at_snr(y: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``y + noise`` with ``noise`` scaled so that power(y) / power(noise) is ``snr_db`` exactly."""
    p_sig, p_noise = _power(y), _power(noise)
    if p_sig == 0.0 or p_noise == 0.0:
        return y.copy()
    scale = np.sqrt(p_sig / (p_noise * 10.0 ** (snr_db / 10.0)))
    return (y + scale * noise).astype(np.float32)


# -- waveform ops ------------------------------------------------------------------------------------------

def gain(y: np.ndarray, sr: int, rng: np.random.Generator, *,
         db_range: tuple[float, float] = (-12.0, 6.0)) -> np.ndarray:
    """Scale by a gain drawn uniformly in ``db_range`` dB. ``y`` (n,) -> (n,) float32."""
    y = _check(y)
    return (y * np.float32(10.0 ** (_uniform(rng, db_range, "db_range") / 20.0))).astype(np.float32)


def add_noise(y: np.ndarray, sr: int, rng: np.random.Generator, *,
              snr_db_range: tuple[float, float] = (0.0, 20.0), colour: str = "white") -> np.ndarray:
    """Add white, pink (1/f), brown (1/f²) or ``"random"``-coloured noise at an SNR drawn in ``snr_db_range``.

    The SNR is exact relative to the power of ``y``; a silent ``y`` is returned unchanged.
    ``y`` (n,) -> (n,) float32.
    """
    y = _check(y)
    if colour == "random":
        colour = str(rng.choice(list(_COLOUR_EXPONENT)))
    if colour not in _COLOUR_EXPONENT:
        raise ConfigError(f"colour must be one of {[*_COLOUR_EXPONENT, 'random']}, got {colour!r}")
    snr_db = _uniform(rng, snr_db_range, "snr_db_range")
    spectrum = np.fft.rfft(rng.standard_normal(y.size))
    f = np.arange(spectrum.size, dtype=np.float64)
    f[0] = np.inf if _COLOUR_EXPONENT[colour] > 0 else 1.0      # no DC in coloured noise
    noise = np.fft.irfft(spectrum * f ** (-_COLOUR_EXPONENT[colour] / 2.0), n=y.size)
    return _at_snr(y, noise, snr_db)


def mix_clip(y: np.ndarray, noise_clip: np.ndarray, sr: int, rng: np.random.Generator, *,
             snr_db: float | tuple[float, float]) -> np.ndarray:
    """Mix in ``noise_clip`` (m,), looped from a random offset to length n, at ``snr_db`` dB exactly.

    ``snr_db`` may be a (low, high) range to draw from. ``y`` (n,) -> (n,) float32.
    """
    y, noise_clip = _check(y), _check(noise_clip)
    if not np.isscalar(snr_db):
        snr_db = _uniform(rng, snr_db, "snr_db")
    offset = int(rng.integers(noise_clip.size))
    noise = np.take(noise_clip, np.arange(offset, offset + y.size), mode="wrap").astype(np.float64)
    return _at_snr(y, noise, float(snr_db))


def lowpass(y: np.ndarray, sr: int, rng: np.random.Generator, *,
            cutoff_range: tuple[float, float] = (2000.0, 8000.0)) -> np.ndarray:
    """Zero-phase 10th-order Butterworth low-pass, cutoff drawn in ``cutoff_range`` Hz (capped at 0.45 sr).

    ``y`` (n,) -> (n,) float32.
    """
    y = _check(y)
    cutoff = min(_uniform(rng, cutoff_range, "cutoff_range"), 0.45 * sr)
    return _zero_phase(signal.butter(10, cutoff, "lowpass", fs=sr, output="sos"), y)


def _biquad(kind: int, f0: float, db: float, q: float, sr: int) -> np.ndarray:
    """RBJ-cookbook peaking (0), low-shelf (1) or high-shelf (2) biquad as one ``sos`` row (6,)."""
    a_, w0 = 10.0 ** (db / 40.0), 2.0 * np.pi * f0 / sr
    cos, alpha = np.cos(w0), np.sin(w0) / (2.0 * q)
    if kind == 0:
        b = [1 + alpha * a_, -2 * cos, 1 - alpha * a_]
        a = [1 + alpha / a_, -2 * cos, 1 - alpha / a_]
    else:
        s = 1.0 if kind == 1 else -1.0           # the high shelf mirrors the low shelf's cosine terms
        k = 2.0 * np.sqrt(a_) * alpha
        b = [a_ * ((a_ + 1) - s * (a_ - 1) * cos + k), 2 * s * a_ * ((a_ - 1) - s * (a_ + 1) * cos),
             a_ * ((a_ + 1) - s * (a_ - 1) * cos - k)]
        a = [(a_ + 1) + s * (a_ - 1) * cos + k, -2 * s * ((a_ - 1) + s * (a_ + 1) * cos),
             (a_ + 1) + s * (a_ - 1) * cos - k]
    return np.array([*b, *a]) / a[0]


def eq(y: np.ndarray, sr: int, rng: np.random.Generator, *, n_bands: int = 3,
       db_range: tuple[float, float] = (-9.0, 9.0)) -> np.ndarray:
    """Random EQ: ``n_bands`` peaking or shelving biquads, gains in ``db_range`` dB, centres log-uniform
    in [60 Hz, 0.4 sr], Q log-uniform in [0.5, 3] (shelves: 1/√2). ``y`` (n,) -> (n,) float32."""
    y = _check(y)
    if n_bands < 1:
        return y.copy()
    rows = []
    for _ in range(n_bands):
        kind = int(rng.integers(3))
        f0 = float(np.exp(rng.uniform(np.log(60.0), np.log(0.4 * sr))))
        q = float(np.exp(rng.uniform(np.log(0.5), np.log(3.0)))) if kind == 0 else 1 / np.sqrt(2.0)
        rows.append(_biquad(kind, f0, _uniform(rng, db_range, "db_range"), q, sr))
    return signal.sosfilt(np.stack(rows), y).astype(np.float32)


def _mu_law(y: np.ndarray, bits: int) -> np.ndarray:
    """Mu-law companding to ``2**bits`` levels of the peak-normalised signal, expanded back."""
    peak = float(np.max(np.abs(y)))
    if peak == 0.0:
        return y
    mu = 2.0 ** bits - 1
    c = np.sign(y) * np.log1p(mu * np.abs(y / peak)) / np.log1p(mu)
    c = np.round((c + 1.0) / 2.0 * mu) / mu * 2.0 - 1.0
    return (np.sign(c) * np.expm1(np.abs(c) * np.log1p(mu)) / mu * peak).astype(np.float32)


def band_limit(y: np.ndarray, sr: int, rng: np.random.Generator, *,
               cutoff_range: tuple[float, float] = (3000.0, 7000.0),
               highpass_range: tuple[float, float] = (80.0, 300.0),
               quantise_p: float = 0.5, bits: int = 8) -> np.ndarray:
    """Codec/telephone-like degradation: with probability ``quantise_p`` a ``bits``-bit mu-law quantisation,
    then a zero-phase band-pass (high-pass in ``highpass_range``, low-pass in ``cutoff_range`` Hz).

    ``y`` (n,) -> (n,) float32.
    """
    y = _check(y)
    if rng.random() < quantise_p:
        y = _mu_law(y, bits)
    low = _uniform(rng, highpass_range, "highpass_range")
    high = min(_uniform(rng, cutoff_range, "cutoff_range"), 0.45 * sr)
    sos = np.vstack([signal.butter(2, low, "highpass", fs=sr, output="sos"),
                     signal.butter(10, high, "lowpass", fs=sr, output="sos")])
    return _zero_phase(sos, y)


def reverb(y: np.ndarray, sr: int, rng: np.random.Generator, *,
           rt60_range: tuple[float, float] = (0.2, 1.2),
           wet_range: tuple[float, float] = (0.1, 0.5)) -> np.ndarray:
    """Synthetic room: convolve with Gaussian noise decaying by 60 dB over ``rt60`` s (FFT convolution),
    scale the wet signal to the dry power and mix ``(1 - wet) * y + wet * wet_signal``.

    ``y`` (n,) -> (n,) float32 (the tail past n is cut).
    """
    y = _check(y)
    rt60 = _uniform(rng, rt60_range, "rt60_range")
    wet = _uniform(rng, wet_range, "wet_range")
    t = np.arange(max(int(rt60 * sr), 1)) / sr
    ir = rng.standard_normal(t.size) * np.exp(-np.log(1000.0) * t / rt60)
    tail = signal.fftconvolve(y.astype(np.float64), ir)[:y.size]
    p_tail = _power(tail)
    if p_tail > 0.0:
        tail *= np.sqrt(_power(y) / p_tail)
    return ((1.0 - wet) * y + wet * tail).astype(np.float32)


def speed(y: np.ndarray, sr: int, rng: np.random.Generator, *,
          range_: tuple[float, float] = (0.95, 1.05)) -> np.ndarray:
    """Play back at a speed factor drawn in ``range_`` (soxr), shifting tempo and pitch together, like a
    turntable running fast or slow; the result is cropped or zero-padded at the end. (n,) -> (n,) float32."""
    y = _check(y)
    factor = _uniform(rng, range_, "range_")
    if factor <= 0:
        raise ConfigError(f"range_ must hold positive speed factors, got {range_}")
    return _fit(soxr.resample(y, sr * factor, sr, quality="HQ"), y.size)


def random_filter(y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """One of :func:`eq`, :func:`lowpass`, :func:`band_limit` (defaults), chosen uniformly. (n,) -> (n,)."""
    return (eq, lowpass, band_limit)[int(rng.integers(3))](y, sr, rng)


class WaveAugment:
    """A pipeline of waveform ops, each applied with its probability, in order.

    Parameters
    ----------
    steps : list of (op, p, params)
        ``op(y, sr, rng, **params)`` runs when a uniform draw is below ``p``.
    """

    def __init__(self, steps: Sequence[tuple[WaveOp, float, dict]]):
        for op, p, params in steps:
            if not callable(op) or not 0.0 <= p <= 1.0 or not isinstance(params, dict):
                raise ConfigError(f"each step must be (callable, p in [0, 1], dict), got {(op, p, params)!r}")
        self.steps = list(steps)

    def __call__(self, y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
        """Augment ``y`` (n,) at ``sr`` Hz -> (n,) float32."""
        y = _check(y)
        for op, p, params in self.steps:
            if rng.random() < p:
                y = op(y, sr, rng, **params)
        return y

    def __repr__(self) -> str:
        inner = ", ".join(f"{getattr(op, '__name__', op)}(p={p}, {params})" for op, p, params in self.steps)
        return f"WaveAugment([{inner}])"


def default_views() -> WaveAugment:
    """The pipeline for contrastive training views: speed ±5 % (p 0.5), reverb (p 0.4),
    EQ / low-pass / band-limit (p 0.5), noise of random colour at 0-20 dB SNR (p 0.6), gain (p 0.8)."""
    return WaveAugment([
        (speed, 0.5, {}),
        (reverb, 0.4, {}),
        (random_filter, 0.5, {}),
        (add_noise, 0.6, {"colour": "random"}),
        (gain, 0.8, {}),
    ])


# -- spectrogram ops ---------------------------------------------------------------------------------------

def _random(rng: Rng, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform floats in [0, 1) from either kind of generator."""
    if isinstance(rng, torch.Generator):
        return torch.rand(shape, generator=rng, dtype=torch.float64).numpy()
    return rng.random(shape)


def _items(S: torch.Tensor, name: str, value: int) -> torch.Tensor:
    if S.dim() < 2:
        raise ConfigError(f"S must be (..., n_mels, frames), got shape {tuple(S.shape)}")
    if value < 0:
        raise ConfigError(f"{name} must be >= 0, got {value}")
    return S.reshape(-1, *S.shape[-2:])


def roll_time(S: torch.Tensor, rng: Rng, *, max_shift: int) -> torch.Tensor:
    """Circularly shift each item along time by an integer drawn in [-max_shift, max_shift].

    ``S`` (..., n_mels, frames) -> same shape; item i equals ``torch.roll(S[i], shift_i, dims=-1)``.
    """
    X = _items(S, "max_shift", max_shift)
    n, m, t = X.shape
    shift = np.floor(_random(rng, (n,)) * (2 * max_shift + 1)).astype(np.int64) - max_shift
    idx = (torch.arange(t) - torch.from_numpy(shift)[:, None]) % t
    return X.gather(2, idx.to(S.device)[:, None, :].expand(n, m, t)).reshape(S.shape)


def _mask(S: torch.Tensor, rng: Rng, dim: int, max_width: int, n_masks: int,
          value: float | None) -> torch.Tensor:
    """Fill ``n_masks`` random bands along ``dim`` (1: mel rows, 2: frames) of each item."""
    X = _items(S, "max_width", max_width)
    n, size = X.shape[0], X.shape[dim]
    width = np.minimum(np.floor(_random(rng, (n, n_masks)) * (max_width + 1)).astype(np.int64), size)
    start = np.floor(_random(rng, (n, n_masks)) * (size - width + 1)).astype(np.int64)
    pos = np.arange(size)
    band = ((pos >= start[..., None]) & (pos < (start + width)[..., None])).any(axis=1)   # (n, size)
    band = torch.from_numpy(band).to(S.device)
    band = band[:, :, None] if dim == 1 else band[:, None, :]
    fill = X.mean(dim=(1, 2), keepdim=True) if value is None else X.new_tensor(value)
    return torch.where(band, fill, X).reshape(S.shape)


def freq_mask(S: torch.Tensor, rng: Rng, *, max_width: int, n_masks: int = 1,
              value: float | None = None) -> torch.Tensor:
    """Fill ``n_masks`` bands of mel rows per item, each of width drawn in [0, max_width], with ``value``
    (default: the item's mean). ``S`` (..., n_mels, frames) -> same shape, a new tensor."""
    return _mask(S, rng, 1, max_width, n_masks, value)


def time_mask(S: torch.Tensor, rng: Rng, *, max_width: int, n_masks: int = 1,
              value: float | None = None) -> torch.Tensor:
    """Fill ``n_masks`` spans of frames per item, each of width drawn in [0, max_width], with ``value``
    (default: the item's mean). ``S`` (..., n_mels, frames) -> same shape, a new tensor."""
    return _mask(S, rng, 2, max_width, n_masks, value)


class SpecAugment:
    """Time roll (if ``roll`` > 0, max shift in frames), then frequency and time masks.

    ``__call__(S, rng)``: ``S`` (..., n_mels, frames) -> same shape.
    """

    def __init__(self, freq_width: int = 8, time_width: int = 20, n_masks: int = 2, roll: int = 0,
                 value: float | None = None):
        self.freq_width, self.time_width, self.n_masks, self.roll = freq_width, time_width, n_masks, roll
        self.value = value

    def __call__(self, S: torch.Tensor, rng: Rng) -> torch.Tensor:
        if self.roll:
            S = roll_time(S, rng, max_shift=self.roll)
        S = freq_mask(S, rng, max_width=self.freq_width, n_masks=self.n_masks, value=self.value)
        return time_mask(S, rng, max_width=self.time_width, n_masks=self.n_masks, value=self.value)

    def __repr__(self) -> str:
        return (f"SpecAugment(freq_width={self.freq_width}, time_width={self.time_width}, "
                f"n_masks={self.n_masks}, roll={self.roll}, value={self.value})")
