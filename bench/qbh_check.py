"""Query by humming on the *check* split: what nothing was trained or tuned on, reported by collection, by
accompaniment style, by voice and by syllable, with the false-match rate on hums of tunes not in the library.

- Melodies of the reserved collections only (``oneills1850``, ``airdsAirs``, ``essenFolksong/han`` and Bach
  chorales), none sharing its opening with a training melody;
- songs rendered by FluidSynth with ``TimGM6mb`` (a soundfont no training or tuning used) in accompaniment styles
  no training used (``bench/gm_songs.py``): the chorales in their own four voices, the folk tunes harmonised as
  ``oompah``, ``block``, ``arpeggio`` or ``beat``;
- hums of 6-15 s of the tune starting anywhere in the song (at any note, mid-phrase included), male and female
  voices an octave apart, "mmm", "la", "da" and "dum" ("dum" is never drawn for training hums);
- out-of-library hums: tunes of the same collections left out of the library. A false match is a confident
  answer (the model's shipped threshold) to such a hum.

    .venv/bin/python bench/qbh_check.py [--per-collection 38 --chorales 36 --hums 2 --out 60]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.bench_qbh import SR, signature  # noqa: E402
from bench.common import write_results  # noqa: E402
from bench.gm_songs import STYLES, TIMGM, render_song  # noqa: E402
from bench.qbh_fourpart import four_voices  # noqa: E402
from musicemb_core.common.progress import drive  # noqa: E402
from musicemb_core.data import melodies as mel  # noqa: E402
from musicemb_core.data.hum_synthesis import ALL_SYLLABLES, render_hum  # noqa: E402
from musicemb_core.data.ingest import iter_ingest  # noqa: E402
from musicemb_core.data.library import Library  # noqa: E402
from musicemb_core.search import qbh  # noqa: E402

FOLK = ("oneills1850", "airdsAirs", "essenFolksong/han")


def pick(args) -> tuple[list[dict], list[dict]]:
    """Library songs and withheld tunes: ``{"collection", "melody", "voices"}``, openings all distinct."""
    rng = np.random.default_rng(args.seed)
    seen = {signature(m) for m in mel.load_collections(
        [c for c in mel.TRAINING_COLLECTIONS if c != "generated"], min_notes=13)}
    n_out = args.out // 4
    inside, outside = [], []
    for c in FOLK:
        pool = mel.load_collections([c], purpose="evaluate", min_notes=24)
        got = []
        for i in rng.permutation(len(pool)):
            if len(got) == args.per_collection + n_out:
                break
            if signature(pool[i]) not in seen:
                seen.add(signature(pool[i]))
                got.append({"collection": c, "melody": pool[i], "voices": None})
        inside += got[:args.per_collection]
        outside += got[args.per_collection:]
    files = mel.corpus_files("bach")
    got = []
    for i in rng.permutation(len(files)):
        if len(got) == args.chorales + n_out:
            break
        voices = four_voices(files[i])
        if voices and len(voices[0]) >= 24 and signature(voices[0]) not in seen:
            seen.add(signature(voices[0]))
            got.append({"collection": "bach", "melody": voices[0], "voices": voices[1:]})
    return inside + got[:args.chorales], outside + got[args.chorales:]


def hum_excerpts(timeline: np.ndarray, n: int, key: list[int]) -> list[dict]:
    """``n`` hums of about 6-15 s of the tune, each from a random point of the song on (its next note), in the
    hummer's tempo (x0.75-1.33): male and female voices alternate, and the four syllables."""
    out = []
    end = timeline[-1, 0] + timeline[-1, 1]
    for j in range(n):
        rng = np.random.default_rng([*key, j])
        tempo = float(np.exp(rng.uniform(np.log(0.75), np.log(1.33))))
        span = (rng.uniform(6, 15) - 0.8) * tempo  # song seconds that take 6-15 s to hum (with lead-in and tail)
        for _ in range(20):  # a start that leaves at least 6 notes
            t = timeline[np.searchsorted(timeline[:, 0], rng.uniform(0, max(0.01, end - 0.6 * span))).clip(
                max=len(timeline) - 1), 0]
            sel = timeline[(timeline[:, 0] >= t) & (timeline[:, 0] < t + span)]
            if len(sel) >= 6:
                break
        notes = np.stack([sel[:, 0] - t, np.minimum(sel[:, 1], t + span - sel[:, 0]), sel[:, 2]], 1)
        female = (key[-1] + j) % 2 == 1
        syllable = ALL_SYLLABLES[(key[-1] // 2 + j) % len(ALL_SYLLABLES)]  # independent of the voice
        h = render_hum(notes, seed=int(rng.integers(2**31)), sr=SR, syllable=syllable, tempo=tempo,
                       register=float(rng.uniform(45, 52)) + 12 * female)
        out.append({"y": h.y, "voice": "female" if female else "male", "syllable": syllable,
                    "start_s": round(float(t), 2), "seconds": len(h.y) / SR})
    return out


def summarise(name: str, group: str, hums: list[dict]) -> dict:
    r = np.array([h["rank"] for h in hums], float)
    conf = np.array([h["confident"] for h in hums])
    return {"group": name, "value": group, "hums": len(hums), "top1": round(float(np.mean(r == 1)), 3),
            "top10": round(float(np.mean(r <= 10)), 3), "mrr": round(float(np.mean(1 / r)), 3),
            "confident": round(float(conf.mean()), 3),
            "right_when_confident": round(float(np.mean(r[conf] == 1)), 3) if conf.any() else None}


def false_matches(out_hums: list[dict]) -> dict:
    """The row of hums of tunes not in the library: the share answered confidently (false matches)."""
    return {"group": "not in library", "value": "false matches", "hums": len(out_hums), "top1": None, "top10": None,
            "mrr": None, "confident": round(float(np.mean([h["confident"] for h in out_hums])), 3),
            "right_when_confident": None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-collection", type=int, default=38, help="songs per folk collection")
    ap.add_argument("--chorales", type=int, default=36, help="Bach chorales in the library")
    ap.add_argument("--hums", type=int, default=2, help="hums per song")
    ap.add_argument("--out", type=int, default=60, help="tunes not in the library, hummed once each")
    ap.add_argument("--model", default="qbh-default")
    ap.add_argument("--seed", type=int, default=23)
    ap.add_argument("--work", type=Path, default=Path("/tmp/musicemb-qbh-check"))
    args = ap.parse_args()
    if not TIMGM.exists():
        raise SystemExit(f"{TIMGM} is missing: apt-get install -y fluidsynth timgm6mb-soundfont")
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    inside, outside = pick(args)
    audio = args.work / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    songs = []
    for i, s in enumerate(inside):
        style = "chorale" if s["collection"] == "bach" else STYLES[i % len(STYLES)]
        path = audio / f"song{i:03d}.flac"
        y, timeline, facts = render_song(s["melody"], style, audio / f"song{i:03d}.wav", seed=args.seed * 1000 + i,
                                         voices=s["voices"])
        sf.write(path, y, SR, subtype="PCM_16")
        (audio / f"song{i:03d}.wav").unlink()
        songs.append({**s, **facts, "path": str(path.resolve()), "timeline": timeline})
    lib_dir = args.work / "lib"
    with Library(lib_dir, create=True) as lib:
        drive(iter_ingest(lib, [s["path"] for s in songs]))
        drive(qbh.iter_update_qbh_index(lib, model=args.model))
        searcher = qbh.HumSearcher.open(lib, model=args.model)
        track_of = {i: lib.track_by_path(s["path"]).id for i, s in enumerate(songs)}
    t_built = time.perf_counter() - t0
    hums = [{**h, "song": i, "collection": s["collection"], "style": s["style"]}
            for i, s in enumerate(songs) for h in hum_excerpts(s["timeline"], args.hums, [args.seed, 1, i])]
    out_hums = []
    for i, s in enumerate(outside):  # tempo drawn as for a song; only the notes are hummed
        bpm = float(np.random.default_rng([args.seed, 2, i]).uniform(80, 140))
        m = s["melody"]
        tl = np.stack([m.onset * 60 / bpm, m.duration * 60 / bpm, m.pitch.astype(float)], 1)
        out_hums += [{**h, "collection": s["collection"]} for h in hum_excerpts(tl, 1, [args.seed, 3, i])]
    times = []
    for h in hums + out_hums:
        t = time.perf_counter()
        ranked = searcher.query(h["y"], SR, k=10)
        times.append(time.perf_counter() - t)
        ids = [r["track_id"] for r in ranked]
        target = track_of.get(h.get("song"))
        h["rank"] = ids.index(target) + 1 if "song" in h and target in ids else 10**6
        h["confident"] = searcher.is_confident(ranked)
    rows = [summarise("all", "all", hums)]
    for key, values in (("collection", (*FOLK, "bach")), ("style", (*STYLES, "chorale")),
                        ("voice", ("male", "female")), ("syllable", ALL_SYLLABLES)):
        rows += [summarise(key, v, [h for h in hums if h[key] == v]) for v in values]
    rows.append(false_matches(out_hums))
    secs = [h["seconds"] for h in hums]
    notes = (f"Check split, model {args.model}, seed {args.seed}: {len(songs)} songs (TimGM6mb via FluidSynth), "
             f"{len(hums)} hums of them ({min(secs):.1f}-{max(secs):.1f} s, median {statistics.median(secs):.1f} s), "
             f"{len(out_hums)} hums of {len(outside)} tunes not in the library (false-match rate = their "
             f"'confident'). Library built in {t_built / 60:.1f} min; median query {statistics.median(times):.2f} s; "
             f"total {(time.perf_counter() - t0) / 60:.1f} min.")
    write_results("qbh-check-split", rows, notes=notes)


if __name__ == "__main__":
    main()
