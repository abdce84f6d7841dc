"""A music tagger's penultimate layer as a track descriptor: musicnn (Pons & Serra, ISMIR 2019 LBD), trained on
the Million Song Dataset's 50 most common tags (genre, era, mood, instruments), rebuilt in torch with its
published weights (``resources/models/musicnn-msd``, ISC licence; converted by ``bench/convert_musicnn.py``).

Input: 3 s of mono audio at 16 kHz (187 frames of a 96-band Slaney log-mel, ``log10(1 + 10000 x power)``).
Front end: a batch norm, then five convolutions pooled over frequency: two "timbral" ones (7 frames x 38 and 67
bands, 204 filters each) and three "temporal" ones (128, 64 and 32 frames x 1 band, 51 filters each); mid end:
three 7-frame convolutions of 64 filters over the front end's 561 channels, the last two residual; back end:
max and mean over time of all 753 channels (interleaved), a batch norm, a 200-unit dense layer (ReLU, batch
norm): the 200 values :meth:`MusicnnTagger.forward` returns. Every convolution is ReLU then batch norm.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SR, N_FFT, HOP, N_MELS, FRAMES = 16000, 512, 256, 96, 187
CLIP_SAMPLES = 3 * SR
TAG_DIM = 200
MSD_TAGS = ("rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s",
            "alternative rock", "jazz", "beautiful", "metal", "chillout", "male vocalists", "classic rock", "soul",
            "indie rock", "mellow", "electronica", "80s", "folk", "90s", "chill", "instrumental", "punk", "oldies",
            "blues", "hard rock", "ambient", "acoustic", "experimental", "female vocalist", "guitar", "hip-hop", "70s",
            "party", "country", "easy listening", "sexy", "catchy", "funk", "electro", "heavy metal",
            "progressive rock", "60s", "rnb", "indie pop", "sad", "house", "happy")
"""The tagger's 50 Million Song Dataset tags, in the order of its last layer."""
BN_EPS = 1e-3
TIMBRAL = ((7, 38), (7, 67))
TEMPORAL = (128, 64, 32)
MID_FILTERS, DENSE = 64, TAG_DIM
FRONT = 2 * 204 + 3 * 51


