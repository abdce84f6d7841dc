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


@pytest.fixture
def window(qtbot, tmp_path):
    from tests.gui.helpers import shown_window, tone_library

    lib = tone_library(tmp_path)
    for win in shown_window(qtbot, tmp_path):
        assert win.open_library(lib)
        yield win


def _segment(win, name: str, start_s: float) -> int:
    s = win.session
    track = next(t.id for t in s.tracks.values() if t.path.endswith(name))
    g = s.segments
    return int(g["id"][(g["track_id"] == track) & (np.abs(g["start_s"] - start_s) < 0.5)][0])


def _cannot_play(qtbot, win, seg_id: int) -> str:
    win.statusBar().clearMessage()
    win.play_segment(seg_id)
    qtbot.waitUntil(lambda: win.statusBar().currentMessage().startswith("cannot play:"), timeout=5000)
    return win.statusBar().currentMessage()


def test_a_segment_of_a_file_changed_since_import_says_why_it_cannot_play(qtbot, window, tmp_path):
    """A file replaced by a shorter one played nothing at all, without a word; a file deleted or replaced by a
    corrupt one names the file."""
    audio = tmp_path / "audio"
    late, first = _segment(window, "tone660.wav", 6.0), _segment(window, "tone440.wav", 0.0)
    sf.write(audio / "tone660.wav", np.zeros(16000, np.float32), 16000)  # 1 s now
    msg = _cannot_play(qtbot, window, late)
    assert "tone660.wav: no audio at 6.0 s: the file is shorter than when it was imported" in msg
    (audio / "tone440.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage" * 10)
    assert "tone440.wav: not a readable audio file" in _cannot_play(qtbot, window, first)
    (audio / "tone440.wav").unlink()
    assert "tone440.wav: file not found" in _cannot_play(qtbot, window, first)
    assert window.backend.calls == [] and not window.player.playing
    assert "Traceback" not in msg and "\n" not in msg


def test_a_waveform_failing_late_does_not_clear_the_next_tracks(qtbot, window, tmp_path):
    """The overview of a track whose file is gone failed after another track's waveform was on screen and wiped it
    ("No waveform: …" about the track no longer playing)."""
    from musicemb_gui import workers

    s, pc = window.session, window.playback
    gone, other = (next(t.id for t in s.tracks.values() if t.path.endswith(n)) for n in ("tone440.wav",
                                                                                         "tone660.wav"))
    (tmp_path / "audio" / "tone440.wav").unlink()
    pc._track = gone
    pc._load_waveform(gone)  # its overview fails in a worker
    pc._track = other  # meanwhile the other track plays and its waveform is drawn
    pc.bar.waveform.set_envelope(-np.ones(10), np.ones(10), 9.0)
    qtbot.waitUntil(lambda: not workers._pending, timeout=5000)
    assert not pc.bar.waveform.stack.empty and pc.bar.waveform.duration_s == 9.0
    pc._track = gone
    pc._load_waveform(gone)  # while it is the one shown, its failure is said
    qtbot.waitUntil(lambda: pc.bar.waveform.stack.empty, timeout=5000)
    assert "No waveform: " in pc.bar.waveform.stack.label.text()
