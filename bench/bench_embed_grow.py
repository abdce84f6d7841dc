"""Adding a few tracks to a large library: ``embed``'s wall time and peak memory, before and after, in one run.

A DJ's library of ``--tracks`` tracks (20,000 of about 4 minutes by default: 1.6M segments) is written through the
library's own API with made-up vectors for both built-in spaces (nothing is decoded; the audio files do not
exist), then ``--new`` short real tracks are imported. ``iter_embed`` then embeds the new tracks and brings both
spaces up to date (the similarity space is standardised again over the whole library), once with this checkout's
sources and once with a baseline revision's (``git archive``), each in a fresh process on its own copy of the
library, alternating. Reported: wall time, peak resident memory (the process's ``VmHWM``), and whether both
trees stored the same arrays.

    nice .venv/bin/python bench/bench_embed_grow.py [--baseline REV] [--tracks 20000] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import ROOT, write_results  # noqa: E402
from musicemb_core.audio.segment import window_starts  # noqa: E402
from musicemb_core.common.config import SegmentConfig  # noqa: E402
from musicemb_core.common.progress import drive  # noqa: E402
from musicemb_core.data.ingest import iter_ingest  # noqa: E402
from musicemb_core.data.library import Library  # noqa: E402
from musicemb_core.inference import iter_embed  # noqa: E402
from musicemb_core.models.musicnn import TAG_DIM  # noqa: E402
from musicemb_core.models.similarity import N_STATS  # noqa: E402

BASELINE = "0a2182e"  # before the embed's final steps worked in row blocks
TAG_CLIPS = 8

JOB = r"""
import json, sys, time
from musicemb_core.common.progress import drive
from musicemb_core.data.library import Library
from musicemb_core.inference import iter_embed
t0 = time.perf_counter()
with Library(sys.argv[1]) as lib:
    rep = drive(iter_embed(lib))
# VmHWM: this process's own peak (ru_maxrss would report the parent's if larger: it survives fork and exec)
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"wall_s": time.perf_counter() - t0, "computed": rep.computed, "kept": rep.kept,
                  "peak_rss_gb": int(hwm.split()[1]) / 1e6}))
