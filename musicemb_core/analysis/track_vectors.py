"""Track-level vectors from segment vectors, and the neighbour metrics used to judge them (style 1-NN,
precision@k, rank of another version of the same piece)."""

from __future__ import annotations

import numpy as np

from musicemb_core.analysis.checks import check_count, check_per_row
from musicemb_core.common.blocks import add_rows, row_blocks
from musicemb_core.models.library_stats import library_statistics

AGGREGATIONS = ("mean", "mean+std")


def _unit(X: np.ndarray) -> np.ndarray:
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


def aggregate(X: np.ndarray, groups: np.ndarray, *, method: str = "mean+std") -> tuple[np.ndarray, np.ndarray]:
    """One unit vector per group (track) from its rows.

    Parameters
    ----------
    X : (n, dim) segment vectors
    groups : (n,) group (track) id of each row
    method : ``mean`` (mean of unit rows) or ``mean+std`` (that mean, concatenated with the per-dimension spread
        scaled by 1/2, so the spread refines but does not dominate)

    Returns
    -------
    ids : (g,) sorted group ids; V : (g, dim) or (g, 2 dim) float32 unit vectors
    """
    if method not in AGGREGATIONS:
        raise ValueError(f"method must be one of {AGGREGATIONS}, got {method!r}")
    X = np.asarray(X)
    ids, inv, counts = np.unique(check_per_row(groups, len(X), "groups"), return_inverse=True, return_counts=True)
    total = np.zeros((len(ids), X.shape[1]))
    sq = np.zeros_like(total) if method == "mean+std" else None
    for b in row_blocks(len(X)):  # a block at a time: 1.6M rows as float64 are 2.3 GB, and each temporary as much
        x = _unit(np.asarray(X[b], dtype=np.float64))
        add_rows(total, inv[b], x)
        if sq is not None:
            add_rows(sq, inv[b], x * x)
    mean = total / counts[:, None]
    if sq is None:
        return ids, _unit(mean).astype(np.float32)
    std = np.sqrt(np.maximum(sq / counts[:, None] - mean**2, 0.0))
    return ids, _unit(np.hstack([_unit(mean), 0.5 * std / np.maximum(
        np.linalg.norm(std, axis=1, keepdims=True), 1e-12)])).astype(np.float32)


TRACK_PRIORS = (10.0, 100.0)  # pseudo-tracks shrinking the library's track mean towards 0 and its per-dimension
# spread towards its average spread (a small library is only scaled; chosen on the similarity split's tune games)


def library_tracks(V: np.ndarray, *, priors: tuple[float, float] = TRACK_PRIORS) -> tuple[np.ndarray, np.ndarray]:
    """(mean, spread) of a library's track vectors ``V`` (n, dim), shrunk by ``priors`` pseudo-tracks: what
    :func:`relative_to_library` takes away so that what every track of the library shares counts less."""
    V = np.asarray(V, dtype=np.float64)
    n, (m0, s0) = len(V), priors
    if n == 0:
        return np.zeros(V.shape[1], np.float32), np.ones(V.shape[1], np.float32)
    mean = V.mean(axis=0) * n / (n + m0)
    var = ((V - mean) ** 2).mean(axis=0)
    spread = np.sqrt((n * var + s0 * var.mean()) / (n + s0))
    return mean.astype(np.float32), np.maximum(spread, 1e-6).astype(np.float32)


