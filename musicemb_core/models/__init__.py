"""Encoders (resnet18-style, small 2-conv CNN, VGG16) by name, and heads (classifier, projection, decoder).

Encoders map log-mel input ``(batch, in_channels, n_mels, frames)`` to embeddings ``(batch, dim)``; a
:class:`ModelConfig` names the encoder and its size, and :func:`build_encoder` makes it.
"""

from musicemb_core.models.base import Encoder
from musicemb_core.models.config import ModelConfig
from musicemb_core.models.encoders import CNN2Encoder, ResNetEncoder, VGGEncoder
from musicemb_core.models.heads import ClassifierHead, Decoder, ProjectionHead
from musicemb_core.models.registry import ENCODERS, build_encoder, count_parameters, register_encoder
from musicemb_core.models.similarity import SimilarityEncoder

__all__ = [
    "ENCODERS",
    "CNN2Encoder",
    "ClassifierHead",
    "Decoder",
    "Encoder",
    "ModelConfig",
    "ProjectionHead",
    "ResNetEncoder",
    "SimilarityEncoder",
    "VGGEncoder",
    "build_encoder",
    "count_parameters",
    "register_encoder",
]
