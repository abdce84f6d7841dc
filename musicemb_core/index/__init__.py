"""FAISS index over embeddings (cosine), saved beside the library; works on arrays, no torch."""

from musicemb_core.index.faiss_index import KINDS, EmbeddingIndex, choose_kind

__all__ = ["KINDS", "EmbeddingIndex", "choose_kind"]
