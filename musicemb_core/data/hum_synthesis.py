"""Synthetic hummed queries, and songs rendered from given melodies, for query by humming.

A hum is a voice alone: a glottal-like source (band-limited pulse with spectral tilt, jitter, aspiration noise)
through the formants of "mmm", "la", "da" or "dum", singing the melody in the hummer's own key and tempo with per-note
intonation error, drift, occasional wrong notes, scoops and glides between notes, vibrato on long notes, timing
jitter and breaths in the rests; then a room (exponential reverb tail) and a microphone (band limits, noise,
sometimes mains hum). All parameters come from a seed, so a hum is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import signal

from musicemb_core.data.melodies import Melody
from musicemb_core.data.synthesis import STYLES, melody_timeline, render_song

SYLLABLES: tuple[str, ...] = ("mmm", "la", "da")
"""Syllables drawn when none is given (the training hums)."""
ALL_SYLLABLES: tuple[str, ...] = (*SYLLABLES, "dum")
"""Also accepted when asked for: "dum" is never drawn, so a model trained on drawn hums never heard it."""
# (centre Hz, bandwidth Hz, gain) of the parallel formant resonators
_VOWEL_A = ((730.0, 90.0, 1.0), (1100.0, 110.0, 0.5), (2500.0, 160.0, 0.18), (3400.0, 250.0, 0.08))
_VOWEL_U = ((325.0, 80.0, 1.0), (760.0, 100.0, 0.35), (2400.0, 160.0, 0.06), (3300.0, 250.0, 0.03))
_NASAL_M = ((270.0, 70.0, 1.0), (1050.0, 200.0, 0.05), (2300.0, 250.0, 0.02))
_TABLE = 2048


@dataclass
class HumRender:
    """A rendered hum: audio ``y`` at ``sr``, the notes meant (onset s, duration s, MIDI pitch, shape (n, 3))
    and the parameters drawn (syllable, transposition, tempo factor...)."""

    y: np.ndarray
    sr: int
    notes: np.ndarray
    params: dict = field(default_factory=dict)


def melody_notes(melody: Melody, *, bpm: float, start: int = 0, n_notes: int | None = None) -> np.ndarray:
    """Notes ``start .. start + n_notes`` of a melody at ``bpm`` as (onset s, duration s, MIDI pitch), from 0 s."""
    sl = slice(start, None if n_notes is None else start + n_notes)
    beat = 60.0 / bpm
    onset = (melody.onset[sl] - melody.onset[sl][0]) * beat
    return np.stack([onset, melody.duration[sl] * beat, melody.pitch[sl]], axis=1).astype(np.float64)


def render_melody_song(melody: Melody, *, style: str | None = None, seed: int, duration_s: float | None = None,
                       sr: int = 16000, max_s: float = 45.0) -> tuple[np.ndarray, np.ndarray, str]:
    """A song of ``melody`` (lead over the accompaniment of a `render_song` style) and where its notes are played.

    The melody is moved to around C4-C5 (the styles' lead register), its key then set by the style's seed.
    ``duration_s`` defaults to the whole melody once (at most ``max_s``); ``style`` defaults to one drawn from the
    seed. Returns (audio float32, timeline (n, 4): onset s, duration s, MIDI pitch, note index, style).
    """
    rng = np.random.default_rng([seed, 7])
    style = style or str(rng.choice(STYLES))
    shift = int(round(66 - np.median(melody.pitch)))
    seq = melody.as_sequence(transpose=shift) + [(-1, 4.0)]  # a closing rest: no note of a second pass starts
    if duration_s is None:
        probe = melody_timeline(style, seed=seed, duration_s=max_s, melody=seq)
        last = [t for t in probe if t[3] == len(seq) - 2]
        duration_s = min(max_s, last[0][0] + last[0][1] + 0.5) if last else max_s
    y = render_song(style, seed=seed, duration_s=duration_s, sr=sr, melody=seq)
    note_of = np.cumsum([p >= 0 for p, _ in seq]) - 1  # sequence index -> note index
    timeline = np.array([(o, d, p, note_of[i]) for o, d, p, i in
                         melody_timeline(style, seed=seed, duration_s=duration_s, melody=seq)], dtype=np.float64)
    return y, timeline, style


def _resonators(x: np.ndarray, sr: int, formants) -> np.ndarray:
    out = np.zeros_like(x)
    for f, bw, g in formants:
        if f < 0.45 * sr:
            r, w = np.exp(-np.pi * bw / sr), 2 * np.pi * f / sr
            a = [1.0, -2 * r * np.cos(w), r * r]
            peak = abs(1 - 2 * r * np.cos(w) * np.exp(-1j * w) + r * r * np.exp(-2j * w))  # unit gain at f
            out += g * signal.lfilter([peak], a, x)
    return out


def _glottal_table(n_harm: int, tilt: float) -> np.ndarray:
    """One period of a band-limited glottal-flow-derivative-like wave: harmonics 1..n_harm at -``tilt`` dB/oct."""
    k = np.arange(1, n_harm + 1)
    amp = k ** (-tilt / 6.02)
    ph = np.linspace(0, 1, _TABLE, endpoint=False)
    table = (amp[:, None] * np.sin(2 * np.pi * k[:, None] * ph[None, :] + 0.3 * k[:, None])).sum(0)
    return table / np.abs(table).max()


def _pitch_track(notes: np.ndarray, n: int, sr: int, rng, p: dict) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample f0 (Hz) and voicing gain (0..1) from the sung notes."""
    t = np.arange(n) / sr
    semis = np.full(n, np.nan)
    gate = np.zeros(n)
    drift = np.cumsum(rng.normal(0, p["drift"], len(notes)))
    targets = notes[:, 2] + p["transpose"] + rng.normal(0, p["intonation"], len(notes)) + drift
    wrong = rng.random(len(notes)) < p["wrong_p"]
    targets[wrong] += rng.choice([-2, -1, 1, 2], wrong.sum())
    for (on, dur, _), tgt in zip(notes, targets, strict=True):
        a, b = int(on * sr), min(n, int((on + dur * p["legato"]) * sr))
        if b <= a:
            continue
        local = t[a:b] - on
        curve = tgt - p["scoop"] * np.exp(-local / 0.07)
        vib_on = np.clip((local - 0.25) / 0.2, 0, 1)
        curve = curve + p["vib_depth"] * vib_on * np.sin(2 * np.pi * p["vib_rate"] * local + rng.uniform(0, 6.3))
        semis[a:b] = curve
        ramp = np.minimum(np.clip(local / 0.02, 0, 1), np.clip(((b - a) / sr - local) / 0.03, 0, 1))
        gate[a:b] = np.maximum(gate[a:b], ramp * 10 ** (rng.normal(0, 2.5) / 20))
    # glides: hold the pitch through gaps, then smooth with a one-pole filter (portamento)
    idx = np.where(np.isnan(semis), 0, np.arange(n))
    np.maximum.accumulate(idx, out=idx)
    semis = semis[idx]
    semis[np.isnan(semis)] = targets[0] if len(targets) else 60
    a = np.exp(-1.0 / (p["glide_s"] * sr))
    semis = signal.lfilter([1 - a], [1, -a], semis - semis[0]) + semis[0]
    semis += 0.03 * np.cumsum(rng.normal(0, 1, n)) / np.sqrt(sr)  # slow jitter
    return 440.0 * 2 ** ((semis - 69) / 12), gate


def render_hum(notes: np.ndarray, *, seed: int, sr: int = 16000, syllable: str | None = None,
               tempo: float | None = None, register: float | None = None, noise_db: float | None = None
               ) -> HumRender:
    """Hum ``notes`` (onset s, duration s, MIDI pitch; shape (n, 3)) as a person would into a microphone.

    Parameters
    ----------
    seed : int
        Every random choice below derives from it.
    syllable : "mmm", "la", "da" or "dum", optional
        Drawn from ``SYLLABLES`` when None.
    tempo : float, optional
        Speed factor over the notes' timing (1.25 = 25 % faster); drawn log-uniform in [0.75, 1.33] when None.
    register : float, optional
        MIDI pitch the hum's median note moves to (the key is the hummer's own); drawn in a low (45-55) or a
        high (57-67) voice when None.
    noise_db : float, optional
        Microphone noise relative to the voice in dB (e.g. -30); drawn in [-40, -12] when None.
    """
    notes = np.asarray(notes, dtype=np.float64).reshape(-1, 3)
    if len(notes) == 0:
        raise ValueError("render_hum needs at least one note")
    rng = np.random.default_rng([seed, 11])
    syllable = syllable or str(rng.choice(SYLLABLES))
    if syllable not in ALL_SYLLABLES:
        raise ValueError(f"syllable must be one of {ALL_SYLLABLES}, got {syllable!r}")
    tempo = tempo or float(np.exp(rng.uniform(np.log(0.75), np.log(1.33))))
    if register is None:
        register = rng.uniform(45, 55) if rng.random() < 0.5 else rng.uniform(57, 67)
    p = {"syllable": syllable, "tempo": tempo, "transpose": float(register - np.median(notes[:, 2])),
         "intonation": rng.uniform(0.1, 0.35), "drift": rng.uniform(0.0, 0.12), "wrong_p": rng.uniform(0, 0.06),
         "scoop": rng.uniform(0, 0.8), "vib_depth": rng.uniform(0, 0.35), "vib_rate": rng.uniform(4.5, 6.5),
         "glide_s": rng.uniform(0.015, 0.05), "legato": rng.uniform(0.85, 1.0) if syllable == "mmm"
         else rng.uniform(0.7, 0.95), "tilt": rng.uniform(4, 9), "rt60": rng.uniform(0.1, 0.7),
         "wet": rng.uniform(0.0, 0.35), "noise_db": noise_db if noise_db is not None else rng.uniform(-40, -12)}
    sung = notes.copy()
    # rubato: the beat drifts by a few per cent; onsets jitter by ~20 ms
    stretch = np.exp(np.cumsum(rng.normal(0, 0.02, len(sung))))
    sung[:, 0] = np.concatenate([[0.0], np.cumsum(np.diff(sung[:, 0]) * stretch[1:])]) / tempo
    sung[:, 0] = np.maximum(0, sung[:, 0] + rng.normal(0, 0.02, len(sung))) + rng.uniform(0.2, 0.5)
    sung[:, 1] = sung[:, 1] * stretch / tempo
    n = int((sung[-1, 0] + sung[-1, 1] + rng.uniform(0.3, 0.6)) * sr)
    f0, gate = _pitch_track(sung, n, sr, rng, p)
    f0 *= 1 + 0.004 * rng.standard_normal(n)  # jitter
    phase = np.cumsum(f0) / sr % 1.0
    table = _glottal_table(max(4, int(0.45 * sr / f0.max())), p["tilt"])
    source = np.interp(phase * _TABLE, np.arange(_TABLE + 1), np.append(table, table[0]))
    source = source * (1 + 0.05 * rng.standard_normal(n)) + 0.03 * rng.standard_normal(n)  # shimmer, breathiness
    nasal = _resonators(source, sr, _NASAL_M)
    vowel = _resonators(source, sr, _VOWEL_U if syllable == "dum" else _VOWEL_A)
    if syllable == "mmm":
        voice = nasal / np.abs(nasal).max()
    else:  # consonant at each onset: "l" is nasal-like murmur into the vowel, "d" a closure then a burst
        mix = np.ones(n)
        for on, _, _ in sung:
            a = int(on * sr)
            m = min(n - a, int(0.05 * sr))
            if m > 0:
                mix[a:a + m] = np.minimum(mix[a:a + m], np.linspace(0, 1, m))
        if syllable == "dum":  # each note closes on "m" over its last third
            for on, dur, _ in sung:
                b = min(n, int((on + dur * p["legato"]) * sr))
                a = max(0, b - int(dur * p["legato"] * sr / 3))
                mix[a:b] = np.minimum(mix[a:b], np.linspace(1, 0, b - a))
        voice = (mix * vowel / np.abs(vowel).max() + (1 - mix) * 0.6 * nasal / np.abs(nasal).max())
    voice *= gate
    if syllable in ("da", "dum"):
        burst = signal.lfilter([1, -0.9], [1], rng.standard_normal(int(0.008 * sr))) * 0.15
        for on, _, _ in sung:
            a = int(on * sr)
            m = min(len(burst), n - a)
            if m > 0:
                voice[a:a + m] += burst[:m]
    _breaths(voice, sung, sr, rng)
    y = _room_and_mic(voice, sr, rng, p)
    notes_meant = np.stack([sung[:, 0], sung[:, 1], notes[:, 2] + p["transpose"]], axis=1)
    return HumRender(y.astype(np.float32), sr, notes_meant, p)


def _breaths(voice: np.ndarray, sung: np.ndarray, sr: int, rng) -> None:
    """Breath noise in the longer rests (and before the first note)."""
    ends = np.concatenate([[0.0], sung[:-1, 0] + sung[:-1, 1]])
    for gap_start, on in zip(ends, sung[:, 0], strict=True):
        if on - gap_start > 0.25 and rng.random() < 0.7:
            m = int(min(0.3, on - gap_start - 0.05) * sr)
            b = signal.lfilter(*signal.butter(2, [500, min(3000, 0.45 * sr)], "bandpass", fs=sr),
                               rng.standard_normal(m)) * np.hanning(m) * rng.uniform(0.02, 0.08)
            a = int((on - 0.05) * sr) - m
            voice[max(0, a):a + m] += b[max(0, -a):]


def _room_and_mic(voice: np.ndarray, sr: int, rng, p: dict) -> np.ndarray:
    m = int(p["rt60"] * sr)
    t = np.arange(m) / sr
    ir = rng.standard_normal(m) * np.exp(-6.9 * t / p["rt60"])
    wet = signal.fftconvolve(voice, ir)[:len(voice)]
    y = voice + p["wet"] * wet / max(np.abs(wet).max(), 1e-9) * np.abs(voice).max()
    hp, lp = rng.uniform(60, 160), min(rng.uniform(3500, 7500), 0.45 * sr)
    y = signal.sosfilt(signal.butter(2, [hp, lp], "bandpass", fs=sr, output="sos"), y)
    rms = np.sqrt(np.mean(y[np.abs(y) > 1e-4] ** 2)) if np.any(np.abs(y) > 1e-4) else 1e-3
    white = rng.standard_normal(len(y))
    noise = white if rng.random() < 0.5 else signal.lfilter([1], [1, -0.97], white) * 0.2  # white or brown-ish
    noise *= rms * 10 ** (p["noise_db"] / 20) / max(noise.std(), 1e-9)
    if rng.random() < 0.2:  # mains hum
        mains = 50.0 if rng.random() < 0.5 else 60.0
        noise += rms * 10 ** (rng.uniform(-45, -30) / 20) * np.sin(2 * np.pi * mains * np.arange(len(y)) / sr)
    y = y + noise
    return y * (rng.uniform(0.2, 0.9) / max(np.abs(y).max(), 1e-9))
