"""Ring buffer, silence trimming, device errors; real play/record through a PulseAudio null sink."""

from __future__ import annotations

import importlib.abc
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from musicemb_core.audio import devices
from musicemb_core.audio.devices import AudioDeviceError, Recorder, list_devices, play, record, trim_silence
from musicemb_core.audio.ringbuffer import RingBuffer
from musicemb_core.common.errors import ConfigError, MusicEmbError
from tests.conftest import dominant_freq, sine


def test_ringbuffer_wraps_around_like_a_concatenation():
    rng = np.random.default_rng(0)
    rb = RingBuffer(1000, channels=2)
    accepted, got, dropped = [], [], 0
    for i in range(400):
        block = rng.standard_normal((int(rng.integers(0, 300)), 2)).astype(np.float32) + i
        n = rb.write(block)
        accepted.append(block[:n])
        dropped += len(block) - n
        got.append(rb.read(int(rng.integers(0, 400))))
    got.append(rb.read())
    ref = np.concatenate(accepted)
    assert len(ref) > 20 * rb.capacity  # wrapped around many times
    np.testing.assert_array_equal(np.concatenate(got), ref)
    assert rb.overflows == dropped > 0 and rb.available == 0


def test_ringbuffer_drops_and_counts_overflow():
    rb = RingBuffer(10)
    assert rb.write(np.arange(7)) == 7
    assert rb.write(np.arange(7, 14)) == 3
    assert rb.overflows == 4 and rb.available == 10
    np.testing.assert_array_equal(rb.read(4)[:, 0], [0, 1, 2, 3])
    assert rb.write(np.full(5, 99)) == 4 and rb.overflows == 5
    np.testing.assert_array_equal(rb.read()[:, 0], [4, 5, 6, 7, 8, 9, 99, 99, 99, 99])
    rb.write(np.ones(3))
    rb.clear()
    assert rb.available == 0 and rb.read().shape == (0, 1)
    with pytest.raises(ConfigError, match="channels"):
        rb.write(np.zeros((4, 2)))
    with pytest.raises(ConfigError):
        RingBuffer(0)


def test_ringbuffer_threaded_producer_consumer_loses_nothing():
    sr, block = 16000, 160
    signal = np.arange(10 * sr, dtype=np.float32)  # 10 s; float32 holds these integers exactly
    rb = RingBuffer(2048)
    done = threading.Event()

    def produce():
        for i in range(0, len(signal), block):
            while rb.capacity - rb.available < block:  # a real callback would drop; here it waits
                time.sleep(0)
            assert rb.write(signal[i:i + block]) == block
        done.set()

    t = threading.Thread(target=produce)
    t.start()
    got, total = [], 0
    deadline = time.monotonic() + 20
    while total < len(signal) and time.monotonic() < deadline:
        out = rb.read(int(np.random.default_rng(total).integers(1, 700)))
        got.append(out[:, 0])
        total += len(out)
        time.sleep(0)
    t.join()
    assert done.is_set() and rb.overflows == 0
    np.testing.assert_array_equal(np.concatenate(got), signal)


