"""Inspection on embeddings: label issues, outliers, near-duplicates (arrays in, arrays out; no torch).

- Label issues: out-of-fold class probabilities (a leave-one-track-out kNN vote, or a linear probe
  cross-validated by track: no track teaches its own label), fed to confident learning (``cleanlab``) per segment and
  per track (the mean of its segments' probabilities, or, given track vectors, the votes of the most similar other
  tracks); FiftyOne's mistakenness is a second score.
- Outliers: the mean cosine distance of a segment to its ``k`` nearest segments of *other* tracks, against the
  library's median with a robust (MAD) z-score; and segments far from their own track's centroid, against
  the track's own spread.
- Near-duplicates: a segment whose nearest segment of another track is far nearer than the library's typical
  nearest neighbour. Pairs within one track are never duplicates: overlapping windows share audio and music
  repeats itself (a chorus, a loop); duplicates worth a finding are the same audio filed under two tracks.
"""

from __future__ import annotations

import warnings

import numpy as np

from musicemb_core.analysis.checks import check_per_row, check_vectors
from musicemb_core.common.errors import ConfigError
from musicemb_core.common.progress import CancelToken, JobGen, Progress, drive
from musicemb_core.index.faiss_index import EmbeddingIndex, normalise

BLOCK = 4096
"""Rows searched at a time (between progress and cancel checks)."""

_MAD = 1.4826  # MAD of a normal distribution -> its standard deviation


def _robust_z(d: np.ndarray, *, floor: float = 1e-6) -> tuple[np.ndarray, float, float]:
    """(d - median) / (1.4826 MAD), with the median and the scale used."""
    med = float(np.median(d)) if len(d) else 0.0
    scale = max(_MAD * float(np.median(np.abs(d - med))) if len(d) else 0.0, floor)
    return (d - med) / scale, med, scale


# -- label issues --------------------------------------------------------------------------------------------

def out_of_fold_probs(X: np.ndarray, labels: np.ndarray, groups: np.ndarray, *, n_splits: int = 5,
                      random_state: int = 0) -> np.ndarray:
    """Class probabilities of each labelled segment from a logistic probe that never saw its track.

    Parameters
    ----------
    X : (n, dim) embeddings; labels : (n,) ints in 0..n_classes-1 (no unlabelled rows); groups : (n,) track ids.

    Returns
    -------
    (n, n_classes) float64, rows summing to 1.
    """
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold
    from threadpoolctl import threadpool_limits

    labels, groups = np.asarray(labels), np.asarray(groups)
    n_classes = int(labels.max()) + 1
    per_class = [len(np.unique(groups[labels == c])) for c in range(n_classes)]
    n_splits = min(n_splits, len(np.unique(groups)))
    if n_splits < 2 or sum(p > 0 for p in per_class) < 2:
        raise ConfigError("label issues need at least 2 labels and 2 labelled tracks")
    stratified = min(p for p in per_class if p) >= n_splits
    folds = (StratifiedGroupKFold(n_splits, shuffle=True, random_state=random_state) if stratified
             else GroupKFold(n_splits))
    probs = np.zeros((len(X), n_classes))
    with threadpool_limits(1):  # BLAS threads on small matrices only fight each other: 50x slower on 2 cores
        for tr, te in folds.split(X, labels, groups):
            _fit_fold(X, labels, tr, te, probs)
    return probs


def _fit_fold(X: np.ndarray, labels: np.ndarray, tr: np.ndarray, te: np.ndarray, probs: np.ndarray) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    present = np.unique(labels[tr])
    if len(present) == 1:
        probs[np.ix_(te, present)] = 1.0
        return
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=1000, class_weight="balanced"))
    with warnings.catch_warnings():  # many labels of a track or two each: sklearn's guess "a regression problem?"
        warnings.filterwarnings("ignore", "The number of unique classes", UserWarning)
        model.fit(X[tr], labels[tr])
    probs[np.ix_(te, present)] = model.predict_proba(X[te])


def knn_probs(labels: np.ndarray, nbr: np.ndarray, n_classes: int, *, smoothing: float = 0.5) -> np.ndarray:
    """Class probabilities from the labels of each row's neighbours ``nbr`` (n, k) (row indices, -1 = none),
    add-``smoothing`` counts: with other-track neighbours, a leave-one-track-out kNN vote."""
    counts = np.full((len(nbr), n_classes), smoothing)
    rows = np.repeat(np.arange(len(nbr)), nbr.shape[1])
    valid = nbr.ravel() >= 0
    np.add.at(counts, (rows[valid], labels[nbr.ravel()[valid]]), 1.0)
    return counts / counts.sum(axis=1, keepdims=True)


