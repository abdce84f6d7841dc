"""Songs of known melodies rendered by FluidSynth with sample-based General MIDI soundfonts: QBH training (and
tune-split) material that does not sound like the in-project synthesiser.

Each song is an *arrangement* drawn from a seed: the melody on a lead instrument (voices, winds, strings, keys,
guitars, synth leads; sometimes doubled at the unison or octave, sometimes ornamented with grace notes and
mordents, sometimes with vibrato), -6 to +6 dB against the accompaniment, over three layers:

- harmony: ``hymn`` (four parts from a voice-leading harmoniser, the melody the top voice, often on the same
  instrument as the lower voices), block chords in a ``charleston`` or ``pump`` (repeated eighths) rhythm,
  ``alberti`` and descending ``triplets`` broken chords, sustained ``pad`` chords, or none;
- bass: ``long`` notes, ``root_fifth``, ``walking`` quarters, or none;
- drums: ``four_floor``, ``shuffle``, ``halftime``, ``jazz`` ride, or none;

then FluidSynth's reverb (send level and room drawn per song and batch), at 16 or 32 kHz (resampled), and an
mp3-like band limit or a high-pass. The QBH *check* split's accompaniments (``bench/gm_songs.py``: Bach's own
chorale voices, oom-pah, two-beat block chords, rising 1-3-5-8 eighth arpeggios, the kick/snare/eighth-hat beat)
are none of these. The *tune* split draws only the figures in ``TUNE_FIGURES`` (passing-note hymn, ``tresillo``,
``fingerpick``, ``strum``; ``octaves`` bass; ``bossa`` drums), which training never draws. The ``poly`` training
split (``POLY_FIGURES``) draws close four-part ``chorale`` textures whose inner voices move in eighths and
``arp_cross`` broken chords that climb into the melody's register.

TimGM6mb is reserved for evaluation: :func:`check_soundfont` refuses it (by name, also behind a symlink such as
``default-GM.sf2``), and only melodies of the training collections may be rendered for training (the caller loads
them through :func:`musicemb_core.data.melodies.load_collections`, which refuses reserved collections).
Needs ``fluidsynth`` and the soundfonts (``apt-get install fluidsynth fluid-soundfont-gm
musescore-general-soundfont-small csound-soundfont``); nothing else in the project does.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal

from musicemb_core.audio.resample import resample
from musicemb_core.common.errors import ConfigError
from musicemb_core.data.melodies import Melody, is_reserved

SOUNDFONT_DIRS = (Path("/usr/share/sounds/sf2"), Path("/usr/share/sounds/sf3"))
TRAINING_SOUNDFONTS = ("FluidR3_GM.sf2", "MuseScore_General_Lite.sf3")
"""Soundfonts of the QBH training renderings (Debian fluid-soundfont-gm, musescore-general-soundfont-small)."""
TUNE_SOUNDFONTS = ("sf_GMbank.sf2",)
"""The tune split's soundfont (Debian csound-soundfont): never used for training."""
RESERVED_SOUNDFONTS = ("timgm6mb",)
"""Soundfonts kept for evaluation (the QBH check split): never train or tune with them."""
TPQ = 480
TICKS_PER_S = 2 * TPQ  # files are written at 120 bpm: a tick is 1/960 s, so times go in as seconds

HARMONY = ("hymn", "charleston", "pump", "alberti", "triplets", "pad", "none")
BASS = ("long", "root_fifth", "walking", "none")
DRUMS = ("four_floor", "shuffle", "halftime", "jazz", "none")
TUNE_FIGURES = {"harmony": ("hymn_passing", "tresillo", "fingerpick", "strum"), "bass": ("octaves", "none"),
                "drums": ("bossa", "none")}
