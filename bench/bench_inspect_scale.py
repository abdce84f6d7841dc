"""Inspection's label and outlier steps on big synthetic libraries, against the plain implementations they
replaced, in the same run: clustered 182-d segment vectors (20 labels), ``--tracks`` tracks of 20 segments each,
and the tracks' own vectors.

- ``track_knn_probs`` at ``--tracks`` x 4 tracks: blocks of rows + argpartition vs the whole n x n matrix argsorted;
- ``other_track_neighbours`` (the vote's neighbours, at most 3 per track): numpy per batch vs a loop per row;
- ``track_outliers`` at ``--tracks`` x 4 tracks of 100 segments: one sort vs one scan of every segment per track;
- ``label_issues`` end to end (shipped only).

    .venv/bin/python bench/bench_inspect_scale.py [--tracks 5000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import write_results  # noqa: E402
from musicemb_core.analysis import inspection as I  # noqa: E402
from musicemb_core.index.faiss_index import EmbeddingIndex  # noqa: E402


def plain_track_knn(V, labels, n_classes, k=I.TRACK_K):
    V = I.normalise(np.asarray(V, np.float32))
    S = V @ V.T
    np.fill_diagonal(S, -np.inf)
    nbr = np.argsort(-S, axis=1, kind="stable")[:, :k]
    w = np.maximum(np.take_along_axis(S, nbr, axis=1), 0.0)
    P = np.zeros((len(V), n_classes))
    np.add.at(P, (np.repeat(np.arange(len(V)), k), labels[nbr].ravel()), w.ravel())
    return P


def plain_neighbours(X, groups, index, k=10, per_group=3):
    n = len(X)
    nbr = np.full((n, k), -1)
    todo, kk = np.arange(n), min(n, k + 64)
    while len(todo):
        sims, ids = index.search(X[todo], kk)
        short = []
        for row, i in zip(todo, ids, strict=True):
            g = groups[np.maximum(i, 0)]
            take = np.flatnonzero((i >= 0) & (g != groups[row]))
            rank = np.array([np.count_nonzero(g[take[:j]] == g[t]) for j, t in enumerate(take)], dtype=int)
            take = take[rank < per_group][:k]
            if len(take) < k and kk < n:
                short.append(row)
                continue
            nbr[row, :len(take)] = i[take]
        todo, kk = np.array(short, dtype=np.int64), min(n, kk * 4)
    return nbr


def plain_track_outliers(X, groups):
    V = I.normalise(X)
    tracks, inv = np.unique(groups, return_inverse=True)
    cent = np.zeros((len(tracks), V.shape[1]))
    np.add.at(cent, inv, V)
    d = 1.0 - np.einsum("ij,ij->i", V, I.normalise(cent)[inv])
    meds = np.array([np.median(d[inv == t]) for t in range(len(tracks))])
    return meds, np.array([np.median(np.abs(d[inv == t] - meds[t])) for t in range(len(tracks))])


def timed(fn, *args, **kw):
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracks", type=int, default=5000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    n_t, per, n_classes, dim = args.tracks, 20, 20, 182
    centres = rng.normal(size=(n_classes, dim))
    style = rng.integers(0, n_classes, 4 * n_t)
    tv = (centres[style] + 2 * rng.normal(size=(len(style), dim))).astype(np.float32)
    groups = np.repeat(np.arange(n_t), per)
    X = I.normalise((tv[groups] + 2 * rng.normal(size=(n_t * per, dim))).astype(np.float32))
    rows = []

    (P, t_new), (P0, t_old) = timed(I.track_knn_probs, tv, style, n_classes), timed(plain_track_knn, tv, style,
                                                                                    n_classes)
    same = np.array_equal(P.argmax(1), P0.argmax(1))
    rows.append({"step": f"track_knn_probs, {len(tv):,} tracks", "shipped_s": round(t_new, 2),
                 "plain_s": round(t_old, 2), "speed_up": round(t_old / t_new, 1), "same_result": same})

    index = EmbeddingIndex(ef_construction=64).fit(X, np.arange(len(X)))
    (nb, t_new), (nb0, t_old) = (timed(I.other_track_neighbours, X, groups, k=10, per_group=3, index=index),
                                 timed(plain_neighbours, X, groups, index))
    rows.append({"step": f"other_track_neighbours filtering, {len(X):,} segments (same index)",
                 "shipped_s": round(t_new, 2), "plain_s": round(t_old, 2), "speed_up": round(t_old / t_new, 1),
                 "same_result": float(np.mean(nb[1] == nb0))})

    big = np.repeat(np.arange(4 * n_t), 100)  # 5-minute tracks cut every 3 s; 8-d keeps the memory small
    Xb = rng.normal(size=(len(big), 8)).astype(np.float32)
    (out, t_new), ((meds, _), t_old) = timed(I.track_outliers, Xb, big), timed(plain_track_outliers, Xb, big)
    rows.append({"step": f"track_outliers, {4 * n_t:,} tracks x 100 segments", "shipped_s": round(t_new, 2),
                 "plain_s": round(t_old, 2), "speed_up": round(t_old / t_new, 1),
                 "same_result": bool(np.allclose(out["track_median"], meds[big]))})

    (_, t_new) = timed(I.label_issues, X, style[groups], groups, track_vectors=(np.arange(n_t), tv[:n_t]))
    rows.append({"step": f"label_issues end to end, {n_t:,} tracks x {per}", "shipped_s": round(t_new, 2),
                 "plain_s": "", "speed_up": "", "same_result": ""})
    for r in rows:
        print(r, flush=True)
    write_results("inspect_scale", rows, notes=(
        "Synthetic clustered vectors; plain = the implementations replaced (whole n x n matrix; a loop per row; a "
        "scan per track), run in the same process. same_result: argmax labels equal / share of neighbours equal."))


if __name__ == "__main__":
    main()
