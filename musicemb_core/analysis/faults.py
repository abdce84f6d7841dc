"""Faulty-microphone and bad-recording measures, per segment, on the signal (numpy/scipy, vectorised).

:func:`measure` turns one segment (channels first, the file's own sample rate) into raw numbers;
:mod:`~musicemb_core.analysis.fault_judge` turns them into :class:`Fault` findings in the context of the track
and the library.

Kinds and what fires them (fixed thresholds in :data:`THRESHOLDS`):

- ``clipping``: samples piled up at a rail (the segment's max or min): far more samples within a hair of the
  rail than just below it, which a clean waveform (even a pure sine) never shows.
- ``dropouts``: runs of digital silence of at least 5 ms entered and left abruptly from a sounding signal.
- ``dc_offset``: the mean of the waveform, in full scale.
- ``hum``: spectral lines at the harmonics of 50 or 60 Hz standing above their neighbours in the segment's
  minimum spectrum (steady over time, unlike notes); the second-strongest of the first 8 harmonics counts, so
  one steady tone is not a hum, and lines on both grids (a loop repeating 10 times a second) are no hum.
- ``crackle``: isolated clicks, found as short spikes of the linear-prediction residual far above its local
  level (spikes at clipped rails or dropout edges are left to those detectors); clicks per second, pooled
  over neighbouring segments.
- ``dead``: a near-silent recording, digital silence inside a track, or one channel far below the other (not a
  fade-in or fade-out); a dead segment gets no other finding.
- ``noise``: broadband noise: a low signal-to-noise estimate (mean power over a minimum-statistics floor)
  where that floor is itself flat (noise-like, not a held chord).
- ``muffled``: missing high band (above 1.5 kHz) against ordinary music (:data:`NOMINAL_HF_DB`) or against
  the track's other segments, in a segment whose low band is broad (music or speech, not one low tone).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import linalg, ndimage, signal

from musicemb_core.audio.resample import samples
from musicemb_core.common.errors import ConfigError
from musicemb_core.features.spectrogram import power_frames

KINDS = ("clipping", "dropouts", "dc_offset", "hum", "crackle", "dead", "noise", "muffled")
MIN_SR = 4000
"""Lowest sample rate the measures read (the noise floor is taken from 1 kHz up, mains hum up to 1 kHz)."""

THRESHOLDS = {
    "clipping": 0.001,    # fraction of samples piled up at a rail
    "dropouts": 0.005,    # seconds of abrupt digital silence
    "dc_offset": 0.05,    # |steady mean|, full scale
    "hum": 6.0,           # dB, mains comb over the baseline combs (see hum_strength)
    "crackle": 2.5,       # isolated clicks per second (mean over the segments within 12 s)
    "dead": -50.0,        # dBFS RMS, at or below
    "noise": 5.0,         # dB estimated SNR, at or below (with a flat floor)
    "muffled": 40.0,      # dB of high band missing against ordinary music (NOMINAL_HF_DB)
}
NOISE_FLATNESS = 0.5      # the floor must be this flat (0..1, within octaves) to count as broadband noise
DEAD_CHANNEL_DB = 40.0    # a channel this far below the loudest one is dead
NOMINAL_HF_DB = -20.0     # the high band (1.5 kHz up) of ordinary music or speech, dB of the total
MUFFLED_REL_DB = 40.0     # muffled also when the high band is this far below the track's median
_EPS = 1e-12
_LSB = 1.0 / 32768


@dataclass(frozen=True)
class Fault:
    """One finding: ``score`` = severity, ``>= 1`` at the threshold; ``details`` has value and threshold."""

    kind: str
    score: float
    reason: str
    details: dict = field(default_factory=dict)


def _db(x: float | np.ndarray) -> float | np.ndarray:
    return 10 * np.log10(np.maximum(x, _EPS))


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) indices of the runs of True in a 1-D boolean array."""
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


# -- measures ------------------------------------------------------------------------------------------------

