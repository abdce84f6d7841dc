"""Index speed and recall on real embeddings: single-query latency (1 OpenMP thread) and recall@10 of HNSW and
IVF-PQ against exact search, flat search as the baseline in the same run.

    .venv/bin/python bench/bench_index.py LIB [--model default] [--queries 1000]

LIB: a library already embedded (e.g. the one bench_reid.py builds with --hop 0.25).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import write_results  # noqa: E402
from musicemb_core.data.library import Library  # noqa: E402
from musicemb_core.index import EmbeddingIndex  # noqa: E402
from musicemb_core.stored_vectors import load_embeddings  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("lib")
    ap.add_argument("--model", default="default")
    ap.add_argument("--queries", type=int, default=1000)
    args = ap.parse_args()
    with Library(args.lib) as lib:
        emb = load_embeddings(lib, args.model)
    X = np.asarray(emb.vectors, dtype=np.float32)
    rng = np.random.default_rng(0)
    held = rng.choice(len(X), min(args.queries, len(X) // 10), replace=False)  # queries are not in the index
    base = np.setdiff1d(np.arange(len(X)), held)
    Q = X[held]
    exact = EmbeddingIndex("flat").fit(X[base], base)
    _, truth = exact.search(Q, 10, threads=2)
    rows = []
    for kind, params in [("flat", {}), ("hnsw", {}), ("hnsw", {"ef_search": 64}), ("ivfpq", {"pq_m": 16})]:
        t0 = time.perf_counter()
        index = EmbeddingIndex(kind, **params).fit(X[base], base)
        build = time.perf_counter() - t0
        lat, got = [], []
        for q in Q:
            t = time.perf_counter()
            got.append(index.search(q[None], 10, threads=1)[1][0])
            lat.append(time.perf_counter() - t)
        recall = np.mean([len(set(g) & set(t)) / 10 for g, t in zip(got, truth, strict=True)])
        rows.append({"index": kind + (f" {params}" if params else ""), "vectors": len(base), "dim": X.shape[1],
                     "build_s": build, "query_ms_median": 1000 * statistics.median(lat), "recall@10": recall})
        print(rows[-1], file=sys.stderr)
    flat_ms = rows[0]["query_ms_median"]
    for r in rows:
        r["speed_vs_flat"] = flat_ms / r["query_ms_median"]
    write_results(f"index_{len(base)}", rows, notes="single queries, 1 OpenMP thread; queries are held-out real "
                  "embeddings of the dev corpus; recall against exact (flat) search.")


if __name__ == "__main__":
    main()
