"""Choose how song identification fuses the fingerprint embedding with landmarks, on a *tune* set of queries.

The shared re-identification queries (``bench_reid.py``) come from three check games; this script makes its own
3 s queries the same way (the shared recipe's degradations and parameters, ``../shared/bench/make_reid.py``) from
the tracks of the similarity split's *tune* games, builds a library of those tracks, and scores every fusion rule
of ``musicemb_core.search.knn`` candidates on them: top-1 by degradation. ``--mix noisy`` draws the harder
degradations more often (pink noise 4 in 10, white noise and reverb 2, codec and low-pass 1), where the rules
differ.

    .venv/bin/python bench/reid_fusion.py [--per-track 8] [--mix recipe|noisy] [--work /tmp/musicemb-reid-tune]
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


def speed(half_percents: int) -> float:
    return round(1 + half_percents / 200, 3)


GRID = tuple(speed(k) for k in range(-16, 17))  # the query read at 0.92-1.08x its speed, in 0.5 % steps
NOISY = ("pink_noise",) * 4 + ("white_noise",) * 2 + ("reverb",) * 2 + ("codec", "lowpass")


def weighted(emb: dict[int, float], marks: dict[int, int]) -> list[tuple[int, float]]:
    """``knn.fuse`` without its decisive-landmarks rule: (embedding score + 2 x landmark confidence) / 3."""
    scores = {t: (emb.get(t, 0.0) + 2 * knn.landmark_confidence(marks.get(t, 0))) / 3 for t in set(emb) | set(marks)}
    return sorted(scores.items(), key=lambda kv: (-kv[1], -marks.get(kv[0], 0)))


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
    ap.add_argument("--mix", choices=("recipe", "noisy"), default="recipe", help="which degradations, in turn")
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
        rng = np.random.default_rng(0 if args.mix == "recipe" else 1)
        degs = make_reid.DEGRADATIONS if args.mix == "recipe" else NOISY
        rows_ = [r for r in rows_ if Path(r["abspath"]).resolve() in tid]  # the import skips exact duplicates
        for i, r in enumerate(rows_):
            for j in range(args.per_track):
                deg = degs[(i + j) % len(degs)]
                y = make_query(r["abspath"], float(r["duration_s"]), deg, rng)
                y16 = soxr.resample(y, shared.SR, searcher.embedder.sr).astype(np.float32)
                emb = {x["track_id"]: x["score"] for x in plain.identify(plain.embed_audio(y16), top=50)}
                marks = {}  # speed factor -> matches of the query's landmarks read as if played that much slower
                for g in GRID:
                    q_marks = lm.landmarks(y16, searcher.embedder.sr * g)
                    marks[g] = searcher.landmarks.match(*q_marks) if len(q_marks[0]) else {}
                results.append((deg, tid[Path(r["abspath"]).resolve()], emb, marks))
    grids = {"1": (1.0,)} | {f"+-{span / 2:g} % in {step / 2:g} % steps": tuple(  # in half-percent units
        speed(k) for k in range(-span, span + 1, step)) for span, step in ((6, 2), (10, 2), (16, 2), (16, 4),
                                                                          (10, 1), (16, 1))}
    rules = [("embedding", "1")] + [(name, g) for name in ("landmarks", "weighted 2:1", "weighted 2:1, decisive "
                                                           "landmarks (shipped)") for g in grids]
    table = []
    for name, grid in rules:
        hits = defaultdict(list)
        for deg, truth, emb, marks in results:
            best_marks: dict[int, int] = {}
            for g in grids[grid]:
                for t, c in marks[g].items():
                    best_marks[t] = max(best_marks.get(t, 0), c)
            best = (sorted(emb.items(), key=lambda kv: -kv[1]) if name == "embedding" else
                    sorted(best_marks.items(), key=lambda kv: -kv[1]) if name == "landmarks" else
                    weighted(emb, best_marks) if name == "weighted 2:1" else knn.fuse(emb, best_marks))
            hits[deg].append(bool(best) and best[0][0] == truth)
            hits["all"].append(bool(best) and best[0][0] == truth)
        table.append({"rule": name, "speed grid": grid} | {d: round(float(np.mean(v)), 3) for d, v in sorted(hits.items())})
    write_results(f"reid_fusion_tune{'_noisy' * (args.mix == 'noisy')}", table, notes=(
        f"{len(results)} queries of {DUR_S:g} s from {len(rows_)} tracks of the similarity split's tune games "
        "(library = those tracks, model 'default'), " + ("the shared recipe's degradations in turn." if args.mix ==
                                                         "recipe" else f"degradations in turn: {', '.join(NOISY)}.")))


if __name__ == "__main__":
    main()
