"""What a track sounds like in words: the tagger's likeliest tags per track, from the probabilities ``embed``
stores beside the similarity space's vectors (no model is loaded, torch is not imported: the DJ listings)."""

from __future__ import annotations

import numpy as np

from musicemb_core.common.names import model_key
from musicemb_core.data import layout


def likeliest_tags(tracks: np.ndarray, P: np.ndarray, names, *, top: int = 3,
                   min_p: float = 0.1) -> dict[int, list[tuple[str, float]]]:
    """{track id: its ``top`` likeliest tags with their probability, at least ``min_p``}, from per-clip tag
    probabilities ``P`` (n, len(names)) of the clips' ``tracks`` (n,), averaged per track."""
    ids, inv = np.unique(tracks, return_inverse=True)
    mean = np.zeros((len(ids), P.shape[1]))
    np.add.at(mean, inv, P)
    mean /= np.bincount(inv)[:, None]
    out = {}
    for tid, p in zip(ids.tolist(), mean, strict=True):
        best = np.argsort(-p, kind="stable")[:top]
        out[int(tid)] = [(str(names[i]), round(float(p[i]), 3)) for i in best if p[i] >= min_p]
    return out


def stored_likeliest_tags(lib, model: str = "similarity", *, top: int = 3,
                          min_p: float = 0.1) -> dict[int, list[tuple[str, float]]] | None:
    """:func:`likeliest_tags` of the probabilities ``embed`` stored for ``model``; None where it stored none (a
    model without a tagger, a library embedded before they were kept)."""
    stored = layout.read_embedding_arrays(lib, model_key(model), "tag_probs", "tag_names", "tag_tracks")  # an
    if stored is None or not len(stored[2]):  # earlier release's generation fails at once, reading nothing
        return None
    P, names, tracks = stored
    return likeliest_tags(tracks, P, names, top=top, min_p=min_p)
