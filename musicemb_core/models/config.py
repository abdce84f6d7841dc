"""The model configuration, saved with every checkpoint so an encoder can be rebuilt exactly."""

from __future__ import annotations

import dataclasses

from musicemb_core.common.config import Config
from musicemb_core.common.errors import ConfigError
from musicemb_core.models.registry import encoder_names


@dataclasses.dataclass(frozen=True)
class ModelConfig(Config):
    """Which encoder to build and its size.

    Parameters
    ----------
    arch : str
        A registered encoder name (``resnet18``, ``cnn2``, ``vgg``; see ``encoder_names()``).
    dim : int
        Embedding size: encoders return ``(batch, dim)``.
    width : int
        ``resnet18`` only: base channels; the four stages have ``width, 2 width, 4 width, 8 width``.
    in_channels : int
        Channels of the input spectrogram (1 for log-mel).
    dropout : float
        Dropout probability before the last linear layer, in [0, 1).
    vgg_rgb : bool
        ``vgg`` only: duplicate a 1-channel input to 3 channels so ImageNet-style RGB weights fit unchanged.
    weights : str or None
        ``vgg`` only: path of a local torchvision-style VGG16 weights file (``.safetensors`` or a
        ``torch.save`` state dict) supplied by the user; never downloaded.
    """

    arch: str = "resnet18"
    dim: int = 128
    width: int = 64
    in_channels: int = 1
    dropout: float = 0.0
    vgg_rgb: bool = False
    weights: str | None = None

    def __post_init__(self) -> None:
        if self.arch not in encoder_names():
            raise ConfigError(f"arch: unknown encoder {self.arch!r}; registered: {', '.join(encoder_names())}")
        for name in ("dim", "width", "in_channels"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value > 0):
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.arch != "vgg" and (self.vgg_rgb or self.weights is not None):
            raise ConfigError(f"vgg_rgb and weights apply to arch 'vgg' only, not {self.arch!r}")
        if self.vgg_rgb and self.in_channels != 1:
            raise ConfigError(f"vgg_rgb duplicates a 1-channel input; in_channels is {self.in_channels}")