POLY_FIGURES = {"harmony": ("chorale", "chorale", "arp_cross"), "bass": BASS, "drums": ("none",)}
"""The ``poly`` training split: four close voices in one timbre whose inner voices move (``chorale``: a chord a
beat, alto, tenor and bass often in eighths with passing and neighbour tones, the melody the top voice), and
broken chords rising and falling in eighths into the melody's register (``arp_cross``)."""
FOUR_PART = ("hymn", "hymn_passing", "chorale")
LEADS = (52, 53, 54, 85, 73, 74, 75, 40, 41, 64, 65, 66, 71, 68, 56, 57, 60, 0, 1, 4, 24, 25, 26, 11, 16, 21,
         22, 80, 81)
_HARMONY_PROGRAMS = {"hymn": (19, 20, 48, 49, 52, 61, 0, 16), "hymn_passing": (19, 48, 52, 0),
                     "chorale": (19, 20, 16, 21, 48, 49, 52, 53, 0, 6, 61, 42), "arp_cross": (46, 0, 24, 25, 6, 11, 1),
                     "charleston": (0, 1, 2, 4, 5, 17, 61), "pump": (0, 1, 4, 5, 16, 17, 30),
                     "alberti": (0, 1, 6, 46, 24, 4, 11), "triplets": (0, 6, 46, 24, 25, 11),
                     "pad": (88, 89, 90, 91, 92, 94, 48, 49, 50), "tresillo": (0, 4, 61, 16),
                     "fingerpick": (24, 25, 46), "strum": (24, 25, 26, 27)}
_BASS_PROGRAMS = (32, 33, 34, 35, 36, 38, 39, 42, 58)
_KITS = (0, 8, 16, 24, 25, 32, 40)
_BAR = 4.0  # beats per bar of the figures
_KK = (np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88]),
       np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17]))
_SCALES = ((0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 10))


def check_soundfont(path: str | Path) -> Path:
    """``path`` as a Path if it may be used for training or tuning; :class:`ConfigError` for a reserved one."""
    p = Path(path)
    names = {p.name.lower(), p.resolve().name.lower()}
    for r in RESERVED_SOUNDFONTS:
        if any(r in n for n in names):
            raise ConfigError(f"soundfont {p} is reserved for evaluation (the QBH check split); never train or "
                              f"tune with it")
    return p


def find_soundfonts(names: tuple[str, ...] = TRAINING_SOUNDFONTS) -> list[Path]:
    """The installed soundfonts of ``names`` (file names looked up in ``SOUNDFONT_DIRS``), checked."""
    found = [d / n for n in names for d in SOUNDFONT_DIRS if (d / n).exists()]
    return [check_soundfont(p) for p in dict.fromkeys(found)]


def fluidsynth_available() -> bool:
    return shutil.which("fluidsynth") is not None


@dataclass
class Arrangement:
    """What a song's seed drew; ``figures`` names the harmony/bass/drums layers."""

    bpm: float
    transpose: int
    lead: int
    level_db: float
    harmony: str
    bass: str
    drums: str
    intro_beats: float
    facts: dict = field(default_factory=dict)

    @property
    def style(self) -> str:
        return f"gm-{self.harmony}"


def draw_arrangement(rng: np.random.Generator, melody: Melody, *, split: str = "train") -> Arrangement:
    if split not in ("train", "tune", "poly"):
        raise ConfigError(f"split must be 'train', 'tune' or 'poly', got {split!r}")
    figs = {"harmony": HARMONY, "bass": BASS, "drums": DRUMS} if split == "train" else (
        TUNE_FIGURES if split == "tune" else POLY_FIGURES)
    harmony, bass, drums = (str(rng.choice(figs[k])) for k in ("harmony", "bass", "drums"))
    bpm = float(rng.uniform(60, 100) if harmony in FOUR_PART or harmony == "pad" else rng.uniform(75, 150))
    transpose = int(round(rng.uniform(61, 73) - np.median(melody.pitch)))
    return Arrangement(bpm, transpose, int(rng.choice(LEADS)), float(rng.uniform(-6, 6)), harmony, bass, drums,
                       float(rng.choice([0.0, _BAR])))


