"""Deterministic synthetic songs in clearly different styles, for a labelled demo corpus.

Every song is rendered from scratch with numpy and scipy: a melody (generated from the seed, or given)
played by the style's lead instrument over the style's accompaniment. Tempo, key, mode, chord
progression and instrument parameters are drawn from a seeded generator within each style's range.
"""

from __future__ import annotations

import os
import pathlib
import tempfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import soundfile as sf
from scipy import signal

STYLES: tuple[str, ...] = ("ambient", "chiptune", "rock", "folk", "techno")

_SCALES = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
}
_MELODY_TONIC = 60  # generate_melody writes melodies in C; render_song transposes them to the song key
_PHRASE = 8
_PEAK = 10 ** (-1 / 20)
# style -> (bpm range, beats per bar, modes, time stretch of melody and harmony)
_SPECS = {
    "ambient": ((60, 75), 4, ("major", "lydian"), 2.0),
    "chiptune": ((140, 170), 4, ("major", "minor"), 1.0),
    "rock": ((100, 130), 4, ("minor", "mixolydian", "dorian"), 1.0),
    "folk": ((90, 110), 3, ("major", "dorian", "mixolydian"), 1.0),
    "techno": ((120, 135), 4, ("minor", "dorian"), 1.0),
}
_Rng = np.random.Generator
_PROGRESSIONS = ((0, 4, 5, 3), (0, 3, 4, 0), (0, 5, 3, 4), (0, 3, 5, 4), (0, 2, 3, 4))


@dataclass(frozen=True)
class _Song:
    rng: _Rng
    sr: int
    n: int
    beat: float  # seconds per beat
    bar: int  # beats per bar
    notes: list[tuple[float, float, int]]  # melody: (onset s, duration s, MIDI pitch)
    chords: list[tuple[float, float, tuple[int, int, int]]]  # (onset s, duration s, MIDI triad)
    tonic: int = _MELODY_TONIC  # MIDI
    mode: str = "major"


def generate_melody(
    rng: np.random.Generator, *, n_notes: int = 32, scale: str = "major"
) -> list[tuple[int, float]]:
    """Generate a melody as a random walk in a diatonic scale with tonic C4 (MIDI 60).

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    n_notes : int
        Number of notes.
    scale : str
        One of "major", "minor", "dorian", "mixolydian", "lydian".

    Returns
    -------
    list of (int, float)
        (MIDI pitch, duration in beats). Mostly stepwise with occasional leaps; every 8-note phrase
        and the melody itself end on a long tonic.
    """
    if scale not in _SCALES:
        raise ValueError(f"unknown scale {scale!r}; valid: {', '.join(_SCALES)}")
    if n_notes < 1:
        raise ValueError(f"n_notes must be >= 1, got {n_notes}")
    steps = _SCALES[scale]
    moves = np.array([-4, -3, -2, -1, 0, 1, 2, 3, 4])
    move_p = np.array([0.03, 0.05, 0.07, 0.3, 0.06, 0.3, 0.09, 0.05, 0.05])
    durations, dur_p = np.array([0.5, 1.0, 1.5, 2.0]), np.array([0.35, 0.4, 0.15, 0.1])
    degree = int(rng.choice([0, 2, 4]))
    melody = []
    for i in range(n_notes):
        if i % _PHRASE == _PHRASE - 1 or i == n_notes - 1:
            degree = 7 * round(degree / 7)  # nearest tonic
            dur = float(rng.choice([2.0, 3.0]))
        else:
            degree += int(rng.choice(moves, p=move_p))
            degree = min(max(degree, -3), 11)
            dur = float(rng.choice(durations, p=dur_p))
        melody.append((_degree_pitch(_MELODY_TONIC, steps, degree), dur))
    return melody


