"""Encoders (resnet18-style, small 2-conv CNN, VGG16) by name, and heads (classifier, projection, decoder).

Encoders map log-mel input ``(batch, in_channels, n_mels, frames)`` to embeddings ``(batch, dim)``; a
:class:`ModelConfig` names the encoder and its size, and :func:`build_encoder` makes it.

The names below are loaded on first use (with torch): reading a model's files (:mod:`.checkpoint`) or its config
needs no torch, so listings and searches on stored vectors start without it.
"""

import importlib

_WHERE = {
    "ENCODERS": "registry", "build_encoder": "registry", "count_parameters": "registry",
    "register_encoder": "registry", "ModelConfig": "config", "Encoder": "base", "CNN2Encoder": "encoders",
    "ResNetEncoder": "encoders", "VGGEncoder": "encoders", "ClassifierHead": "heads", "Decoder": "heads",
    "ProjectionHead": "heads", "SimilarityEncoder": "similarity",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name == "ENCODERS":  # the registry filled with every built-in encoder
        from musicemb_core.models.registry import builtin_encoders

        builtin_encoders()
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
