"""A power spectrogram for looking at faults: from 20 Hz (mains hum, rumble), on a linear or logarithmic
frequency axis, at the file's own sample rate (numpy only)."""

from __future__ import annotations

import numpy as np

from musicemb_core.common.errors import ConfigError


def power_frames(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """|STFT|^2 of Hann-windowed frames, shape (frames, n_fft // 2 + 1); one frame if ``x`` is short."""
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]
    return np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1)) ** 2


def fault_spectrogram(y: np.ndarray, sr: int, *, fmin: float = 20.0, fmax: float | None = None,
                      n_rows: int = 256, log_freq: bool = True, window_s: float = 0.25,
                      hop_s: float = 0.02) -> tuple[np.ndarray, np.ndarray, float]:
    """dB power of ``y`` (n,) per frequency row and frame.

    The window (``window_s``, default 250 ms: 4 Hz bins, so 50 Hz and its harmonics stand apart) is long for
    low frequencies; rows are ``n_rows`` frequencies from ``fmin`` to ``fmax`` (default Nyquist), spaced
    logarithmically (``log_freq``) or linearly, each read from the nearest bins by linear interpolation.

    Returns
    -------
    S : (n_rows, frames) float32 dB re full scale; row_hz : (n_rows,) centre frequency of each row;
    hop : seconds between frames.
    """
    y = np.asarray(y, dtype=np.float64).ravel()
    fmax = float(fmax or sr / 2)
    if not 0 < fmin < fmax <= sr / 2:
        raise ConfigError(f"spectrogram range must satisfy 0 < fmin < fmax <= {sr / 2:g} Hz, got {fmin}-{fmax}")
    n_fft = 1 << int(np.ceil(np.log2(max(16, window_s * sr))))
    hop = max(1, int(round(hop_s * sr)))
    P = power_frames(y, n_fft, hop) / (np.sum(np.hanning(n_fft)) ** 2 / 4)  # a full-scale sine -> 0 dB
    bins = np.fft.rfftfreq(n_fft, 1 / sr)
    row_hz = np.geomspace(fmin, fmax, n_rows) if log_freq else np.linspace(fmin, fmax, n_rows)
    rows = np.stack([np.interp(row_hz, bins, p) for p in P], axis=1)
    return (10 * np.log10(np.maximum(rows, 1e-12))).astype(np.float32), row_hz, hop / sr