def test_trim_silence_cuts_to_within_50ms():
    sr = 16000
    rng = np.random.default_rng(1)
    y = np.concatenate([np.zeros(sr // 2), sine(440, sr=sr, seconds=1.0), np.zeros(int(0.7 * sr))])
    y = (y + 1e-4 * rng.standard_normal(len(y))).astype(np.float32)  # -80 dBFS hiss is still silence
    tight = trim_silence(y, sr, pad_s=0.0)
    assert abs(len(tight) / sr - 1.0) < 0.05
    assert np.abs(tight[: sr // 100]).max() > 0.1  # starts on the tone
    padded = trim_silence(y, sr)  # 0.1 s either side
    assert abs(len(padded) / sr - 1.2) < 0.05
    stereo = trim_silence(np.stack([y, y]), sr, pad_s=0.0)
    assert stereo.shape == (2, len(tight))
    assert trim_silence(np.zeros(sr, np.float32), sr).shape == (0,)


def test_importing_devices_does_not_load_portaudio():
    code = "import sys, musicemb_core.audio.devices; assert 'sounddevice' not in sys.modules"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


class _NoPortAudio(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "sounddevice":
            raise OSError("PortAudio library not found")


def test_missing_portaudio_or_sounddevice_is_a_clear_error(monkeypatch):
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    devices.stop()  # nothing loaded: a no-op
    monkeypatch.setattr(sys, "meta_path", [_NoPortAudio(), *sys.meta_path])
    with pytest.raises(AudioDeviceError, match="install libportaudio2"):
        list_devices()
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    with pytest.raises(MusicEmbError, match="pip install sounddevice"):
        record(1.0)


def test_bad_arguments_are_config_errors():
    with pytest.raises(ConfigError, match="kind"):
        list_devices("both")
    with pytest.raises(ConfigError, match="seconds"):
        record(0)


def _sounddevice():
    try:
        import sounddevice
    except (ImportError, OSError) as e:
        pytest.skip(f"sounddevice unusable here: {e}")
    return sounddevice


def test_no_device_or_no_default_device_is_a_clear_error(monkeypatch):
    sd = _sounddevice()
    mic = {"index": 0, "name": "USB mic", "max_input_channels": 1, "max_output_channels": 0,
           "default_samplerate": 44100.0}
    listed = []

    def query_devices(device=None, kind=None):
        if device is None and kind is None:
            return listed
        raise sd.PortAudioError(f"Error querying device {device if device is not None else -1}")

    monkeypatch.setattr(sd, "query_devices", query_devices)
    assert list_devices() == []
    with pytest.raises(AudioDeviceError, match="no audio input devices found .*sound server"):
        Recorder()
    listed.append(mic)
    assert list_devices() == [{"index": 0, "name": "USB mic", "channels": 1, "default_samplerate": 44100.0,
                               "is_default": False}]
    with pytest.raises(AudioDeviceError, match="no default audio input device; choose one of: 0: USB mic"):
        record(1.0)
    with pytest.raises(AudioDeviceError, match="no audio output devices found"):
        play(np.zeros(10), 8000)


@pytest.mark.audio_device
def test_play_tone_and_record_it_back(pulse_null_sink):
    names = {d["name"]: d for d in list_devices("input")}
    assert names["pulse"]["is_default"] and names["pulse"]["channels"] > 0
    assert "pulse" in [d["name"] for d in list_devices("output")]
    sr = 48000
    with Recorder(samplerate=sr) as rec:
        deadline = time.monotonic() + 5
        while rec.buffer.available < 0.1 * sr and time.monotonic() < deadline:  # streams start late via Pulse
            time.sleep(0.01)
        play(sine(440, sr=sr, seconds=1.0), sr)  # returns at once
        time.sleep(0.6)
        level = rec.level_dbfs
        time.sleep(0.7)
        assert rec.active  # the hum panel stops a recording whose stream PortAudio stopped
    y = rec.read()
    assert not rec.active
    assert -20 < level <= 0
    assert rec.buffer.overflows == 0
    tone = trim_silence(y, sr, pad_s=0.0)
    # the tone's 10 ms frames heard: an underrun of the sound server on a loaded machine leaves a gap of silence
    frames = tone[:len(tone) // (sr // 100) * (sr // 100)].reshape(-1, sr // 100)
    assert 0.8 < np.count_nonzero(np.sqrt((frames ** 2).mean(axis=1)) > 0.05) / 100 < 1.2
    # its pitch, as the median of 100 ms frames': a glitch of a loaded sound server moved the whole clip's peak to
    # 448 Hz once; a wrong rate moves every frame's
    pitches = [dominant_freq(np.pad(f, (0, sr - len(f))), sr) for f in tone[:len(tone) // 4800 * 4800].reshape(-1, 4800)]
    assert abs(np.median(pitches) - 440) <= 5, pitches


@pytest.mark.audio_device
def test_record_returns_rate_and_length(pulse_null_sink):
    y, sr = record(0.5, samplerate=16000)
    assert sr == 16000 and y.shape == (8000,) and y.dtype == np.float32
    y, sr = record(0.2)
    native = next(d for d in list_devices("input") if d["is_default"])["default_samplerate"]
    assert sr == round(native) and len(y) == round(0.2 * sr)


@pytest.mark.audio_device
def test_device_errors_are_clear(pulse_null_sink, monkeypatch):
    with pytest.raises(AudioDeviceError, match=r"no audio device 999; input devices: .*pulse"):
        Recorder(device=999)
    with pytest.raises(AudioDeviceError, match="no audio device 'no such card'"):
        Recorder(device="no such card")
    with pytest.raises(AudioDeviceError, match=r"'pulse' \(index \d+\) does not support 1000000 Hz for input; "
                                               r"supported: .*48000"):
        Recorder(samplerate=1_000_000)
    with pytest.raises(AudioDeviceError, match="does not support 1000000 Hz for output"):
        play(np.zeros(100, np.float32), 1_000_000)
    sd = _sounddevice()

    def busy(*args, **kwargs):
        raise sd.PortAudioError("Error opening InputStream: Device unavailable", -9985)

    monkeypatch.setattr(sd, "InputStream", busy)
    with pytest.raises(AudioDeviceError, match="busy"):
        Recorder().start()
