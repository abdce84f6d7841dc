"""The similarity encoder: musical descriptors of a segment (timbre, spectral shape, rhythm, harmony) computed
in torch from a dB log-mel, standardised and weighted per descriptor group so that pieces of one style lie
close. Unlike the fingerprint encoder (which learns *which recording* a segment is), it is
meant for neighbourhoods: "more like this", maps, clustering and label checks.

It expects the log-mel of :data:`SIMILARITY_FEATURES` (dB, not normalised): the chroma weights depend on it.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from musicemb_core.common.blocks import row_blocks
from musicemb_core.common.config import FeatureConfig
from musicemb_core.common.errors import ConfigError
from musicemb_core.features.mel_scale import hz_to_mel, mel_to_hz
from musicemb_core.models.base import Encoder
from musicemb_core.models.config import ModelConfig
from musicemb_core.models.musicnn import TAG_DIM  # a track's clips are described by the tagger too, when the

# model's ``train.tagger`` names it (see ``musicemb_core.analysis.track_vectors``)
from musicemb_core.models.registry import register_encoder

SIMILARITY_FEATURES = FeatureConfig(sr=16000, n_fft=4096, hop_length=512, n_mels=256, fmin=40.0, fmax=8000.0,
                                    htk=True, normalise="none", top_db=80.0)
"""Front end of the similarity encoder: 3.9 Hz STFT bins and 256 HTK mel bands, fine enough for pitch classes
from about 150 Hz up."""

N_MFCC, N_GROUPS, N_LAGS = 20, 16, 24
N_STATS = 2 + 3 * N_MFCC + 3 * N_GROUPS + 2 + N_LAGS + 24 + 6 + N_GROUPS
"""Descriptor length: loudness (2), MFCC mean/std/delta-std (60), band shape mean/std/peakiness (48), onset (2),
onset autocorrelation (24), chroma mean/std (24), key-invariant chroma shape (6), band modulation (16)."""


def _dct_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Orthonormal DCT-II, (n_out, n_in)."""
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None, :]
    m = np.cos(np.pi / n_in * (n + 0.5) * k) * math.sqrt(2.0 / n_in)
    m[0] /= math.sqrt(2.0)
    return m


def _chroma_matrix(cfg: FeatureConfig) -> np.ndarray:
    """(12, n_mels) weights of each mel band's centre on the pitch classes (C = 0), bands 80-2500 Hz only."""
    edges = mel_to_hz(np.linspace(hz_to_mel(np.array(cfg.fmin), htk=cfg.htk),
                                  hz_to_mel(np.array(cfg.fmax or cfg.sr / 2), htk=cfg.htk), cfg.n_mels + 2),
                      htk=cfg.htk)
    centres = edges[1:-1]
    midi = 69 + 12 * np.log2(np.maximum(centres, 1e-3) / 440.0)
    pc = np.arange(12)[:, None]
    dist = (midi[None, :] - pc + 6) % 12 - 6  # semitones to the nearest octave of each class
    w = np.exp(-0.5 * (dist / 0.5) ** 2)
    w[:, (centres < 80) | (centres > 2500)] = 0
    return w / np.maximum(w.sum(axis=0, keepdims=True), 1e-9)