def melody_key(pitch: np.ndarray, duration: np.ndarray) -> tuple[int, tuple[int, ...]]:
    """(tonic pitch class, scale) by Krumhansl-Kessler correlation of the duration-weighted pitch classes."""
    hist = np.bincount(np.asarray(pitch) % 12, weights=duration, minlength=12)
    best = max(((np.corrcoef(hist, np.roll(prof, t))[0, 1], t, sc) for t in range(12)
                for prof, sc in zip(_KK, _SCALES, strict=True)), key=lambda r: r[0])
    return best[1], best[2]


def chords_for(m: Melody, span: float) -> list[tuple[int, int, int]]:
    """One diatonic triad (root, third, fifth pitch classes) per ``span`` beats: the one whose tones cover most of
    the melody's sounding time there, the previous chord kept on a tie, the tonic at the start and end."""
    tonic, scale = melody_key(m.pitch, m.duration)
    triads = [tuple((tonic + scale[(d + j) % 7]) % 12 for j in (0, 2, 4)) for d in (0, 4, 3, 5, 1, 2, 6)]
    end = float(m.onset[-1] + m.duration[-1])
    out: list = []
    starts = np.arange(0.0, end, span)
    for k, a in enumerate(starts):
        ov = np.clip(np.minimum(m.onset + m.duration, a + span) - np.maximum(m.onset, a), 0, None)
        score = np.array([sum(o for o, p in zip(ov, m.pitch, strict=True) if p % 12 in t) for t in triads])
        score[0] += 0.3 * span * (k == 0 or k == len(starts) - 1)
        if out:
            score[triads.index(out[-1])] += 0.05
        out.append(triads[int(np.argmax(score))])
    return out


def _place(pc: int, lo: int) -> int:
    """The lowest pitch of pitch class ``pc`` at or above ``lo``."""
    return lo + (pc - lo) % 12


class _Score:
    """Notes in beats on channels, then messages at seconds (``offset`` s + beats x ``beat_s``)."""

    def __init__(self, beat_s: float):
        self.beat_s = beat_s
        self.notes: list[tuple[float, float, int, int, int]] = []  # (on beats, dur beats, ch, pitch, vel)

    def add(self, ch: int, pitch: int, on: float, dur: float, vel: float) -> None:
        if 0 <= pitch < 128 and dur > 0:
            self.notes.append((on, dur, ch, int(pitch), int(np.clip(vel, 1, 127))))


