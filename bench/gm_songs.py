"""Songs of known melodies rendered by FluidSynth with a General MIDI soundfont, in accompaniment styles that no
QBH training used (training renders with the in-project synthesiser's styles): the QBH check split.

- ``chorale``: a Bach chorale's own four voices (the melody is the soprano, the top of four);
- ``oompah``: bass on the first beat, off-beat chords; ``block``: sustained chords and a bass line;
  ``arpeggio``: broken chords in eighths; ``beat``: drum kit, bass on every beat, off-beat comping.
  These harmonise a folk tune (a diatonic triad per half bar that fits its notes).

The lead plays a varied GM instrument (voices, winds, strings, keys, guitar) 6 dB under to 6 dB over the
accompaniment. ``TIMGM`` (TimGM6mb) is reserved for evaluation: never train or tune with it (DESIGN.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.fluid_songs import TPQ, render
from musicemb_core.data.melodies import Melody
from musicemb_core.data.soundfont_songs import smf

TIMGM = Path("/usr/share/sounds/sf2/TimGM6mb.sf2")
STYLES = ("oompah", "block", "arpeggio", "beat")
LEADS = (52, 53, 54, 73, 40, 65, 71, 68, 56, 0, 24)  # choir aahs, voice oohs, synth voice, flute, violin, alto
# sax, clarinet, oboe, trumpet, piano, nylon guitar
MAJOR, MINOR = (0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 10)
_KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def melody_key(pitch: np.ndarray, duration: np.ndarray) -> tuple[int, tuple[int, ...]]:
    """(tonic pitch class, scale) by Krumhansl-Kessler correlation of the duration-weighted pitch classes."""
    hist = np.bincount(np.asarray(pitch) % 12, weights=duration, minlength=12)
    best = max(((np.corrcoef(hist, np.roll(prof, t))[0, 1], t, scale) for t in range(12)
                for prof, scale in ((_KK_MAJOR, MAJOR), (_KK_MINOR, MINOR))), key=lambda r: r[0])
    return best[1], best[2]


def harmonise(m: Melody, *, span: float = 2.0) -> list[tuple[int, ...]]:
    """One triad (3 pitch classes, root first) per ``span`` beats: the diatonic triad on degree I, IV, V, vi,
    ii or iii that covers most of the melody's sounding time there (ties to the earlier, commoner degree)."""
    tonic, scale = melody_key(m.pitch, m.duration)
    triads = [tuple((tonic + scale[(d + j) % 7]) % 12 for j in (0, 2, 4)) for d in (0, 3, 4, 5, 1, 2)]
    end = float(m.onset[-1] + m.duration[-1])
    out = []
    for a in np.arange(0.0, end, span):
        overlap = np.clip(np.minimum(m.onset + m.duration, a + span) - np.maximum(m.onset, a), 0, None)
        score = [sum(o for o, p in zip(overlap, m.pitch, strict=True) if p % 12 in t) for t in triads]
        out.append(triads[int(np.argmax(score))])
    return out


def _note(ev: list, ch: int, pitch: int, on: int, off: int, vel: int) -> None:
    ev += [(on, bytes([0x90 | ch, pitch, vel])), (max(on + 1, off), bytes([0x80 | ch, pitch, 0]))]


