"""Song re-identification on the shared dev corpus: ingest the 44 real tracks of the queries' three games, embed with a model, identify the
220 degraded 3 s / 5 s queries; top-1/top-2 by length and degradation, on all tracks and on the tracks the
default model never saw in training. Also times import + embed (x real time).

    .venv/bin/python bench/bench_reid.py [--model default] [--hop 1.5] [--work /tmp/musicemb-reid]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import manifest, write_results  # noqa: E402
from bench.train_default import held_out  # noqa: E402
from musicemb_core.common.config import SegmentConfig  # noqa: E402
from musicemb_core.common.progress import drive  # noqa: E402
from musicemb_core.data.ingest import iter_ingest  # noqa: E402
from musicemb_core.data.library import Library  # noqa: E402
from musicemb_core.inference import iter_embed  # noqa: E402
from musicemb_core.search.fingerprints import iter_fingerprint  # noqa: E402
from musicemb_core.search.knn import Searcher  # noqa: E402


def family(track_id: str) -> str:
    """Versions of one piece (frantic / frantic-old) count as the same answer, as the corpus README says."""
    return re.sub(r"(-old)$", "", track_id)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--hop", type=float, default=1.5)
    ap.add_argument("--query-hop", type=float, default=0.5)
    ap.add_argument("--work", type=Path, default=Path("/tmp/musicemb-reid"))
    args = ap.parse_args()
    queries = manifest("reid_dev")
    packages = {q["track_id"].split("__")[0] for q in queries}  # the library: the queries' games (44 tracks)
    tracks = [t for t in manifest("real_dev") if t["track_id"].split("__")[0] in packages]
    lib_dir = args.work / f"lib-hop{args.hop:g}"
    hours = sum(float(t["duration_s"]) for t in tracks) / 3600
    fresh = not (lib_dir / "library.sqlite").exists()
    with Library(lib_dir, create=True) as lib:
        t0 = time.perf_counter()
        drive(iter_ingest(lib, [t["abspath"] for t in tracks], segments=SegmentConfig(3.0, args.hop)))
        t1 = time.perf_counter()
        report = drive(iter_embed(lib, model=args.model))
        t2 = time.perf_counter()
        by_path = {Path(t["abspath"]).resolve(): t["track_id"] for t in tracks}
        tid_of = {t.id: by_path[Path(t.path)] for t in lib.tracks()}
        tf = time.perf_counter()
        drive(iter_fingerprint(lib))
        t_fp = time.perf_counter() - tf
        fused = Searcher(lib, model=args.model)
        plain = Searcher(lib, model=args.model, index=fused.index, use_landmarks=False)
        stats = defaultdict(lambda: [0, 0, 0])
        t3 = time.perf_counter()
        for q in queries:
            qv = fused.embed_file(q["abspath"], hop_s=args.query_hop)
            rankings = {"embedding": plain.identify(qv, top=2), "embedding+landmarks": fused.identify(qv, top=2),
                        "landmarks": [{"track_id": t} for t, _ in sorted(
                            fused.landmark_matches(qv)[0].items(), key=lambda kv: -kv[1])[:2]]}
            truth = family(q["track_id"])
            split = "held-out" if held_out(q["track_id"]) else "seen in training"
            for method, ranked in rankings.items():
                answers = [family(tid_of[r["track_id"]]) for r in ranked]
                hit1, hit2 = bool(answers) and answers[0] == truth, truth in answers[:2]
                for key in (("all", q["dur_s"], "all"), ("all", q["dur_s"], q["degradation"]),
                            (split, q["dur_s"], "all"), (split, q["dur_s"], q["degradation"])):
                    s = stats[(method, *key)]
                    s[0] += 1
                    s[1] += hit1
                    s[2] += hit2
        t4 = time.perf_counter()
    rows = [{"method": k[0], "tracks": k[1], "query_s": k[2], "degradation": k[3], "n": v[0], "top1": v[1] / v[0],
             "top2": v[2] / v[0]} for k, v in sorted(stats.items())]
    timing = {"ingest_x_realtime": hours * 3600 / (t1 - t0) if fresh else None,
              "embed_x_realtime": hours * 3600 / (t2 - t1) if report.computed else None,
              "ingest_plus_embed_x_realtime": hours * 3600 / (t2 - t0) if fresh and report.computed else None,
              "fingerprint_x_realtime": hours * 3600 / t_fp, "query_ms_mean": 1000 * (t4 - t3) / len(queries),
              "segments": report.computed + report.kept}
    print(json.dumps(timing), file=sys.stderr)
    write_results(f"reid_{args.model}_hop{args.hop:g}", rows, notes=f"model {args.model!r}, library segments 3 s "
                  f"every {args.hop:g} s, query sub-tracks every {args.query_hop:g} s, k=10 score vote. "
                  f"Timing: {json.dumps({k: round(v, 1) if v else v for k, v in timing.items()})}")


if __name__ == "__main__":
    main()