class _Affine(nn.Module):
    """An inference batch norm over dim 1: ``x * scale + shift``."""

    def __init__(self, n: int):
        super().__init__()
        self.register_buffer("scale", torch.ones(n))
        self.register_buffer("shift", torch.zeros(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return x * self.scale.view(shape) + self.shift.view(shape)


class MusicnnTagger(nn.Module):
    """musicnn (MSD) up to its penultimate layer: ``(batch, samples)`` at 16 kHz -> ``(batch, 200)``."""

    def __init__(self):
        super().__init__()
        import librosa  # the tagger was trained on librosa's Slaney mel filters

        mel = librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=N_MELS).astype(np.float32)
        self.register_buffer("mel", torch.from_numpy(mel))
        self.register_buffer("window", torch.hann_window(N_FFT))
        self.bn_in = _Affine(1)
        self.timbral = nn.ModuleList(nn.Conv2d(1, 204, k) for k in TIMBRAL)
        self.temporal = nn.ModuleList(nn.Conv2d(1, 51, (k, 1)) for k in TEMPORAL)
        self.bn_front = nn.ModuleList(_Affine(c) for c in (204, 204, 51, 51, 51))
        self.mid = nn.ModuleList(nn.Conv2d(1, MID_FILTERS, (7, n)) for n in (FRONT, MID_FILTERS, MID_FILTERS))
        self.bn_mid = nn.ModuleList(_Affine(MID_FILTERS) for _ in range(3))
        self.bn_pool = _Affine(2 * (FRONT + 3 * MID_FILTERS))
        self.dense = nn.Linear(2 * (FRONT + 3 * MID_FILTERS), DENSE)
        self.bn_dense = _Affine(DENSE)
        self.head = nn.Linear(DENSE, len(MSD_TAGS))  # the tags' logits (not used by forward)

    def logmel(self, audio: torch.Tensor) -> torch.Tensor:
        """``(batch, samples)`` -> ``(batch, 1, frames, 96)``: the first :data:`FRAMES` frames."""
        spec = torch.stft(audio, N_FFT, HOP, window=self.window, center=True, pad_mode="constant",
                          return_complex=True).abs() ** 2
        x = torch.log10(1 + 10000 * torch.einsum("mf,bft->btm", self.mel, spec))[:, :FRAMES]
        return F.pad(x, (0, 0, 0, FRAMES - x.shape[1])).unsqueeze(1)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        x = self.bn_in(self.logmel(audio))
        front = []
        for conv, bn in zip(self.timbral, self.bn_front[:2], strict=True):  # 'same' in time: 3 frames each side
            front.append(_max_over_bands(conv(F.pad(x, (0, 0, 3, 3))), bn))
        for conv, bn, k in zip(self.temporal, self.bn_front[2:], TEMPORAL, strict=True):  # TensorFlow's 'same'
            front.append(_max_over_bands(conv(F.pad(x, (0, 0, (k - 1) // 2, k - 1 - (k - 1) // 2))), bn))
        h = torch.cat(front, 1)  # (batch, 561, frames)
        layers = [h]
        for i, (conv, bn) in enumerate(zip(self.mid, self.bn_mid, strict=True)):
            out = bn(F.relu(conv(F.pad(h.transpose(1, 2).unsqueeze(1), (0, 0, 3, 3))))).squeeze(3)
            h = out if i == 0 else out + h
            layers.append(h)
        mid = torch.cat(layers, 1)  # (batch, 753, frames)
        pooled = self.bn_pool(torch.stack([mid.amax(2), mid.mean(2)], 2).flatten(1))
        return self.bn_dense(F.relu(self.dense(pooled)))


def tag_probabilities(values: np.ndarray, folder: Path) -> np.ndarray:
    """The :data:`MSD_TAGS` probabilities ``(n, 50)`` from the tagger's penultimate ``values`` ``(n, TAG_DIM)``
    (its last layer, read from ``folder``'s weights alone: no network is built)."""
    weight, bias = _head(str(folder))
    return 1.0 / (1.0 + np.exp(-(np.asarray(values, np.float64) @ weight.T + bias)))


@functools.lru_cache(maxsize=2)
def _head(folder: str) -> tuple[np.ndarray, np.ndarray]:
    """The tags' layer (weight, bias) in ``folder``'s weights, read once per process (each library refresh of the
    app asks for it)."""
    from safetensors import safe_open

    with safe_open(str(Path(folder) / "weights.safetensors"), framework="numpy") as f:
        return f.get_tensor("head.weight").astype(np.float64), f.get_tensor("head.bias").astype(np.float64)


def _max_over_bands(h: torch.Tensor, bn: _Affine) -> torch.Tensor:
    """``bn(relu(h)).amax(dim=3)`` for ``h`` (batch, channels, frames, bands), taken on the bands' max (or min,
    for a channel the norm flips) first: the same values, without the elementwise passes over every band (2x
    faster)."""
    top = torch.where(bn.scale.view(1, -1, 1) >= 0, h.amax(dim=3), h.amin(dim=3))
    return bn(F.relu(top))


def load_tagger(folder: Path) -> MusicnnTagger:
    """The tagger with the weights in ``folder/weights.safetensors``."""
    from safetensors.torch import load_file

    tagger = MusicnnTagger()
    missing = tagger.load_state_dict(load_file(str(folder / "weights.safetensors")), strict=False).missing_keys
    if set(missing) - {"mel", "window"}:
        raise ValueError(f"{folder}: tagger weights lack {', '.join(sorted(set(missing) - {'mel', 'window'}))}")
    return tagger.eval()
