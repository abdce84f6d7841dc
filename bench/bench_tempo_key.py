"""Tempo and key estimators on songs rendered with known tempo and key, and import speed with the analysis on vs
off (same run).

Estimators: ours (``tempo_key.TEMPO_METHODS`` and ``KEY_PROFILES``, the latter with Essentia's ``KeyExtractor``
profiles ``bgate``/``edma`` where ``essentia`` is installed) and, for tempo, Essentia's ``RhythmExtractor2013``
(``re2013-multifeature``, ``re2013-degara``, on the audio at 44.1 kHz as it requires) and ``PercivalBpmEstimator``
(``percival``, at the analysis rate); "ms/song" is each one's own time on a 30 s song.

Songs: the in-project synthesiser (`render_song`) in all five styles (4/4 with drums: chiptune, rock, techno;
3/4 without drums: folk; ambient: pads at half speed, no drums), tempo drawn uniformly from 60-200 BPM, tonic
from the 12 pitch classes, mode major or minor. Estimators are chosen on a *tune* split (seeds 0..) and
measured on a *check* split (seeds 10000..) that nothing was chosen on.

Key: MIREX weighted score (same key 1, fifth 0.5, relative 0.3, parallel 0.2; no answer 0). Tempo: Acc1 (within
4 %), Acc2 (also x2, x3, x1/2, x1/3); no answer counts as wrong. "answered": share of songs given a value.

FluidSynth split (``bench/fluid_songs.py``, nothing chosen on it): generated melodies, chords, bass and (half the
songs) GM drums in 2/4, 3/4, 4/4, 6/8 and 2/2, tempo 60-200 BPM, through every General MIDI soundfont installed of
``FLUID_SOUNDFONTS`` (FluidR3, TimGM6mb, MuseScore General, GeneralUser-style ``sf_GMbank``: no estimator here was
trained on any; TimGM6mb is reserved for evaluation, which this is), the songs dealt round-robin; reported by meter
and drums, and by soundfont. Skipped without fluidsynth.

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
from musicemb_core.audio.resample import resample  # noqa: E402
from musicemb_core.common.progress import drive  # noqa: E402
from musicemb_core.data.ingest import iter_ingest  # noqa: E402
from musicemb_core.data.library import Library  # noqa: E402
from musicemb_core.data.synthesis import STYLES, render_song, song_facts  # noqa: E402
from musicemb_core.features import tempo_key as tk  # noqa: E402

SR = 22050
FLUID_SOUNDFONTS = tuple(Path(p) for p in ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/TimGM6mb.sf2",
                                          "/usr/share/sounds/sf3/MuseScore_General.sf3",
                                          "/usr/share/sounds/sf2/sf_GMbank.sf2"))
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


def essentia_tempi() -> dict:
    """{name: function(audio, sr) -> BPM} of Essentia's tempo estimators ({} without essentia)."""
    try:
        import essentia

        essentia.log.infoActive = essentia.log.warningActive = False
        import essentia.standard as es
    except ImportError:
        return {}

    def rhythm(method):  # a new instance per song: a reused one keeps state between songs
        return lambda y, sr: float(es.RhythmExtractor2013(method=method)(resample(y, sr, 44100).astype(np.float32))[0])

    return {"re2013-multifeature": rhythm("multifeature"), "re2013-degara": rhythm("degara"),
            "percival": lambda y, sr: float(es.PercivalBpmEstimator(sampleRate=tk.SR)(tk.resample_to_analysis(y, sr)))}


def evaluate(split) -> tuple[dict, float, dict]:
    """{estimator: per-song results} for every tempo method and key profile on (facts, audio, sr) songs; seconds
    of our analysis features per song; {estimator: seconds per song} of each estimator's own work."""
    others = essentia_tempi()
    profiles = tk.KEY_PROFILES if tk.KEY_PROFILE in tk.ESSENTIA_PROFILES else tuple(tk.PROFILES)
    res: dict[str, list] = {f"tempo:{m}": [] for m in (*tk.TEMPO_METHODS, *others)}
    res |= {f"key:{p}": [] for p in profiles}
    spent = dict.fromkeys(res, 0.0)
    t_an, n = 0.0, 0
    for s, y, sr in split:
        n += 1
        t0 = time.perf_counter()
        x = tk.resample_to_analysis(y, sr)
        S = tk.spectrogram(x)
        env = tk.onset_envelope(None, S=S)
        chroma = tk.mean_chroma(x)
        t_an += time.perf_counter() - t0
        for m in tk.TEMPO_METHODS:
            t0 = time.perf_counter()
            bpm, conf = tk.estimate_tempo(env, method=m)
            spent[f"tempo:{m}"] += time.perf_counter() - t0
            res[f"tempo:{m}"].append((s, bpm if conf >= TEMPO_CONF_MIN else None, bpm))
        for name, f in others.items():  # no confidence of ours: always answered
            t0 = time.perf_counter()
            bpm = f(y, sr)
            spent[f"tempo:{name}"] += time.perf_counter() - t0
            res[f"tempo:{name}"].append((s, bpm, bpm))
        gate = tk.estimate_key(tk.gate_chroma(S), profile="temperley")[1]  # as analyse() for Essentia's profiles
        for p in profiles:
            t0 = time.perf_counter()
            key, conf = (tk.essentia_key(x, profile=p), gate) if p in tk.ESSENTIA_PROFILES else \
                tk.estimate_key(chroma, profile=p)
            spent[f"key:{p}"] += time.perf_counter() - t0
            res[f"key:{p}"].append((s, key if conf >= KEY_CONF_MIN else None, key))
    return res, t_an / max(1, n), {k: v / max(1, n) for k, v in spent.items()}


