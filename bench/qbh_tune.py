"""Query by humming on the *tune* split: where the QBH recipe's choices (training data mix, steps) are made.
Never the check split (``bench/qbh_check.py``), which stays for one final measurement.

- Melodies of the training collections (ryansMammoth, German Essen) that the built-in recipe does not draw, none
  sharing its opening with a drawn one (``bench/qbh_confidence.py``'s ``tune_melodies``);
- songs rendered by FluidSynth with ``sf_GMbank`` (Debian csound-soundfont: no training rendering uses it) in the
  accompaniment figures training never draws (``musicemb_core.data.soundfont_songs.TUNE_FIGURES``): a
  passing-note hymn (four parts, the melody on top), ``tresillo`` block chords, ``fingerpick`` and ``strum``
  guitars; ``octaves`` bass or none; ``bossa`` drums or none;
- hums as the check split's (6-15 s from any note, male/female, "mmm"/"la"/"da"/"dum") and hums of tunes left out
  of the library (false matches: a confident answer to one).

Several models are measured on the same songs and hums (``--models``: names or model folders).

    .venv/bin/python bench/qbh_tune.py [--songs 100 --hums 2 --out 40] [--models qbh-default /tmp/other-model]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.bench_qbh import SR  # noqa: E402
from bench.common import write_results  # noqa: E402
from bench.qbh_check import false_matches, hum_excerpts, summarise  # noqa: E402
from bench.qbh_confidence import tune_melodies  # noqa: E402
from bench.qbh_fourpart import fourpart_pieces  # noqa: E402
from bench.qbh_fourpart import render_fourpart as render_fourpart_song  # noqa: E402
from musicemb_core.common.progress import drive  # noqa: E402
from musicemb_core.data import soundfont_songs as sfs  # noqa: E402
from musicemb_core.data.hum_synthesis import ALL_SYLLABLES  # noqa: E402
from musicemb_core.data.ingest import iter_ingest  # noqa: E402
from musicemb_core.data.library import Library  # noqa: E402
from musicemb_core.search import qbh  # noqa: E402


def render(args, melodies) -> list[dict]:
    """The library's songs (rendered once per work folder and seed, then read back)."""
    audio = args.work / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    meta_path = audio / f"songs-{args.seed}-{len(melodies)}.json"
    if meta_path.exists():
        songs = json.loads(meta_path.read_text())
        return [{**s, "timeline": np.array(s["timeline"])} for s in songs]
    songs, batch = [], 10
    for a in range(0, len(melodies), batch):
        ms = melodies[a:a + batch]
        seeds = [args.seed * 1000 + a + k for k in range(len(ms))]
        for k, (y, tl, arr) in enumerate(sfs.render_songs(ms, seeds, soundfont=args.soundfont, sr=SR, max_s=40.0,
                                                          split="tune")):
            path = audio / f"song{a + k:03d}.flac"
            sf.write(path, y, SR, subtype="PCM_16")
            songs.append({"path": str(path.resolve()), "melody": ms[k].name, "style": arr.harmony,
                          "bass": arr.bass, "drums": arr.drums, "timeline": tl.tolist()})
    meta_path.write_text(json.dumps(songs))
    return [{**s, "timeline": np.array(s["timeline"])} for s in songs]


