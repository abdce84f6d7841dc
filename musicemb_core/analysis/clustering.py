"""k-means over embeddings with k chosen by silhouette; the elbow (inertia) curve; cluster-vs-label tables."""

from __future__ import annotations

import warnings

import numpy as np

from musicemb_core.analysis.checks import check_vectors
from musicemb_core.common.errors import ConfigError
from musicemb_core.common.progress import CancelToken, EtaClock, JobGen, Progress, drive
from musicemb_core.index.faiss_index import normalise as _unit


def kmeans_select(X: np.ndarray, *, ks: range | list[int] = range(2, 11), random_state: int = 0,
                  sample_size: int = 5000) -> dict:
    """Fit k-means for each k and pick the one with the highest silhouette (cosine, on a sample); a k whose fit
    finds fewer than k distinct clusters (duplicate points) is left out.

    Returns
    -------
    dict: ``k`` (chosen), ``labels`` (n,) of the chosen k, ``ks``, ``silhouette`` and ``inertia`` per k.
    """
    return drive(iter_kmeans_select(X, ks=ks, random_state=random_state, sample_size=sample_size))


def iter_kmeans_select(X: np.ndarray, *, ks: range | list[int] = range(2, 11), random_state: int = 0,
                       sample_size: int = 5000, cancel: CancelToken | None = None) -> JobGen[dict]:
    """:func:`kmeans_select` as a job: a Progress event per k fitted, ``cancel`` checked between fits (one fit
    of 400,000 points takes seconds to minutes)."""
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import silhouette_score

    X = _unit(check_vectors(X))
    ks = [k for k in ks if 2 <= k < len(X)]
    if not ks:
        raise ConfigError(f"need more points than clusters: {len(X)} points")
    sil, inertia, fits = [], [], {}
    clock, todo = EtaClock(), list(ks)
    for i, k in enumerate(todo):
        yield Progress("clusters", i, len(todo), f"k-means with k={k} of {len(X):,} points",
                       eta_s=clock.eta(i, len(todo)))
        if cancel is not None:
            cancel.check()
        with warnings.catch_warnings():  # fewer distinct points than k: the fit says so, and it is left out
            warnings.simplefilter("ignore", ConvergenceWarning)
            km = KMeans(k, n_init=4, random_state=random_state).fit(X)
        if len(np.unique(km.labels_)) < k:
            ks.remove(k)
            continue
        fits[k] = km.labels_
        inertia.append(float(km.inertia_))
        sil.append(float(silhouette_score(X, km.labels_, metric="cosine",
                                          sample_size=min(sample_size, len(X)), random_state=random_state)))
    if not ks:
        raise ConfigError(f"no clusters to find: all {len(X)} points are the same vector")
    best = ks[int(np.argmax(sil))]
    yield Progress("clusters", len(todo), len(todo), f"k={best} chosen")
    return {"k": best, "labels": fits[best], "ks": ks, "silhouette": sil, "inertia": inertia}


def composition(clusters: np.ndarray, labels: np.ndarray, label_names: list[str]) -> list[dict]:
    """Per cluster: size and count of each label (-1 = unlabelled, counted as ``(none)``)."""
    rows = []
    for c in np.unique(clusters):
        members = labels[clusters == c]
        counts = {(label_names[i] if i >= 0 else "(none)"): int((members == i).sum()) for i in np.unique(members)}
        rows.append({"cluster": int(c), "size": int(len(members)), "labels": counts})
    return rows


def purity(clusters: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of labelled points whose cluster's majority label is their own."""
    known = labels >= 0
    clusters, labels = clusters[known], labels[known]
    if len(labels) == 0:
        return float("nan")
    hits = sum(np.bincount(labels[clusters == c]).max() for c in np.unique(clusters))
    return float(hits / len(labels))