def summarise(res: dict, split_name: str, spent: dict) -> list[dict]:
    """One row per estimator; "with a beat": tempo Acc1 / Acc2 without the beatless ambient songs."""
    rows = []
    for name, items in res.items():
        kind, est = name.split(":")
        row = {"split": split_name, "estimator": est, "songs": len(items)}
        answered = [e is not None for _, e, _ in items]
        if kind == "tempo":
            a = [acc(e, s["bpm"]) for s, e, _ in items]
            raw = [acc(r, s["bpm"]) for s, _, r in items]
            beat = [x for (s, _, _), x in zip(items, a, strict=True) if s["style"] != "ambient"]
            row |= {"measure": "tempo Acc1 / Acc2", "score": float(np.mean([x[0] for x in a])),
                    "score2": float(np.mean([x[1] for x in a])),
                    "if always answered": f"{np.mean([x[0] for x in raw]):.3f} / {np.mean([x[1] for x in raw]):.3f}",
                    "with a beat": f"{np.mean([x[0] for x in beat]):.3f} / {np.mean([x[1] for x in beat]):.3f}"}
        else:
            sc = [mirex(e, (s["tonic"], s["mode"])) for s, e, _ in items]
            raw = [mirex(r, (s["tonic"], s["mode"])) for s, _, r in items]
            row |= {"measure": "key MIREX", "score": float(np.mean(sc)), "score2": float(np.mean(
                [x == 1.0 for x in sc])), "if always answered": f"{np.mean(raw):.3f}", "with a beat": ""}
        row["answered"] = float(np.mean(answered))
        row["ms/song"] = round(1000 * spent.get(name, 0.0), 1)
        rows.append(row)
    return rows


def per_style(res: dict, names: list[str], field: str = "style") -> list[dict]:
    rows = []
    for style in dict.fromkeys(s[field] for s, _, _ in res[names[0]]):
        r = {"style": style}
        for name in names:
            items = [(s, e) for s, e, _ in res[name] if s[field] == style]
            if name.startswith("tempo"):
                r[name] = f"{np.mean([acc(e, s['bpm'])[0] for s, e in items]):.2f}/" \
                          f"{np.mean([acc(e, s['bpm'])[1] for s, e in items]):.2f}"
            else:
                r[name] = f"{np.mean([mirex(e, (s['tonic'], s['mode'])) for s, e in items]):.2f}"
        rows.append(r)
    return rows