def render_fourpart(args) -> list[dict]:
    """The library's four-part songs (``bench/qbh_fourpart.py``), rendered once per work folder and seed."""
    audio = args.work / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    meta_path = audio / f"fourpart-{args.seed}-{args.fourpart}.json"
    if not meta_path.exists():
        songs = []
        for i, voices in enumerate(fourpart_pieces(args.fourpart, args.seed)):
            y, tl, facts = render_fourpart_song(voices, args.seed * 1000 + 500 + i, soundfont=args.soundfont, sr=SR)
            path = audio / f"fourpart{i:03d}.flac"
            sf.write(path, y, SR, subtype="PCM_16")
            songs.append({"path": str(path.resolve()), "melody": voices[0].name, "style": "fourpart", **facts,
                          "timeline": tl.tolist()})
        meta_path.write_text(json.dumps(songs))
    return [{**s, "timeline": np.array(s["timeline"])} for s in json.loads(meta_path.read_text())]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--songs", type=int, default=100, help="songs in the library")
    ap.add_argument("--hums", type=int, default=2, help="hums per song")
    ap.add_argument("--out", type=int, default=40, help="tunes not in the library, hummed once each")
    ap.add_argument("--fourpart", type=int, default=0, help="four-part songs (Palestrina, melody on top) added to "
                    "the library, style 'fourpart'")
    ap.add_argument("--models", nargs="+", default=["qbh-default"])
    ap.add_argument("--soundfont", default=str(sfs.find_soundfonts(sfs.TUNE_SOUNDFONTS)[0]
                                               if sfs.find_soundfonts(sfs.TUNE_SOUNDFONTS) else ""))
    ap.add_argument("--seed", type=int, default=41)
    ap.add_argument("--work", type=Path, default=Path("/tmp/musicemb-qbh-tune"))
    ap.add_argument("--name", default="qbh-tune-split")
    args = ap.parse_args()
    if not args.soundfont or not sfs.fluidsynth_available():
        raise SystemExit("needs fluidsynth and sf_GMbank.sf2: apt-get install -y fluidsynth csound-soundfont")
    sfs.check_soundfont(args.soundfont)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    t0 = time.perf_counter()
    chosen = tune_melodies(args.songs + args.out, args.seed)
    inside, outside = chosen[:args.songs], chosen[args.songs:]
    songs = render(args, inside) + (render_fourpart(args) if args.fourpart else [])
    with Library(args.work / "lib", create=True) as lib:
        drive(iter_ingest(lib, [s["path"] for s in songs]))
        track_of = {i: lib.track_by_path(s["path"]).id for i, s in enumerate(songs)}
    hums = [{**h, "song": i, "style": s["style"]}
            for i, s in enumerate(songs) for h in hum_excerpts(s["timeline"], args.hums, [args.seed, 1, i])]
    out_hums = []
    for i, m in enumerate(outside):
        bpm = float(np.random.default_rng([args.seed, 2, i]).uniform(75, 150))
        tl = np.stack([m.onset * 60 / bpm, m.duration * 60 / bpm, m.pitch.astype(float)], 1)
        out_hums += hum_excerpts(tl, 1, [args.seed, 3, i])
    t_data = time.perf_counter() - t0
    rows = []
    for model in args.models:
        t = time.perf_counter()
        with Library(args.work / "lib") as lib:
            drive(qbh.iter_update_qbh_index(lib, model=model))
            searcher = qbh.HumSearcher.open(lib, model=model)
        for h in hums + out_hums:
            ranked = searcher.query(h["y"], SR, k=10)
            ids = [r["track_id"] for r in ranked]
            target = track_of.get(h.get("song"))
            h["rank"] = ids.index(target) + 1 if "song" in h and target in ids else 10**6
            h["confident"] = searcher.is_confident(ranked)
        label = Path(model).name if "/" in model else model
        part = [summarise("all", "all", hums)]
        part += [summarise("style", v, [h for h in hums if h["style"] == v])
                 for v in (*sfs.TUNE_FIGURES["harmony"], "fourpart") if any(h["style"] == v for h in hums)]
        part += [summarise("syllable", v, [h for h in hums if h["syllable"] == v]) for v in ALL_SYLLABLES]
        part.append(false_matches(out_hums))
        rows += [{"model": label, **r} for r in part]
        print(f"{label}: {part[0]} ({time.perf_counter() - t:.0f} s)", file=sys.stderr, flush=True)
    secs = [h["seconds"] for h in hums]
    notes = (f"Tune split (development figures), seed {args.seed}: {len(songs)} songs of training-collection tunes "
             f"the built-in recipe does not draw ({Path(args.soundfont).name} via FluidSynth, held-out accompaniment "
             f"figures), {len(hums)} hums ({min(secs):.1f}-{max(secs):.1f} s, median {statistics.median(secs):.1f} "
             f"s), {len(out_hums)} hums of tunes not in the library. Songs and hums {t_data / 60:.1f} min; total "
             f"{(time.perf_counter() - t0) / 60:.1f} min.")
    write_results(args.name, rows, notes=notes)


if __name__ == "__main__":
    main()
