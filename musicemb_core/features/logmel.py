"""Log-mel spectrograms in torch: ``torch.stft`` + a mel filterbank, equal to
``librosa.power_to_db(librosa.feature.melspectrogram(...))`` for the same parameters, batched, CPU or GPU."""

from __future__ import annotations

import numpy as np
import torch

from musicemb_core.audio.resample import samples
from musicemb_core.common.config import FeatureConfig
from musicemb_core.common.errors import ConfigError
from musicemb_core.features.mel_scale import AMIN, mel_filterbank

CPU_CHUNK_BYTES = 4 << 20
"""On CPU, a batch is transformed a few clips at a time so that each clip's complex spectrogram stays in cache
(similarity front end, n_fft 4096: 2 clips of 3 s at a time)."""


class LogMel(torch.nn.Module):
    """Waveforms (batch, samples) or (samples,) -> log-mel (batch, n_mels, frames), normalised per ``cfg``.

    Frames are centred (zero padding of ``n_fft // 2`` on both sides), as librosa does.
    """

    def __init__(self, cfg: FeatureConfig = FeatureConfig(), *, amin: float = AMIN):
        super().__init__()
        self.cfg = cfg
        self.amin = amin
        win = cfg.win_length or cfg.n_fft
        dtype = torch.float64 if cfg.precision == "float64" else torch.float32
        self.register_buffer("window", torch.hann_window(win, periodic=True, dtype=torch.float64).to(dtype),
                             persistent=False)
        self.register_buffer("fb", torch.from_numpy(mel_filterbank(cfg)), persistent=False)

    def power_mel(self, y: torch.Tensor) -> torch.Tensor:
        """Mel power spectrogram (batch, n_mels, frames) before the dB conversion."""
        c = self.cfg
        spec = torch.stft(y.to(self.window.dtype), c.n_fft, hop_length=c.hop_length,
                          win_length=c.win_length or c.n_fft, window=self.window, center=True, pad_mode="constant", return_complex=True)
        power = (spec.real.square() + spec.imag.square()).float()
        if c.power != 2.0:
            power = power.pow(c.power / 2.0)
        return torch.matmul(self.fb, power)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        squeeze = y.dim() == 1
        y = y.unsqueeze(0) if squeeze else y
        c = self.cfg
        step = max(1, CPU_CHUNK_BYTES // (8 * (c.n_fft // 2 + 1) * (y.shape[-1] // c.hop_length + 1)))
        if y.device.type == "cpu" and len(y) > step:  # the same values, 2x faster for a large n_fft
            db = torch.cat([self._db(y[a:a + step]) for a in range(0, len(y), step)])
        else:
            db = self._db(y)
        return db[0] if squeeze else db

    def _db(self, y: torch.Tensor) -> torch.Tensor:
        db = 10.0 * torch.log10(torch.clamp(self.power_mel(y), min=self.amin))
        c = self.cfg
        if c.top_db is not None:
            floor = db.amax(dim=(-2, -1), keepdim=True) - c.top_db
            db = torch.maximum(db, floor)
        if c.normalise == "minmax":
            lo = db.amin(dim=(-2, -1), keepdim=True)
            hi = db.amax(dim=(-2, -1), keepdim=True)
            db = (db - lo) / torch.clamp(hi - lo, min=1e-6)
        elif c.normalise in ("standard", "peak"):
            if c.normalise == "peak":
                db = db - db.amax(dim=(-2, -1), keepdim=True)
            db = (db - c.mean) / c.std
        return db


_CACHE: dict[FeatureConfig, LogMel] = {}


def log_mel(y: np.ndarray, cfg: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """NumPy convenience: float ``y`` (samples,) or (batch, samples) at ``cfg.sr`` -> float32 log-mel (``y`` checked
    by :func:`~musicemb_core.audio.resample.samples`)."""
    module = _CACHE.get(cfg)
    if module is None:
        module = _CACHE[cfg] = LogMel(cfg)
    with torch.inference_mode():
        return module(torch.as_tensor(samples(y))).numpy()


def tiles(S: np.ndarray, *, size: int = 64, hop: int | None = None) -> np.ndarray:
    """Cut a spectrogram (n_mels, frames) into tiles of ``size`` frames every ``hop`` (default ``size``).

    Returns
    -------
    np.ndarray, shape (n_tiles, n_mels, size); a spectrogram shorter than one tile gives one zero-padded tile.
    """
    whole = (int, np.integer)
    if not (isinstance(size, whole) and size >= 1 and (hop is None or isinstance(hop, whole) and hop >= 1)):
        raise ConfigError(f"tiles: size and hop must be whole numbers >= 1, got size={size!r}, hop={hop!r}")
    hop = hop or size
    n_mels, frames = S.shape
    if frames < size:
        out = np.zeros((1, n_mels, size), dtype=S.dtype)
        out[0, :, :frames] = S
        return out
    starts = range(0, frames - size + 1, hop)
    return np.stack([S[:, s:s + size] for s in starts])