def import_speed(n: int) -> dict:
    """Import (and embed) the same rendered tracks (60 s, 44.1 kHz stereo FLAC) with the analysis off, on, and on
    with our chroma key instead of Essentia's ("on, chroma key"; when Essentia's is the default), alternating, one
    process (librosa and essentia imported and compiled beforehand: a worker pays that once, about a second);
    seconds of each, best of 2. The one pass (``ingest --embed``) with the analysis on vs off is measured on real
    tracks by ``bench_import_embed.py``."""
    from unittest import mock

    from musicemb_core.inference import iter_embed

    modes = ["off", "on"] + (["on, chroma key"] if tk.KEY_PROFILE in tk.ESSENTIA_PROFILES else [])
    with tempfile.TemporaryDirectory() as tmp:
        music = Path(tmp) / "music"
        music.mkdir()
        for i in range(n):
            y = render_song(STYLES[i % len(STYLES)], seed=500 + i, duration_s=60.0, sr=44100)
            sf.write(music / f"t{i:03d}.flac", np.stack([y, 0.9 * y], axis=1), 44100)
        warm = tk.resample_to_analysis(render_song("rock", seed=1, duration_s=10.0, sr=SR), SR)
        tk.analyse(warm, tk.SR)  # librosa's import and JIT: once a process
        if tk.KEY_PROFILE in tk.ESSENTIA_PROFILES:
            tk.essentia_key(warm)  # and essentia's
        imports: dict[str, list[float]] = {m: [] for m in modes}
        embeds: list[float] = []
        for rep in range(2):
            for mode in (modes if rep == 0 else modes[::-1]):
                profile = "temperley" if mode == "on, chroma key" else tk.KEY_PROFILE
                with Library(Path(tmp) / f"lib-{mode}-{rep}", create=True) as lib, \
                        mock.patch.dict(tk.analyse.__kwdefaults__, key_profile=profile):
                    t0 = time.perf_counter()
                    drive(iter_ingest(lib, [str(music)], jobs=1, analyse=mode != "off"))
                    t1 = time.perf_counter()
                    if mode != "on, chroma key":
                        drive(iter_embed(lib))
                        embeds.append(time.perf_counter() - t1)
                imports[mode].append(t1 - t0)
        # embed does the same work whether or not the import analysed: its median over the four runs stands for
        # both (single embed times swing by 2x on this shared machine)
        best = {m: min(v) for m, v in imports.items()}
        off, emb = best["off"], float(np.median(embeds))
        out = {"tracks": n, "embed s": emb} | {f"import {m} s": v for m, v in best.items()}
        for m in modes[1:]:
            out[f"import+embed ratio ({m})"] = (best[m] + emb) / (off + emb)
            out[f"analysis x real time ({m})"] = n * 60.0 / max(best[m] - off, 1e-9)
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--songs", type=int, default=60, help="songs per split (default 60)")
    ap.add_argument("--import-tracks", type=int, default=8, help="tracks for the import speed (0 = skip)")
    ap.add_argument("--fluid", type=int, default=120, help="FluidSynth songs (0 = skip; skipped without fluidsynth)")
    args = ap.parse_args()
    tune, _, spent = evaluate(rendered(songs(args.songs, 0)))
    tune_rows = summarise(tune, "tune", spent)
    best_tempo = max((r for r in tune_rows if r["measure"].startswith("tempo")),
                     key=lambda r: (r["score"], r["score2"]))["estimator"]
    best_key = max((r for r in tune_rows if r["measure"] == "key MIREX"), key=lambda r: r["score"])["estimator"]
    check, per_song_s, spent = evaluate(rendered(songs(args.songs, 10_000)))
    rows = tune_rows + summarise(check, "check", spent)
    fluid_styles, fluid_fonts = [], []
    from bench.fluid_songs import available, fluid_songs

    if args.fluid and available():
        with tempfile.TemporaryDirectory() as tmp:
            fluid, _, spent = evaluate(fluid_songs(args.fluid, 20_000, Path(tmp), soundfonts=FLUID_SOUNDFONTS))
        rows += summarise(fluid, "fluidsynth", spent)
        fluid_styles = per_style(fluid, [f"tempo:{best_tempo}", f"key:{best_key}"])
        fluid_fonts = per_style(fluid, [f"tempo:{best_tempo}", f"key:{best_key}"], field="soundfont")
    for r in rows:
        r["chosen on tune"] = r["estimator"] in (best_tempo, best_key)
    styles = per_style(check, [f"tempo:{best_tempo}", f"key:{best_key}"])
    speed = import_speed(args.import_tracks) if args.import_tracks else {}
    notes = (f"Chosen on the tune split: tempo `{best_tempo}`, key `{best_key}` (defaults in tempo_key.py: "
             f"`{tk.TEMPO_METHOD}`, `{tk.KEY_PROFILE}`). score2: tempo Acc2, key share exactly right. "
             f"Analysis {per_song_s * 1000:.0f} ms per {DURATION_S:.0f} s song (tempo + key features). "
             f"Check split per style (tempo Acc1/Acc2, key MIREX): "
             + "; ".join(f"{s['style']} " + ", ".join(str(v) for k, v in s.items() if k != "style") for s in styles)
             + (". FluidSynth per meter: " + "; ".join(
                 f"{s['style']} " + ", ".join(str(v) for k, v in s.items() if k != "style") for s in fluid_styles)
                + "; per soundfont: " + "; ".join(
                 f"{s['style']} " + ", ".join(str(v) for k, v in s.items() if k != "style") for s in fluid_fonts)
                if fluid_styles else "")
             + (". Import speed: " + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                                                for k, v in speed.items()) if speed else ""))
    write_results("tempo_key", rows, notes=notes)


if __name__ == "__main__":
    main()
