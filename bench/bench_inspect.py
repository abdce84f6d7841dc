"""Inspection on the shared dev corpus.

1. Faults: the 128 one-minute clips of ``faults_dev`` (64 clean, 8 per fault) imported as one library and
   inspected for signal faults; a clip counts as flagged with a kind if any of its segments has a finding of
   that kind. Per-fault precision / recall / F1, macro-F1, false alarms on clean clips, speed. A clip cut from a
   source that itself carries a steady DC offset (measured before injection) has that fault too.
2. Labels: the real tracks of the similarity split's tune games and, apart, its check games, labelled by game
   (styles that overlap), embedded with the similarity model; 10 % of the track labels flipped to another game
   (several seeds); precision of the top-k track label findings and of the top-k of all label findings as the
   user sees them (k = number flipped). Also how many outlier and duplicate findings the clean labels give.

    .venv/bin/python bench/bench_inspect.py [--work /tmp/musicemb-inspect] [--seeds 5] [--hop 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import RESULTS, manifest, write_results  # noqa: E402
from bench.fault_clips import source_excerpt, split_clips  # noqa: E402
from bench.similarity_data import SPLITS as LABEL_SPLITS  # noqa: E402
from musicemb_core.analysis.faults import KINDS as FAULT_KINDS  # noqa: E402
from musicemb_core.analysis.faults import THRESHOLDS  # noqa: E402
from musicemb_core.analysis.inspection import label_issues  # noqa: E402
from musicemb_core.common.config import SegmentConfig  # noqa: E402
from musicemb_core.common.progress import drive  # noqa: E402
from musicemb_core.data.ingest import iter_ingest  # noqa: E402
from musicemb_core.data.library import Library  # noqa: E402
from musicemb_core.inference import iter_embed  # noqa: E402
from musicemb_core.stored_vectors import SIMILARITY_MODEL as MODEL  # noqa: E402
from musicemb_core.stored_vectors import load_embeddings  # noqa: E402
from musicemb_core.workflows.evaluate import segment_labels  # noqa: E402
from musicemb_core.workflows.inspect import iter_inspect  # noqa: E402


def bench_faults(work: Path, hop: float, split: str) -> tuple[list[dict], dict]:
    clips = manifest("faults_dev") + split_clips("tune") if split == "tune" else split_clips("check")
    with Library(work / f"faults-{split}-hop{hop:g}", create=True) as lib:
        drive(iter_ingest(lib, [c["abspath"] for c in clips], segments=SegmentConfig(3.0, hop), jobs=1))
        t0 = time.perf_counter()
        report = drive(iter_inspect(lib, kinds=list(FAULT_KINDS)))
        dt = time.perf_counter() - t0
        hours = sum(t.duration_s for t in lib.tracks()) / 3600
        path_of = {t.id: t.path for t in lib.tracks()}
    found = defaultdict(Counter)
    for f in report.findings:
        found[path_of[f["track_id"]]][f["kind"]] += 1
    # clips whose audio is byte-identical (two clean clips cut from the same track's opening) are one library
    # track: each is counted once, under the path the library keeps
    kept = {str(Path(p).resolve()) for p in path_of.values()}
    truth = {p: c["fault"] for c in clips if (p := str(Path(c["abspath"]).resolve())) in kept}
    # Some sources really carry a DC offset (singularity's, redeclipse's track_07: a steady mean of 0.07-0.2 FS
    # over the whole minute): a clip cut from one has that fault whatever was injected, so a dc_offset finding
    # there is right. Measured on the excerpt before injection (the clip itself for faults_dev's clean clips).
    natural_dc = {p for c in clips if (p := str(Path(c["abspath"]).resolve())) in kept
                  and abs(_source_mean(c)) >= THRESHOLDS["dc_offset"]}

    def has(p: str, kind: str) -> bool:
        return truth[p] == kind or (kind == "dc_offset" and p in natural_dc)

    rows, f1s = [], []
    for kind in FAULT_KINDS:
        tp = sum(1 for p in truth if has(p, kind) and found[p][kind])
        fp = sum(1 for p in truth if not has(p, kind) and found[p][kind])
        fn = sum(1 for p in truth if has(p, kind) and not found[p][kind])
        prec, rec = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
        f1 = 2 * prec * rec / max(prec + rec, 1e-9)
        f1s.append(f1)
        rows.append({"fault": kind, "threshold": THRESHOLDS[kind], "clips": tp + fn, "tp": tp, "fp": fp, "fn": fn,
                     "precision": prec, "recall": rec, "f1": f1,
                     "false_positive_from": ", ".join(sorted({truth[p] for p in truth
                                                              if not has(p, kind) and found[p][kind]}))})
    clean = [p for p, t in truth.items() if t == "clean"]
    flagged = [p for p in clean if found[p]]
    alarms = [p for p in flagged if any(not has(p, k) for k in found[p])]
    place = {str(Path(c["abspath"]).resolve()): c.get("place", "any") for c in clips}
    summary = {"macro_f1": float(np.mean(f1s)), "clean_clips": len(clean), "clean_false_alarms": len(alarms),
               "false_alarm_rate": len(alarms) / len(clean),
               "clean_flagged_at_all": len(flagged), "flagged_at_all_rate": len(flagged) / len(clean),
               "clips_with_natural_dc": len(natural_dc),
               "clean_with_natural_dc": sum(p in natural_dc for p in clean),
               "false_alarm_kinds": dict(sum((Counter(k for k in found[p] if not has(p, k)) for p in alarms),
                                             Counter())),
               "false_alarms_by_place": dict(Counter(place[p] for p in alarms)),
               "false_alarm_clips": sorted(f"{Path(p).stem}: {','.join(sorted(found[p]))} ({place[p]})"
                                           for p in alarms),
               "hours": hours, "seconds": dt, "x_realtime": hours * 3600 / dt, "failed": report.failed}
    rows.append({"fault": "all (macro)", "threshold": "", "clips": len(truth) - len(clean), "tp": "", "fp": "",
                 "fn": "", "precision": float(np.mean([r["precision"] for r in rows])),
                 "recall": float(np.mean([r["recall"] for r in rows])), "f1": summary["macro_f1"],
                 "false_positive_from": f"clean clips falsely flagged: {len(alarms)}/{len(clean)}"})
    return rows, summary


def _source_mean(clip: dict) -> float:
    """Mean (full scale) of a clip's audio before its fault was injected; 0 where that is unknown (faults_dev's
    fault clips, whose sources the shared manifest does not name)."""
    if "src" in clip:
        return float(np.mean(source_excerpt(clip)))
    return float(np.mean(sf.read(clip["abspath"], dtype="float32")[0])) if clip["fault"] == "clean" else 0.0


def bench_labels(work: Path, hop: float, seeds: int, split: str) -> tuple[list[dict], dict]:
    tracks = [t for t in manifest("real_dev") if t["label"] in LABEL_SPLITS[split]]
    label_of = {str(Path(t["abspath"]).resolve()): t["label"] for t in tracks}
    names = sorted(set(label_of.values()))
    rows, extra = [], {"games": names}
    with Library(work / f"labels-{split}-hop{hop:g}", create=True) as lib:
        drive(iter_ingest(lib, [t["abspath"] for t in tracks], segments=SegmentConfig(3.0, hop), jobs=1,
                          analyse=False))
        t0 = time.perf_counter()
        drive(iter_embed(lib))
        extra["embed_s"] = time.perf_counter() - t0
        ids = [t.id for t in lib.tracks()]
        path_of = {t.id: t.path for t in lib.tracks()}
        for tid in ids:
            lib.set_label(tid, label_of[path_of[tid]])
        t0 = time.perf_counter()
        clean = drive(iter_inspect(lib, model=MODEL, kinds=["label", "outlier", "duplicate"]))
        extra["inspect_embeddings_s"] = time.perf_counter() - t0
        kinds = Counter(f["kind"] for f in clean.findings)
        extra["clean_labels"] = {"label_tracks": sum(1 for f in clean.findings if f["kind"] == "label"
                                                     and f["segment_id"] is None),
                                 "label_segments": sum(1 for f in clean.findings if f["kind"] == "label"
                                                       and f["segment_id"] is not None),
                                 "outlier": kinds["outlier"], "duplicate": kinds["duplicate"],
                                 "segments": int(len(lib.segments()["id"])),
                                 "duplicate_pairs": sorted({(Path(path_of[f["track_id"]]).stem,
                                                             Path(f["details"]["other_path"]).stem)
                                                            for f in clean.findings if f["kind"] == "duplicate"})}
        n_flip = max(1, round(0.1 * len(ids)))
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            flipped = {int(t) for t in rng.choice(ids, n_flip, replace=False)}
            for tid in flipped:
                given = label_of[path_of[tid]]
                lib.set_label(tid, str(rng.choice([n for n in names if n != given])))
            report = drive(iter_inspect(lib, model=MODEL, kinds=["label"]))
            by_method = method_precision(lib, flipped, n_flip)
            every = sorted(report.findings, key=lambda f: -f["score"])  # what a user sees, segment findings too
            ranked = [f for f in every if f["segment_id"] is None]
            hits = sum(f["track_id"] in flipped for f in ranked[:n_flip])
            right = sum(1 for f in ranked if f["track_id"] in flipped
                        and f["details"]["suggested"] == label_of[path_of[f["track_id"]]])
            rows.append({"seed": seed, "tracks": len(ids), "flipped": n_flip, "track_findings": len(ranked),
                         "segment_findings": len(every) - len(ranked), "precision_at_k": hits / n_flip,
                         "precision_at_k_all_findings": sum(f["track_id"] in flipped for f in every[:n_flip]) / n_flip,
                         "recall_all_findings": sum(f["track_id"] in flipped for f in ranked) / n_flip,
                         "suggested_right": right, **by_method,
                         "flipped_tracks": ", ".join(sorted(Path(path_of[t]).stem for t in flipped))})
            for tid in flipped:
                lib.set_label(tid, label_of[path_of[tid]])
    extra["mean_precision_at_k"] = float(np.mean([r["precision_at_k"] for r in rows]))
    extra["mean_precision_at_k_all_findings"] = float(np.mean([r["precision_at_k_all_findings"] for r in rows]))
    return rows, extra


def method_precision(lib: Library, flipped: set[int], k: int) -> dict:
    """Precision of the k highest track label scores for each source of out-of-fold probabilities."""
    emb = load_embeddings(lib, MODEL)
    seg = lib.segments()
    pos = {int(s): i for i, s in enumerate(seg["id"])}
    tids = seg["track_id"][[pos[int(i)] for i in emb.ids]]
    labels, _ = segment_labels(lib, tids)
    out = {}
    for method in ("logistic", "knn", "ensemble"):
        res = label_issues(np.asarray(emb.vectors), labels, tids, method=method)
        top = res["tracks"][np.argsort(-res["track_score"], kind="stable")[:k]]
        out[f"p_at_k_{method}"] = sum(int(t) in flipped for t in top) / k
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/musicemb-inspect"))
    ap.add_argument("--hop", type=float, default=3.0, help="segment hop (window 3 s)")
    ap.add_argument("--seeds", type=int, default=5, help="label-flip repetitions")
    ap.add_argument("--skip-labels", action="store_true")
    ap.add_argument("--skip-faults", action="store_true")
    ap.add_argument("--label-splits", default="tune,check", help="which label splits (by game) to run")
    ap.add_argument("--fault-splits", default="tune,check", help="which fault splits to run")
    args = ap.parse_args()
    summary = {}
    if not args.skip_faults:
        for split in args.fault_splits.split(","):
            summary[f"faults_{split}"] = run_faults(args, split)
    if not args.skip_labels:
        for split in args.label_splits.split(","):
            label_rows, extra = bench_labels(args.work, args.hop, args.seeds, split)
            write_results(f"inspect_labels_{split}", label_rows, notes=(
                f"{split} games ({', '.join(extra['games'])}), labels = game, similarity model, 10 % of track "
                f"labels flipped: mean precision@k {extra['mean_precision_at_k']:.3f} over track findings, "
                f"{extra['mean_precision_at_k_all_findings']:.3f} over all label findings as listed, over "
                f"{args.seeds} seeds (p_at_k_*: each source of out-of-fold probabilities alone). With the true "
                f"labels: {json.dumps(extra['clean_labels'])}"))
            summary[f"labels_{split}"] = extra
    (RESULTS / "inspect_summary.json").write_text(json.dumps(summary, indent=2, default=str))


def run_faults(args, split: str) -> dict:
    fault_rows, fault_summary = bench_faults(args.work, args.hop, split)
    source = ("tune split: faults_dev + clips of 14 more games (bench/fault_clips.py; thresholds chosen on these)"
              if split == "tune" else "check split: clips of 6 other games (bench/fault_clips.py; nothing was "
              "tuned on them)")
    write_results(f"inspect_faults_{split}", fault_rows, notes=(
        f"{source}: macro-F1 {fault_summary['macro_f1']:.3f}, false alarms on clean clips "
        f"{fault_summary['clean_false_alarms']}/{fault_summary['clean_clips']} "
        f"({100 * fault_summary['false_alarm_rate']:.1f} %: flagged with a fault their audio does not carry; "
        f"{fault_summary['clean_flagged_at_all']} flagged at all, {100 * fault_summary['flagged_at_all_rate']:.1f} "
        f"%, counting the DC offset of the {fault_summary['clean_with_natural_dc']} clean clips whose source "
        f"really carries one), {fault_summary['clips_with_natural_dc']} clips cut from audio with a DC offset of "
        f"0.05 FS or more (a dc_offset finding there is right), fault scan {fault_summary['x_realtime']:.0f}x real time "
        f"({fault_summary['hours']:.2f} h in {fault_summary['seconds']:.0f} s), 3 s segments every {args.hop:g} s. "
        "A clip is flagged with a kind if any of its segments is."))
    return fault_summary


if __name__ == "__main__":
    main()
