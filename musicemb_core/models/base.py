"""The encoder base class: named layers from input to output, and freezing up to one of them."""

from __future__ import annotations

from typing import ClassVar

import torch

from musicemb_core.common.errors import ConfigError
from musicemb_core.models.config import ModelConfig


class Encoder(torch.nn.Module):
    """Base of the encoders: ``(batch, in_channels, n_mels, frames)`` -> ``(batch, dim)``.

    Subclasses are registered with ``register_encoder`` (which sets ``arch``) and hold one submodule per name
    in ``layer_names`` (ordered from input to output). Built without a configuration, an encoder uses
    ``ModelConfig(arch=arch)``.

    Attributes
    ----------
    config : ModelConfig
        The configuration the encoder was built from.
    dim : int
        Embedding size.
    frozen : tuple of str
        Layers frozen by ``freeze_until`` (empty when none).
    """

    arch: ClassVar[str] = ""
    layer_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, cfg: ModelConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or ModelConfig(arch=self.arch)
        if cfg.arch != self.arch:
            raise ConfigError(f"{type(self).__name__} is arch {self.arch!r}; the configuration asks for {cfg.arch!r}")
        self.config = cfg
        self.dim = cfg.dim
        self.frozen: tuple[str, ...] = ()

    def freeze_until(self, name: str) -> None:
        """Stop training every layer from the input up to and including ``name``.

        Their parameters get ``requires_grad=False`` and, from now on, they run in eval mode even while the
        encoder trains (BatchNorm keeps its running statistics; dropout is off). Layers frozen earlier stay frozen.
        """
        if name not in self.layer_names:
            raise ConfigError(f"freeze_until: unknown layer {name!r}; layers: {', '.join(self.layer_names)}")
        stop = self.layer_names.index(name) + 1
        self.frozen = self.layer_names[:max(stop, len(self.frozen))]
        for n in self.frozen:
            getattr(self, n).requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True) -> Encoder:
        super().train(mode)
        for n in self.frozen:
            getattr(self, n).train(False)
        return self
