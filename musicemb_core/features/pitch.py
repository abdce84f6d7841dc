"""Pitch: the f0 contour of a monophonic voice (swift-f0, librosa's pyin as fallback) and the harmonic pitch
salience of a mixture (where a predominant melody is looked for).

swift-f0 is a small CNN run with ONNX Runtime, its weights inside the package (nothing is downloaded); it tracks
one voice and is confused by accompaniment, so songs go through :class:`HarmonicSalience` instead: the
magnitude spectrum summed over the first harmonics of every candidate pitch, on a grid of MIDI pitches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from musicemb_core.audio.resample import mono_samples, resample
from musicemb_core.common.errors import ConfigError

TRACKER_SR = 16000
CHUNK_S = 60.0  # long signals' spectra are computed this many seconds of frames at a time
_DETECTOR = None


@dataclass
class Contour:
    """f0 contour: frame ``times`` (s), ``midi`` (fractional MIDI pitch, NaN where unvoiced), ``confidence``."""

    times: np.ndarray
    midi: np.ndarray
    confidence: np.ndarray

    @property
    def voiced(self) -> np.ndarray:
        return ~np.isnan(self.midi)

    def frames(self, frame_rate: float, n_frames: int | None = None) -> np.ndarray:
        """The contour on a coarser grid of ``frame_rate`` frames/s: per frame the median pitch of its voiced
        tracker frames, NaN unless at least half of them are voiced. Shape (n_frames,), default to the end."""
        idx = np.floor(self.times * frame_rate).astype(np.int64)
        n = int(idx.max()) + 1 if n_frames is None and len(idx) else int(n_frames or 0)
        out = np.full(n, np.nan)
        keep = idx < n
        idx, midi = idx[keep], self.midi[keep]
        for f in np.unique(idx):
            v = midi[idx == f]
            good = v[~np.isnan(v)]
            if len(good) * 2 >= len(v):
                out[f] = np.median(good)
        return out


def _swift():
    global _DETECTOR
    if _DETECTOR is None:
        from swift_f0 import SwiftF0

        _DETECTOR = SwiftF0(threads=1, spin=False)
    return _DETECTOR


def available_trackers() -> list[str]:
    """Pitch trackers usable here, best first."""
    try:
        import swift_f0  # noqa: F401
    except ImportError:
        return ["pyin"]
    return ["swift-f0", "pyin"]


def pitch_contour(y: np.ndarray, sr: int, *, fmin: float = 65.0, fmax: float = 1000.0, threshold: float = 0.5,
                  method: str = "auto") -> Contour:
    """f0 of a monophonic recording (a hum, a voice).

    Parameters
    ----------
    y : np.ndarray, shape (n,)
        Mono audio at ``sr`` Hz.
    fmin, fmax : float
        Pitch search band in Hz.
    threshold : float
        Confidence below which a frame counts as unvoiced.
    method : "auto", "swift-f0" or "pyin"
        "auto": swift-f0 (16 ms frames) where installed, else pyin (10 ms frames, about 20x slower).
    """
    if method == "auto":
        method = available_trackers()[0]
    if method not in ("swift-f0", "pyin"):
        raise ConfigError(f"pitch method must be 'auto', 'swift-f0' or 'pyin', got {method!r}")
    y = resample(mono_samples(y), sr, TRACKER_SR)
    if not len(y):
        return Contour(np.zeros(0), np.zeros(0), np.zeros(0))
    peak = float(np.abs(y).max())
    if peak > 0:  # swift-f0 does not normalise levels; y / peak first: 0.5 / peak overflows float32 when tiny
        y = 0.5 * (y / np.float32(peak))
    if method == "swift-f0":
        r = _swift().detect(y, TRACKER_SR, fmin=fmin, fmax=fmax)
        times, hz, conf = r.timestamps, r.pitch_hz, r.confidence
    else:
        import librosa

        hop = TRACKER_SR // 100
        hz, _, conf = librosa.pyin(y, fmin=fmin, fmax=fmax, sr=TRACKER_SR, frame_length=1024, hop_length=hop)
        times = np.arange(len(hz)) * hop / TRACKER_SR
        conf = np.nan_to_num(conf)
    midi = np.where((conf >= threshold) & (np.nan_to_num(hz) > 0), 69 + 12 * np.log2(np.maximum(np.nan_to_num(hz), 1e-6)
                                                                                     / 440.0), np.nan)
    return Contour(np.asarray(times, np.float64), midi.astype(np.float64), np.asarray(conf, np.float64))


class HarmonicSalience(torch.nn.Module):
    """Waveforms (batch, samples) at ``sr`` -> pitch salience (batch, n_bins, frames), float32 in [0, 1].

    Bin ``b`` is MIDI pitch ``midi_lo + b / bins_per_semitone``; its salience sums the square-root magnitude
    spectrum around the pitch's first ``n_harmonics`` harmonics, weighted ``0.8 ** (h - 1)``, then
    ``log1p(10 x)`` scaled by the clip's maximum. Frames are centred, every ``hop_length`` samples.
    """

    def __init__(self, *, sr: int = 16000, n_fft: int = 2048, hop_length: int = 320, midi_lo: int = 40,
                 midi_hi: int = 100, bins_per_semitone: int = 2, n_harmonics: int = 8):
        super().__init__()
        self.sr, self.n_fft, self.hop_length = sr, n_fft, hop_length
        self.midi_lo, self.bins_per_semitone = midi_lo, bins_per_semitone
        self.n_bins = (midi_hi - midi_lo) * bins_per_semitone
        freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
        f0 = 440.0 * 2.0 ** ((midi_lo + np.arange(self.n_bins) / bins_per_semitone - 69) / 12)
        W = np.zeros((len(freqs), self.n_bins), np.float32)
        for h in range(1, n_harmonics + 1):
            fh = f0 * h
            width = np.maximum(fh * (2 ** (0.5 / 12) - 1), freqs[1])
            tri = np.maximum(0.0, 1 - np.abs(freqs[:, None] - fh[None, :]) / width[None, :])
            W += (0.8 ** (h - 1)) * tri * (fh < 0.48 * sr)[None, :]
        self.register_buffer("W", torch.from_numpy(W.T.copy()), persistent=False)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def n_frames(self, n_samples: int) -> int:
        return 1 + n_samples // self.hop_length

    def pitch_class(self, b: np.ndarray) -> np.ndarray:
        """Chroma bin (``12 * bins_per_semitone`` per octave, 0 = C) of salience bins ``b``."""
        return (self.midi_lo * self.bins_per_semitone + np.asarray(b)) % (12 * self.bins_per_semitone)

    def _unscaled(self, y: torch.Tensor, center: bool = True) -> torch.Tensor:
        spec = torch.stft(y.float(), self.n_fft, self.hop_length, window=self.window, center=center,
                          pad_mode="constant", return_complex=True).abs().sqrt()
        return torch.log1p(10 * torch.matmul(self.W, spec))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        squeeze = y.dim() == 1
        y = y.unsqueeze(0) if squeeze else y
        S = self._unscaled(y)
        S = S / S.amax(dim=(-2, -1), keepdim=True).clamp_min(1e-6)
        return S[0] if squeeze else S

    def long(self, y: np.ndarray, *, chunk_s: float = CHUNK_S) -> torch.Tensor:
        """:meth:`forward` of one long signal ``y`` (n,), its spectrum computed ``chunk_s`` seconds of frames at a
        time (the same salience; a whole hour's spectrum would take 0.7 GB)."""
        n = self.n_frames(len(y))
        step = max(1, int(chunk_s * self.sr / self.hop_length))
        S = torch.empty((self.n_bins, n))
        for a in range(0, n, step):
            b = min(n, a + step)
            S[:, a:b] = self._unscaled(torch.from_numpy(centred_frames(y, a, b, self.n_fft, self.hop_length)), False)
        return S.div_(S.amax().clamp_min(1e-6))


def centred_frames(y: np.ndarray, start: int, stop: int, n_fft: int, hop_length: int) -> np.ndarray:
    """The samples of frames ``start..stop-1`` of a centred STFT of ``y`` (zero-padded by ``n_fft // 2`` at both
    ends, as ``torch.stft(center=True, pad_mode="constant")``): their STFT with ``center=False`` is those frames."""
    a = start * hop_length - n_fft // 2
    b = (stop - 1) * hop_length + n_fft - n_fft // 2
    seg = np.asarray(y[max(a, 0):max(min(b, len(y)), 0)], np.float32)
    left = max(0, -a)
    return np.pad(seg, (left, b - a - left - len(seg)))


def fold_chroma(S: np.ndarray | torch.Tensor, *, midi_lo: int, bins_per_semitone: int):
    """Salience (..., n_bins, frames) summed over octaves -> (..., 12 * bins_per_semitone, frames), bin 0 = C."""
    per_oct = 12 * bins_per_semitone
    n = S.shape[-2]
    lead = (midi_lo * bins_per_semitone) % per_oct  # chroma bin of salience bin 0
    pad = (-(lead + n)) % per_oct
    lib = torch if isinstance(S, torch.Tensor) else np
    shape = (*S.shape[:-2], lead + n + pad, S.shape[-1])
    full = lib.zeros(shape, dtype=S.dtype) if lib is np else torch.zeros(shape, dtype=S.dtype, device=S.device)
    full[..., lead:lead + n, :] = S
    return full.reshape(*S.shape[:-2], -1, per_oct, S.shape[-1]).sum(-3)
