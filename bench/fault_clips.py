"""Fault-injected clips for a tune and a check split, split by game.

The shared corpus's ``faults_dev`` clips come from three games (wesnoth, frozen-bubble, extremetuxracer). This
script cuts the same eight fault kinds, with the shared recipe (``../shared/bench/make_faults.py``: same
parameter ranges, same injection), into 60 s excerpts of other games' tracks: the *tune* split's games (with
``faults_dev``, what thresholds are chosen on) and the *check* split's (:data:`CHECK_GAMES`, the similarity
model's check games less those three: nothing is tuned on them). Clean clips (:data:`CLEAN`) are a third from track openings
(fade-ins, quiet intros), a third ending at the track's end (fade-outs) and a third from anywhere.

    .venv/bin/python bench/fault_clips.py {tune,check} [--per-fault 8] [--clean 128]

Writes ``<corpus>/<split>/faults/*.wav`` and ``<corpus>/<split>/faults_<split>.csv`` (never committed).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import SHARED_BENCH, corpus_dir, manifest  # noqa: E402

DEV_GAMES = ("wesnoth", "frozen-bubble", "extremetuxracer")  # faults_dev's games (part of the tune split)
CHECK_GAMES = ("warzone2100", "nexuiz", "redeclipse", "lincity-ng", "powermanga", "asc")
EXCERPT_S = 60.0
CLEAN = {"tune": 384, "check": 128}  # clean clips per split: the tune split's many, to set thresholds on
FIELDS = ["clip_id", "path", "fault", "params", "track_id", "start_s", "place"]


def _shared():
    """The shared bench's fault recipe (parameters and injection), imported from its folder."""
    sys.path.insert(0, str(SHARED_BENCH))
    import make_faults  # noqa: PLC0415

    return make_faults


def clip_list(split: str, per_fault: int, n_clean: int) -> list[dict]:
    mf = _shared()
    games = [t["label"] for t in manifest("real_dev")]
    chosen = CHECK_GAMES if split == "check" else [g for g in games if g not in CHECK_GAMES + DEV_GAMES]
    tracks = [t for t in manifest("real_dev") if t["label"] in chosen and float(t["duration_s"]) >= EXCERPT_S + 2]
    rng = mf.rng_for("faults", split)
    faults = [f for f in mf.FAULTS for _ in range(per_fault)]
    places = ["start", "end", "any"] * (n_clean // 3 + 1)
    labels = [(f, "any") for f in faults] + [("clean", p) for p in places[:n_clean]]
    labels = [labels[i] for i in rng.permutation(len(labels))]
    order = rng.permutation(len(tracks))
    rows = []
    for i, (fault, place) in enumerate(labels):
        t = tracks[order[i % len(tracks)]]
        dur = float(t["duration_s"])
        start = {"start": 0.0, "end": dur - EXCERPT_S - 0.05}.get(place, rng.uniform(0, dur - EXCERPT_S - 1))
        clip_id = f"fault_{split}_{i:03d}"
        rows.append({"clip_id": clip_id, "path": f"{split}/faults/{clip_id}.wav", "fault": fault,
                     "params": mf.draw_params(fault, rng), "track_id": t["track_id"], "start_s": f"{start:.3f}",
                     "place": place, "src": t["abspath"]})
    return rows


def source_excerpt(row: dict):
    """A clip's audio before its fault was injected: the source track's excerpt, peak-normalised."""
    mf = _shared()
    return mf.peak_normalize(mf.load_mono(row["src"], mf.SR, float(row["start_s"]), EXCERPT_S), mf.PEAK)


def render(rows: list[dict]) -> None:
    mf = _shared()
    base = corpus_dir()
    for r in rows:
        out = base / r["path"]
        if out.exists():
            continue
        x = source_excerpt(r)
        p = dict(kv.split("=", 1) for kv in filter(None, r["params"].split(";")))
        mf.write_wav(str(out), mf.inject(x, r["fault"], p, mf.rng_for("fault-render", r["clip_id"])))


def split_clips(split: str, per_fault: int = 8, n_clean: int | None = None) -> list[dict]:
    """One split's clips (``abspath`` added), rendering any that are missing."""
    rows = clip_list(split, per_fault, n_clean or CLEAN[split])
    render(rows)
    man = corpus_dir() / split / f"faults_{split}.csv"
    with open(man, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    for r in rows:
        r["abspath"] = str(corpus_dir() / r["path"])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("split", choices=("tune", "check"))
    ap.add_argument("--per-fault", type=int, default=8)
    ap.add_argument("--clean", type=int, default=None, help="clean clips (default: 384 tune, 128 check)")
    args = ap.parse_args()
    rows = split_clips(args.split, args.per_fault, args.clean)
    games = sorted({r["track_id"].split("__")[0] for r in rows})
    print(f"{len(rows)} {args.split} clips from {len(games)} games ({', '.join(games)})")


if __name__ == "__main__":
    main()