TRACK_K = 10
"""Other tracks whose labels vote on a track's label when track vectors are given (chosen on the tune games of
``bench/bench_inspect.py``'s label split: precision@k 0.70 with segment votes only, 0.83-0.90 for 3-20 tracks)."""


def track_knn_probs(V: np.ndarray, labels: np.ndarray, n_classes: int, *, k: int = TRACK_K) -> np.ndarray:
    """Class probabilities of each track from its ``k`` most similar *other* tracks (cosine of the unit track
    vectors ``V``), each vote weighted by its similarity (0 when negative) and divided by its label's share of the
    tracks (a big label's votes are not evidence); a small floor keeps every label possible."""
    V = normalise(np.asarray(V, np.float32))
    k = max(1, min(k, len(V) - 1))
    nbr = np.zeros((len(V), k), np.int64)
    w = np.zeros((len(V), k), np.float32)
    for a in range(0, len(V), 1024):  # blocks of rows: a 20,000-track library never holds its n x n matrix
        S = V[a:a + 1024] @ V.T
        S[np.arange(len(S)), np.arange(a, a + len(S))] = -np.inf
        top = np.argpartition(-S, k - 1, axis=1)[:, :k]
        nbr[a:a + len(S)] = top
        w[a:a + len(S)] = np.maximum(np.take_along_axis(S, top, axis=1), 0.0)
    P = np.zeros((len(V), n_classes))
    np.add.at(P, (np.repeat(np.arange(len(V)), k), labels[nbr].ravel()), w.ravel())
    P /= np.maximum(np.bincount(labels, minlength=n_classes) / len(labels), 1e-12)
    P += 1e-6
    return P / P.sum(axis=1, keepdims=True)


def _track_vector_probs(V: np.ndarray, labels: np.ndarray, tracks: np.ndarray, n_classes: int) -> np.ndarray:
    """Each track's label probabilities from track vectors: the mean of the vote of its most similar other tracks
    (:func:`track_knn_probs`) and a logistic probe that never saw it (:func:`out_of_fold_probs`), or the vote
    alone when there are too few tracks for the probe. On the tune games of ``bench/bench_inspect.py`` (200
    flips of 10 % of the labels) the mean ranked the flipped tracks 0.030 (standard error 0.006) better than
    the vote alone; the probe alone was level with the vote."""
    knn = track_knn_probs(V, labels, n_classes)
    try:
        probe = out_of_fold_probs(V, labels, tracks)
    except ConfigError:
        return knn
    full = np.zeros_like(knn)
    full[:, :probe.shape[1]] = probe
    return (knn + full) / 2