def _harmony(sc: _Score, fig: str, chords, span: float, end: float, top: np.ndarray, rng, same_as_lead: bool,
             scale: set[int] | None = None):
    """Harmony layer on channel 1 (hymn, chorale: alto and tenor on 1, bass on 2); ``top`` (beats -> lowest melody
    pitch of each chord span) bounds the voices from above; ``scale`` (pitch classes) for the chorale's passing
    tones."""
    lo = int(np.clip(np.min(top) - 16, 40, 60))
    vel = 58 + rng.integers(-8, 9)
    if fig == "chorale":
        _chorale(sc, chords, span, top, rng, scale or set(range(12)), vel)
        return
    if fig == "arp_cross":  # 1-3-5-8-10-8-5-3 in eighths from a fifth under the melody's lowest note
        base = int(np.clip(np.min(top) - 14, 40, 62))
        for j, t in enumerate(np.arange(0, end, 0.5)):
            tri = chords[min(int(t // span), len(chords) - 1)]
            r = _place(tri[0], base)
            ladder = [r, _place(tri[1], r), _place(tri[2], r), r + 12, _place(tri[1], r + 12)]
            sc.add(1, ladder[(0, 1, 2, 3, 4, 3, 2, 1)[j % 8]], t, .5, vel + 8 * (j % 4 == 0))
        return
    if fig in ("hymn", "hymn_passing"):
        prev = None
        for k, tri in enumerate(chords):
            a = k * span
            voices = _voicing(tri, int(top[k]), prev, alto=(12, 0), tenor=(19, 4))
            if voices is None:
                continue
            prev = al, te, ba = voices
            arts = 0.97 if same_as_lead else 0.92
            sc.add(1, al, a, span * arts, vel)
            sc.add(1, te, a, span * arts, vel)
            if fig == "hymn_passing":  # the bass walks in quarters by step towards the next chord's root
                nxt = _place(chords[k + 1][0] if k + 1 < len(chords) else tri[0], ba - 6)
                way = 1 if nxt >= ba else -1
                for j in range(int(span)):
                    sc.add(2, ba + way * (0, 2, 3, 5)[j % 4], a + j, 0.95, vel + 6)
            else:
                sc.add(2, ba, a, span * arts, vel + 6)
        return
    hits = {"charleston": [(0, .6), (1.5, .5)], "pump": [(j / 2, .35) for j in range(8)], "tresillo":
            [(0, .9), (1.5, .9), (3, .8)], "pad": [(0, _BAR)]}.get(fig)
    for bar in np.arange(0, end, _BAR):
        if hits:
            for t, d in hits:
                if bar + t < end:
                    tri = chords[min(int((bar + t) // span), len(chords) - 1)]
                    d = min(d, span - (bar + t) % span) if fig == "pad" else d
                    for pc in tri:
                        sc.add(1, _place(pc, lo + 7 * (fig == "pad")), bar + t, d,
                               vel - 6 * (fig == "pad") + 10 * (t % 1 == 0))
            if fig == "pad" and span < _BAR:
                for t in np.arange(span, _BAR, span):
                    tri = chords[min(int((bar + t) // span), len(chords) - 1)]
                    for pc in tri:
                        sc.add(1, _place(pc, lo + 7), bar + t, span, vel - 6)
            continue
        for j in range(16 if fig == "fingerpick" else 12 if fig == "triplets" else 8):
            step = {"fingerpick": .25, "triplets": 1 / 3}.get(fig, .5)
            t = bar + j * step
            if t >= end:
                break
            tri = chords[min(int(t // span), len(chords) - 1)]
            ch = [_place(tri[0], lo), _place(tri[1], lo), _place(tri[2], lo)]
            ch.sort()
            if fig == "alberti":
                sc.add(1, ch[(0, 2, 1, 2)[j % 4]], t, .45, vel - 4 + 8 * (j % 2 == 0))
            elif fig == "triplets":
                sc.add(1, (ch[0] + 12, ch[2], ch[1])[j % 3], t, .3, vel - 6 + 8 * (j % 3 == 0))
            elif fig == "fingerpick":  # thumb alternates root and fifth (an octave down) per half bar
                thumb = ch[0] - 12 if j // 8 % 2 == 0 else _place(tri[2], ch[0] - 12)
                sc.add(1, (thumb, ch[1], ch[2], ch[0] + 12)[j % 4], t, .5, vel + 8 * (j % 4 == 0))
            elif fig == "strum" and (j in (0, 2, 3, 5, 6, 7)):
                order = ch + [ch[0] + 12] if j % 2 == 0 else [ch[0] + 12, *ch[::-1]]
                for n, p in enumerate(order):
                    sc.add(1, p, t + n * 0.012 / sc.beat_s, .45, vel + 8 * (j % 2 == 0) - 4 * n)


def _voicing(tri, s: int, prev, *, alto: tuple[int, int] = (10, 0), tenor: tuple[int, int] = (17, 3)):
    """(alto, tenor, bass) of triad ``tri`` under soprano ``s``, closest to ``prev`` (a hymn's voice leading): alto
    and tenor chord tones from ``s - alto[0]`` up to ``s - alto[1]`` (and likewise), the bass the root or an
    inversion's lowest tone in MIDI 36-51; None when no voicing fits."""
    best = None
    for inv in range(3):
        altos = [p for pc in tri for p in range(s - alto[0], s - alto[1]) if p % 12 == pc]
        tenors = [p for pc in tri for p in range(s - tenor[0], s - tenor[1]) if p % 12 == pc]
        bass = [p for p in range(36, 52) if p % 12 == tri[inv]]
        for al in altos:
            for te in tenors:
                for ba in bass:
                    if not (ba < te < al):
                        continue
                    move = sum(abs(x - y) for x, y in zip((al, te, ba), prev or (al, te, ba), strict=True))
                    cost = move + 4 * inv + 3 * (len({al % 12, te % 12, ba % 12, s % 12}) < 3)
                    if best is None or cost < best[0]:
                        best = (cost, (al, te, ba))
    return None if best is None else best[1]


def _chorale(sc: _Score, chords, span: float, top: np.ndarray, rng, scale: set[int], vel: int) -> None:
    """Alto and tenor (channel 1) and bass (channel 2) a chord a beat under the soprano; each voice moves to the
    next chord through a passing or neighbour tone in eighths on about half of the beats."""
    plan, prev = [], None
    for k, tri in enumerate(chords):
        prev = _voicing(tri, int(top[k]), prev) or prev
        plan.append(prev)
    move = float(rng.uniform(0.3, 0.7))
    for k, v in enumerate(plan):
        if v is None:
            continue
        a = k * span
        nxt = plan[k + 1] if k + 1 < len(plan) and plan[k + 1] is not None else v
        ceiling = min(int(top[k]), int(top[min(k + 1, len(top) - 1)])) - 1  # the alto stays under the soprano
        for j, (p, q) in enumerate(zip(v, nxt, strict=True)):
            ch, vv = (1, vel) if j < 2 else (2, vel + 6)
            steps = [x for x in range(min(p, q) + 1, max(p, q)) if x % 12 in scale]
            if rng.random() < move and (steps or p == q):
                if steps:  # a passing tone between this chord's note and the next one's
                    mid = steps[len(steps) // 2]
                else:  # a neighbour tone a scale step away
                    mid = next((x for x in (p + 1, p + 2, p - 1, p - 2) if x % 12 in scale), p)
                mid = min(mid, ceiling) if j < 2 else mid
                sc.add(ch, p, a, span / 2 * 0.97, vv)
                sc.add(ch, mid, a + span / 2, span / 2 * 0.97, vv - 4)
            else:
                sc.add(ch, p, a, span * 0.97, vv)


def _bass(sc: _Score, fig: str, chords, span: float, end: float, rng) -> None:
    vel = 80 + rng.integers(-8, 9)
    for b in range(int(np.ceil(end))):
        tri = chords[min(int(b // span), len(chords) - 1)]
        root = _place(tri[0], 33)
        fifth = _place(tri[2], root)
        pos = b % _BAR
        if fig == "long" and b % span == 0:
            sc.add(2, root, b, span * 0.95, vel)
        elif fig == "root_fifth" and pos in (0, 2):
            sc.add(2, root if pos == 0 else fifth - 12 * (fifth - root > 7), b, 1.4, vel)
        elif fig == "walking":  # root, third, fifth, then a step into the next chord's root
            idx = b % span
            nxt = _place(chords[min(int((b + 1) // span), len(chords) - 1)][0], 33)
            p = (root if idx == 0 else nxt + (1 if nxt < root else -1) if (b + 1) % span == 0
                 else _place(tri[1], root) if idx == 1 else fifth)
            sc.add(2, p, b, .9, vel + 6 * (pos == 0))
        elif fig == "octaves":
            for h in (0, .5):
                sc.add(2, root + 12 * (h > 0), b + h, .4, vel)


def _drums(sc: _Score, fig: str, end: float, rng) -> None:
    K, S, CH, OH, RIDE, PED, RIM, CLAP, SHAKER = 36, 38, 42, 46, 51, 44, 37, 39, 70
    pats = {"four_floor": [(K, t, 105) for t in (0, 1, 2, 3)] + [(CLAP, t, 90) for t in (1, 3)]
            + [(OH, t + .5, 60) for t in (0, 1, 2, 3)],
            "shuffle": [(K, 0, 100), (K, 2.67, 90), (S, 1, 95), (S, 3, 95)]
            + [(RIDE, t + s, 55 + 10 * (s == 0)) for t in range(4) for s in (0, 2 / 3)],
            "halftime": [(K, 0, 105), (K, 1.75, 85), (S, 2, 100)] + [(CH, j / 4, 45 + 15 * (j % 2 == 0))
                                                                     for j in range(16)],
            "jazz": [(RIDE, t, 62) for t in (0, 1, 1.67, 2, 3, 3.67)] + [(PED, t, 50) for t in (1, 3)]
            + [(K, 0, 50)],
            "bossa": [(RIM, t, 75) for t in (0, .75, 1.5, 2.5, 3)] + [(K, t, 85) for t in (0, 1.5, 2, 3.5)]
            + [(SHAKER, j / 4, 40) for j in range(16)]}.get(fig, [])
    for bar in np.arange(0, end, _BAR):
        for p, t, v in pats:
            if bar + t < end:
                sc.add(9, p, bar + t, .1, v + rng.integers(-6, 7))


def song_events(m: Melody, arr: Arrangement, rng: np.random.Generator, *, max_s: float) -> tuple[list, np.ndarray,
                                                                                                  float]:
    """MIDI messages (seconds, bytes) of one song from 0 s, its melody timeline (n, 4: onset s, duration s, MIDI
    pitch as heard, note index) and its length in seconds. The melody is cut to the notes starting before
    ``max_s`` - 1 s."""
    beat = 60.0 / arr.bpm
    keep = (m.onset + arr.intro_beats) * beat < max_s - 1.0
    keep[:min(len(keep), 2)] = True
    cut = Melody(m.name, m.title, m.pitch[keep], m.onset[keep], m.duration[keep])
    pitch = cut.pitch.astype(int) + arr.transpose
    end = float(cut.onset[-1] + cut.duration[-1]) + arr.intro_beats
    sc = _Score(beat)
    span = float(1.0 if arr.harmony == "chorale" else 2.0 if arr.harmony == "hymn_passing"
                 else rng.choice([1.0, 2.0]) if arr.harmony == "hymn" else rng.choice([2.0, 4.0]))
    shifted = Melody(cut.name, "", pitch, cut.onset + arr.intro_beats, cut.duration)
    chords = chords_for(Melody(cut.name, "", pitch, shifted.onset, cut.duration), span)
    n_ch = len(chords)
    top = []
    for k in range(n_ch):
        sounding = pitch[(shifted.onset < (k + 1) * span) & (shifted.onset + cut.duration > k * span)]
        top.append(int(sounding.min()) if len(sounding) else int(np.median(pitch)))
    top = np.array(top)
    same = (arr.harmony.startswith("hymn") and rng.random() < 0.5) or (arr.harmony == "chorale" and rng.random() < 0.7)
    lead = int(rng.choice(_HARMONY_PROGRAMS[arr.harmony])) if same else arr.lead
    if arr.harmony != "none":
        tonic, mode = melody_key(pitch, cut.duration) if arr.harmony == "chorale" else (0, tuple(range(12)))
        _harmony(sc, arr.harmony, chords, span, end, top, rng, same, {(tonic + d) % 12 for d in mode})
    if arr.bass != "none" and arr.harmony not in FOUR_PART:
        _bass(sc, arr.bass, chords, span, end, rng)
    if arr.drums != "none":
        _drums(sc, arr.drums, end, rng)
    legato = float(rng.uniform(0.75, 1.0))
    lead_vel = float(rng.uniform(75, 110))
    ornate = rng.random() < 0.4
    double = rng.random() < 0.25
    orn = []
    for i, (o, d, p) in enumerate(zip(shifted.onset, cut.duration, pitch, strict=True)):
        v = lead_vel + rng.normal(0, 6)
        grace = ornate and i and rng.random() < 0.08
        mordent = ornate and d * beat > 0.4 and rng.random() < 0.05
        if grace:
            g = 0.07 / beat
            sc.add(0, p + int(rng.choice([-2, -1, 1, 2])), o - g, g, v - 10)
        if mordent:
            t = 0.07 / beat
            sc.add(0, p, o, t, v)
            sc.add(0, p + int(rng.choice([1, 2])), o + t, t, v - 8)
            sc.add(0, p, o + 2 * t, d * legato - 2 * t, v)
        else:
            sc.add(0, p, o, d * legato, v)
        if double:
            sc.add(3, p + (12 if p < 66 else -12) * int(rng.integers(0, 2)), o, d * legato, v - 15)
        orn.append(grace or mordent)
    # controllers: lead vs accompaniment level (CC7: ~40 log10 dB), reverb and chorus sends, pan, vibrato
    lead_cc = int(100 * 10 ** (min(0.0, arr.level_db) / 40))
    acc_cc = int(100 * 10 ** (-max(0.0, arr.level_db) / 40))
    rev, cho = int(rng.uniform(0, 100)), int(rng.uniform(0, 50)) * (rng.random() < 0.4)
    hymn = arr.harmony in FOUR_PART
    harmony_prog = lead if same else int(rng.choice(_HARMONY_PROGRAMS.get(arr.harmony, (0,))))
    programs = (lead, harmony_prog, harmony_prog if hymn else int(rng.choice(_BASS_PROGRAMS)),
                int(rng.choice(LEADS)))
    msgs = [(0.0, bytes([0xC0 | ch, prog])) for ch, prog in enumerate(programs)]
    msgs.append((0.0, bytes([0xC9, int(rng.choice(_KITS))])))
    for ch in (0, 1, 2, 3, 9):
        vol = lead_cc if ch == 0 else int(lead_cc * 10 ** (-rng.uniform(6, 12) / 40)) if ch == 3 else acc_cc
        msgs += [(0.0, bytes([0xB0 | ch, 7, vol])), (0.0, bytes([0xB0 | ch, 91, rev])),
                 (0.0, bytes([0xB0 | ch, 93, cho])), (0.0, bytes([0xB0 | ch, 10, int(np.clip(
                     64 + rng.normal(0, 20) * (ch != 0), 0, 127))])),
                 (0.0, bytes([0xB0 | ch, 1, int(rng.uniform(20, 70)) if ch == 0 and rng.random() < 0.4 else 0]))]
    for on, dur, ch, p, v in sc.notes:
        msgs += [(max(0.0, on * beat), bytes([0x90 | ch, p, v])), (max(0.0, (on + dur) * beat),
                                                                   bytes([0x80 | ch, p, 0]))]
    timeline = np.stack([shifted.onset * beat, cut.duration * beat, pitch.astype(float),
                         np.arange(len(pitch), dtype=float)], 1)
    arr.facts = {"lead": lead, "same_as_accompaniment": bool(same), "doubled": bool(double),
                 "ornaments": int(sum(orn)), "span": span, "reverb": rev}
    return msgs, timeline, end * beat + 0.6


def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def smf(events: list[tuple[int, bytes]], tpq: int = TPQ) -> bytes:
    """A format-0 Standard MIDI File of (absolute tick, message bytes); note-offs before note-ons at a tick."""
    data, last = b"", 0
    for tick, msg in sorted(events, key=lambda e: (e[0], e[1][0] & 0xF0 != 0x80)):
        data += _vlq(tick - last) + msg
        last = tick
    data += b"\x00\xff\x2f\x00"
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, tpq) + b"MTrk" + struct.pack(">I", len(data)) + data


def render_midi(midi: bytes, *, soundfont: str | Path, sr: int, options: dict | None = None) -> np.ndarray:
    """Mono float32 audio of ``midi`` through ``fluidsynth`` (reverb and chorus on) at ``sr``."""
    soundfont = check_soundfont(soundfont)
    if not fluidsynth_available():
        raise ConfigError("fluidsynth is not installed: apt-get install fluidsynth")
    if not soundfont.exists():
        raise ConfigError(f"soundfont {soundfont} is missing")
    with tempfile.TemporaryDirectory(prefix="musicemb-fs-") as tmp:
        mid, wav = Path(tmp) / "song.mid", Path(tmp) / "song.wav"
        mid.write_bytes(midi)
        opts = [a for k, v in (options or {}).items() for a in ("-o", f"{k}={v}")]
        subprocess.run(["fluidsynth", "-ni", "-g", "0.5", "-r", str(sr), *opts, "-F", str(wav), str(soundfont),
                        str(mid)], check=True, capture_output=True, timeout=600)
        y, _ = sf.read(wav, dtype="float32", always_2d=True)
    return y.mean(axis=1)


def _post(y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """mp3-like band limit (half the songs) or a high-pass, then a peak level."""
    if rng.random() < 0.5:
        y = signal.sosfilt(signal.butter(8, min(rng.uniform(3500, 7800), 0.48 * sr), fs=sr, output="sos"), y)
    if rng.random() < 0.3:
        y = signal.sosfilt(signal.butter(2, rng.uniform(60, 200), "highpass", fs=sr, output="sos"), y)
    return (y * rng.uniform(0.3, 0.9) / max(float(np.abs(y).max()), 1e-6)).astype(np.float32)


def render_songs(melodies: list[Melody], seeds: list[int], *, soundfont: str | Path, sr: int = 16000,
                 max_s: float = 30.0, split: str = "train") -> list[tuple[np.ndarray, np.ndarray, Arrangement]]:
    """Songs of ``melodies`` (one seed each) in one FluidSynth run: (audio at ``sr``, timeline, arrangement).

    The songs are laid end to end with 2.5 s of silence (all notes and sounds off) between them in one MIDI
    file, so the soundfont loads once; the batch's seed (the first) draws the render rate (16 or 32 kHz) and the
    reverb room. Melodies of reserved collections are refused (``split`` is ``train``, ``poly`` or ``tune``: all may
    only use the training collections)."""
    check_soundfont(soundfont)
    for m in melodies:
        if is_reserved(m.name.split("#")[0]):
            raise ConfigError(f"melody {m.name} is of a collection reserved for evaluation; refusing to render it "
                              f"for {split}")
    brng = np.random.default_rng([seeds[0], 91])
    render_sr = int(brng.choice([16000, 32000]))
    opts = {"synth.reverb.room-size": round(float(brng.uniform(0.2, 0.9)), 2),
            "synth.reverb.damp": round(float(brng.uniform(0.1, 0.6)), 2)}
    events, parts, t0 = [], [], 0.5
    for m, seed in zip(melodies, seeds, strict=True):
        rng = np.random.default_rng([seed, 17])
        arr = draw_arrangement(rng, m, split=split)
        msgs, timeline, length = song_events(m, arr, rng, max_s=max_s)
        events += [(int(round((t0 + t) * TICKS_PER_S)), b) for t, b in msgs]
        events += [(int(round((t0 + length) * TICKS_PER_S)), bytes([0xB0 | ch, c, 0]))
                   for ch in (0, 1, 2, 3, 9) for c in (123, 120)]
        parts.append((t0, length, timeline, arr, rng))
        t0 += length + 2.5
    events.append((int(round(t0 * TICKS_PER_S)), bytes([0xB0, 7, 100])))  # the file lasts to the end
    y = render_midi(smf([(0, b"\xff\x51\x03" + (500_000).to_bytes(3, "big")), *events]), soundfont=soundfont,
                    sr=render_sr, options=opts)
    out = []
    for start, length, timeline, arr, rng in parts:
        seg = y[int(start * render_sr):int((start + length) * render_sr)]
        if render_sr != sr:
            seg = resample(seg, render_sr, sr)
        out.append((_post(seg.astype(np.float64), sr, rng), timeline, arr))
    return out
