"""Handcrafted descriptors with librosa: chroma, rms, spectral centroid/bandwidth/rolloff, zcr, 20 MFCCs.

Each frame-level descriptor is summarised by its mean and std over a track or a segment.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from musicemb_core.audio.decode import load
from musicemb_core.audio.resample import mono_samples
from musicemb_core.audio.segment import window_starts
from musicemb_core.common.config import SegmentConfig
from musicemb_core.common.errors import AudioError, ConfigError
from musicemb_core.common.progress import CancelToken, EtaClock, JobGen, Progress

N_MFCC = 20


def descriptor_names() -> list[str]:
    """Column names, in the order :func:`describe` returns them."""
    bases = ([f"chroma_{i}" for i in range(12)] + ["rms", "centroid", "bandwidth", "rolloff", "zcr"]
             + [f"mfcc_{i}" for i in range(N_MFCC)])
    return [f"{b}_{stat}" for b in bases for stat in ("mean", "std")]


def describe(y: np.ndarray, sr: int, *, n_fft: int = 2048, hop_length: int = 512) -> np.ndarray:
    """Descriptor vector of mono float ``y`` (checked by :func:`~musicemb_core.audio.resample.mono_samples`).

    Returns
    -------
    np.ndarray, float32, shape (len(descriptor_names()),) — means and stds interleaved per descriptor.
    """
    import librosa  # heavy import (numba); only this module needs it

    y = mono_samples(y)
    if not sr > 0:
        raise ConfigError(f"sr must be > 0, got {sr!r}")
    if len(y) < n_fft:
        y = np.pad(y, (0, n_fft - len(y)))
    S = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop_length))
    with warnings.catch_warnings():  # at 192 kHz the lowest mel bands fall between FFT bins: empty, and said so
        warnings.filterwarnings("ignore", "Empty filters detected", UserWarning)  # twice a file, on stderr
        mel = librosa.feature.melspectrogram(S=S**2, sr=sr)
    with warnings.catch_warnings():  # silence has no tuning to estimate: librosa warns, its chroma is 0
        warnings.filterwarnings("ignore", "Trying to estimate tuning", UserWarning)
        chroma = librosa.feature.chroma_stft(S=S**2, sr=sr)
    rows = [
        chroma,
        librosa.feature.rms(y=y, frame_length=n_fft, hop_length=hop_length),
        librosa.feature.spectral_centroid(S=S, sr=sr),
        librosa.feature.spectral_bandwidth(S=S, sr=sr),
        librosa.feature.spectral_rolloff(S=S, sr=sr),
        librosa.feature.zero_crossing_rate(y, frame_length=n_fft, hop_length=hop_length),
        librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=N_MFCC),
    ]
    frames = min(r.shape[1] for r in rows)
    F = np.concatenate([r[:, :frames] for r in rows])
    return np.stack([F.mean(axis=1), F.std(axis=1)], axis=1).ravel().astype(np.float32)


def iter_describe(files: list, *, per: str = "track", sr: int = 22050, window_s: float = 3.0,
                  hop_s: float = 3.0, cancel: CancelToken | None = None) -> JobGen[tuple[list, list]]:
    """Descriptor rows for every file (``per="track"``) or every segment (``per="segment"``).

    Yields :class:`Progress` per file; returns ``(rows, failed)``: rows are dicts with ``path``, ``start_s``,
    ``duration_s`` and the descriptor columns; failed lists (path, reason). A bad file never stops the run.
    One file may be given alone, not in a list.
    """
    if isinstance(files, str | os.PathLike):
        files = [files]
    if per not in ("track", "segment"):
        raise ConfigError(f"per must be 'track' or 'segment', got {per!r}")
    names = descriptor_names()
    rows, failed, clock = [], [], EtaClock()
    for i, path in enumerate(files, 1):
        yield Progress("features", i - 1, len(files), str(path), clock.eta(i - 1, len(files)))
        try:
            y, _ = load(path, sr=sr)
            if len(y) == 0:
                raise AudioError(path, "no audio samples")
        except AudioError as e:
            failed.append((str(path), e.reason))
            continue
        dur = len(y) / sr
        starts = [0.0] if per == "track" else window_starts(dur, SegmentConfig(window_s=window_s, hop_s=hop_s))
        for s in starts:
            span = dur if per == "track" else min(window_s, dur - s)
            seg = y[int(round(s * sr)):int(round((s + span) * sr))]
            rows.append({"path": str(path), "start_s": round(float(s), 3), "duration_s": round(float(span), 3),
                         **dict(zip(names, describe(seg, sr).tolist(), strict=True))})
        if cancel is not None and cancel.cancelled:
            break
    return rows, failed
