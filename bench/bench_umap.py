"""UMAP map speed at library scale (DESIGN.md: 100k points in under 2 min, new segments placed with
``transform()``): the app's map of 100k segments fitted, 10k new segments placed, against PCA of the same
vectors and UMAP with its spectral start (the code before) in the same run, and how well each map keeps the
vectors' own 15 nearest neighbours.

    .venv/bin/python bench/bench_umap.py [--n 100000] [--new 10000] [--no-spectral]

The vectors are synthetic but shaped like embeddings (1,000 clusters in a 16-d subspace of 128-d, noise on top,
unit length): random vectors have no neighbourhoods for UMAP to keep. Writes bench/results/umap.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from musicemb_core.analysis import projection  # noqa: E402
from musicemb_core.analysis.projection import Projector  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def vectors(n: int, *, dim: int = 128, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lift = rng.normal(size=(16, dim)).astype(np.float32)
    centres = rng.normal(size=(1000, 16)).astype(np.float32) * 3
    X = (centres[rng.integers(0, 1000, n)] + rng.normal(size=(n, 16)).astype(np.float32)) @ lift
    X += 0.5 * rng.normal(size=X.shape).astype(np.float32)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def kept_neighbours(X: np.ndarray, xy: np.ndarray, *, sample: int = 1000, k: int = 15, seed: int = 1) -> float:
    """Mean share of each sampled point's k nearest vectors (cosine) among its k nearest map points."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(X), sample, replace=False)
    shared = []
    for r in rows:
        near_v = np.argpartition(-(X @ X[r]), k + 1)[:k + 1]
        near_m = np.argpartition(((xy - xy[r]) ** 2).sum(1), k + 1)[:k + 1]
        shared.append((len(set(near_v) & set(near_m)) - 1) / k)
    return float(np.mean(shared))


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--new", type=int, default=10_000)
    ap.add_argument("--spectral", action=argparse.BooleanOptionalAction, default=True,
                    help="also fit with UMAP's spectral start (the code before), in the same run")
    args = ap.parse_args()
    X, new = vectors(args.n), vectors(args.new, seed=2)
    Projector("umap").fit(X[:500])  # numba compiles UMAP's code once (cached on disk): not part of the map's time
    pca, pca_s = timed(lambda: Projector("pca").fit(X))
    umap, umap_s = timed(lambda: Projector("umap").fit(X))
    _, place_s = timed(lambda: umap.transform(new))
    result = {"points": args.n, "umap fit (s)": round(umap_s, 1), "pca fit (s)": round(pca_s, 2),
              "umap / pca": round(umap_s / pca_s, 1), f"umap transform of {args.new} new points (s)": round(place_s, 1),
              "15-NN kept, umap": round(kept_neighbours(X, umap.embedding_), 3),
              "15-NN kept, pca": round(kept_neighbours(X, pca.embedding_), 3)}
    if args.spectral:
        projection.SPECTRAL_UP_TO = args.n  # the code before: UMAP's spectral start at every size
        spectral, spectral_s = timed(lambda: Projector("umap").fit(X))
        result |= {"umap fit, spectral start (s)": round(spectral_s, 1),
                   "15-NN kept, umap with the spectral start": round(kept_neighbours(X, spectral.embedding_), 3)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "umap.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
