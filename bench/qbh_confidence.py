"""Calibrated confidence of query by humming: fit on the *tune* split, measure once on the *check* split.

Each split is a library of songs rendered from melodies, hums of those songs (``in``) and hums of melodies
withheld from the library (``out``: a tune that is not in the library). A query's answer is a *false match* when
it is confident and wrong: for an ``out`` hum, any confident answer.

- ``tune``: melodies of the training collections (ryansMammoth, German Essen) that the built-in model never
  trained on (not among the melodies its recipe drew, nor sharing an opening with one). ``--split tune`` fits the
  logistic calibration of :func:`musicemb_core.search.qbh.confidence_features` for each method (in- and
  out-of-library hums weighted equally) and picks the threshold: the lowest one at which at most ``--target-fmr``
  of the tune split's out-of-library hums get a confident answer. It prints the fit to paste into
  ``musicemb_core.search.qbh.CONFIDENCE``.
- ``check``: the reserved collections as ``bench/bench_qbh.py`` (``oneills1850``, ``essenFolksong/han``), measured
  with the shipped calibration (``HumSearcher.query`` / ``is_confident``).

    .venv/bin/python bench/qbh_confidence.py --split tune [--songs 100 --out 50 --hums 2]
    .venv/bin/python bench/qbh_confidence.py --split check
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.bench_qbh import SR, build_library, eval_melodies, make_hums, signature  # noqa: E402
from bench.common import write_results  # noqa: E402
from musicemb_core.common.progress import drive  # noqa: E402
from musicemb_core.data import melodies as mel  # noqa: E402
from musicemb_core.data.hum_synthesis import render_melody_song  # noqa: E402
from musicemb_core.data.library import Library  # noqa: E402
from musicemb_core.search import qbh  # noqa: E402
from musicemb_core.training.qbh_fit import QBHTrainConfig  # noqa: E402

METHODS = ("rerank", "embedding")


def tune_melodies(n: int, seed: int) -> list[mel.Melody]:
    """``n`` melodies of the training collections that the built-in model's recipe did not draw (its draw
    replayed: ``QBHTrainConfig`` defaults), none sharing its opening with a drawn one or with another chosen."""
    tc = QBHTrainConfig()
    pool = mel.load_collections([c for c in tc.collections if c != "generated"], purpose="train", min_notes=12)
    drawn = np.random.default_rng(tc.seed).choice(len(pool), min(tc.n_songs, len(pool)), replace=False)
    seen = {signature(pool[i]) for i in drawn}
    drawn_set = set(drawn.tolist())
    out = []
    for i in np.random.default_rng(seed).permutation(len(pool)):
        m = pool[i]
        if i in drawn_set or len(m) < 24 or signature(m) in seen:
            continue
        seen.add(signature(m))
        out.append(m)
        if len(out) == n:
            break
    return out


def outside_songs(melodies: list[mel.Melody], seed: int) -> list[dict]:
    """Renderings of melodies kept out of the library: only their timelines are used (to hum them)."""
    out = []
    for i, m in enumerate(melodies):
        _, timeline, style = render_melody_song(m, seed=seed * 10_000 + 5_000 + i, sr=SR, max_s=40.0)
        out.append({"melody": m.name, "style": style, "timeline": timeline})
    return out


#: Features the calibration uses (of :func:`qbh.confidence_features`): the z-score and the margin. The score itself
#: is left out, and the fit is not regularised (a penalty shrinks the margin, on a small scale, to nothing): the
#: z-score alone, against the ~50 candidates of a big library, fails in small ones (against 5 other tracks of a
#: 6-song library the right track's z-score is 2-7; its margin is 0.1-0.3).
USED = (0, 1)


def fit_logistic(X: np.ndarray, y: np.ndarray, w: np.ndarray) -> dict:
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=1e4, max_iter=5000).fit(X[:, USED], y, sample_weight=w)
    coef = np.zeros(X.shape[1])
    coef[list(USED)] = lr.coef_[0]
    return {"coef": [round(float(c), 4) for c in coef], "intercept": round(float(lr.intercept_[0]), 4)}


def pick_threshold(p_out: np.ndarray, target: float) -> float:
    """The lowest threshold (0.01 steps) at which at most ``target`` of the out-of-library hums are confident."""
    for t in np.arange(0.05, 1.0, 0.01):
        if np.mean(p_out >= t) <= target:
            return round(float(t), 2)
    return 0.99


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", required=True, choices=("tune", "check"))
    ap.add_argument("--songs", type=int, default=100, help="songs in the library")
    ap.add_argument("--out", type=int, default=50, help="melodies withheld from the library, hummed")
    ap.add_argument("--hums", type=int, default=2, help="hums per song and per withheld melody")
    ap.add_argument("--target-fmr", type=float, default=0.05, help="tune: out-of-library confident rate")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--work", type=Path, default=Path("/tmp/musicemb-qbh-confidence"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    n = args.songs + args.out
    if args.split == "tune":
        chosen = tune_melodies(n, args.seed)
    else:
        chosen, _ = eval_melodies(n, args.seed)
    order = np.random.default_rng(args.seed).permutation(len(chosen))
    inside = [chosen[i] for i in order[:args.songs]]
    withheld = [chosen[i] for i in order[args.songs:]]
    work = args.work / args.split
    lib_dir, songs = build_library(work, inside, args.seed)
    others = outside_songs(withheld, args.seed)
    hums_in = make_hums(work, songs, args.hums, args.seed + 1)
    hums_out = make_hums(work, others, args.hums, args.seed + 2)
    with Library(lib_dir) as lib:
        track_of_song = {i: lib.track_by_path(s["path"]).id for i, s in enumerate(songs)}
        drive(qbh.iter_build_qbh_index(lib))
        searcher = qbh.HumSearcher.open(lib)
    print(f"{args.split}: {len(songs)} songs, {len(hums_in)} hums in the library, {len(hums_out)} of "
          f"{len(others)} withheld tunes; built in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    rows, fits = [], {}
    for method in METHODS:
        t = time.perf_counter()
        feats, correct, inlib, ranks, conf = [], [], [], [], []
        for h, is_in in [(h, True) for h in hums_in] + [(h, False) for h in hums_out]:
            if args.split == "check":  # as `musicemb hum` runs it: the shipped calibration and threshold
                ranked = searcher.query(h["y"], SR, k=10, method=method)
                conf.append(searcher.is_confident(ranked, method))
            else:
                ranked = searcher.ranked(h["y"], SR, k=10, method=method)
            target = track_of_song[h["song"]] if is_in else None
            ids = [r["track_id"] for r in ranked]
            ranks.append(ids.index(target) + 1 if target in ids[:10] else 10**6)
            inlib.append(is_in)
            if not ranked:
                feats.append(np.zeros(3))
                correct.append(False)
                continue
            feats.append(qbh.confidence_features([r["score"] for r in ranked])[0])
            correct.append(ids[0] == target)
        X, c, li, rk = np.array(feats), np.array(correct), np.array(inlib), np.array(ranks)
        np.savez(work / f"features-{method}.npz", X=X, correct=c, inlib=li, ranks=rk)  # check: of the k best
        if args.split == "tune":
            w = np.where(li, 0.5 / li.sum(), 0.5 / (~li).sum()) * len(li)
            fit = fit_logistic(X, c, w)
            p = qbh.calibrate(X, fit)
            fit["threshold"] = pick_threshold(p[~li], args.target_fmr)
            fits[method] = fit
            cf = p >= fit["threshold"]
        else:
            cf = np.array(conf)
        row = {"split": args.split, "method": method, "songs": len(songs), "hums_in": int(li.sum()),
               "hums_out": int((~li).sum()), "top1": round(float(np.mean(rk[li] == 1)), 3),
               "top10": round(float(np.mean(rk[li] <= 10)), 3),
               "false_match_out": round(float(np.mean(cf[~li])), 3),
               "confident_in": round(float(np.mean(cf[li])), 3),
               "wrong_confident_in": round(float(np.mean(cf[li] & ~c[li])), 3),
               "top1_when_confident": round(float(np.mean(c[li & cf])) if (li & cf).any() else float("nan"), 3),
               "s_per_query": round((time.perf_counter() - t) / len(li), 3)}
        rows.append(row)
        print(row, file=sys.stderr, flush=True)
    if fits:
        print(json.dumps(fits, indent=1))
    write_results(f"qbh-confidence-{args.split}", rows,
                  notes=f"{args.split} split, seed {args.seed}; total {(time.perf_counter() - t0) / 60:.1f} min"
                  + (f"; fit {json.dumps(fits)}" if fits else ""))


if __name__ == "__main__":
    main()
