"""Tempo and key estimators on songs rendered with known tempo and key, and import speed with the analysis on vs
off (same run).

Songs: the in-project synthesiser (`render_song`) in all five styles (4/4 with drums: chiptune, rock, techno;
3/4 without drums: folk; ambient: pads at half speed, no drums), tempo drawn uniformly from 60-200 BPM, tonic
from the 12 pitch classes, mode major or minor. Estimators are chosen on a *tune* split (seeds 0..) and
measured on a *check* split (seeds 10000..) that nothing was chosen on.

Key: MIREX weighted score (same key 1, fifth 0.5, relative 0.3, parallel 0.2; no answer 0). Tempo: Acc1 (within
4 %), Acc2 (also x2, x3, x1/2, x1/3); no answer counts as wrong. "answered": share of songs given a value.

FluidSynth split (``bench/fluid_songs.py``, nothing chosen on it): generated melodies, chords, bass and (half the
songs) GM drums in 2/4, 3/4, 4/4, 6/8 and 2/2 through the FluidR3 soundfont; skipped without fluidsynth.

Run: .venv/bin/python bench/bench_tempo_key.py [--songs N] [--import-tracks M] [--fluid K]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import write_results  # noqa: E402
from musicemb_core.common.progress import drive  # noqa: E402
from musicemb_core.data.ingest import iter_ingest  # noqa: E402
from musicemb_core.data.library import Library  # noqa: E402
from musicemb_core.data.synthesis import STYLES, render_song, song_facts  # noqa: E402
from musicemb_core.features import tempo_key as tk  # noqa: E402

SR = 22050
DURATION_S = 30.0
TEMPO_CONF_MIN, KEY_CONF_MIN = tk.TEMPO_CONF_MIN, tk.KEY_CONF_MIN  # as tempo_key.analyse: below, no value


def songs(n: int, first_seed: int) -> list[dict]:
    out = []
    for i in range(n):
        seed = first_seed + i
        rng = np.random.default_rng(seed)
        style = STYLES[i % len(STYLES)]
        bpm = float(rng.uniform(60, 200))
        tonic = int(rng.integers(12))
        mode = str(rng.choice(["major", "minor"]))
        facts = song_facts(style, seed=seed, bpm=bpm, tonic=tonic, mode=mode)
        out.append({"style": style, "seed": seed, **facts})
    return out


def mirex(est: tuple[int, str] | None, ref: tuple[int, str]) -> float:
    if est is None:
        return 0.0
    (ep, em), (rp, rm) = est, ref
    if est == ref:
        return 1.0
    if em == rm and (ep - rp) % 12 in (5, 7):
        return 0.5
    if em != rm and ((rm == "major" and ep == (rp + 9) % 12) or (rm == "minor" and ep == (rp + 3) % 12)):
        return 0.3
    if em != rm and ep == rp:
        return 0.2
    return 0.0


def acc(est: float | None, ref: float) -> tuple[bool, bool]:
    if not est:
        return False, False
    a1 = abs(est - ref) <= 0.04 * ref
    a2 = any(abs(est - ref * f) <= 0.04 * ref * f for f in (1, 2, 3, 0.5, 1 / 3))
    return a1, a2


def rendered(split: list[dict]):
    """(facts, audio, sr) of songs of the in-project synthesiser."""
    for s in split:
        yield s, render_song(s["style"], seed=s["seed"], duration_s=DURATION_S, sr=SR, bpm=s["bpm"],
                             tonic=s["tonic"], mode=s["mode"]), SR


def evaluate(split) -> tuple[dict, float]:
    """{estimator: per-song results} for every tempo method and key profile on (facts, audio, sr) songs; seconds
    of analysis per song."""
    res: dict[str, list] = {f"tempo:{m}": [] for m in tk.TEMPO_METHODS}
    res |= {f"key:{p}": [] for p in tk.PROFILES}
    t_an, n = 0.0, 0
    for s, y, sr in split:
        n += 1
        t0 = time.perf_counter()
        x = tk.resample_to_analysis(y, sr)
        env = tk.onset_envelope(x)
        chroma = tk.mean_chroma(x)
        t_an += time.perf_counter() - t0
        for m in tk.TEMPO_METHODS:
            bpm, conf = tk.estimate_tempo(env, method=m)
            res[f"tempo:{m}"].append((s, bpm if conf >= TEMPO_CONF_MIN else None, bpm))
        for p in tk.PROFILES:
            key, conf = tk.estimate_key(chroma, profile=p)
            res[f"key:{p}"].append((s, key if conf >= KEY_CONF_MIN else None, key))
    return res, t_an / max(1, n)


def summarise(res: dict, split_name: str) -> list[dict]:
    rows = []
    for name, items in res.items():
        kind, est = name.split(":")
        row = {"split": split_name, "estimator": est, "songs": len(items)}
        answered = [e is not None for _, e, _ in items]
        if kind == "tempo":
            a = [acc(e, s["bpm"]) for s, e, _ in items]
            raw = [acc(r, s["bpm"]) for s, _, r in items]
            row |= {"measure": "tempo Acc1 / Acc2", "score": float(np.mean([x[0] for x in a])),
                    "score2": float(np.mean([x[1] for x in a])),
                    "if always answered": f"{np.mean([x[0] for x in raw]):.3f} / {np.mean([x[1] for x in raw]):.3f}"}
        else:
            sc = [mirex(e, (s["tonic"], s["mode"])) for s, e, _ in items]
            raw = [mirex(r, (s["tonic"], s["mode"])) for s, _, r in items]
            row |= {"measure": "key MIREX", "score": float(np.mean(sc)), "score2": float(np.mean(
                [x == 1.0 for x in sc])), "if always answered": f"{np.mean(raw):.3f}"}
        row["answered"] = float(np.mean(answered))
        rows.append(row)
    return rows


def per_style(res: dict, names: list[str]) -> list[dict]:
    rows = []
    for style in dict.fromkeys(s["style"] for s, _, _ in res[names[0]]):
        r = {"style": style}
        for name in names:
            items = [(s, e) for s, e, _ in res[name] if s["style"] == style]
            if name.startswith("tempo"):
                r[name] = f"{np.mean([acc(e, s['bpm'])[0] for s, e in items]):.2f}/" \
                          f"{np.mean([acc(e, s['bpm'])[1] for s, e in items]):.2f}"
            else:
                r[name] = f"{np.mean([mirex(e, (s['tonic'], s['mode'])) for s, e in items]):.2f}"
        rows.append(r)
    return rows


def import_speed(n: int) -> dict:
    """Import (and embed) the same rendered tracks (60 s, 44.1 kHz stereo FLAC) with the analysis off and on,
    alternating, one process (librosa imported and compiled beforehand: a worker pays that once, about a second);
    seconds of each."""
    from musicemb_core.inference import iter_embed

    with tempfile.TemporaryDirectory() as tmp:
        music = Path(tmp) / "music"
        music.mkdir()
        for i in range(n):
            y = render_song(STYLES[i % len(STYLES)], seed=500 + i, duration_s=60.0, sr=44100)
            sf.write(music / f"t{i:03d}.flac", np.stack([y, 0.9 * y], axis=1), 44100)
        tk.analyse(render_song("rock", seed=1, duration_s=10.0, sr=SR), SR)  # librosa's import and JIT: once a process
        imports: dict[str, list[float]] = {"off": [], "on": []}
        embeds: list[float] = []
        for rep in range(2):
            for mode in (("off", "on") if rep == 0 else ("on", "off")):
                with Library(Path(tmp) / f"lib-{mode}-{rep}", create=True) as lib:
                    t0 = time.perf_counter()
                    drive(iter_ingest(lib, [str(music)], jobs=1, analyse=mode == "on"))
                    t1 = time.perf_counter()
                    drive(iter_embed(lib))
                    embeds.append(time.perf_counter() - t1)
                imports[mode].append(t1 - t0)
        # embed does the same work whether or not the import analysed: its median over the four runs stands for
        # both (single embed times swing by 2x on this shared machine)
        off, on, emb = min(imports["off"]), min(imports["on"]), float(np.median(embeds))
        return {"tracks": n, "import off s": off, "import on s": on, "import ratio": on / off, "embed s": emb,
                "import+embed ratio": (on + emb) / (off + emb),
                "analysis x real time": n * 60.0 / max(on - off, 1e-9)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--songs", type=int, default=60, help="songs per split (default 60)")
    ap.add_argument("--import-tracks", type=int, default=8, help="tracks for the import speed (0 = skip)")
    ap.add_argument("--fluid", type=int, default=40, help="FluidSynth songs (0 = skip; skipped without fluidsynth)")
    args = ap.parse_args()
    tune, _ = evaluate(rendered(songs(args.songs, 0)))
    tune_rows = summarise(tune, "tune")
    best_tempo = max((r for r in tune_rows if r["measure"].startswith("tempo")),
                     key=lambda r: (r["score"], r["score2"]))["estimator"]
    best_key = max((r for r in tune_rows if r["measure"] == "key MIREX"), key=lambda r: r["score"])["estimator"]
    check, per_song_s = evaluate(rendered(songs(args.songs, 10_000)))
    rows = tune_rows + summarise(check, "check")
    fluid_styles = []
    from bench.fluid_songs import available, fluid_songs

    if args.fluid and available():
        with tempfile.TemporaryDirectory() as tmp:
            fluid, _ = evaluate(fluid_songs(args.fluid, 20_000, Path(tmp)))
        rows += summarise(fluid, "fluidsynth")
        fluid_styles = per_style(fluid, [f"tempo:{best_tempo}", f"key:{best_key}"])
    for r in rows:
        r["chosen on tune"] = r["estimator"] in (best_tempo, best_key)
    styles = per_style(check, [f"tempo:{best_tempo}", f"key:{best_key}"])
    speed = import_speed(args.import_tracks) if args.import_tracks else {}
    notes = (f"Chosen on the tune split: tempo `{best_tempo}`, key `{best_key}` (defaults in tempo_key.py: "
             f"`{tk.TEMPO_METHOD}`, `{tk.KEY_PROFILE}`). score2: tempo Acc2, key share exactly right. "
             f"Analysis {per_song_s * 1000:.0f} ms per {DURATION_S:.0f} s song (tempo + key features). "
             f"Check split per style (tempo Acc1/Acc2, key MIREX): "
             + "; ".join(f"{s['style']} " + ", ".join(str(v) for k, v in s.items() if k != "style") for s in styles)
             + (". FluidSynth (FluidR3_GM) per meter: " + "; ".join(
                 f"{s['style']} " + ", ".join(str(v) for k, v in s.items() if k != "style") for s in fluid_styles)
                if fluid_styles else "")
             + (". Import speed: " + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                                                for k, v in speed.items()) if speed else ""))
    write_results("tempo_key", rows, notes=notes)


if __name__ == "__main__":
    main()
