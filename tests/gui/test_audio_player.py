"""AudioPlayer: one sound at a time, consistent signals, silent but alive without a device; real playback."""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pytest
from scipy.signal import chirp, correlate

pytest.importorskip("PySide6")
from musicemb_core.audio.devices import Recorder, trim_silence  # noqa: E402
from musicemb_core.audio.resample import resample  # noqa: E402
from musicemb_gui.widgets.audio_player import AudioCache, AudioPlayer, _ArrayFeeder  # noqa: E402
from tests.gui.helpers import FakeBackend  # noqa: E402


def _events(player):
    events = []
    player.started.connect(lambda k: events.append(("started", k)))
    player.finished.connect(lambda k: events.append(("finished", k)))
    player.unavailable.connect(lambda m: events.append(("unavailable", m)))
    return events


@pytest.mark.parametrize(("error", "hint"), [(RuntimeError("no audio output device found"), "no usable audio"),
                                             (OSError("PortAudio library not found"), "libportaudio2")])
def test_no_output_is_announced_once_and_plays_stay_consistent(qtbot, error, hint):
    backend = FakeBackend(fail=error)
    player = AudioPlayer(backend=backend)
    events = _events(player)
    for key in ("a", "b", "c"):
        player.play(key, np.zeros(100, np.float32), 16000)
    player.stop()
    messages = [e[1] for e in events if e[0] == "unavailable"]
    assert len(messages) == 1 and hint in messages[0] and messages[0].startswith("Sound is off")
    assert [e for e in events if e[0] != "unavailable"] == [("started", "a"), ("finished", "a"), ("started", "b"),
                                                             ("finished", "b"), ("started", "c"), ("finished", "c")]
    assert player.last_key == "c" and not player.available and len(backend.calls) == 1


def test_a_device_that_failed_is_tried_again_and_plays_when_it_is_back(qtbot, monkeypatch):
    """The output device gone (unplugged, the sound server restarting): one failed start turned the sound off for
    the whole session. A play after ``RETRY_S`` tries the device again, saying so once more if it still fails; a
    flood of clicks meanwhile tries nothing (each try may block on the device) and says nothing."""
    from musicemb_gui.widgets import audio_player

    now = [100.0]
    monkeypatch.setattr(audio_player.time, "monotonic", lambda: now[0])
    backend = FakeBackend(fail=RuntimeError("Error opening OutputStream: Device unavailable [PaErrorCode -9985]"))
    player = AudioPlayer(backend=backend)
    events = _events(player)
    for key in ("a", "b", "c"):
        player.play(key, np.zeros(100, np.float32), 16000)
    messages = [e[1] for e in events if e[0] == "unavailable"]
    assert len(backend.calls) == 1 and len(messages) == 1 and "Tried again when you play" in messages[0]
    now[0] += audio_player.RETRY_S
    player.play("d", np.zeros(100, np.float32), 16000)  # still gone: tried, said again
    assert len(backend.calls) == 2 and len([e for e in events if e[0] == "unavailable"]) == 2
    backend.fail = None  # plugged in again
    player.play("e", np.zeros(100, np.float32), 16000)
    assert len(backend.calls) == 2 and not player.playing  # too soon after the last try
    now[0] += audio_player.RETRY_S
    player.play("f", np.zeros(100, np.float32), 16000)
    assert len(backend.calls) == 3 and player.playing and player.available
    player.play("g", np.zeros(100, np.float32), 16000)  # back for good: every play is heard
    assert len(backend.calls) == 4 and player.playing
    assert events[-3:] == [("started", "f"), ("finished", "f"), ("started", "g")]


def test_a_missing_sound_library_is_never_tried_again(qtbot, monkeypatch):
    from musicemb_gui.widgets import audio_player

    now = [100.0]
    monkeypatch.setattr(audio_player.time, "monotonic", lambda: now[0])
    backend = FakeBackend(fail=OSError("PortAudio library not found"))
    player = AudioPlayer(backend=backend)
    for _ in range(3):
        player.play("a", np.zeros(100, np.float32), 16000)
        now[0] += 10 * audio_player.RETRY_S
    assert len(backend.calls) == 1 and not player.available


def test_default_backend_without_sounddevice_is_unavailable_not_a_crash(qtbot, monkeypatch):
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    player = AudioPlayer()
    with qtbot.waitSignal(player.unavailable) as blocker:
        player.play(1, np.zeros(10), 8000)
    assert "pip install sounddevice" in blocker.args[0]


def test_new_play_stops_the_previous_sound_first(qtbot):
    backend = FakeBackend()
    player = AudioPlayer(backend=backend)
    events = _events(player)
    player.play("a", np.ones((2, 50)), 8000)
    data, sr = backend.calls[0]
    assert data.shape == (50, 2) and data.dtype == np.float32 and sr == 8000
    player.play("b", np.ones(50), 8000)
    assert events == [("started", "a"), ("finished", "a"), ("started", "b")]
    assert backend.handles[0].closed and not backend.handles[1].closed
    with qtbot.waitSignal(player.finished) as blocker:  # the end is reported from the audio thread
        threading.Thread(target=backend.handles[1].on_finished).start()
    assert blocker.args == ["b"] and backend.handles[1].closed
    backend.handles[0].on_finished()  # a late end of a stopped sound is ignored
    qtbot.wait(20)
    assert events[-1] == ("finished", "b") and len(events) == 4


