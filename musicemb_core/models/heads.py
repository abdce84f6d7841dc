"""Heads on top of an embedding: classifier (logits), projection (contrastive learning), decoder (tiles)."""

from __future__ import annotations

import torch
from torch import nn

from musicemb_core.common.errors import ConfigError


class ClassifierHead(nn.Module):
    """Linear classifier: ``(batch, dim)`` -> logits ``(batch, n_classes)`` (softmax belongs to the loss)."""

    def __init__(self, dim: int, n_classes: int) -> None:
        super().__init__()
        if dim < 1 or n_classes < 1:
            raise ConfigError(f"ClassifierHead: dim and n_classes must be >= 1, got {dim}, {n_classes}")
        self.fc = nn.Linear(dim, n_classes)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.fc(z)


class ProjectionHead(nn.Sequential):
    """SimCLR-style MLP ``Linear - BatchNorm - ReLU - Linear``: ``(batch, dim)`` -> ``(batch, out)``."""

    def __init__(self, dim: int, hidden: int = 256, out: int = 128) -> None:
        if min(dim, hidden, out) < 1:
            raise ConfigError(f"ProjectionHead: dim, hidden and out must be >= 1, got {dim}, {hidden}, {out}")
        super().__init__(nn.Linear(dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                         nn.Linear(hidden, out))


def _power_of_two(n: int) -> bool:
    return n >= 4 and n & (n - 1) == 0


class Decoder(nn.Module):
    """Reconstructs a tile from its embedding: ``(batch, dim)`` -> ``(batch, 1, *out_shape)`` in [0, 1].

    A linear layer makes a ``channels`` x ``h0`` x ``w0`` map whose shorter side is 4; each of the following
    blocks (nearest 2x upsampling, 3x3 conv, BatchNorm, ReLU) doubles both sides and halves the channels
    (down to 8), until ``out_shape``; a last 3x3 conv and a sigmoid give the tile (inputs normalised to [0, 1]).

    Parameters
    ----------
    dim : int
        Embedding size.
    out_shape : (int, int)
        ``(n_mels, frames)`` of the tile; powers of two >= 4, e.g. ``(64, 64)`` or ``(128, 64)``.
    channels : int
        Channels of the first feature map.
    """

    def __init__(self, dim: int, out_shape: tuple[int, int] = (64, 64), channels: int = 64) -> None:
        super().__init__()
        h, w = out_shape
        if not (_power_of_two(h) and _power_of_two(w)):
            raise ConfigError(f"Decoder: out_shape must be powers of two >= 4, got {tuple(out_shape)}")
        n_up = min(h, w).bit_length() - 3  # doublings from a shorter side of 4
        self.out_shape = (h, w)
        self.start = (channels, h >> n_up, w >> n_up)
        self.fc = nn.Sequential(nn.Linear(dim, channels * self.start[1] * self.start[2]), nn.ReLU(inplace=True))
        blocks: list[nn.Module] = []
        c_in = channels
        for _ in range(n_up):
            c_out = max(c_in // 2, 8)
            blocks += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False),
                       nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
            c_in = c_out
        blocks += [nn.Conv2d(c_in, 1, 3, 1, 1), nn.Sigmoid()]
        self.up = nn.Sequential(*blocks)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``(batch, dim)`` -> ``(batch, 1, h, w)`` in [0, 1]."""
        return self.up(self.fc(z).view(-1, *self.start))
