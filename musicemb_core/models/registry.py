"""Encoders by name: ``register_encoder`` adds one, ``build_encoder`` makes one from a ``ModelConfig``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from musicemb_core.models.config import ModelConfig

ENCODERS: dict[str, type[torch.nn.Module]] = {}
"""Registered encoder classes by ``arch`` name; each is built as ``cls(cfg)``."""


def register_encoder(name: str) -> Callable[[type[torch.nn.Module]], type[torch.nn.Module]]:
    """Class decorator adding an encoder to ``ENCODERS`` under ``name`` and setting ``cls.arch = name``.

    A name is registered once.

    Examples
    --------
    >>> @register_encoder("tiny")          # doctest: +SKIP
    ... class TinyEncoder(Encoder): ...
    """

    def add(cls: type[torch.nn.Module]) -> type[torch.nn.Module]:
        if name in ENCODERS:
            raise ValueError(f"encoder {name!r} is already registered ({ENCODERS[name].__name__})")
        ENCODERS[name] = cls
        cls.arch = name
        return cls

    return add


def build_encoder(cfg: ModelConfig) -> torch.nn.Module:
    """The encoder ``cfg.arch`` built from ``cfg``; maps ``(batch, in_channels, n_mels, frames)`` to ``(batch, dim)``."""
    return ENCODERS[cfg.arch](cfg)


def count_parameters(module: torch.nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements (buffers such as BatchNorm running statistics excluded)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
