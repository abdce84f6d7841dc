"""Helpers for benchmark scripts: the shared dev corpus, timing, and writing JSON + a Markdown table."""

from __future__ import annotations

import csv
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_BENCH = ROOT.parent / "shared" / "bench"
RESULTS = ROOT / "bench" / "results"


def corpus_dir() -> Path:
    return Path(os.environ.get("BENCH_CACHE", Path.home() / ".cache" / "musicemb-bench"))


def manifest(name: str) -> list[dict]:
    """Rows of ``../shared/bench/manifests/<name>.csv`` with an absolute ``abspath``; exits if the corpus is absent."""
    path = SHARED_BENCH / "manifests" / f"{name}.csv"
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    base = corpus_dir()
    for r in rows:
        r["abspath"] = str(base / (r.get("relpath") or r.get("path")))
    missing = [r["abspath"] for r in rows if not Path(r["abspath"]).exists()]
    if missing:
        raise SystemExit(f"dev corpus incomplete ({len(missing)} files missing, e.g. {missing[0]}); "
                         f"build it with: bash {SHARED_BENCH / 'build.sh'}")
    return rows


def best_of(fn, *, repeat: int = 5) -> float:
    """Median wall time of ``fn()`` over ``repeat`` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def write_results(name: str, rows: list[dict], *, notes: str = "") -> Path:
    """Save ``rows`` as ``bench/results/<name>.json`` and ``.md``; print the Markdown table."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {"machine": platform.node(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "date": time.strftime("%Y-%m-%d %H:%M")}
    (RESULTS / f"{name}.json").write_text(json.dumps({"meta": meta, "rows": rows, "notes": notes}, indent=2))
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(r[c]) for c in cols) + " |" for r in rows]
    md = "\n".join(lines) + (f"\n\n{notes}\n" if notes else "\n")
    (RESULTS / f"{name}.md").write_text(md)
    print(md)
    return RESULTS / f"{name}.md"


def _fmt(v) -> str:
    return f"{v:,.3g}" if isinstance(v, float) else str(v)
