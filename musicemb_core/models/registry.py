"""Encoders by name: ``register_encoder`` adds one, ``build_encoder`` makes one from a ``ModelConfig``."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from musicemb_core.models.config import ModelConfig

ENCODERS: dict[str, type[torch.nn.Module]] = {}
"""Registered encoder classes by ``arch`` name; each is built as ``cls(cfg)``. The built-in ones are registered
when their module is imported (:func:`builtin_encoders`)."""

BUILTIN_ARCHS = {"resnet18": "encoders", "cnn2": "encoders", "vgg": "encoders", "simstats": "similarity"}
"""The built-in encoders' names and the module (of this package) that registers each: a config naming one is
valid without importing torch."""


def encoder_names() -> list[str]:
    """Every encoder name a config may give: the built-in ones and those registered since."""
    return sorted(BUILTIN_ARCHS.keys() | ENCODERS.keys())


def builtin_encoders() -> dict[str, type[torch.nn.Module]]:
    """:data:`ENCODERS` with every built-in encoder registered (their modules imported, and torch with them)."""
    for module in sorted(set(BUILTIN_ARCHS.values())):
        importlib.import_module(f"musicemb_core.models.{module}")
    return ENCODERS


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
    if cfg.arch not in ENCODERS:
        builtin_encoders()
    return ENCODERS[cfg.arch](cfg)


def count_parameters(module: torch.nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements (buffers such as BatchNorm running statistics excluded)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