def song_midi(m: Melody, style: str, *, bpm: float, transpose: int, rng: np.random.Generator,
              voices: list[Melody] | None = None) -> tuple[bytes, dict]:
    """MIDI of ``m`` (+ ``transpose``) at ``bpm`` over ``style``; ``voices`` (the chorale's lower parts) for
    ``chorale``. Returns the file and what was drawn (lead programme, lead level in dB)."""
    q = TPQ
    lead, level_db = int(rng.choice(LEADS)), float(rng.uniform(-6, 6))
    lead_vel = int(np.clip(80 * 10 ** (level_db / 40), 30, 127))  # +-6 dB ~ velocity x/÷ 1.4 (GM velocity curve)
    ev: list = [(0, b"\xff\x51\x03" + int(60_000_000 / bpm).to_bytes(3, "big")), (0, bytes([0xC0, lead]))]
    for o, d, p in zip(m.onset, m.duration, m.pitch, strict=True):
        _note(ev, 0, int(p) + transpose, int(o * q), int((o + 0.95 * d) * q), lead_vel)
    if style == "chorale":
        prog = int(rng.choice([52, 19, 48, 0]))  # choir, organ, strings, piano
        for ch, v in enumerate(voices or [], 1):
            ev.append((0, bytes([0xC0 | ch, prog])))
            for o, d, p in zip(v.onset, v.duration, v.pitch, strict=True):
                _note(ev, ch, int(p) + transpose, int(o * q), int((o + 0.95 * d) * q), 80)
        return smf(ev, TPQ), {"lead": lead, "level_db": round(level_db, 1)}
    chords, span = harmonise(m), 2
    ev += [(0, bytes([0xC1, int(rng.choice({"oompah": [0, 21, 24], "block": [48, 19, 89], "arpeggio": [46, 24, 0],
                                              "beat": [25, 4, 27]}[style]))])), (0, bytes([0xC2, 33]))]
    base = 48 + transpose % 12 - (12 if transpose % 12 > 6 else 0)
    for k, tri in enumerate(chords):
        t0 = k * span * q
        notes = [base + (pc - base) % 12 for pc in tri]
        root = notes[0] - 12
        if style == "oompah":
            _note(ev, 2, root, t0, t0 + q - 20, 90)
            for p in notes:
                _note(ev, 1, p, t0 + q, t0 + 2 * q - 40, 60)
        elif style == "block":
            _note(ev, 2, root, t0, t0 + span * q - 10, 80)
            for p in notes:
                _note(ev, 1, p, t0, t0 + span * q - 10, 55)
        elif style == "arpeggio":
            for j, p in enumerate([*notes, notes[0] + 12] * span):
                _note(ev, 1, p, t0 + j * q // 2, t0 + (j + 1) * q // 2, 62)
        else:  # beat
            for b in range(span):
                bt = t0 + b * q
                _note(ev, 2, root, bt, bt + q - 30, 88)
                _note(ev, 9, 36 if b == 0 else 38, bt, bt + 60, 105)
                for h in (0, q // 2):
                    _note(ev, 9, 42, bt + h, bt + h + 30, 55)
                for p in notes:
                    _note(ev, 1, p, bt + q // 2, bt + q - 20, 55)
    return smf(ev, TPQ), {"lead": lead, "level_db": round(level_db, 1)}


def render_song(m: Melody, style: str, out_wav: Path, *, seed: int, soundfont: Path = TIMGM, sr: int = 16000,
                max_s: float = 40.0, voices: list[Melody] | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Render ``m`` (cut to ``max_s``) as a song; returns (mono audio, melody timeline (n, 3): onset s, duration
    s, MIDI pitch as heard, facts)."""
    rng = np.random.default_rng(seed)
    bpm = float(rng.uniform(60, 90) if style == "chorale" else rng.uniform(80, 140))
    keep = m.onset * 60 / bpm < max_s - 1.0
    cut = Melody(m.name, m.title, m.pitch[keep], m.onset[keep], m.duration[keep])
    voices = [Melody(v.name, v.title, v.pitch[v.onset < cut.onset[-1] + cut.duration[-1]],
                     v.onset[v.onset < cut.onset[-1] + cut.duration[-1]],
                     v.duration[v.onset < cut.onset[-1] + cut.duration[-1]]) for v in voices or []]
    transpose = int(round(67 - np.median(cut.pitch))) + int(rng.integers(-3, 4))
    midi, facts = song_midi(cut, style, bpm=bpm, transpose=transpose, rng=rng, voices=voices)
    y, file_sr = render(midi, out_wav, soundfont=soundfont, sr=sr)
    beat = 60 / bpm
    timeline = np.stack([cut.onset * beat, cut.duration * beat, cut.pitch.astype(float) + transpose], 1)
    return y, timeline, {**facts, "bpm": round(bpm, 1), "style": style}