def _clipping(ch: np.ndarray) -> tuple[float, np.ndarray]:
    """Fraction of samples piled up at a rail beyond what the next band below it holds; the rail mask."""
    best, mask = 0.0, np.zeros(ch.shape[-1], bool)
    for c in ch:
        for sign in (1.0, -1.0):
            s = sign * c
            rail = s.max()
            if rail < 0.01:
                continue
            delta = max(0.002 * rail, 3 * _LSB)
            top = s >= rail - delta
            n_next = np.count_nonzero((s >= rail - 2 * delta) & ~top)
            a, b = _runs(top)
            flat = b - a >= 3  # flat tops: a sampled sine synchronous with the rate touches its peak once
            top = np.zeros_like(top)
            for i, j in zip(a[flat], b[flat], strict=True):
                top[i:j] = True
            excess = (np.count_nonzero(top) - 4 * n_next) / len(s)
            if excess > best:
                best, mask = excess, top
    return best, mask


def _dropouts(ch: np.ndarray, sr: int) -> tuple[float, int, np.ndarray, tuple[float, float]]:
    """Seconds and count of digital-silence runs (>= 5 ms) entered/left abruptly; their mask; the seconds of
    those runs touching the segment's first and its last sample."""
    edge = max(1, int(0.005 * sr))
    n = ch.shape[-1]
    total, count, mask = 0, 0, np.zeros(n, bool)
    lead = tail = 0
    for c in ch:
        zero = np.abs(c) <= 1.5 * _LSB
        starts, ends = _runs(zero)
        keep = ends - starts >= edge
        if not keep.any():
            continue
        sounding = np.sqrt(np.mean(c[~zero] ** 2)) if (~zero).any() else 0.0
        floor = max(0.25 * sounding, 10 ** (-45 / 20))
        for a, b in zip(starts[keep], ends[keep], strict=True):
            sides = [c[max(0, a - edge):a], c[b:b + edge]]
            level = max((np.sqrt(np.mean(s ** 2)) for s in sides if len(s)), default=0.0)
            if level >= floor:
                total += b - a
                count += 1
                mask[a:b] = True
                lead += (b - a) * (a == 0)
                tail += (b - a) * (b == n)
    return total / sr, count, mask, (lead / sr, tail / sr)


def _null_f0s() -> np.ndarray:
    """Fundamentals whose first 8 harmonics all stay >= 3 Hz from every mains harmonic: the comb's baseline."""
    mains = np.r_[np.arange(1, 21) * 50, np.arange(1, 17) * 60]
    grid = np.arange(41.0, 70.0, 0.5)
    gaps = np.abs(grid[:, None, None] * np.arange(1, 9)[None, :, None] - mains[None, None, :]).min(axis=(1, 2))
    return grid[gaps >= 3]


_COMB_F0 = np.r_[50.0, 60.0, _null_f0s()]
_NEAR_HZ = np.r_[-14:-3, 4:15].astype(float)


