"""The player bar's waveform and the player on odd audio: long tracks, tiny files."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("PySide6")

from musicemb_core.audio.decode import load  # noqa: E402
from musicemb_gui.panels.playback_controller import WAVEFORM_SR, overview  # noqa: E402
from musicemb_gui.widgets.waveform_view import envelope  # noqa: E402


def test_waveform_overview_of_a_long_track_never_holds_it_whole(tmp_path):
    sr, seconds = 48000, 180
    path = tmp_path / "mix.wav"
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", sr, 2, subtype="PCM_16") as f:
        for _ in range(seconds // 30):
            f.write((0.3 * rng.standard_normal((30 * sr, 2))).astype(np.float32))
    tracemalloc.start()
    try:
        lo, hi, duration = overview(str(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    whole = seconds * sr * 4  # the track as mono float32 at its own rate: 35 MB
    assert peak < whole / 4, f"{peak / 1e6:.0f} MB"
    assert duration == pytest.approx(seconds)
    y, _ = load(path, sr=WAVEFORM_SR)  # the same picture as decoding it whole
    ref_lo, ref_hi = envelope(y, 1500)
    np.testing.assert_allclose(lo, ref_lo, atol=1e-5)
    np.testing.assert_allclose(hi, ref_hi, atol=1e-5)
