"""Where query by humming loses, on the *tune* split: melody extraction or alignment.

Every hum of ``bench/qbh_tune.py``'s songs (the same songs, hums and seed) is aligned against every song's line,
for four lines: the extractor's stored melody, the stored top voice, the better of the two (what the search does,
without the embedding's bonus), and the song's true melody (the rendered score's notes: an oracle extractor).
The gap between the shipped and the oracle rows is what better extraction could win; the oracle's own misses
are the hum side's and the alignment's. Also each stored line's frame accuracy (pitch class of the true melody).

    .venv/bin/python bench/qbh_oracle.py [--songs 100 --fourpart 40] [--work /tmp/musicemb-qbh-tune]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.bench_qbh import SR  # noqa: E402
from bench.common import write_results  # noqa: E402
from bench.qbh_check import hum_excerpts  # noqa: E402
from bench.qbh_confidence import tune_melodies  # noqa: E402
from bench.qbh_tune import render, render_fourpart  # noqa: E402
from musicemb_core.common.progress import drive  # noqa: E402
from musicemb_core.data import soundfont_songs as sfs  # noqa: E402
from musicemb_core.data.ingest import iter_ingest  # noqa: E402
from musicemb_core.data.library import Library  # noqa: E402
from musicemb_core.search import qbh  # noqa: E402
from musicemb_core.search.melody_align import align, prepare_query  # noqa: E402

LINES = ("melody", "top voice", "better of both (shipped)", "true melody (oracle)")


def true_chroma(timeline: np.ndarray, n_frames: int, frame_rate: float) -> np.ndarray:
    """(n_frames, 12): 1 at the pitch class of the melody note sounding in each frame."""
    C = np.zeros((n_frames, 12))
    for on, dur, pitch in timeline[:, :3]:
        a = int(on * frame_rate)
        C[a:max(a + 1, int((on + dur) * frame_rate)), int(pitch) % 12] = 1.0
    return C


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--songs", type=int, default=100)
    ap.add_argument("--fourpart", type=int, default=40)
    ap.add_argument("--hums", type=int, default=2)
    ap.add_argument("--seed", type=int, default=41)
    ap.add_argument("--soundfont", default=str(next(iter(sfs.find_soundfonts(sfs.TUNE_SOUNDFONTS)), "")))
    ap.add_argument("--work", type=Path, default=Path("/tmp/musicemb-qbh-tune"))
    args = ap.parse_args()
    if not args.soundfont or not sfs.fluidsynth_available():
        raise SystemExit("needs fluidsynth and sf_GMbank.sf2: apt-get install -y fluidsynth csound-soundfont")
    chosen = tune_melodies(args.songs + 40, args.seed)  # qbh_tune's draw: the same songs for the same seed
    songs = render(args, chosen[:args.songs]) + (render_fourpart(args) if args.fourpart else [])
    with Library(args.work / "lib", create=True) as lib:
        drive(iter_ingest(lib, [s["path"] for s in songs]))
        ids = [lib.track_by_path(s["path"]).id for s in songs]
        searcher = qbh.HumSearcher.open(lib)
    fr = searcher.model.cfg.frame_rate
    lines = {name: [] for name in LINES}
    frame_acc = []
    for s, t in zip(songs, ids, strict=True):
        mel, top = searcher.melodies.chroma(t), searcher.melodies.top_chroma(t)
        truth = true_chroma(s["timeline"], len(mel), fr)
        lines["melody"].append(mel)
        lines["top voice"].append(top)
        lines["true melody (oracle)"].append(truth)
        on = truth.sum(1) > 0
        frame_acc.append((s["style"], *(float(np.mean(x[on].argmax(1) == truth[on].argmax(1))) for x in (mel, top))))
    hums = []
    for i, s in enumerate(songs):
        for h in hum_excerpts(s["timeline"], args.hums, [args.seed, 1, i]):
            q = prepare_query(searcher.hum_contour(h["y"], SR))
            if q is None:  # nothing pitched heard: a miss for every line
                hums.append((s["style"], dict.fromkeys(LINES, 10**6)))
                continue
            sc = {n: np.array([align(q, lines[n][j]).score for j in range(len(songs))]) for n in LINES if lines[n]}
            sc["better of both (shipped)"] = np.maximum(sc["melody"], sc["top voice"])
            hums.append((s["style"], {n: int((v > v[i]).sum()) + 1 for n, v in sc.items()}))
        print(f"{i + 1}/{len(songs)} songs", file=sys.stderr, flush=True)
    rows = []
    for style in [*sorted({h[0] for h in hums}), "all"]:
        part = [r for st, r in hums if style in ("all", st)]
        acc = [a for a in frame_acc if style in ("all", a[0])]
        for n in LINES:
            ranks = np.array([r[n] for r in part])
            rows.append({"style": style, "line": n, "hums": len(part), "top1": round(float(np.mean(ranks == 1)), 3),
                         "top10": round(float(np.mean(ranks <= 10)), 3),
                         "frame_accuracy": round(float(np.mean([a[1 + LINES.index(n)] for a in acc])), 3)
                         if n in LINES[:2] else None})
    write_results("qbh-tune-oracle", rows, notes=(
        f"Tune split (development figures), seed {args.seed}: {len(songs)} songs ({Path(args.soundfont).name}), "
        f"{len(hums)} hums; rank of the hummed song when every song is scored by one line's alignment alone. "
        "frame_accuracy: share of the true melody's frames where the line's most likely pitch class is the "
        "melody's."))


if __name__ == "__main__":
    main()