def render_song(
    style: str,
    *,
    seed: int,
    duration_s: float = 20.0,
    sr: int = 22050,
    melody: Sequence[tuple[int, float]] | None = None,
    bpm: float | None = None,
    tonic: int | None = None,
    mode: str | None = None,
) -> np.ndarray:
    """Render one synthetic song of a style.

    Parameters
    ----------
    style : str
        One of `STYLES`.
    seed : int
        Non-negative seed; tempo, key, mode, progression and instrument parameters derive from it.
    duration_s, sr : float, int
        Length in seconds and sample rate in Hz.
    melody : sequence of (int, float), optional
        (MIDI pitch, duration in beats) written in C like `generate_melody` output; it is transposed
        to the song key and looped. A negative pitch is a rest. Generated from the seed when None.
    bpm, tonic, mode : optional
        Override the seed's tempo (quarter notes per minute), tonic (pitch class, C = 0) and mode (one of the
        style's or any scale name); everything else still derives from the seed. :func:`song_facts` says
        which were used.

    Returns
    -------
    numpy.ndarray
        float32 mono of exactly ``round(duration_s * sr)`` samples, peak-normalised to -1 dBFS.
    """
    song, _ = _plan(style, seed, duration_s, sr, melody, bpm=bpm, tonic=tonic, mode=mode)
    x = _RENDERERS[style](song)
    n = song.n
    fade = min(n, int(0.05 * sr))
    x[n - fade :] *= np.linspace(1.0, 0.0, fade)
    x -= x.mean()
    return (x * (_PEAK / max(np.abs(x).max(), 1e-9))).astype(np.float32)


def melody_timeline(
    style: str, *, seed: int, duration_s: float, melody: Sequence[tuple[int, float]] | None = None
) -> list[tuple[float, float, int, int]]:
    """Where `render_song` (same arguments) plays each note of ``melody`` (the one it generates from the seed
    when None).

    Returns
    -------
    list of (onset s, duration s, MIDI pitch as played, index into ``melody``), rests left out.
    """
    return _plan(style, seed, duration_s, 1000, melody)[1]


def song_facts(style: str, *, seed: int, bpm: float | None = None, tonic: int | None = None,
               mode: str | None = None) -> dict:
    """The tempo, key and meter `render_song` (same arguments) plays: {"bpm", "tonic" (pitch class, C = 0),
    "mode", "beats_per_bar"}."""
    song, _ = _plan(style, seed, 1.0, 1000, None, bpm=bpm, tonic=tonic, mode=mode)
    return {"bpm": 60.0 / song.beat, "tonic": song.tonic % 12, "mode": song.mode, "beats_per_bar": song.bar}


def _plan(style, seed, duration_s, sr, melody, *, bpm=None, tonic=None,
          mode=None) -> tuple[_Song, list[tuple[float, float, int, int]]]:
    if style not in _SPECS:
        raise ValueError(f"unknown style {style!r}; valid styles: {', '.join(STYLES)}")
    n = round(duration_s * sr)
    if n < 1 or sr <= 0:
        raise ValueError(f"duration_s and sr must give at least one sample, got {duration_s} s at {sr} Hz")
    (bpm_lo, bpm_hi), bar, modes, stretch = _SPECS[style]
    # separate streams, so a given melody leaves the accompaniment of a seed unchanged
    seeds = np.random.SeedSequence([seed, zlib.crc32(style.encode())]).spawn(2)
    rng, melody_rng = (np.random.default_rng(s) for s in seeds)
    beat = 60.0 / rng.uniform(bpm_lo, bpm_hi)  # drawn even when overridden: the rest of the seed stays the same
    drawn_mode = str(rng.choice(modes))
    drawn_tonic = _MELODY_TONIC + int(rng.integers(-5, 7))
    if bpm is not None:
        if not 20 <= bpm <= 400:
            raise ValueError(f"bpm must be from 20 to 400, got {bpm}")
        beat = 60.0 / bpm
    mode = drawn_mode if mode is None else mode
    if mode not in _SCALES:
        raise ValueError(f"unknown mode {mode!r}; valid: {', '.join(_SCALES)}")
    scale = _SCALES[mode]
    tonic = drawn_tonic if tonic is None else _MELODY_TONIC + (int(tonic) + 5) % 12 - 5
    if melody is None:
        melody = generate_melody(melody_rng, n_notes=32, scale=mode)
    if not melody or any(d <= 0 for _, d in melody) or all(p < 0 for p, _ in melody):
        raise ValueError("melody must be a non-empty sequence of (pitch, positive duration) pairs")
    total = n / sr
    notes, timeline, t = [], [], 0.0
    while t < total:
        for i, (pitch, dur) in enumerate(melody):
            if pitch >= 0:
                notes.append((t, dur * stretch * beat, int(pitch) + tonic - _MELODY_TONIC))
                timeline.append((*notes[-1], i))
            t += dur * stretch * beat
            if t >= total:
                break
    progression = _PROGRESSIONS[rng.integers(len(_PROGRESSIONS))]
    span = bar * stretch * beat
    chords = []
    for k in range(int(np.ceil(total / span))):
        d = progression[k % len(progression)]
        chords.append((k * span, span, tuple(_degree_pitch(tonic, scale, d + j) for j in (0, 2, 4))))
    return _Song(rng=rng, sr=sr, n=n, beat=beat, bar=bar, notes=notes, chords=chords, tonic=tonic,
                 mode=mode), timeline


