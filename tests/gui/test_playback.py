"""Playback from the keyboard: Space plays or stops the current item, the waveform shows its track with the
segment shaded and a moving playhead, the volume scales what is played, Up/Down walk the neighbour list; and
the same through PortAudio and a PulseAudio null sink."""

from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("PySide6")
from PySide6.QtCore import QSettings, Qt  # noqa: E402

from musicemb_core.audio.devices import Recorder, trim_silence  # noqa: E402
from musicemb_core.data.library import Library  # noqa: E402
from musicemb_gui.main_window import MainWindow  # noqa: E402
from musicemb_gui.panels.player_bar import IDLE  # noqa: E402
from musicemb_gui.widgets.audio_player import AudioPlayer, _ArrayFeeder  # noqa: E402
from tests.conftest import dominant_freq  # noqa: E402
from tests.gui.helpers import FakeBackend, tone_library  # noqa: E402


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    return tone_library(tmp_path_factory.mktemp("tones"))


def _window(qtbot, tmp_path, player: AudioPlayer) -> MainWindow:
    win = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat), player=player)
    qtbot.addWidget(win)
    win.show()
    win.activateWindow()
    qtbot.waitExposed(win)
    return win


def _segment_of(win: MainWindow, name: str, start_s: float) -> int:
    s = win.session
    track = next(t.id for t in s.tracks.values() if t.path.endswith(name))
    rows = [r for r, t in enumerate(s.segments["track_id"]) if t == track and s.segments["start_s"][r] == start_s]
    return int(s.segments["id"][rows[0]])


def _space(win: MainWindow, qtbot) -> None:
    qtbot.keyClick(win.map_panel.scatter.plot.viewport(), Qt.Key.Key_Space)


@pytest.fixture
def window(qtbot, tmp_path, tones):
    backend = FakeBackend()
    win = _window(qtbot, tmp_path, AudioPlayer(backend=backend))
    win.backend = backend
    assert win.open_library(tones)
    yield win
    win.jobs.cancel_all()
    win.jobs.wait(30000)


def test_space_toggles_the_current_item_and_the_playhead_moves_over_its_waveform(qtbot, window):
    player, bar, backend = window.player, window.player_bar, window.backend
    assert not bar.play.isEnabled() and bar.title.text() == IDLE and bar.waveform.stack.empty
    _space(window, qtbot)  # nothing chosen yet: nothing plays
    qtbot.wait(50)
    assert not backend.calls
    seg = _segment_of(window, "tone440.wav", 3.0)
    window.play_segment(seg)  # what a click on the map does
    qtbot.waitUntil(lambda: player.playing, timeout=10000)
    assert bar.play.text() == "■ Stop" and "tone440.wav" in bar.title.text()
    qtbot.waitUntil(lambda: not bar.waveform.stack.empty, timeout=10000)
    assert bar.waveform.duration_s == pytest.approx(9.0, abs=0.05)
    assert bar.waveform.region.getRegion() == pytest.approx((3.0, 6.0))
    first = bar.waveform.playhead_s()
    qtbot.wait(400)
    later = bar.waveform.playhead_s()
    assert 3.0 <= first < later <= 6.0 and later - first > 0.2  # it moves with the sound
    _space(window, qtbot)
    assert not player.playing and backend.handles[-1].closed and bar.play.text() == "▶ Play"
    _space(window, qtbot)  # the same segment again
    qtbot.waitUntil(lambda: player.playing, timeout=10000)
    assert len(backend.calls) == 2 and player.last_key == seg
    np.testing.assert_array_equal(backend.calls[0][0], backend.calls[1][0])


def test_volume_scales_the_samples_played_and_is_remembered(qtbot, window, tmp_path):
    window.player_bar.volume.setValue(25)
    window.play_segment(_segment_of(window, "tone660.wav", 0.0))
    qtbot.waitUntil(lambda: window.player.playing, timeout=10000)
    data, _sr = window.backend.calls[-1]

    class Stop(Exception):
        pass

    feed = _ArrayFeeder(data, Stop, window.backend.gain)  # what the device callback writes, block by block
    out = np.empty((256, data.shape[1]), np.float32)
    feed(out, 256, None, None)
    np.testing.assert_allclose(out, 0.25 * data[:256], rtol=1e-6)
    window.player_bar.volume.setValue(100)  # a change is heard from the next block on
    feed(out, 256, None, None)
    np.testing.assert_allclose(out, data[256:512], rtol=1e-6)
    window.player_bar.volume.setValue(60)
    again = _window(qtbot, tmp_path, AudioPlayer(backend=FakeBackend()))  # the next start, same settings
    assert again.player_bar.volume.value() == 60 and again.player.volume == 0.6