"""


def build(root: Path, n_tracks: int, seconds: float, seed: int = 0) -> int:
    """A library of ``n_tracks`` catalogued tracks with made-up vectors of both spaces; its segment count."""
    rng = np.random.default_rng(seed)
    cfg = SegmentConfig()
    durations = seconds * rng.uniform(0.7, 1.3, n_tracks)
    with Library(root, create=True) as lib:
        lib.set_segment_config(cfg, window_starts)
        with lib.transaction() as c:
            for i, d in enumerate(durations):
                tid = c.execute(
                    "INSERT INTO tracks (path, content_hash, audio_hash, size, mtime, duration_s, sample_rate, "
                    "channels, format, label, added_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (str(root.parent / f"music/t{i:06d}.flac"), f"h{i}", f"a{i}", 1000 + i, 1.0, float(d), 44100, 2,
                     "FLAC", f"style{i % 10}", time.time())).lastrowid
                c.executemany("INSERT INTO segments (track_id, start_s, duration_s) VALUES (?, ?, ?)",
                              [(tid, float(s), float(min(cfg.window_s, d - s))) for s in window_starts(float(d), cfg)])
        seg = lib.segments()
        track_of = np.searchsorted(np.unique(seg["track_id"]), seg["track_id"])
        pre = {}
        for model, dim in (("default", 128), ("similarity", N_STATS)):
            centres = rng.standard_normal((n_tracks, dim)).astype(np.float32)
            V = centres[track_of] + 0.5 * rng.standard_normal((len(track_of), dim)).astype(np.float32)
            if model == "default":
                V /= np.linalg.norm(V, axis=1, keepdims=True)
                pre[model] = (seg["id"], V)
            else:
                tag_tracks = np.repeat(np.unique(seg["track_id"]), TAG_CLIPS)
                pre[model] = (seg["id"], V, tag_tracks,
                              rng.standard_normal((len(tag_tracks), TAG_DIM)).astype(np.float32))
            del V
        drive(iter_embed(lib, precomputed=pre))
        return len(seg["id"])


def new_tracks(folder: Path, n: int) -> list[str]:
    """``n`` 40 s tones with a tremolo and a little noise, as WAV."""
    folder.mkdir(parents=True, exist_ok=True)
    sr, rng, paths = 22050, np.random.default_rng(1), []
    t = np.arange(40 * sr) / sr
    for i in range(n):
        y = 0.2 * np.sin(2 * np.pi * (220 + 40 * i) * t) * (1 + 0.5 * np.sin(2 * np.pi * 2 * t))
        paths.append(str(folder / f"new{i}.wav"))
        sf.write(paths[-1], (y + 0.02 * rng.standard_normal(len(t))).astype(np.float32), sr)
    return paths


def stored_arrays(root: Path) -> dict[str, np.ndarray]:
    """Every array of the newest generation of both spaces' embeddings, by 'space/name'."""
    out = {}
    for space in ("default", "similarity"):
        gen = max((root / "embeddings" / space).glob("g-*"))
        out |= {f"{space}/{f.stem}": np.load(f) for f in sorted(gen.glob("*.npy"))}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", default=BASELINE, help=f"revision measured as 'before' (default {BASELINE})")
    ap.add_argument("--tracks", type=int, default=20000)
    ap.add_argument("--seconds", type=float, default=240.0, help="mean track length (segments of 3 s, hop 3 s)")
    ap.add_argument("--new", type=int, default=5, help="real tracks added before the embed measured")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="musicemb-embed-grow-", dir=args.work))
    try:
        t0 = time.perf_counter()
        n_seg = build(work / "lib", args.tracks, args.seconds)
        with Library(work / "lib") as lib:
            drive(iter_ingest(lib, new_tracks(work / "new", args.new)))
        print(f"library of {args.tracks} tracks, {n_seg} segments in {time.perf_counter() - t0:.0f} s",
              file=sys.stderr)
        base = work / "baseline"
        base.mkdir()
        archive = subprocess.run(["git", "archive", args.baseline, "musicemb_core", "resources"], cwd=ROOT,
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
        trees = {"before": base, "after": ROOT}
        runs: dict[str, list[dict]] = {name: [] for name in trees}
        for rep in range(args.repeat):
            for name, src in trees.items():
                lib = work / f"{name}-{rep}"
                shutil.rmtree(lib, ignore_errors=True)
                shutil.copytree(work / "lib", lib)
                out = subprocess.run([sys.executable, "-c", JOB, str(lib)], env=dict(os.environ, PYTHONPATH=str(src)),
                                     cwd=tempfile.gettempdir(), capture_output=True, text=True, check=True)
                runs[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
                print(name, runs[name][-1], file=sys.stderr)
        a, b = stored_arrays(work / "before-0"), stored_arrays(work / "after-0")
        same = a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = []
    for name in trees:
        best = min(runs[name], key=lambda r: r["wall_s"])
        rows.append({"code": name, "wall_s": round(best["wall_s"], 1),
                     "peak_rss_gb": round(min(r["peak_rss_gb"] for r in runs[name]), 2),
                     "segments_embedded": best["computed"], "vectors_kept": best["kept"]})
    for r in rows:
        r["wall vs before"] = round(r["wall_s"] / rows[0]["wall_s"], 2)
        r["memory vs before"] = round(r["peak_rss_gb"] / rows[0]["peak_rss_gb"], 2)
    write_results("embed-grow", rows, notes=(
        f"{args.tracks} tracks, {n_seg} segments (made-up vectors of both spaces), {args.new} real 40 s tracks "
        f"added; iter_embed in a fresh process per tree, best of {args.repeat}; 'before' = {args.baseline}. "
        f"Stored arrays identical in both trees: {same}."))


if __name__ == "__main__":
    main()
