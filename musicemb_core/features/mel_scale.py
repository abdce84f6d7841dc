"""The mel scale and its triangular filterbank, in numpy (no torch: onset strength and tempo use them too)."""

from __future__ import annotations

import numpy as np

from musicemb_core.common.config import FeatureConfig


def hz_to_mel(f: np.ndarray, *, htk: bool = False) -> np.ndarray:
    """Hertz to mels (Slaney's auditory toolbox scale, or HTK's)."""
    f = np.asarray(f, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + f / 700.0)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-12) / min_log_hz) / logstep, f / f_sp)


def mel_to_hz(m: np.ndarray, *, htk: bool = False) -> np.ndarray:
    """Mels to hertz (inverse of :func:`hz_to_mel`)."""
    m = np.asarray(m, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filterbank(cfg: FeatureConfig) -> np.ndarray:
    """Triangular mel filters with Slaney area normalisation, shape (n_mels, 1 + n_fft // 2), float32."""
    fmax = cfg.sr / 2 if cfg.fmax is None else cfg.fmax
    fft_f = np.fft.rfftfreq(cfg.n_fft, 1.0 / cfg.sr)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(cfg.fmin, htk=cfg.htk), hz_to_mel(fmax, htk=cfg.htk), cfg.n_mels + 2),
                      htk=cfg.htk)
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_f[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper)).astype(np.float32)
    weights *= (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None].astype(np.float32)
    return weights


AMIN = 1e-10
"""The smallest power the log-mel takes the log of (offline and streaming)."""


def hann_window(length: int, dtype=np.float32) -> np.ndarray:
    """The periodic Hann window the log-mel's STFT uses (as ``torch.hann_window(length, periodic=True)``),
    computed in float64 and given as ``dtype``."""
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(length) / length)).astype(dtype)
