"""Songs with a known tempo, key and meter rendered by FluidSynth (a soundfont, not our synthesiser) for
``bench_tempo_key.py``: an in-project generated melody (lead) over block chords (piano/strings) and, in half the
songs, a General MIDI drum kit; meters 2/4, 3/4, 4/4, 6/8 and 2/2, written as Standard MIDI Files
(``soundfont_songs.smf``). Needs ``apt-get install -y fluidsynth fluid-soundfont-gm``; other soundfonts may be passed (TimGM6mb,
reserved for evaluation, only where nothing is chosen on the songs, as in ``bench_tempo_key``'s check).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

from musicemb_core.data.soundfont_songs import smf
from musicemb_core.data.synthesis import generate_melody

SOUNDFONTS = [Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")]
# meter -> (beats per bar, quarter notes per beat, drum pattern per beat subdivision: (kick, snare, hat) hits
# in sixteenths from the bar start)
METERS = {"2/4": (2, 1.0), "3/4": (3, 1.0), "4/4": (4, 1.0), "6/8": (2, 1.5), "2/2": (2, 2.0)}
TPQ = 480
SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
PROGRESSIONS = ((0, 3, 4, 0), (0, 5, 3, 4), (0, 4, 5, 3))


def available() -> bool:
    return shutil.which("fluidsynth") is not None and any(p.exists() for p in SOUNDFONTS)


def song_midi(seed: int, *, bpm: float, tonic: int, mode: str, meter: str, drums: bool, seconds: float) -> bytes:
    """MIDI of one song; ``bpm`` counts the meter's beat (quarter; dotted quarter in 6/8; half in 2/2)."""
    rng = np.random.default_rng(seed)
    per_bar, q_per_beat = METERS[meter]
    beat_ticks = int(TPQ * q_per_beat)
    us_per_quarter = int(60_000_000 / (bpm * q_per_beat))
    ev: list[tuple[int, bytes]] = [(0, b"\xff\x51\x03" + us_per_quarter.to_bytes(3, "big")),
                                   (0, bytes([0xC0, int(rng.choice([0, 4, 24, 73, 56]))])),  # lead programme
                                   (0, bytes([0xC1, int(rng.choice([0, 48, 19, 88]))]))]  # chords programme
    total = int(seconds * bpm / 60 * beat_ticks)
    base = 60 + (tonic + 5) % 12 - 5
    scale = SCALES[mode]
    melody = generate_melody(rng, n_notes=32, scale=mode)
    t = 0
    while t < total:
        for pitch, dur in melody:
            d = int(dur * beat_ticks / 2 if q_per_beat == 2.0 else dur * TPQ)  # melody in eighths/quarters
            p = pitch - 60 + base + 12
            ev += [(t, bytes([0x90, p, 90])), (t + int(d * 0.9), bytes([0x80, p, 0]))]
            t += d
            if t >= total:
                break
    bar = per_bar * beat_ticks
    prog = PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))]
    for k, start in enumerate(range(0, total, bar)):
        d = prog[k % len(prog)]
        for j in (0, 2, 4):
            deg = d + j
            p = base + scale[deg % 7] + 12 * (deg // 7) - 12
            ev += [(start, bytes([0x91, p, 70])), (start + bar - 10, bytes([0x81, p, 0]))]
        root = base + scale[d % 7] - 24
        for b in range(per_bar):  # bass on every beat
            ev += [(start + b * beat_ticks, bytes([0x92, root, 85])), (start + (b + 1) * beat_ticks - 20,
                                                                      bytes([0x82, root, 0]))]
        if drums:
            for b in range(per_bar):
                bt = start + b * beat_ticks
                drum = 36 if b % 2 == 0 else 38  # kick on odd beats, snare on even
                ev += [(bt, bytes([0x99, drum, 110])), (bt + 60, bytes([0x89, drum, 0]))]
                sub = 3 if meter == "6/8" else 2
                for h in range(sub):  # hats on the subdivisions
                    ht = bt + h * beat_ticks // sub
                    ev += [(ht, bytes([0x99, 42, 60])), (ht + 30, bytes([0x89, 42, 0]))]
    return smf(ev, TPQ)


def render(midi: bytes, out_wav: Path, *, soundfont: Path, sr: int = 22050) -> np.ndarray:
    mid = out_wav.with_suffix(".mid")
    mid.write_bytes(midi)
    subprocess.run(["fluidsynth", "-ni", "-g", "0.6", "-r", str(sr), "-F", str(out_wav), str(soundfont), str(mid)],
                   check=True, capture_output=True, timeout=120)
    y, file_sr = sf.read(out_wav, dtype="float32", always_2d=True)
    return y.mean(axis=1), file_sr


def fluid_songs(n: int, first_seed: int, tmp: Path, *, seconds: float = 30.0,
                soundfonts: tuple[Path, ...] | list[Path] = tuple(SOUNDFONTS)) -> list[tuple[dict, np.ndarray, int]]:
    """(facts, mono audio, sr) of ``n`` FluidSynth songs: the meters in turn, each with and without drums, then the
    next installed soundfont of ``soundfonts`` (its name in the facts)."""
    fonts = [p for p in soundfonts if p.exists()]
    out = []
    for i in range(n):
        seed = first_seed + i
        rng = np.random.default_rng(seed)
        meter = list(METERS)[i % len(METERS)]
        drums = (i // len(METERS)) % 2 == 0
        font = fonts[(i // (2 * len(METERS))) % len(fonts)]
        facts = {"style": f"fluid {meter}" + (" drums" if drums else ""), "soundfont": font.stem, "seed": seed,
                 "bpm": float(rng.uniform(60, 200)), "tonic": int(rng.integers(12)),
                 "mode": str(rng.choice(["major", "minor"])), "meter": meter}
        midi = song_midi(seed, bpm=facts["bpm"], tonic=facts["tonic"], mode=facts["mode"], meter=meter,
                         drums=drums, seconds=seconds)
        y, sr = render(midi, tmp / f"s{seed}.wav", soundfont=font)
        out.append((facts, y, sr))
    return out