def _hum_prominence(x: np.ndarray, sr: int) -> np.ndarray | None:
    """Prominence (dB) of each comb's 8 harmonics, shape (len(_COMB_F0), 8); None under 0.5 s.

    In the minimum spectrum over 1 s frames (1 Hz bins: steady lines only), a harmonic's prominence is its bin
    over the median of 4-14 Hz around it and over the bins 2 Hz away: a narrow line centred there (2 Hz off is
    a Hann window's zero, so the skirt of a note 1 Hz away does not count); lines under -60 dB of the segment's
    power (a quantisation spur) do not count either.
    """
    n_fft = min(len(x), sr)
    if n_fft < sr // 2:
        return None
    P = power_frames(x, n_fft, max(1, sr // 4))
    floor = np.percentile(P, 20, axis=0)
    hz = sr / n_fft
    f = _COMB_F0[:, None] * np.arange(1, 9)[None, :]
    k = np.clip(np.round(f / hz).astype(int), 2, len(floor) - 3)
    near = np.clip(np.round((f[..., None] + _NEAR_HZ) / hz).astype(int), 0, len(floor) - 1)
    side = np.maximum(floor[k - 2], floor[k + 2])
    background = np.maximum(np.maximum(np.median(floor[near], axis=-1), side), 1e-6 * P.mean(axis=0).sum())
    prom = _db(floor[k]) - _db(background)
    prom[f + 14 >= min(1000.0, sr / 2)] = np.nan
    return prom


def hum_strength(prom: np.ndarray) -> tuple[float, int, list[int]]:
    """Hum strength (dB), mains frequency, its harmonics above 6 dB, from a (mean) prominence matrix.

    A comb's score is its second-strongest harmonic (two lines at least: one steady tone is no hum); the
    strength is the better mains comb's score over the median score of the combs on fundamentals clear of
    the mains harmonics, so a line-rich piece of music lifts both alike, and over the other mains comb's:
    mains hum is on one grid, while a sample-exact loop repeating 10 times a second lights both.
    """
    score = np.sort(np.nan_to_num(prom, nan=-np.inf), axis=1)[:, -2]
    if not np.isfinite(score[0]):
        return 0.0, 0, []
    i = int(np.argmax(score[:2]))
    strength = float(score[i] - max(0.0, np.median(score[2:]), score[1 - i]))
    return strength, int(_COMB_F0[i]), [int(h) + 1 for h in np.flatnonzero(np.nan_to_num(prom[i]) > 6)]


def _clicks(x: np.ndarray, sr: int, exclude: np.ndarray, *, order: int = 20, k: float = 12.0) -> int:
    """Isolated clicks: spikes (<= 5 ms) of the linear-prediction residual ``k`` times above its RMS and twice
    its largest value in the 20 ms before and after them both. An onset (a drum hit: louder after than before)
    or a periodic edge (a sawtooth's reset, with its like 10 ms away) is not a click."""
    if len(x) <= 4 * order:
        return 0
    r = np.fft.irfft(np.abs(np.fft.rfft(x, 2 * len(x))) ** 2)[:order + 1]
    if r[0] <= _EPS:
        return 0
    r[0] *= 1 + 1e-9
    e = signal.lfilter(np.r_[1.0, -linalg.solve_toeplitz(r[:order], r[1:order + 1])], 1.0, x)
    local = np.sqrt(ndimage.uniform_filter1d(e ** 2, max(3, int(0.02 * sr)), mode="reflect"))
    spikes = np.flatnonzero((np.abs(e) > k / 2 * local) & (np.abs(e) > 4 * _LSB))
    spikes = spikes[spikes > order]  # the filter's start-up at the segment's first samples
    guard, gap, win = int(0.005 * sr), max(1, int(0.001 * sr)), int(0.02 * sr)
    if exclude.any() and len(spikes):
        spikes = spikes[~ndimage.binary_dilation(exclude, iterations=guard)[spikes]]
    if not len(spikes):
        return 0
    breaks = np.flatnonzero(np.diff(spikes) > 2 * gap)
    count = 0
    for a, b in zip(spikes[np.r_[0, breaks + 1]], spikes[np.r_[breaks, len(spikes) - 1]], strict=True):
        if b - a > guard:
            continue
        around = [v for v in (e[max(0, a - win):max(0, a - gap)], e[b + gap + 1:b + win]) if len(v)]
        level = max((np.sqrt(np.mean(v ** 2)) for v in around), default=0.0)
        biggest = max((np.abs(v).max() for v in around), default=0.0)
        peak = np.abs(e[a:b + 1]).max()
        count += peak > k * level and peak > 2 * biggest
    return count


def _spectrum(x: np.ndarray, sr: int) -> dict:
    """Broadband SNR estimate, flatness of the noise floor; high-band level; how many low octaves are lit.

    The noise floor is the 10th percentile over 46 ms frames of each bin's power (scaled to a mean); its
    density is the median over 1 kHz up (hiss shows there, music's lines and hits are sparse there), spread
    over the whole band as broadband noise would be.
    """
    n_fft = 1 << int(np.round(np.log2(0.046 * sr)))
    P = power_frames(x, n_fft, n_fft // 2)
    freqs = np.fft.rfftfreq(n_fft, 1 / sr)
    mean = P.mean(axis=0)
    floor = np.minimum(np.percentile(P, 10, axis=0) / 0.105, mean)
    top = min(10000.0, 0.45 * sr)
    band = (freqs >= 30) & (freqs <= top)
    noise = np.median(floor[(freqs >= 1000) & (freqs <= top)]) * np.count_nonzero(band)
    total = mean[band].sum()
    flat, lo = [], 1000.0
    while lo * 2 <= top:
        b = floor[(freqs >= lo) & (freqs < 2 * lo)]
        flat.append(np.exp(np.mean(np.log(b + _EPS))) / (b.mean() + _EPS))
        lo *= 2
    octaves = np.array([mean[(freqs >= f) & (freqs < 2 * f)].sum() for f in (62.5, 125, 250, 500)])
    return {"snr_db": float(_db(max(total - noise, _EPS)) - _db(max(noise, _EPS))),
            "floor_flatness": float(np.mean(flat)) if flat else 0.0,
            "hf_db": float(_db(mean[freqs >= 1500].sum()) - _db(mean[freqs >= 30].sum())),
            "low_octaves": int(np.count_nonzero(octaves >= max(octaves.max() / 100, 1e-4 * total)))}


def _dc(ch: np.ndarray, sr: int) -> float:
    """DC offset (full scale) of the channel with the largest: the smallest mean over 0.5 s blocks if they
    all share one sign (a steady offset), else 0 (a slow swell of the music is not an offset)."""
    block = max(1, int(0.5 * sr))
    nb = max(1, ch.shape[1] // block)
    means = ch[:, :nb * block].reshape(len(ch), nb, -1).mean(axis=2) if ch.shape[1] >= block else ch.mean(1)[:, None]
    steady = np.where(np.all(means > 0, axis=1) | np.all(means < 0, axis=1),
                      np.sign(means[:, 0]) * np.abs(means).min(axis=1), 0.0)
    return float(steady[np.argmax(np.abs(steady))])


def measure(y: np.ndarray, sr: int) -> dict:
    """Raw measures of one segment: ``y`` (n,) or (channels, n) float at the file's rate ``sr`` (at least
    :data:`MIN_SR`; ``y`` checked by :func:`~musicemb_core.audio.resample.samples`)."""
    if not sr >= MIN_SR:
        raise ConfigError(f"the fault checks need a sample rate of at least {MIN_SR} Hz, got {sr} Hz")
    if sr != int(sr):
        raise ConfigError(f"the fault checks need a whole number of Hz, got {sr} Hz")
    sr = int(sr)
    ch = np.atleast_2d(samples(y)).astype(np.float64)
    n = ch.shape[1]
    x = ch.mean(axis=0)
    ch_rms = _db(np.mean(ch ** 2, axis=1)) / 1.0
    out = {"n": n, "sr": sr, "rms_db": float(_db(np.mean(x ** 2))), "channel_db": ch_rms.tolist(),
           "dc": _dc(ch, sr)}
    if n == 0:
        return out
    out["clip_frac"], clip_mask = _clipping(ch)
    out["dropout_s"], out["dropout_n"], zero_mask, out["dropout_edge_s"] = _dropouts(ch, sr)
    out["hum_prom"] = _hum_prominence(x - x.mean(), sr)
    out["clicks"] = _clicks(x - x.mean(), sr, clip_mask | zero_mask)
    out["click_rate"] = out["clicks"] / (n / sr)
    out.update(_spectrum(x - x.mean(), sr))
    return out
