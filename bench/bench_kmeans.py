"""k-means with k chosen by silhouette over a library's embeddings: every k fitted on every point (the baseline,
``fit_sample`` = all points) against the k compared on a sample and the chosen k fitted once on all points, in one
run. Reported: wall time of each, the k each chose, the final clustering's inertia over every point, and how much
the two clusterings agree (adjusted Rand index).

    nice .venv/bin/python bench/bench_kmeans.py LIB [--model similarity] [--n 400000] [--fit-sample 50000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import write_results  # noqa: E402
from musicemb_core.analysis.clustering import _inertia, iter_kmeans_select  # noqa: E402
from musicemb_core.common.progress import drive  # noqa: E402
from musicemb_core.data.library import Library  # noqa: E402
from musicemb_core.index.faiss_index import normalise  # noqa: E402
from musicemb_core.stored_vectors import load_embeddings  # noqa: E402


def _run(X: np.ndarray, fit_sample: int) -> dict:
    t0 = time.perf_counter()
    r = drive(iter_kmeans_select(X, fit_sample=fit_sample))
    dt = time.perf_counter() - t0
    U = normalise(X)
    centres = np.stack([U[r["labels"] == c].mean(0) for c in range(r["k"])])
    return {"s": dt, "k": r["k"], "labels": r["labels"], "inertia": _inertia(U, centres)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("lib")
    ap.add_argument("--model", default="similarity")
    ap.add_argument("--n", type=int, default=400_000, help="first N segments (default 400,000)")
    ap.add_argument("--fit-sample", type=int, default=50_000)
    a = ap.parse_args()
    with Library(a.lib) as lib:
        X = np.asarray(load_embeddings(lib, a.model).vectors[:a.n], np.float32)
    new = _run(X, a.fit_sample)
    old = _run(X, len(X))
    rows = [{"points": len(X), "version": v, "wall_s": round(r["s"], 1), "k": r["k"],
             "inertia": round(r["inertia"], 1)} for v, r in (("every k on all points", old), ("sampled", new))]
    notes = (f"time ratio sampled / all: {new['s'] / old['s']:.3f}; inertia ratio: "
             f"{new['inertia'] / old['inertia']:.4f}; adjusted Rand index between the two: "
             f"{adjusted_rand_score(old['labels'], new['labels']):.3f}")
    write_results(f"kmeans-{len(X)}", rows, notes=notes)


if __name__ == "__main__":
    main()