def mistakenness(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """FiftyOne's mistakenness in [0, 1]: (m e^-H + 1) / 2, m = +1 if the argmax disagrees with the label, else
    -1, H the entropy of the probabilities (confident disagreement -> 1, confident agreement -> 0)."""
    p = np.clip(probs, 1e-12, 1.0)
    confidence = np.exp(np.sum(p * np.log(p), axis=1))
    m = np.where(np.argmax(probs, axis=1) != labels, 1.0, -1.0)
    return (m * confidence + 1) / 2


def _cleanlab(labels: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(quality in [0, 1], issue flags) from cleanlab; issues from quality < 0.5 where cleanlab cannot rank."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    quality = get_label_quality_scores(labels, probs)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            issues = find_label_issues(labels, probs, filter_by="prune_by_noise_rate", n_jobs=1)
    except (ValueError, IndexError):  # too few rows per class for its confident joint
        issues = quality < 0.5
    return quality, np.asarray(issues, dtype=bool)


def label_issues(X: np.ndarray, labels: np.ndarray, groups: np.ndarray, *, method: str = "knn",
                 k: int = 10, n_splits: int = 5, random_state: int = 0,
                 track_vectors: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    """Per-segment and per-track label issues (:func:`iter_label_issues` without its progress)."""
    return drive(iter_label_issues(X, labels, groups, method=method, k=k, n_splits=n_splits,
                                   random_state=random_state, track_vectors=track_vectors))


def iter_label_issues(X: np.ndarray, labels: np.ndarray, groups: np.ndarray, *, method: str = "knn",
                      k: int = 10, n_splits: int = 5, random_state: int = 0,
                      track_vectors: tuple[np.ndarray, np.ndarray] | None = None,
                      index: EmbeddingIndex | None = None, cancel: CancelToken | None = None) -> JobGen[dict]:
    """Per-segment and per-track label issues, as a job: yields the progress of the nearest-neighbour search
    (:func:`iter_other_track_neighbours`; ``index``: a fitted index over the *labelled* rows, ids 0..m-1;
    ``cancel`` stops it).

    Parameters
    ----------
    X : (n, dim); labels : (n,) ints, -1 = unlabelled (skipped); groups : (n,) track ids.
    method : where the out-of-fold probabilities come from: ``knn`` (votes of the ``k`` nearest segments of
        other tracks, at most 3 from any one track, divided by each label's share of the segments: local, so a label spread over several sounds and a few wrong labels far away do little
        harm; best on the dev corpus), ``logistic`` (a linear probe cross-validated by track) or ``ensemble``
        (their mean).
    track_vectors : (track ids, unit vectors) of the tracks, e.g. the similarity space's: a track's own label
        probabilities then come from the other tracks' vectors (:func:`_track_vector_probs`: the vote of the
        :data:`TRACK_K` most similar and a probe) instead of the mean of its segments' (tracks without a vector
        keep that mean).

    Returns
    -------
    dict with, per labelled segment (``rows``: their indices in X): ``probs`` (m, n_classes), ``quality``,
    ``issue``, ``mistakenness``; per track (``tracks``, sorted): ``track_label``, ``track_probs``,
    ``track_quality`` (cleanlab's self-confidence of the track's label), ``track_score`` (how far that
    self-confidence falls below the typical one of the tracks given the same label, 0..1: confident learning's
    per-class threshold, so a label whose tracks are all spread out is not blamed for it), ``track_issue``,
    ``track_mistakenness``, ``track_suggested`` (argmax label) and ``track_disagree`` (fraction of its segments
    whose argmax is another label), ``track_segment_probs`` (the mean of its segments' probabilities, whatever
    decided ``track_probs``).
    """
    X = check_vectors(X, dtype=None)
    labels, groups = check_per_row(labels, len(X), "labels", integers=True), check_per_row(groups, len(X), "groups")
    rows = np.flatnonzero(labels >= 0)
    y, g = labels[rows], groups[rows]
    if method not in ("logistic", "knn", "ensemble"):
        raise ConfigError(f"label issue method must be logistic, knn or ensemble, got {method!r}")
    Xl = X[rows]
    parts = []
    if method != "knn":
        parts.append(out_of_fold_probs(Xl, y, g, n_splits=n_splits, random_state=random_state))
    if method != "logistic":
        if len(np.unique(g)) < 2 or len(np.unique(y)) < 2:
            raise ConfigError("label issues need at least 2 labels and 2 labelled tracks")
        nbr = (yield from iter_other_track_neighbours(Xl, g, k=min(k, len(Xl) - 1), per_group=3, index=index,
                                                      cancel=cancel))[1]
        votes = knn_probs(y, nbr, int(y.max()) + 1)
        votes /= np.maximum(np.bincount(y, minlength=votes.shape[1]) / len(y), 1e-12)  # a big label's votes
        parts.append(votes / votes.sum(axis=1, keepdims=True))  # are not evidence: divide by its prior
    probs = np.mean(parts, axis=0)
    quality, issue = _cleanlab(y, probs)
    tracks, inv = np.unique(g, return_inverse=True)
    counts = np.bincount(inv)
    track_probs = np.zeros((len(tracks), probs.shape[1]))
    np.add.at(track_probs, inv, probs)
    track_probs /= counts[:, None]
    track_label = np.zeros(len(tracks), dtype=np.int64)
    track_label[inv] = y
    segment_mean = track_probs.copy()
    if track_vectors is not None:
        tv_ids, TV = track_vectors
        row = {int(t): i for i, t in enumerate(np.asarray(tv_ids).tolist())}
        have = np.array([int(t) in row for t in tracks.tolist()], dtype=bool)
        if have.sum() > 1:
            sub = np.asarray(TV)[[row[int(t)] for t in tracks[have].tolist()]]
            track_probs[have] = _track_vector_probs(sub, track_label[have], tracks[have], track_probs.shape[1])
    t_quality, t_issue = _cleanlab(track_label, track_probs)
    own = track_probs[np.arange(len(tracks)), track_label]
    typical = np.array([own[track_label == c].mean() if (track_label == c).any() else 1.0
                        for c in range(track_probs.shape[1])])
    disagree = np.bincount(inv, weights=(np.argmax(probs, axis=1) != y).astype(float)) / counts
    return {"rows": rows, "probs": probs, "quality": quality, "issue": issue,
            "mistakenness": mistakenness(probs, y), "tracks": tracks, "track_label": track_label,
            "track_probs": track_probs, "track_quality": t_quality, "track_issue": t_issue,
            "track_mistakenness": mistakenness(track_probs, track_label),
            "track_score": np.clip(1 - own / np.maximum(typical[track_label], 1e-9), 0.0, 1.0),
            "track_suggested": np.argmax(track_probs, axis=1), "track_disagree": disagree,
            "track_segment_probs": segment_mean}


# -- neighbours: outliers and near-duplicates ----------------------------------------------------------------

def iter_neighbour_index(X: np.ndarray, *, cancel: CancelToken | None = None) -> JobGen[EmbeddingIndex]:
    """The index :func:`iter_other_track_neighbours` searches, ids 0..n-1 (past 50,000 rows an HNSW graph built
    with a breadth of 64: on 60,000 clustered 182-d vectors recall@10 1.000 against exact search, as with a
    search index's 200, and 3.8x quicker to build); yields the build's progress."""
    return (yield from EmbeddingIndex(ef_construction=64).iter_fit(X, np.arange(len(X)), cancel=cancel))


def other_track_neighbours(X: np.ndarray, groups: np.ndarray, *, k: int = 10, per_group: int | None = None,
                           index: EmbeddingIndex | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Cosine distances (n, k) and row indices (n, k) of each row's k nearest rows of *other* groups
    (:func:`iter_other_track_neighbours` without its progress)."""
    return drive(iter_other_track_neighbours(X, groups, k=k, per_group=per_group, index=index))


def iter_other_track_neighbours(X: np.ndarray, groups: np.ndarray, *, k: int = 10, per_group: int | None = None,
                                index: EmbeddingIndex | None = None, cancel: CancelToken | None = None
                                ) -> JobGen[tuple[np.ndarray, np.ndarray]]:
    """Cosine distances (n, k) and row indices (n, k) of each row's k nearest rows of *other* groups, nearest
    first (-1 / inf where fewer exist); ``per_group``: at most that many rows from any one group.
    ``index``: a fitted flat or HNSW index over ``X`` with ids 0..n-1 (else :func:`iter_neighbour_index`'s).
    Yields the index's build, then the rows searched (a library of long recordings: minutes); ``cancel`` stops it
    between blocks of rows (:class:`Cancelled`).

    Rows whose nearest hits are all of their own group (a long field recording's segments are nearest each
    other) are searched again passing over that group, then over the groups that already gave each of them
    ``per_group`` hits: widening the search instead asked for thousands of hits per row of a library of
    hour-long tracks (21 GB for 245,000 segments)."""
    cancel = cancel or CancelToken()
    groups = np.asarray(groups)
    n = len(X)
    if index is None:
        index = yield from iter_neighbour_index(X, cancel=cancel)
    dist = np.full((n, k), np.inf)
    nbr = np.full((n, k), -1, dtype=np.int64)
    kk = min(n, k + 64)
    short = [np.zeros(0, np.int64)]
    for a in range(0, n, BLOCK):
        cancel.check()
        yield Progress("inspect", a, n, "nearest segments of other tracks")
        rows = np.arange(a, min(n, a + BLOCK))
        sims, ids = index.search(X[rows], kk)
        short.append(_keep_nearest(rows, sims, ids, groups, k, per_group, dist, nbr, exhausted=kk >= n))
    short = np.concatenate(short)
    order = np.argsort(groups, kind="stable")
    sorted_groups = groups[order]
    done = 0
    for g in np.unique(groups[short]):
        members = order[np.searchsorted(sorted_groups, g):np.searchsorted(sorted_groups, g, side="right")]
        mine = short[groups[short] == g]
        for a in range(0, len(mine), BLOCK):
            cancel.check()
            yield Progress("inspect", done, len(short), "segments nearest their own track, searched past it")
            _search_past_groups(index, X, mine[a:a + BLOCK], members, groups, k, per_group, kk, dist, nbr)
            done += len(mine[a:a + BLOCK])
    return dist, nbr


def _keep_nearest(rows: np.ndarray, sims: np.ndarray, ids: np.ndarray, groups: np.ndarray, k: int,
                  per_group: int | None, dist: np.ndarray, nbr: np.ndarray, *, exhausted) -> np.ndarray:
    """Write into ``dist``/``nbr`` the k nearest hits of other groups (at most ``per_group`` of each) of each of
    ``rows`` from its hits ``sims``/``ids`` (best first) that has k of them, or whose search is ``exhausted``;
    returns the other rows (to be searched again)."""
    kk = ids.shape[1]
    g = groups[np.maximum(ids, 0)]
    ok = (ids >= 0) & (g != groups[rows][:, None])
    if per_group:  # the nearest few hits of each group: a hit's rank among the earlier hits of its group
        key = np.where(ok, np.unique(g, return_inverse=True)[1].reshape(g.shape), -1)
        order = np.argsort(key, axis=1, kind="stable")
        sk = np.take_along_axis(key, order, axis=1)
        pos = np.arange(kk)[None, :].repeat(len(rows), 0)
        start = np.maximum.accumulate(np.where(np.diff(sk, axis=1, prepend=-2) != 0, pos, 0), axis=1)
        rank = np.empty_like(pos)
        np.put_along_axis(rank, order, pos - start, axis=1)
        ok &= rank < per_group
    got = np.cumsum(ok, axis=1)
    keep = ok & (got <= k)
    done = (got[:, -1] >= k) | exhausted
    r, c = np.nonzero(keep & done[:, None])
    dist[rows[r], got[r, c] - 1] = 1.0 - sims[r, c]
    nbr[rows[r], got[r, c] - 1] = ids[r, c]
    return rows[~done]


def _search_past_groups(index: EmbeddingIndex, X: np.ndarray, rows: np.ndarray, members: np.ndarray,
                        groups: np.ndarray, k: int, per_group: int | None, kk: int, dist: np.ndarray,
                        nbr: np.ndarray, pool: tuple[np.ndarray, np.ndarray] | None = None) -> None:
    """:func:`other_track_neighbours` for ``rows`` of one group, passing over ``members`` (the group's rows).
    With ``per_group``, a group that gave every row still short its ``per_group`` hits is passed over next, its
    hits kept in ``pool`` (rows where one group did and others where none did are searched apart); else (or
    when no group did, or an HNSW search returned too few) the search widens 4 times."""
    pool_s, pool_i = pool or (np.zeros((len(rows), 0), np.float32), np.zeros((len(rows), 0), np.int64))
    while len(rows):
        sims, ids = index.search(X[rows], kk, exclude=members)
        exhausted = kk >= len(X) - len(members)  # not a -1: HNSW held in a big group returns some early
        sims, ids = np.hstack([pool_s, sims]), np.hstack([pool_i, ids])
        best = np.argsort(-np.where(ids >= 0, sims, -np.inf), axis=1, kind="stable")
        sims, ids = np.take_along_axis(sims, best, 1), np.take_along_axis(ids, best, 1)
        still = np.isin(rows, _keep_nearest(rows, sims, ids, groups, k, per_group, dist, nbr, exhausted=exhausted))
        rows, sims, ids = rows[still], sims[still], ids[still]
        passed = (ids >= 0) & np.isin(ids, members)  # hits of groups passed over: kept
        counts = _group_counts(ids, groups, passed) if per_group and len(rows) else None
        if counts is None or not (counts[1] >= per_group).any():
            (pool_s, pool_i), kk = _pooled(sims, ids, passed), min(len(X), 4 * kk)
            continue
        full = (counts[1] >= per_group).all(axis=0)
        if not full.any():  # no group gave every row its hits: the rows of the group most did go apart
            apart = counts[1][:, np.argmax((counts[1] >= per_group).sum(axis=0))] >= per_group
            pool_s, pool_i = _pooled(sims, ids, passed)
            _search_past_groups(index, X, rows[apart], members, groups, k, per_group, kk, dist, nbr,
                                (pool_s[apart], pool_i[apart]))
            rows, pool_s, pool_i = rows[~apart], pool_s[~apart], pool_i[~apart]
            continue
        pool_s, pool_i = _pooled(sims, ids, passed | (ids >= 0) & np.isin(groups[np.maximum(ids, 0)], counts[0][full]))
        members = np.concatenate([members, np.flatnonzero(np.isin(groups, counts[0][full]))])


def _pooled(sims: np.ndarray, ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The hits where ``mask``, first in each row (best first), padded with -inf / -1."""
    keep = np.argsort(~mask, axis=1, kind="stable")[:, :int(mask.sum(axis=1).max(initial=0))]
    return (np.take_along_axis(np.where(mask, sims, -np.inf), keep, 1),
            np.take_along_axis(np.where(mask, ids, -1), keep, 1))


def _group_counts(ids: np.ndarray, groups: np.ndarray, passed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(groups, hits of each per row (rows, groups)) of the hits ``ids`` (-1: none) but those ``passed``."""
    live = (ids >= 0) & ~passed
    names, inv = np.unique(groups[np.maximum(ids, 0)], return_inverse=True)
    counts = np.zeros((len(ids), len(names)), np.int64)
    np.add.at(counts, (np.repeat(np.arange(len(ids)), ids.shape[1]), inv.ravel()), live.ravel())
    return names, counts


def outliers(dist: np.ndarray, *, z: float = 3.5) -> dict:
    """Segments unlike the rest of the library: mean distance to their other-track neighbours, robust z."""
    finite = np.where(np.isfinite(dist), dist, np.nan)
    mean = np.nan_to_num(np.nanmean(finite, axis=1), nan=0.0) if dist.size else np.zeros(len(dist))
    zs, med, scale = _robust_z(mean)
    return {"mean_dist": mean, "z": zs, "median": med, "scale": scale, "flag": zs >= z, "threshold": z}


def rows_by_track(track_ids: np.ndarray, tracks: np.ndarray) -> list[np.ndarray]:
    """The rows (ascending) of each of ``tracks`` (sorted, unique, all present) in ``track_ids``: one sort, not a
    scan of every row per track (20,000 tracks)."""
    if not len(tracks):
        return []  # np.split would give one empty piece
    counts = np.bincount(np.searchsorted(tracks, track_ids), minlength=len(tracks))
    return np.split(np.argsort(track_ids, kind="stable"), np.cumsum(counts)[:-1])


def track_outliers(X: np.ndarray, groups: np.ndarray, *, z: float = 4.0, min_segments: int = 5) -> dict:
    """Segments far from their own track's centroid: cosine distance, z against the track's own median and
    MAD (floored at half the library's median MAD, so a very uniform track does not flag every wobble)."""
    V = normalise(check_vectors(X, dtype=None))
    groups = check_per_row(groups, len(V), "groups")
    tracks, inv = np.unique(groups, return_inverse=True)
    cent = np.zeros((len(tracks), V.shape[1]))
    np.add.at(cent, inv, V)
    d = 1.0 - np.einsum("ij,ij->i", V, normalise(cent)[inv])
    counts = np.bincount(inv, minlength=len(tracks))
    by_track = rows_by_track(groups, tracks)
    meds = np.array([np.median(d[r]) for r in by_track])
    mads = np.array([np.median(np.abs(d[r] - m)) for r, m in zip(by_track, meds, strict=True)])
    big = counts >= min_segments
    floor = 0.5 * float(np.median(mads[big])) if big.any() else 0.0
    scale = _MAD * np.maximum(mads, max(floor, 1e-6))
    zs = (d - meds[inv]) / scale[inv]
    return {"dist": d, "z": zs, "track_median": meds[inv], "flag": (zs >= z) & big[inv], "threshold": z}


def near_duplicates(dist: np.ndarray, nbr: np.ndarray, *, ratio: float = 0.1, max_dist: float = 0.05) -> dict:
    """Segments whose nearest other-track segment is at most ``ratio`` of the library's median nearest
    distance and at most ``max_dist`` (cosine distance) away: (row, neighbour row, distance) per pair, each
    unordered pair once, reported on its higher row."""
    d1 = dist[:, 0] if dist.size else np.zeros(0)
    finite = d1[np.isfinite(d1)]
    med = float(np.median(finite)) if len(finite) else 0.0
    limit = min(ratio * med, max_dist)
    pairs, seen = [], set()
    for i in np.flatnonzero(d1 <= limit):
        j = int(nbr[i, 0])
        key = (min(i, j), max(i, j))
        if j >= 0 and key not in seen:
            seen.add(key)
            pairs.append((max(i, j), min(i, j), float(d1[i])))
    return {"pairs": pairs, "median": med, "limit": limit}