def descriptors(db: torch.Tensor) -> torch.Tensor:
    """dB log-mel ``(batch, n_mels, frames)`` of :data:`SIMILARITY_FEATURES` -> descriptors ``(batch, N_STATS)``.

    Gain-invariant: levels are taken relative to the segment's loudest bin.
    """
    b, m, t = db.shape
    d = db - db.amax(dim=(1, 2), keepdim=True)
    dev = d.device
    frame = d.mean(dim=1)  # (b, t)
    out = [frame.mean(1, keepdim=True), frame.std(1, keepdim=True)]
    dct = torch.as_tensor(_dct(m), dtype=d.dtype, device=dev)
    mfcc = torch.einsum("km,bmt->bkt", dct, d) / 10.0
    out += [mfcc.mean(2), mfcc.std(2), (mfcc[:, :, 1:] - mfcc[:, :, :-1]).std(2)]
    shape = (d - frame[:, None, :]).reshape(b, N_GROUPS, m // N_GROUPS, t)  # band levels relative to the frame
    g = shape.mean(2)
    out += [g.mean(2) / 10, g.std(2) / 10, (shape.amax(2) - g).mean(2) / 10]
    onset = F.relu(d[:, :, 1:] - d[:, :, :-1]).mean(1)  # (b, t - 1)
    out += [onset.mean(1, keepdim=True), onset.std(1, keepdim=True)]
    o = onset - onset.mean(1, keepdim=True)
    n = o.shape[1]
    spec = torch.fft.rfft(o, n=2 * n)
    ac = torch.fft.irfft(spec.abs() ** 2, n=2 * n)[:, :n]
    ac = ac / ac[:, :1].clamp_min(1e-9)
    lags = torch.as_tensor(np.unique(np.geomspace(2, max(n // 2, 3), N_LAGS).astype(int)), device=dev)
    acl = ac[:, lags]
    out.append(F.pad(acl, (0, N_LAGS - acl.shape[1])))
    power = torch.pow(10.0, d / 10.0)
    chroma = torch.einsum("cm,bmt->bct", torch.as_tensor(_chroma(m), dtype=d.dtype, device=dev), power)
    chroma = chroma / chroma.sum(1, keepdim=True).clamp_min(1e-12)
    cm = chroma.mean(2)
    out += [cm, chroma.std(2), torch.fft.rfft(cm, dim=1).abs()[:, 1:7]]
    out.append((g[:, :, 1:] - g[:, :, :-1]).abs().mean(2) / 10)
    return torch.cat(out, dim=1)


_DCT: dict[int, np.ndarray] = {}
_CHROMA: dict[int, np.ndarray] = {}


def _dct(n_mels: int) -> np.ndarray:
    if n_mels not in _DCT:
        _DCT[n_mels] = _dct_matrix(n_mels, N_MFCC)
    return _DCT[n_mels]


def _chroma(n_mels: int) -> np.ndarray:
    if n_mels not in _CHROMA:
        _CHROMA[n_mels] = _chroma_matrix(SIMILARITY_FEATURES.replace(n_mels=n_mels))
    return _CHROMA[n_mels]


GROUPS = {"loudness": (0, 2), "mfcc": (2, 62), "band_shape": (62, 110), "onset": (110, 112),
          "onset_autocorrelation": (112, 136), "chroma": (136, 160), "chroma_shape": (160, 166),
          "band_modulation": (166, 182)}
"""Descriptor groups (column ranges) that the model weighs as wholes."""


@register_encoder("simstats")
class SimilarityEncoder(Encoder):
    """Descriptors standardised with the training music's statistics (``mean``/``std`` buffers): ``forward``
    gives these raw descriptor vectors; :meth:`finish` standardises them again with a library's own statistics
    (:func:`~musicemb_core.models.library_stats.library_statistics`), weighs each group (``weight``) and makes unit vectors. Two tracks are then
    alike when they differ from the rest of *their library* in the same ways.

    Input ``(batch, 1, n_mels, frames)``: the dB log-mel of :data:`SIMILARITY_FEATURES`. ``cfg.dim`` must be
    ``N_STATS``. Learned MLP heads were tried and dropped: they over-fitted the training games (model README).
    """

    def __init__(self, cfg: ModelConfig | None = None) -> None:
        super().__init__(cfg or ModelConfig(arch="simstats", dim=N_STATS))
        if self.config.dim != N_STATS:
            raise ConfigError(f"simstats gives {N_STATS}-d vectors; the configuration asks for dim {self.config.dim}")
        self.register_buffer("mean", torch.zeros(N_STATS))
        self.register_buffer("std", torch.ones(N_STATS))
        self.register_buffer("weight", torch.ones(N_STATS))
        # the tagger's penultimate values on the training music (mean, std): a library's are shrunk towards them
        self.register_buffer("tag_mean", torch.zeros(TAG_DIM))
        self.register_buffer("tag_std", torch.ones(TAG_DIM))

    def set_group_weights(self, weights: dict[str, float]) -> None:
        for name, w in weights.items():
            a, b = GROUPS[name]
            self.weight[a:b] = float(w)

    def standardise(self, stats: torch.Tensor) -> torch.Tensor:
        """Descriptors ``(batch, N_STATS)`` -> standardised on the training music, clipped to +-8."""
        return ((stats - self.mean) / self.std).clamp(-8, 8)

    def finish(self, Z: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
        """Raw descriptor vectors ``(n, N_STATS)`` -> unit vectors, standardised by a library's ``mean``/``std``
        (a block of rows at a time: each row's vector is the same, without whole-sized temporaries)."""
        weight = self.weight.cpu().numpy()
        out = np.empty(np.shape(Z), np.float32)
        for b in row_blocks(len(Z)):
            z = np.clip((np.asarray(Z[b], np.float32) - mean) / std, -8, 8) * weight
            out[b] = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.standardise(descriptors(x[:, 0]))
