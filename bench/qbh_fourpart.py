"""Four-part songs for the QBH *tune* split: real four-voice polyphony whose melody is the top voice, in close
voices, the lower three on one instrument (what a hymn or chorale sounds like), from material no training or
evaluation uses.

- Pieces: Palestrina's four-part mass sections of the music21 corpus (``palestrina/*.krn``; neither a training
  nor a reserved collection): the cantus is the melody, the altus, tenor and bassus the lower voices. Bach
  chorales stay reserved for the check split.
- Rendering: FluidSynth with the tune soundfont (``sf_GMbank``), the cantus on a lead instrument 6 dB under to
  6 dB over the lower voices, on the lower voices' own instrument half the time (organ, choir, strings, piano,
  reed organ, voice oohs); the excerpt starts at the cantus's first note, at a half note of 50-80 per minute.

Used by ``bench/qbh_tune.py --fourpart N``.
"""

from __future__ import annotations

import numpy as np

from musicemb_core.data import melodies as mel
from musicemb_core.data import soundfont_songs as sfs

LOWER_PROGRAMS = (19, 52, 48, 0, 20, 53)
LEAD_PROGRAMS = (52, 53, 19, 48, 0, 73, 68, 40, 71, 20)


def four_voices(relpath: str) -> list[mel.Melody] | None:
    """The four voices of a score of the melody corpus (top voice first) on one time axis starting at the first note
    of any, or None if it has not four parts (``qbh_check``'s Bach chorales, the Palestrina pieces here)."""
    import music21

    score = music21.converter.parse(str(mel.corpus_root() / relpath))
    if len(score.parts) != 4:
        return None
    voices = []
    for part in score.parts:
        notes = [n for n in part.stripTies().flatten().notes if n.quarterLength > 0]
        voices.append((np.array([max(p.midi for p in n.pitches) for n in notes], np.int16),
                       np.array([float(n.offset) for n in notes], np.float32),
                       np.array([float(n.quarterLength) for n in notes], np.float32)))
    t0 = min(v[1][0] for v in voices if len(v[1]))
    return [mel.Melody(f"{relpath}#{k}", "", p, o - t0, d) for k, (p, o, d) in enumerate(voices)]


def fourpart_pieces(n: int, seed: int, *, min_notes: int = 24) -> list[list[mel.Melody]]:
    """``n`` four-part Palestrina pieces (top voice first, one time axis in beats), openings all distinct."""
    root = mel.corpus_root()
    files = sorted(p.relative_to(root).as_posix() for p in (root / "palestrina").glob("*.krn"))
    out, seen = [], set()
    for i in np.random.default_rng(seed).permutation(len(files)):
        if len(out) == n:
            break
        if mel.is_reserved(files[i]):  # never: palestrina is no reserved collection
            continue
        voices = four_voices(files[i])
        if voices is None:
            continue
        if len(voices[0]) < min_notes:
            continue
        sig = tuple(np.diff(voices[0].pitch[:13]).tolist())
        if sig in seen:
            continue
        seen.add(sig)
        t0 = float(voices[0].onset[0])  # the excerpt starts with the cantus
        ms = []
        for k, v in enumerate(voices):
            keep = v.onset >= t0
            ms.append(mel.Melody(f"palestrina/{files[i]}#{k}", "", v.pitch[keep], v.onset[keep] - t0, v.duration[keep]))
        out.append(ms)
    return out


def render_fourpart(voices: list[mel.Melody], seed: int, *, soundfont, sr: int = 16000,
                    max_s: float = 40.0) -> tuple[np.ndarray, np.ndarray, dict]:
    """(audio at ``sr``, melody timeline (n, 3): onset s, duration s, MIDI pitch as heard, facts) of a piece."""
    rng = np.random.default_rng([seed, 29])
    bpm = float(rng.uniform(100, 160))  # quarter notes: half notes at 50-80 per minute
    beat = 60.0 / bpm
    top = voices[0]
    keep = top.onset * beat < max_s - 1.0
    end = float(top.onset[keep][-1] + top.duration[keep][-1])
    transpose = int(round(67 - np.median(top.pitch[keep]))) + int(rng.integers(-3, 4))
    lower = int(rng.choice(LOWER_PROGRAMS))
    lead = lower if rng.random() < 0.5 else int(rng.choice(LEAD_PROGRAMS))
    level_db = float(rng.uniform(-6, 6))
    lead_vel = int(np.clip(80 * 10 ** (level_db / 40), 30, 127))
    ev = [(0, bytes([0xC0, lead]))] + [(0, bytes([0xC0 | ch, lower])) for ch in (1, 2, 3)]
    ev += [(0, bytes([0xB0 | ch, 91, int(rng.uniform(20, 80))])) for ch in range(4)]
    for ch, v in enumerate(voices):
        for o, d, p in zip(v.onset, v.duration, v.pitch, strict=True):
            if o >= end:
                continue
            on = int(round(o * beat * sfs.TICKS_PER_S))
            off = int(round((o + 0.95 * min(d, end - o)) * beat * sfs.TICKS_PER_S))
            ev += [(on, bytes([0x90 | ch, int(p) + transpose, lead_vel if ch == 0 else 80])),
                   (max(on + 1, off), bytes([0x80 | ch, int(p) + transpose, 0]))]
    ev.append((int(round((end * beat + 1.0) * sfs.TICKS_PER_S)), bytes([0xB0, 7, 100])))
    y = sfs.render_midi(sfs.smf([(0, b"\xff\x51\x03" + (500_000).to_bytes(3, "big")), *ev]), soundfont=soundfont,
                        sr=sr)
    y = (0.8 * y / max(float(np.abs(y).max()), 1e-6)).astype(np.float32)
    timeline = np.stack([top.onset[keep] * beat, top.duration[keep] * beat,
                         top.pitch[keep].astype(float) + transpose], 1)
    return y, timeline, {"lead": lead, "lower": lower, "level_db": round(level_db, 1), "bpm": round(bpm, 1)}
