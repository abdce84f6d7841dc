"""k-means over embeddings with k chosen by silhouette; the elbow (inertia) curve; cluster-vs-label tables."""

from __future__ import annotations

import warnings

import numpy as np

from musicemb_core.analysis.checks import check_vectors
from musicemb_core.common.errors import ConfigError
from musicemb_core.common.progress import CancelToken, EtaClock, JobGen, Progress, drive
from musicemb_core.index.faiss_index import normalise as _unit

AUTO_KS = range(2, 11)
"""The k compared when none is asked for: the one with the best silhouette is kept."""


def kmeans_select(X: np.ndarray, *, ks: range | list[int] = AUTO_KS, random_state: int = 0,
                  sample_size: int = 5000) -> dict:
    """Fit k-means for each k and pick the one with the highest silhouette (cosine, on a sample); a k whose fit
    finds fewer than k distinct clusters (duplicate points) is left out.

    Returns
    -------
    dict: ``k`` (chosen), ``labels`` (n,) of the chosen k, ``ks``, ``silhouette`` and ``inertia`` per k.
    """
    return drive(iter_kmeans_select(X, ks=ks, random_state=random_state, sample_size=sample_size))


FIT_SAMPLE = 50_000
"""Past this many points, each k is fitted on a random sample of this size (k is chosen on it); the chosen k is
then fitted on all points, starting from the sample's centres."""


def iter_kmeans_select(X: np.ndarray, *, ks: range | list[int] = AUTO_KS, random_state: int = 0,
                       sample_size: int = 5000, cancel: CancelToken | None = None,
                       fit_sample: int = FIT_SAMPLE) -> JobGen[dict]:
    """:func:`kmeans_select` as a job: a Progress event per k fitted, ``cancel`` checked between fits. Past
    ``fit_sample`` points the k are compared on a sample and only the chosen one is fitted on every point
    (400,000 points: one full fit, not nine of four restarts each); ``inertia`` is always over every point."""
    from sklearn.metrics import silhouette_score

    X = _unit(check_vectors(X))
    ks = [k for k in ks if 2 <= k < len(X)]
    if not ks:
        raise ConfigError(f"need more points than clusters: {len(X)} points")
    rng = np.random.default_rng(random_state)
    sampled = len(X) > fit_sample
    S = X[np.sort(rng.choice(len(X), fit_sample, replace=False))] if sampled else X
    sil, inertia, fits = [], [], {}
    clock, todo = EtaClock(), list(ks)
    steps = len(todo) + sampled
    for i, k in enumerate(todo):
        what = f"of a sample of {len(S):,} of {len(X):,} points" if sampled else f"of {len(X):,} points"
        yield Progress("clusters", i, steps, f"k-means with k={k} {what}", eta_s=clock.eta(i, steps))
        if cancel is not None:
            cancel.check()
        km = _fit(S, k, random_state, n_init=4)
        if len(np.unique(km.labels_)) < k:
            ks.remove(k)
            continue
        fits[k] = km
        inertia.append(float(km.inertia_) if not sampled else _inertia(X, km.cluster_centers_))
        sil.append(float(silhouette_score(S, km.labels_, metric="cosine",
                                          sample_size=min(sample_size, len(S)), random_state=random_state)))
    if not ks:
        raise ConfigError(f"no clusters to find: all {len(X)} points are the same vector")
    best = ks[int(np.argmax(sil))]
    labels = fits[best].labels_
    if sampled:
        yield Progress("clusters", len(todo), steps, f"k-means with k={best} of all {len(X):,} points",
                       eta_s=clock.eta(len(todo), steps))
        if cancel is not None:
            cancel.check()
        labels = _fit(X, best, random_state, n_init=1, init=fits[best].cluster_centers_).labels_
    yield Progress("clusters", steps, steps, f"k={best} chosen")
    return {"k": best, "labels": labels, "ks": ks, "silhouette": sil, "inertia": inertia}


def _fit(X: np.ndarray, k: int, random_state: int, **kw):
    """sklearn's KMeans fitted; fewer distinct points than k is left to the caller (the fit warns)."""
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return KMeans(k, random_state=random_state, **kw).fit(X)


def _inertia(X: np.ndarray, centres: np.ndarray, block: int = 65_536) -> float:
    """Sum of squared distances of every row of ``X`` to its nearest centre, a block of rows at a time."""
    total, cc = 0.0, (centres ** 2).sum(1)
    for a in range(0, len(X), block):
        B = X[a:a + block]
        d = (B ** 2).sum(1)[:, None] - 2 * B @ centres.T + cc[None, :]
        total += float(np.maximum(d.min(1), 0).sum())
    return total


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