def test_up_and_down_walk_the_neighbour_list(qtbot, window):
    mp = window.map_panel
    ids = [_segment_of(window, name, start) for name, start in (("tone440.wav", 0.0), ("tone660.wav", 0.0),
                                                                   ("tone660.wav", 3.0), ("tone440.wav", 6.0))]
    mp._show_neighbours(ids[0], [{"segment_id": i, "score": 0.9, "path": window.session.segment(i)["path"],
                                  "start_s": window.session.segment(i)["start_s"]} for i in ids[1:]])
    played = []
    mp.playRequested.connect(played.append)
    mp.neighbours.setFocus()
    qtbot.waitUntil(mp.neighbours.hasFocus)
    qtbot.keyClick(mp.neighbours, Qt.Key.Key_Down)  # onto the first row
    qtbot.keyClick(mp.neighbours, Qt.Key.Key_Down)
    qtbot.keyClick(mp.neighbours, Qt.Key.Key_Down)
    qtbot.keyClick(mp.neighbours, Qt.Key.Key_Up)
    assert played == [ids[1], ids[2], ids[3], ids[2]] and mp.neighbours.currentRow() == 1
    qtbot.waitUntil(lambda: window.player.last_key == ids[2], timeout=10000)


def test_another_library_resets_the_player(qtbot, window, tmp_path):
    window.play_segment(_segment_of(window, "tone440.wav", 0.0))
    qtbot.waitUntil(lambda: not window.player_bar.waveform.stack.empty, timeout=10000)
    Library(tmp_path / "empty", create=True).close()
    assert window.open_library(tmp_path / "empty")
    bar = window.player_bar
    assert window.playback.current is None and not window.player.playing
    assert not bar.play.isEnabled() and bar.title.text() == IDLE and bar.waveform.stack.empty
    _space(window, qtbot)
    qtbot.wait(50)
    assert not window.player.playing


@pytest.mark.audio_device
def test_space_plays_through_the_null_sink(qtbot, tmp_path, tones, pulse_null_sink):
    win = _window(qtbot, tmp_path, AudioPlayer())
    assert win.open_library(tones)
    player, sr = win.player, 48000
    with qtbot.waitSignal(player.started, timeout=10000):
        win.play_segment(_segment_of(win, "tone440.wav", 3.0))
    _space(win, qtbot)
    assert not player.playing
    with Recorder(samplerate=sr) as rec:
        qtbot.waitUntil(lambda: rec.buffer.available > 0.1 * sr, timeout=5000)
        rec.read()  # only what Space plays
        t0 = time.monotonic()
        _space(win, qtbot)
        assert player.playing
        qtbot.wait(1000)
        assert 3.5 < win.player_bar.waveform.playhead_s() <= 6.0  # the segment is 3-6 s of its track
        _space(win, qtbot)  # stopped after about 1 s of the 3 s segment
        heard_s = min(time.monotonic() - t0, 3.0)
        assert not player.playing
        time.sleep(0.4)
    sound = trim_silence(rec.read(), sr, pad_s=0.0)
    assert len(sound) / sr == pytest.approx(heard_s, abs=0.5)
    assert dominant_freq(sound, sr) == pytest.approx(440, abs=5)


def _held_decode(window, monkeypatch, seg_id: int):
    """Make ``seg_id``'s decode wait until the returned event is set (a long file, a slow drive)."""
    import threading

    release, decode = threading.Event(), window.session.segment_audio

    def segment_audio(sid):
        if sid == seg_id:
            release.wait(10)
        return decode(sid)
    monkeypatch.setattr(window.session, "segment_audio", segment_audio)
    return release


def test_stop_while_a_clicked_segment_still_decodes_cancels_it(qtbot, window, monkeypatch):
    """Stop pressed while the clicked segment was still decoding stopped the old sound, then the new one started
    when its decode ended."""
    first, second = _segment_of(window, "tone440.wav", 0.0), _segment_of(window, "tone660.wav", 3.0)
    window.play_segment(first)
    qtbot.waitUntil(lambda: window.player.playing, timeout=10000)
    release = _held_decode(window, monkeypatch, second)
    window.play_segment(second)
    qtbot.mouseClick(window.player_bar.play, Qt.MouseButton.LeftButton)
    assert not window.player.playing
    release.set()
    qtbot.waitUntil(lambda: second in window.map_controller.audio, timeout=10000)  # its decode has ended
    assert len(window.backend.calls) == 1 and not window.player.playing and window.player.last_key == first


def test_space_with_nothing_playing_cancels_the_pending_play_not_replays_the_last(qtbot, window, monkeypatch):
    first, second = _segment_of(window, "tone440.wav", 0.0), _segment_of(window, "tone660.wav", 3.0)
    window.play_segment(first)
    qtbot.waitUntil(lambda: window.player.playing, timeout=10000)
    window.backend.handles[-1].on_finished()  # it played to its end
    qtbot.waitUntil(lambda: not window.player.playing, timeout=5000)
    release = _held_decode(window, monkeypatch, second)
    window.play_segment(second)
    assert window.player_bar.play.text() == "■ Stop"  # it loads: the button stops it
    _space(window, qtbot)
    assert not window.player.playing and len(window.backend.calls) == 1  # not the last item again
    assert window.player_bar.play.text() == "▶ Play"
    release.set()
    qtbot.waitUntil(lambda: second in window.map_controller.audio, timeout=10000)
    assert len(window.backend.calls) == 1 and not window.player.playing
    _space(window, qtbot)  # nothing pending now: Space plays the current item again
    assert window.player.playing and window.player.last_key == first