def test_feeder_copies_blocks_and_zero_pads_the_last():
    class Stop(Exception):
        pass

    feed = _ArrayFeeder(np.arange(10, dtype=np.float32)[:, None], Stop)
    out = np.full((4, 1), -1.0, np.float32)
    feed(out, 4, None, None)
    np.testing.assert_array_equal(out[:, 0], [0, 1, 2, 3])
    feed(out, 4, None, None)
    with pytest.raises(Stop):
        feed(out, 4, None, None)
    np.testing.assert_array_equal(out[:, 0], [8, 9, 0, 0])


def test_cache_evicts_the_least_recently_used():
    cache = AudioCache(max_items=2)
    loads = []

    def loader(k):
        return lambda: loads.append(k) or f"audio {k}"

    assert cache.get("a", loader("a")) == "audio a"
    cache.get("b", loader("b"))
    assert cache.get("a", loader("a")) == "audio a"  # a hit, and now the most recent
    cache.get("c", loader("c"))
    assert loads == ["a", "b", "c"] and len(cache) == 2
    assert "a" in cache and "c" in cache and "b" not in cache
    cache.clear()
    assert len(cache) == 0


def _segment(sr: int, seconds: float) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    noise = np.convolve(np.random.default_rng(0).standard_normal(len(t)), np.ones(4) / 4, "same")
    return (0.3 * chirp(t, 200, seconds, 4000) + 0.2 * noise).astype(np.float32)


def _ncc_peak(x: np.ndarray, ref: np.ndarray) -> float:
    """Peak over lags (partial overlaps too) of the normalised cross-correlation of ``ref`` with ``x``."""
    x = np.concatenate([np.zeros(len(ref)), x, np.zeros(len(ref))])
    c = correlate(x, ref, mode="valid", method="fft")
    energy = np.cumsum(np.concatenate([[0.0], x.astype(np.float64) ** 2]))
    window = np.maximum(energy[len(ref):] - energy[:-len(ref)], 0.01 * float(ref @ ref))  # no 0/0 in silence
    return float(np.max(c / (np.linalg.norm(ref) * np.sqrt(window))))


def _wait_until_recording(rec: Recorder, qtbot) -> None:
    """Streams start late through PulseAudio: wait until audio flows so the recording misses nothing."""
    qtbot.waitUntil(lambda: rec.buffer.available > 0.1 * rec.samplerate, timeout=5000)


@pytest.mark.audio_device
def test_player_plays_a_segment_through_the_null_sink(qtbot, pulse_null_sink):
    sr, rec_sr = 22050, 48000
    y = _segment(sr, 1.5)
    player = AudioPlayer()
    events = _events(player)
    with Recorder(samplerate=rec_sr) as rec:
        _wait_until_recording(rec, qtbot)
        with qtbot.waitSignal(player.finished, timeout=5000):
            t0 = time.monotonic()
            player.play("seg", y, sr)
            assert time.monotonic() - t0 < 0.3  # never blocks the GUI thread for the sound's length
        time.sleep(0.5)  # the server may still be playing what PortAudio has handed over
    recorded = rec.read()
    assert events == [("started", "seg"), ("finished", "seg")] and player.last_key == "seg"
    assert len(recorded) > 1.5 * rec_sr
    # every half second of the segment came through, each found at its own lag: an underrun of the sound server
    # on a loaded machine leaves a gap that shifts what follows (one lag for the whole: 0.41 once)
    sent = resample(y, sr, rec_sr)
    part = len(sent) // 3
    assert min(_ncc_peak(recorded, sent[i * part:(i + 1) * part]) for i in range(3)) > 0.5


@pytest.mark.audio_device
def test_second_sound_cuts_the_first_on_the_device(qtbot, pulse_null_sink):
    sr = 48000
    player = AudioPlayer()
    events = _events(player)
    tone = (0.3 * np.sin(2 * np.pi * 1000 * np.arange(int(0.3 * sr)) / sr)).astype(np.float32)
    with Recorder(samplerate=sr) as rec:
        _wait_until_recording(rec, qtbot)
        player.play("long", _segment(sr, 1.5), sr)
        qtbot.wait(300)
        with qtbot.waitSignal(player.finished, timeout=5000, check_params_cb=lambda key: key == "short"):
            player.play("short", tone, sr)
        time.sleep(0.2)
    assert events == [("started", "long"), ("finished", "long"), ("started", "short"), ("finished", "short")]
    sound = trim_silence(rec.read(), sr, pad_s=0.0)
    assert 0.4 * sr < len(sound) < 1.2 * sr  # 0.3 s of the long one, then the tone: not the whole 1.5 s