def render_demo_corpus(
    out_dir: str | os.PathLike[str],
    *,
    n_per_style: int = 10,
    duration_s: float = 20.0,
    sr: int = 22050,
    random_state: int = 0,
) -> list[tuple[pathlib.Path, str]]:
    """Write a labelled corpus of synthetic songs as 16-bit FLAC.

    Parameters
    ----------
    out_dir : path-like
        Files go to ``out_dir/<style>/<style>_<NN>.flac``.
    n_per_style : int
        Songs per style.
    duration_s, sr : float, int
        Passed to `render_song`.
    random_state : int
        Non-negative; song seeds derive from it, so the corpus is deterministic.

    Returns
    -------
    list of (pathlib.Path, str)
        (path, style) for every song, ordered by style (as in `STYLES`) then index. Files that already
        exist are kept as they are; new ones are written atomically (temp file, then ``os.replace``).
    """
    out = pathlib.Path(out_dir)
    entries = []
    for style in STYLES:
        folder = out / style
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n_per_style):
            path = folder / f"{style}_{i:02d}.flac"
            entries.append((path, style))
            if path.exists():
                continue
            seed = int(np.random.SeedSequence([random_state, i]).generate_state(1)[0])
            audio = render_song(style, seed=seed, duration_s=duration_s, sr=sr)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.stem}.", suffix=".tmp")
            os.close(fd)
            try:
                sf.write(tmp, audio, sr, format="FLAC", subtype="PCM_16")
                os.replace(tmp, path)
            except BaseException:
                pathlib.Path(tmp).unlink(missing_ok=True)
                raise
    return entries


# --- building blocks ------------------------------------------------------------------------------


