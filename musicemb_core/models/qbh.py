"""Query-by-humming networks: a melody extractor for songs and two key-invariant sequence encoders.

Both sides of a query meet in one representation, the *melody chromagram*: per frame, a distribution over 12
pitch classes (bin 0 = C) plus a "no melody" probability.

- Songs: :class:`MelodyExtractor` reads the harmonic pitch salience of the mix and predicts which pitch class the
  lead plays (learnt on synthetic songs whose melody is known). Its output is also the song's stored melody for
  the alignment re-rank.
- Hums: the f0 contour of the voice (a monophonic tracker) becomes the same chromagram
  (:func:`contour_chromagram`).
- :class:`SequenceEncoder` (one for hums, one for songs) maps a chromagram to an embedding with circular
  convolutions along the pitch-class axis and a maximum over it, so transposing the tune leaves it unchanged;
  tempo changes are learnt from examples.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from musicemb_core.common.config import Config
from musicemb_core.common.errors import ConfigError
from musicemb_core.features.pitch import HarmonicSalience
from musicemb_core.models import checkpoint as ckpt

N_CHROMA = 12


@dataclasses.dataclass(frozen=True)
class QBHConfig(Config):
    """Front end and network sizes of a QBH model (saved in its ``config.json``).

    Salience at ``sr`` with ``n_fft``/``hop_length`` (25 frames/s by default) on MIDI ``midi_lo..midi_hi`` at 2 bins
    per semitone; chromagrams at ``frame_rate`` = salience rate / ``pool`` (12.5 frames/s); song windows of
    ``window_s`` seconds; embeddings of ``dim``.
    """

    sr: int = 16000
    n_fft: int = 2048
    hop_length: int = 640
    midi_lo: int = 40
    midi_hi: int = 100
    pool: int = 2
    window_s: float = 6.0
    dim: int = 128
    extractor_channels: int = 12
    extractor_layers: int = 4
    encoder_channels: int = 16

    def __post_init__(self) -> None:
        if self.midi_hi - self.midi_lo < 24:
            raise ConfigError(f"need at least two octaves of pitch, got midi {self.midi_lo}..{self.midi_hi}")
        for name in ("sr", "n_fft", "hop_length", "pool", "window_s", "dim", "extractor_channels",
                     "extractor_layers", "encoder_channels"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)!r}")

    @property
    def frame_rate(self) -> float:
        return self.sr / self.hop_length / self.pool

    def salience(self) -> HarmonicSalience:
        return HarmonicSalience(sr=self.sr, n_fft=self.n_fft, hop_length=self.hop_length, midi_lo=self.midi_lo,
                                midi_hi=self.midi_hi, bins_per_semitone=2)


class MelodyExtractor(nn.Module):
    """Salience (batch, n_bins, frames) -> melody chromagram logits (batch, 25, frames // pool).

    Convolutions over (pitch, time), the first striding to one bin per semitone, with growing dilation (about
    +-0.6 s and +-8 semitones of context with the default 4 layers: enough to tell a moving melody from sustained
    chords and to see which voice is on top; each of ``extractor_layers`` more doubles both dilations); then a
    per-semitone score folded over octaves (log-sum-exp) into 12 pitch classes, and a "no melody" score from the
    frame's pooled features.
    """

    def __init__(self, cfg: QBHConfig = QBHConfig()):
        super().__init__()
        c = cfg.extractor_channels
        self.cfg = cfg
        layers, c_in = [], 1
        shapes = [(5, 2, 1, 1)] + [(3, 1, 2 ** max(0, i - 1), 2 ** i) for i in range(1, cfg.extractor_layers)]
        for k, stride, p_dil, t_dil in shapes:
            layers += [nn.Conv2d(c_in, c, (k, 3), stride=(stride, 1), padding=(p_dil * (k // 2), t_dil),
                                 dilation=(p_dil, t_dil)), nn.BatchNorm2d(c), nn.ReLU()]
            c_in = c
        self.body = nn.Sequential(*layers)
        self.pitch = nn.Conv2d(c, 1, 1)
        self.none = nn.Linear(c, 1)
        self.lead = cfg.midi_lo % N_CHROMA

    def forward(self, S: torch.Tensor) -> torch.Tensor:
        h = self.body(S.unsqueeze(1))  # (B, c, bins, T)
        logits = self.pitch(h)[:, 0]  # (B, bins, T)
        n = logits.shape[1]
        pad = (-(self.lead + n)) % N_CHROMA
        full = F.pad(logits, (0, 0, self.lead, pad), value=-1e4)
        chroma = torch.logsumexp(full.reshape(len(S), -1, N_CHROMA, full.shape[-1]), dim=1)
        none = self.none(h.amax(dim=2).transpose(1, 2)).transpose(1, 2)  # (B, 1, T)
        out = torch.cat([chroma, none], dim=1)
        p = self.cfg.pool
        T = out.shape[-1] // p * p
        return out[..., :T].reshape(*out.shape[:2], -1, p).mean(-1)

    def chromagram(self, S: torch.Tensor) -> torch.Tensor:
        """Probabilities (batch, 25, frames // pool): softmax of :meth:`forward`."""
        return torch.softmax(self(S), dim=1)


def _circ_conv(c_in: int, c_out: int, k: tuple[int, int], stride: tuple[int, int]) -> nn.Module:
    return nn.Conv2d(c_in, c_out, k, stride=stride, padding=(k[0] // 2, k[1] // 2), padding_mode="circular")


class SequenceEncoder(nn.Module):
    """Melody chromagram probabilities (batch, 25, frames) -> L2-normalised embedding (batch, dim).

    The 12 pitch-class rows form a circular axis (the "no melody" row is broadcast along it as a second channel);
    circular padding keeps the layers equivariant to rotations of that axis and the maximum over it makes the
    embedding invariant to transposition. Time is reduced by strides, then mean- and max-pooled.
    """

    def __init__(self, cfg: QBHConfig = QBHConfig()):
        super().__init__()
        c = cfg.encoder_channels
        self.body = nn.Sequential(
            _circ_conv(2, c, (3, 5), (1, 2)), nn.BatchNorm2d(c), nn.ReLU(),
            _circ_conv(c, c, (3, 5), (1, 2)), nn.BatchNorm2d(c), nn.ReLU(),
            _circ_conv(c, 2 * c, (3, 5), (1, 1)), nn.BatchNorm2d(2 * c), nn.ReLU(),
            _circ_conv(2 * c, 2 * c, (3, 3), (1, 1)), nn.BatchNorm2d(2 * c), nn.ReLU())
        self.fc = nn.Linear(4 * c, cfg.dim)

    def forward(self, P: torch.Tensor) -> torch.Tensor:
        chroma, none = P[:, :N_CHROMA], P[:, N_CHROMA:].expand(-1, N_CHROMA, -1)
        h = self.body(torch.stack([chroma, none], dim=1)).amax(dim=2)  # (B, C, T')
        z = self.fc(torch.cat([h.mean(-1), h.amax(-1)], dim=1))
        return F.normalize(z, dim=1)


def contour_chromagram(midi: np.ndarray, *, sigma: float = 0.5) -> np.ndarray:
    """f0 contour (frames,) in fractional MIDI, NaN where unvoiced -> chromagram (25, frames) float32.

    Voiced frames get a circular Gaussian over the 12 pitch-class bins (``sigma`` in semitones, summing to 1);
    unvoiced frames put all their mass on the "no melody" row.
    """
    midi = np.asarray(midi, dtype=np.float64)
    out = np.zeros((N_CHROMA + 1, len(midi)), np.float32)
    voiced = ~np.isnan(midi)
    pos = midi[voiced] % N_CHROMA
    d = (np.arange(N_CHROMA)[:, None] - pos[None, :] + N_CHROMA / 2) % N_CHROMA - N_CHROMA / 2
    g = np.exp(-0.5 * (d / sigma) ** 2)
    out[:N_CHROMA, voiced] = g / g.sum(0, keepdims=True)
    out[N_CHROMA, ~voiced] = 1.0
    return out


class QBHModel(nn.Module):
    """The three networks of a QBH model and its configuration."""

    def __init__(self, cfg: QBHConfig = QBHConfig()):
        super().__init__()
        self.cfg = cfg
        self.extractor = MelodyExtractor(cfg)
        self.song = SequenceEncoder(cfg)
        self.hum = SequenceEncoder(cfg)

    def save(self, folder: str | Path, *, train: dict | None = None, metrics: dict | None = None) -> None:
        """Publish the model in ``folder`` through :mod:`~musicemb_core.models.checkpoint` (weights file named by
        its digest, ``config.json`` with ``strategy`` ``qbh`` and this ``QBHConfig`` as ``settings``)."""
        info = ckpt.ModelInfo(Path(folder).name, None, None, self.cfg.window_s, "qbh", train=train or {},
                              metrics=metrics or {}, settings=self.cfg.to_dict())
        ckpt.save_model(folder, info, {"extractor": self.extractor, "song": self.song, "hum": self.hum})

    @classmethod
    def load(cls, folder: str | Path) -> QBHModel:
        """A saved model in eval mode (also the older layout: ``{"kind": "qbh", "qbh": cfg}`` and
        ``model.safetensors``); raises :class:`ConfigError` naming the file when it is not a QBH model."""
        folder = Path(folder)
        path = folder / ckpt.CONFIG
        try:
            meta = json.loads(path.read_text("utf-8"))
            if isinstance(meta, dict) and meta.get("kind") == "qbh":  # the older layout
                settings = meta["qbh"]
            else:
                info = ckpt.read_info(folder, encoder=False)
                if info.strategy != "qbh":
                    raise ConfigError(f"its strategy is {info.strategy!r}")
                settings = info.settings
            cfg = QBHConfig.from_dict(settings)
        except (OSError, ValueError, KeyError, ConfigError) as e:
            raise ConfigError(f"{path}: not a query-by-humming model config ({e})") from e
        model = cls(cfg)
        try:
            model.load_state_dict(ckpt.read_tensors(folder))
        except RuntimeError as e:  # missing/unexpected keys, shape mismatches
            reason = str(e).strip().splitlines()[0][:200]
            raise ConfigError(f"{ckpt.weights_path(folder)}: cannot load QBH weights ({reason})") from e
        return model.eval()