def relative_to_library(V: np.ndarray, mean: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """Unit track vectors relative to the library (:func:`library_tracks`): centred, scaled per dimension."""
    return _unit((np.asarray(V, np.float64) - mean) / spread).astype(np.float32)


def neighbour_order(V: np.ndarray) -> np.ndarray:
    """(n, n - 1): for each row, the other rows by decreasing cosine similarity."""
    S = _unit(V) @ _unit(V).T
    np.fill_diagonal(S, -np.inf)
    return np.argsort(-S, axis=1, kind="stable")[:, :-1]


def style_scores(V: np.ndarray, labels: np.ndarray, *, k: int = 5) -> dict[str, float]:
    """Leave-one-out ``nn1`` (nearest other row has the same label) and ``p_at_k`` (mean share of the k nearest
    with the same label), over rows whose label occurs at least twice."""
    labels, k = np.asarray(labels), check_count(k)
    order = neighbour_order(V)
    same = labels[order] == labels[:, None]
    ok = (labels[:, None] == labels[None, :]).sum(1) > 1
    return {"nn1": float(same[ok, 0].mean()), "p_at_k": float(same[ok, :k].mean())}


def version_ranks(V: np.ndarray, pieces: np.ndarray) -> np.ndarray:
    """For each row with a piece id (non-empty), the rank (1 = first) of its best-ranked other version."""
    pieces = np.asarray(pieces, dtype=object)
    order = neighbour_order(V)
    ranks = []
    for i in np.flatnonzero(pieces != ""):
        hits = np.flatnonzero(pieces[order[i]] == pieces[i])
        if len(hits):
            ranks.append(int(hits[0]) + 1)
    return np.array(ranks, dtype=int)


def tag_clip_rows(n: int, k: int) -> np.ndarray:
    """Indices of at most ``k`` of a track's ``n`` clips, spread evenly from its first to its last."""
    return np.unique(np.linspace(0, n - 1, min(k, n)).round().astype(int)) if n > 0 else np.zeros(0, int)


def _tag_track_means(tag_raw: np.ndarray, tag_tracks: np.ndarray, mean: np.ndarray,
                     std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(track ids, unit mean per track) of the tagger's clip values standardised with ``mean``/``std`` (clipped to
    +-8)."""
    z = np.clip((np.asarray(tag_raw, np.float64) - mean) / std, -8, 8)
    if not len(z):
        return np.zeros(0, np.int64), np.zeros((0, len(mean)), np.float32)
    return aggregate(z, tag_tracks, method="mean")


def tagged_track_vectors(V: np.ndarray, tids: np.ndarray, tag_raw: np.ndarray, tag_tracks: np.ndarray,
                         stats: dict[str, np.ndarray], weight: float) -> np.ndarray:
    """Track vectors ``V`` (rows: tracks ``tids``, already relative to the library) with the tagger's view of the
    same tracks beside them at ``weight``: each clip's tagger values standardised with ``stats["tag_mean"]`` /
    ``["tag_std"]``, the unit mean of a track's clips, made relative to the library's tracks with
    ``["tag_track_mean"]`` / ``["tag_track_spread"]``; then both halves as one unit vector. A track without
    tagged clips gets zeros in the tagger's half."""
    ids, TV = _tag_track_means(tag_raw, tag_tracks, stats["tag_mean"], stats["tag_std"])
    T = np.zeros((len(tids), len(stats["tag_mean"])))
    if len(ids):
        rel = relative_to_library(TV, stats["tag_track_mean"], stats["tag_track_spread"])
        at = {int(t): i for i, t in enumerate(np.asarray(tids).tolist())}
        for t, row in zip(ids.tolist(), rel, strict=True):
            if int(t) in at:
                T[at[int(t)]] = row
    return _unit(np.hstack([np.asarray(V, np.float64), weight * T])).astype(np.float32)


def tag_statistics(tag_raw: np.ndarray, tag_tracks: np.ndarray,
                   prior: tuple[np.ndarray, np.ndarray]) -> dict[str, np.ndarray]:
    """The library statistics :func:`tagged_track_vectors` needs: its clips' mean/std (a small library's pulled
    towards the training music's ``prior``, :func:`~musicemb_core.models.library_stats.library_statistics`) and its
    tracks' (:func:`library_tracks`)."""
    mean, std = library_statistics(tag_raw, prior)
    t_mean, t_spread = library_tracks(_tag_track_means(tag_raw, tag_tracks, mean, std)[1])
    return {"tag_mean": mean, "tag_std": std, "tag_track_mean": t_mean, "tag_track_spread": t_spread}
