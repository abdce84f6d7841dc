"""Test audio with a known tempo and key, made in the test: click tracks, chord pads, a beat with chords."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

SR = 22050


def click_track(bpm: float, seconds: float = 20.0, *, sr: int = SR, freq: float = 1000.0) -> np.ndarray:
    """A 15 ms decaying click every beat."""
    y = np.zeros(int(seconds * sr), np.float32)
    n = int(0.015 * sr)
    click = (np.sin(2 * np.pi * freq * np.arange(n) / sr) * np.exp(-np.arange(n) / (0.003 * sr))).astype(np.float32)
    for t in np.arange(0.0, seconds, 60.0 / bpm):
        i = int(t * sr)
        m = min(n, len(y) - i)
        y[i:i + m] += click[:m]
    return 0.8 * y


def chord_pad(tonic_midi: int, minor: bool, seconds: float = 12.0, *, sr: int = SR) -> np.ndarray:
    """i-iv-V-i (or I-IV-V-I) as sustained triads with octave doubling, in the key of ``tonic_midi``."""
    third = 3 if minor else 4
    prog = [(0, third, 7), (5, 5 + third, 12), (7, 11, 14), (0, third, 7)]
    t = np.arange(int(seconds * sr)) / sr
    y = np.zeros_like(t)
    seg = len(t) // len(prog)
    for k, chord in enumerate(prog):
        sl = slice(k * seg, (k + 1) * seg)
        for iv in chord:
            for octave in (0, 12):
                f = 440.0 * 2 ** ((tonic_midi + iv + octave - 69) / 12)
                y[sl] += np.sin(2 * np.pi * f * t[sl]) / (1 + octave / 12)
    return (0.1 * y).astype(np.float32)


def song(bpm: float, tonic_midi: int, minor: bool, seconds: float = 16.0, *, sr: int = SR) -> np.ndarray:
    """Chords in a key over a click at a tempo."""
    return (0.6 * chord_pad(tonic_midi, minor, seconds, sr=sr) + 0.5 * click_track(bpm, seconds, sr=sr,
                                                                                     freq=3000.0))


def write(path: Path, y: np.ndarray, sr: int = SR) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, y, sr)
    return path
