"""Choose how song identification fuses the fingerprint embedding with landmarks, on a *tune* set of queries.

The shared re-identification queries (``bench_reid.py``) come from three check games; this script makes its own
3 s queries the same way (the shared recipe's degradations and parameters, ``../shared/bench/make_reid.py``) from
the tracks of the similarity split's *tune* games, builds a library of those tracks, and scores every fusion rule
of ``musicemb_core.search.knn`` candidates on them: top-1 by degradation.

    .venv/bin/python bench/reid_fusion.py [--per-track 8] [--work /tmp/musicemb-reid-tune]
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import soxr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import SHARED_BENCH, write_results  # noqa: E402
from bench.similarity_data import tracks  # noqa: E402
from musicemb_core.common.progress import drive  # noqa: E402
from musicemb_core.data.library import Library  # noqa: E402
from musicemb_core.features import landmarks as lm  # noqa: E402
from musicemb_core.search import knn  # noqa: E402
from musicemb_core.search.fingerprints import iter_fingerprint  # noqa: E402
from musicemb_core.workflows.ingest_embed import iter_ingest_embed  # noqa: E402

sys.path.insert(0, str(SHARED_BENCH))
import common as shared  # noqa: E402
import make_reid  # noqa: E402

DUR_S = 3.0
GRID = tuple(round(1 + k * 0.005, 3) for k in range(-16, 17))  # query read at 0.92-1.08x its speed


def make_query(path: str, dur: float, deg: str, rng) -> np.ndarray:
    """One degraded 3 s snippet of ``path`` at the shared recipe's rate (as ``make_reid.render``)."""
    p = make_reid.parse_params(make_reid.draw_params(deg, rng))
    sr, n = shared.SR, int(round(DUR_S * shared.SR))
    for _ in range(20):
        start = float(rng.uniform(1.0, dur - 1.05 * DUR_S - 1.0))
        if 20 * np.log10(shared.rms(shared.load_mono(path, sr, start, DUR_S)) + 1e-12) > make_reid.MIN_SNIPPET_DBFS:
            break
    if deg == "speed":
        y = soxr.resample(shared.load_mono(path, sr, start, DUR_S * p["factor"] + 0.1), sr, sr / p["factor"])[:n]
    elif deg == "reverb":
        lead = min(1.0, start)
        x = shared.load_mono(path, sr, start - lead, DUR_S + lead)
        y = shared.apply_reverb(x, shared.reverb_ir(rng, sr, p["rt60_s"]), p["wet"])[int(round(lead * sr)):][:n]
    else:
        x = shared.load_mono(path, sr, start, DUR_S)[:n]
        y = {"white_noise": lambda: shared.add_noise_snr(x, rng.standard_normal(len(x)), p.get("snr_db", 0)),
             "pink_noise": lambda: shared.add_noise_snr(x, shared.pink_noise(len(x), rng), p.get("snr_db", 0)),
             "codec": lambda: make_reid.codec_roundtrip(x, p.get("codec"), p.get("level")),
             "lowpass": lambda: shared.butter_filter(x, "low", p.get("cutoff_hz"), order=8),
             "gain": lambda: x * 10 ** (p.get("gain_db", 0) / 20)}.get(deg, lambda: x)()
    y = np.pad(y, (0, max(0, n - len(y))))
    return (y * min(1.0, 0.999 / max(np.max(np.abs(y)), 1e-9))).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-track", type=int, default=8, help="queries per track (degradations in turn)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/musicemb-reid-tune"))
    args = ap.parse_args()
    rows_ = tracks("tune")
    with Library(args.work / "lib", create=True) as lib:
        drive(iter_ingest_embed(lib, [r["abspath"] for r in rows_], models=("default",)))
        drive(iter_fingerprint(lib))
        tid = {Path(t.path).resolve(): t.id for t in lib.tracks()}
        searcher = knn.Searcher(lib, model="default")
        plain = knn.Searcher(lib, model="default", index=searcher.index, use_landmarks=False)
        results = []  # (degradation, true track, embedding scores {track: score}, landmark matches)
        rng = np.random.default_rng(0)
        degs = make_reid.DEGRADATIONS
        rows_ = [r for r in rows_ if Path(r["abspath"]).resolve() in tid]  # the import skips exact duplicates
        for i, r in enumerate(rows_):
            for j in range(args.per_track):
                deg = degs[(i + j) % len(degs)]
                y = make_query(r["abspath"], float(r["duration_s"]), deg, rng)
                y16 = soxr.resample(y, shared.SR, searcher.embedder.sr).astype(np.float32)
                qv = searcher.embed_audio(y16, hop_s=0.5)
                emb = {x["track_id"]: x["score"] for x in plain.identify(qv, top=50)}
                marks = {}  # speed factor -> matches of the query's landmarks read as if played that much slower
                for g in GRID:
                    q_marks = lm.landmarks(y16, searcher.embedder.sr * g)
                    marks[g] = searcher.landmarks.match(*q_marks) if len(q_marks[0]) else {}
                results.append((deg, tid[Path(r["abspath"]).resolve()], emb, marks))
    grids = {"1": (1.0,)} | {f"+-{int(round(100 * span))} % in {100 * step:g} % steps": tuple(
        g for g in GRID if abs(g - 1) <= span + 1e-9 and abs(round((g - 1) / step) * step - (g - 1)) < 1e-9)
        for span, step in ((0.03, 0.01), (0.05, 0.01), (0.08, 0.01), (0.08, 0.02), (0.05, 0.005), (0.08, 0.005))}
    rules = {("embedding", "1"): "embedding"} | {("landmarks", g): "landmarks" for g in grids} | {
        ("weighted 2:1", g): "weighted" for g in grids}
    table = []
    for (name, grid), mode in rules.items():
        hits = defaultdict(list)
        for deg, truth, emb, marks in results:
            best_marks: dict[int, int] = {}
            for g in grids[grid]:
                for t, c in marks[g].items():
                    best_marks[t] = max(best_marks.get(t, 0), c)
            best = knn.fuse(emb, best_marks, mode=mode)
            hits[deg].append(bool(best) and best[0][0] == truth)
            hits["all"].append(bool(best) and best[0][0] == truth)
        table.append({"rule": name, "speed grid": grid} | {d: round(float(np.mean(v)), 3) for d, v in sorted(hits.items())})
    write_results("reid_fusion_tune", table, notes=f"{len(results)} queries of {DUR_S:g} s from {len(rows_)} "
                  f"tracks of the similarity split's tune games (library = those tracks, model 'default'), the "
                  f"shared recipe's degradations in turn.")


if __name__ == "__main__":
    main()