def _degree_pitch(tonic: int, scale: Sequence[int], degree: int) -> int:
    return tonic + 12 * (degree // len(scale)) + scale[degree % len(scale)]


def _hz(pitch: float) -> float:
    return 440.0 * 2.0 ** ((pitch - 69) / 12)


def _osc(freq: float | np.ndarray, n: int, sr: int, wave: str, duty: float = 0.5) -> np.ndarray:
    """Naive oscillator; ``freq`` is a constant or a per-sample array (vibrato, sweeps)."""
    phase = np.cumsum(freq) / sr if np.ndim(freq) else np.arange(n) * (freq / sr)
    phase %= 1.0
    if wave == "sine":
        return np.sin(2 * np.pi * phase)
    if wave == "triangle":
        return 4.0 * np.abs(phase - 0.5) - 1.0
    if wave == "saw":
        return 2.0 * phase - 1.0
    return np.where(phase < duty, 1.0, -1.0)  # pulse


def _env(n: int, sr: int, attack: float, release: float, decay: float | None = None) -> np.ndarray:
    t = np.arange(n) / sr
    env = np.minimum(1.0, t / attack) if attack > 0 else np.ones(n)
    if decay:
        env *= np.exp(-t / decay)
    r = min(n, int(release * sr))
    if r:
        env[n - r :] *= np.linspace(1.0, 0.0, r)
    return env


def _vibrato(f: float, n: int, sr: int, depth: float = 0.004, rate: float = 5.0) -> np.ndarray:
    return f * (1.0 + depth * np.sin(2 * np.pi * rate * np.arange(n) / sr))


def _mix(buf: np.ndarray, onset_s: float, sig: np.ndarray, sr: int, gain: float = 1.0) -> None:
    i = int(round(onset_s * sr))
    m = min(len(sig), len(buf) - i)
    if m > 0:
        buf[i : i + m] += gain * sig[:m]


def _filter(x: np.ndarray, sr: int, cutoff: float, btype: str = "lowpass", order: int = 2) -> np.ndarray:
    cut = np.clip(cutoff, 20.0, 0.45 * sr)
    return signal.sosfilt(signal.butter(order, cut, btype, fs=sr, output="sos"), x)


def _resonant_lowpass(x: np.ndarray, sr: int, cutoff: float, q: float) -> np.ndarray:
    """RBJ biquad low-pass with resonance ``q``."""
    w = 2 * np.pi * min(cutoff, 0.45 * sr) / sr
    alpha, cw = np.sin(w) / (2 * q), np.cos(w)
    return signal.lfilter([(1 - cw) / 2, 1 - cw, (1 - cw) / 2], [1 + alpha, -2 * cw, 1 - alpha], x)


def _feedback_delay(x: np.ndarray, delay: int, feedback: float) -> np.ndarray:
    """Exact ``y[n] = x[n] + feedback * y[n - delay]``, computed one delay-length block at a time."""
    y = x.copy()
    for k in range(delay, len(y), delay):
        seg = y[k : k + delay]
        seg += feedback * y[k - delay : k - delay + len(seg)]
    return y


def _reverb(x: np.ndarray, sr: int, size: float, feedback: float) -> np.ndarray:
    """Wet signal of four parallel damped comb filters (Schroeder-style)."""
    wet = sum(
        _feedback_delay(x, max(1, int(ms * size * sr / 1000)), feedback) - x
        for ms in (29.7, 37.1, 41.1, 43.7)
    )
    return _filter(wet, sr, 3500.0) / 4


def _pluck(freq: float, dur_s: float, sr: int, rng: _Rng, gain: float, bright: float) -> np.ndarray:
    """Karplus-Strong string, its recursion evaluated one period-length block at a time.

    The loop filter (two-point average convolved with a linear fractional delay) has taps
    ``[(1 - w) / 2, 1 / 2, w / 2]`` at lags ``p, p + 1, p + 2``, so the loop delay ``p + 0.5 + w`` matches
    the period exactly and high harmonics die out first.
    """
    period = max(sr / freq, 3.0)
    p = int(period - 0.5)
    w = period - 0.5 - p
    n = max(int(dur_s * sr), p + 2)
    y = np.zeros(n + 2)
    burst = signal.lfilter([bright], [1.0, bright - 1.0], rng.uniform(-1.0, 1.0, p))  # pick brightness
    y[2 : p + 2] = burst - burst.mean()
    for k in range(p + 2, n + 2, p):
        m = min(p, n + 2 - k)
        a, b, c = (y[k - p - j : k - p - j + m] for j in range(3))
        y[k : k + m] = gain * ((1 - w) / 2 * a + b / 2 + w / 2 * c)
    return y[2:] * _env(n, sr, 0.0, 0.05)


def _noise_hit(
    sr: int, rng: _Rng, decay: float, lo: float, hi: float, body_hz: float = 0, bursts: int = 1
) -> np.ndarray:
    """Band-passed noise burst (hats, snares, claps), optionally with a tonal body and repeated onsets."""
    n = int((6 * decay + 0.01 * bursts) * sr)
    t = np.arange(n) / sr
    hi = min(hi, 0.45 * sr)
    hit = _norm(_filter(rng.standard_normal(n), sr, [min(lo, hi / 2), hi], "bandpass"))
    if body_hz:
        hit += 0.5 * np.sin(2 * np.pi * body_hz * t)
    return hit * sum(np.exp(-np.maximum(t - 0.01 * j, 0.0) / decay) * (t >= 0.01 * j) for j in range(bursts))


def _kick(sr: int, decay: float, f_hi: float = 150.0, f_lo: float = 45.0) -> np.ndarray:
    n = int(5 * decay * sr)
    t = np.arange(n) / sr
    return _osc(f_lo + (f_hi - f_lo) * np.exp(-t / 0.035), n, sr, "sine") * np.exp(-t / decay)


def _chip_noise(sr: int, rng: _Rng, hold_hz: float, decay: float) -> np.ndarray:
    """NES-style noise channel: sample-and-hold noise with a 4-bit volume envelope."""
    n = int(4 * decay * sr)
    hold = max(1, int(sr / hold_hz))
    noise = np.repeat(rng.choice([-1.0, 1.0], n // hold + 1), hold)[:n]
    return noise * np.ceil(_env(n, sr, 0.0, 0.0, decay) * 15) / 15


def _hits(buf: np.ndarray, s: _Song, sample: np.ndarray, pattern: Sequence[int], gain: float) -> None:
    """Place ``sample`` on the eighth notes listed in ``pattern`` (counted within each bar)."""
    for i in range(int(2 * s.n / s.sr / s.beat) + 1):
        if i % (2 * s.bar) in pattern:
            _mix(buf, i * s.beat / 2, sample, s.sr, gain)


def _norm(x: np.ndarray) -> np.ndarray:
    return x / max(np.abs(x).max(), 1e-9)


# --- styles ---------------------------------------------------------------------------------------


def _ambient(s: _Song) -> np.ndarray:
    rng, sr = s.rng, s.sr
    attack, detune, bright = rng.uniform(0.8, 2.0), rng.uniform(0.002, 0.006), rng.uniform(0.1, 0.4)
    pad, lead = np.zeros(s.n), np.zeros(s.n)
    for onset, dur, triad in s.chords:
        m = int((dur + 2.0) * sr)
        for p in (triad[0] - 12, *triad):
            f = _hz(p)
            tone = sum(
                _osc(f * (1 + d), m, sr, "sine") + bright * _osc(f * (1 - d), m, sr, "triangle")
                for d in (-detune, detune)
            )
            _mix(pad, onset, tone * _env(m, sr, attack, 2.0), sr)
    wave = str(rng.choice(["sine", "triangle"]))
    for onset, dur, p in s.notes:
        m = int((dur + 0.8) * sr)
        _mix(lead, onset, _osc(_vibrato(_hz(p + 12), m, sr), m, sr, wave) * _env(m, sr, 0.3, 0.8), sr)
    lead = _feedback_delay(lead, int(0.75 * s.beat * sr), rng.uniform(0.35, 0.55))
    dry = _filter(0.7 * _norm(pad) + 0.45 * _norm(lead), sr, 3000.0)
    return dry + 0.8 * _norm(_reverb(dry, sr, rng.uniform(1.5, 2.5), 0.85))


def _chiptune(s: _Song) -> np.ndarray:
    rng, sr = s.rng, s.sr
    duty = float(rng.choice([0.125, 0.25, 0.5]))
    lead, arp, bass, drums = (np.zeros(s.n) for _ in range(4))
    for onset, dur, p in s.notes:
        m = int(0.9 * dur * sr)
        _mix(lead, onset, _osc(_hz(p + 12), m, sr, "pulse", duty) * _env(m, sr, 0.0, 0.01, 0.6), sr)
    step = s.beat / 4
    m = int(step * sr)
    for onset, dur, triad in s.chords:
        tones = (*triad, triad[0] + 12)
        for k in range(int(round(dur / step))):
            _mix(arp, onset + k * step, _osc(_hz(tones[k % 4]), m, sr, "pulse", 0.5), sr)
        for k in range(int(round(dur / (2 * step)))):
            tone = _osc(_hz(triad[0] - 24 + 12 * (k % 2)), 2 * m, sr, "triangle")
            _mix(bass, onset + 2 * k * step, np.round(tone * 7.5) / 7.5, sr)
    _hits(drums, s, _chip_noise(sr, rng, 800.0, 0.05), [0, 4, 5], 1.0)
    _hits(drums, s, _chip_noise(sr, rng, 6000.0, 0.08), [2, 6], 0.8)
    _hits(drums, s, _chip_noise(sr, rng, sr, 0.015), range(8), 0.5)
    return 0.5 * _norm(lead) + 0.3 * _norm(arp) + 0.4 * _norm(bass) + 0.45 * _norm(drums)


def _rock(s: _Song) -> np.ndarray:
    rng, sr = s.rng, s.sr
    drive, cutoff, mute = rng.uniform(4.0, 10.0), rng.uniform(2500.0, 4500.0), rng.uniform(0.08, 0.2)
    guitar, lead, bass, drums = (np.zeros(s.n) for _ in range(4))
    eighth = s.beat / 2
    for onset, dur, triad in s.chords:
        m = int(dur * sr)
        root = triad[0] - 12
        chord = sum(
            _osc(_hz(p) * (1 + d), m, sr, "saw") for p in (root, root + 7, root + 12) for d in (-0.003, 0.003)
        )
        chug = np.exp(-(np.arange(m) / sr % eighth) / mute)
        _mix(guitar, onset, np.tanh(drive * chord * chug / 6), sr)
        _mix(bass, onset, _osc(_hz(root - 12), m, sr, "saw") * (0.4 + 0.6 * chug), sr)
    for onset, dur, p in s.notes:
        m = int((dur + 0.1) * sr)
        tone = np.tanh(drive * _osc(_vibrato(_hz(p + 12), m, sr, 0.008), m, sr, "saw"))
        _mix(lead, onset, tone * _env(m, sr, 0.01, 0.1), sr)
    kicks = [0, 4, 5] if rng.random() < 0.5 else [0, 4]
    _hits(drums, s, _kick(sr, 0.12, 120.0, 50.0), kicks, 1.0)
    _hits(drums, s, _noise_hit(sr, rng, 0.1, 1000.0, 6000.0, 190.0), [2, 6], 0.9)
    _hits(drums, s, _noise_hit(sr, rng, 0.03, 7000.0, 12000.0), range(8), 0.35)
    guitar, lead = _filter(guitar, sr, cutoff, order=4), _filter(lead, sr, cutoff, order=4)
    bass = _filter(bass, sr, 400.0)
    return 0.55 * _norm(guitar) + 0.4 * _norm(lead) + 0.35 * _norm(bass) + 0.6 * _norm(drums)


def _folk(s: _Song) -> np.ndarray:
    rng, sr = s.rng, s.sr
    gain, bright = rng.uniform(0.994, 0.999), rng.uniform(0.3, 0.8)
    lead, strings = np.zeros(s.n), np.zeros(s.n)
    for onset, dur, p in s.notes:
        _mix(lead, onset, _pluck(_hz(p), dur + 0.4, sr, rng, gain, bright), sr)
    for onset, _dur, triad in s.chords:
        _mix(strings, onset, _pluck(_hz(triad[0] - 24), 1.2 * s.beat, sr, rng, gain, bright), sr)
        for b, j in ((1, 1), (1, 2), (2, 1), (2, 2)):  # "oom-pah-pah": third and fifth, strummed
            t = onset + b * s.beat + 0.015 * j
            _mix(strings, t, _pluck(_hz(triad[j] - 12), s.beat, sr, rng, gain, bright), sr, 0.6)
    dry = 0.6 * _norm(lead) + 0.45 * _norm(strings)
    return dry + 0.15 * _norm(_reverb(dry, sr, 0.8, 0.6))


def _techno(s: _Song) -> np.ndarray:
    rng, sr = s.rng, s.sr
    f_lo, f_hi, q = rng.uniform(150.0, 300.0), rng.uniform(1500.0, 3000.0), rng.uniform(4.0, 8.0)
    sweep = rng.uniform(4, 8) * s.bar * s.beat
    pattern = np.flatnonzero((rng.random(16) < 0.5) | (np.arange(16) % 4 == 2))
    bass, lead, drums = np.zeros(s.n), np.zeros(s.n), np.zeros(s.n)
    step = s.beat / 4
    m = int(0.9 * step * sr)
    for onset, dur, triad in s.chords:
        for k in pattern[pattern < round(dur / step)]:
            t = onset + k * step
            cutoff = f_lo * (f_hi / f_lo) ** (0.5 - 0.5 * np.cos(2 * np.pi * t / sweep))
            tone = _osc(_hz(triad[0] - 24), m, sr, "saw") * _env(m, sr, 0.002, 0.01, 0.12)
            _mix(bass, t, np.tanh(2 * _resonant_lowpass(tone, sr, cutoff, q)), sr)
    for onset, dur, p in s.notes:
        k = int(min(dur, 0.5) * sr)
        _mix(lead, onset, _osc(_hz(p), k, sr, "pulse") * _env(k, sr, 0.002, 0.02, 0.1), sr)
    lead = _feedback_delay(_filter(lead, sr, 1800.0), int(0.75 * s.beat * sr), 0.5)
    _hits(drums, s, _kick(sr, 0.25, 160.0, 45.0), [0, 2, 4, 6], 1.0)
    _hits(drums, s, _noise_hit(sr, rng, 0.05, 6000.0, 12000.0), [1, 3, 5, 7], 0.5)
    _hits(drums, s, _noise_hit(sr, rng, 0.04, 800.0, 3000.0, 0, 3), [2, 6], 0.5)
    return 0.5 * _norm(bass) + 0.3 * _norm(lead) + 0.7 * _norm(drums)


_RENDERERS: dict[str, Callable[[_Song], np.ndarray]] = {
    "ambient": _ambient,
    "chiptune": _chiptune,
    "rock": _rock,
    "folk": _folk,
    "techno": _techno,
}
