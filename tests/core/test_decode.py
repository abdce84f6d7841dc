"""Decoding every common format, bit depths, channels, spans, resampling."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from musicemb_core.audio import decode, info, load, resample, to_mono
from musicemb_core.common.errors import AudioError
from tests.conftest import dominant_freq, sine, write_av, write_sf

SR = 16000


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_wav_bit_depths_decode_to_float(tmp_path, subtype):
    y = sine(440, sr=SR)
    p = write_sf(tmp_path / f"x_{subtype}.wav", y, SR, subtype=subtype)
    out, sr = load(p)
    assert sr == SR and out.dtype == np.float32 and out.shape == y.shape
    tol = {"PCM_U8": 1e-2, "PCM_16": 1e-4}.get(subtype, 1e-6)
    assert np.abs(out - y).max() < tol


@pytest.mark.parametrize("name,kw", [("x.flac", {}), ("x.ogg", {}), ("x.mp3", {}),
                                     ("x.aiff", {"subtype": "PCM_16"})])
def test_soundfile_formats(tmp_path, name, kw):
    y = sine(440, sr=SR, seconds=2.0)
    p = write_sf(tmp_path / name, y, SR, **kw)
    out, sr = load(p)
    assert sr == SR
    assert abs(len(out) - len(y)) < 0.05 * SR  # codec priming/padding only
    assert abs(dominant_freq(out, sr) - 440) < 2
    assert info(p).backend == "soundfile"


@pytest.mark.parametrize("name,codec,fmt", [("x.m4a", "aac", "ipod"), ("x.opus", "libopus", "ogg"),
                                            ("x.wma", "wmav2", "asf"), ("x.alac.m4a", "alac", "ipod")])
def test_ffmpeg_formats(tmp_path, name, codec, fmt):
    sr = 48000 if codec == "libopus" else SR
    y = sine(440, sr=sr, seconds=2.0)
    p = write_av(tmp_path / name, y, sr, codec=codec, fmt=fmt)
    head = info(p)
    assert head.sample_rate == sr and head.channels == 1
    assert head.backend == ("soundfile" if codec == "libopus" else "pyav")  # libsndfile reads Ogg Opus itself
    out, out_sr = load(p, sr=22050)
    assert out_sr == 22050
    assert abs(len(out) / 22050 - 2.0) < 0.1
    assert abs(dominant_freq(out, out_sr) - 440) < 2
    if codec == "alac":  # lossless: the samples survive (16-bit rounding only)
        ref, _ = load(p)
        assert np.abs(ref[:len(y)] - y[:len(ref)]).max() < 1e-3


def test_pyav_offset_and_duration(tmp_path):
    sr = SR
    t = np.arange(6 * sr) / sr
    y = (0.5 * np.sin(2 * np.pi * np.where(t < 3, 300, 900) * t)).astype(np.float32)
    p = write_av(tmp_path / "two.m4a", y, sr, codec="aac", fmt="ipod")
    a, _ = load(p, offset=0.5, duration=2.0)
    b, _ = load(p, offset=3.5, duration=2.0)
    assert len(a) == len(b) == 2 * sr
    assert abs(dominant_freq(a, sr) - 300) < 3 and abs(dominant_freq(b, sr) - 900) < 3


def test_multichannel_downmix_and_keep(tmp_path):
    y = sine(440, sr=SR, channels=6)
    p = write_sf(tmp_path / "six.wav", y, SR, subtype="FLOAT")
    stereo, _ = load(p, mono=False)
    assert stereo.shape == (6, SR)
    mono, _ = load(p)
    assert np.allclose(mono, y.mean(axis=1), atol=1e-6)
    assert np.allclose(to_mono(stereo), mono)


def test_span_reads_exact_samples(tmp_path):
    y = np.arange(SR * 4, dtype=np.float32) / (SR * 4)
    p = write_sf(tmp_path / "ramp.wav", y, SR, subtype="FLOAT")
    out, _ = load(p, offset=1.5, duration=0.25)
    assert np.array_equal(out, y[int(1.5 * SR):int(1.75 * SR)])


@pytest.mark.parametrize("orig,target", [(44100, 16000), (8000, 22050), (48000, 44100)])
def test_resampling_keeps_a_1khz_sine_at_1khz(orig, target):
    y = sine(1000, sr=orig, seconds=2.0)
    out = resample(y, orig, target)
    assert abs(len(out) - 2 * target) <= 1
    assert abs(dominant_freq(out, target) - 1000) < 1.0
    mid = out[target // 2: -target // 2]
    assert abs(np.sqrt(np.mean(mid**2)) - 0.5 / np.sqrt(2)) < 0.01  # amplitude kept


def test_resample_multichannel_shape():
    y = sine(1000, sr=44100, channels=2).T
    assert resample(y, 44100, 22050).shape == (2, 22050)


def test_missing_and_empty_files_name_the_file(tmp_path):
    with pytest.raises(AudioError, match="file not found") as e:
        info(tmp_path / "nope.wav")
    assert "nope.wav" in str(e.value)
    (tmp_path / "empty.flac").write_bytes(b"")
    with pytest.raises(AudioError, match="zero-length"):
        info(tmp_path / "empty.flac")
    (tmp_path / "junk.ogg").write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(AudioError, match="not a readable audio file"):
        load(tmp_path / "junk.ogg")


@pytest.mark.skipif(not os.path.exists("/proc/self/io"), reason="counts the bytes read in /proc/self/io")
@pytest.mark.parametrize("name", ["zeros.mp3", "zeros.ac3"])
def test_a_big_file_of_no_audio_is_not_read_whole(tmp_path, monkeypatch, name):
    # FFmpeg's MP3/AC-3 demuxers hunt for a first frame through the whole file, keeping it all in memory (2 GB
    # for a 3 GB file of zeros); the open may read PROBE_BYTES (here 1 MiB of this 32 MiB sparse file).
    monkeypatch.setattr(decode, "PROBE_BYTES", 1 << 20, raising=False)
    path = tmp_path / name
    with open(path, "wb") as f:
        f.truncate(32 << 20)

    def rchar() -> int:
        return int(re.search(r"rchar: (\d+)", Path("/proc/self/io").read_text()).group(1))

    before = rchar()
    with pytest.raises(AudioError, match="not a readable audio file"):
        info(path)
    assert rchar() - before < 8 << 20


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes and /dev/zero are POSIX")
def test_a_pipe_or_device_is_named_as_such(tmp_path):
    os.mkfifo(tmp_path / "pipe.wav")  # reading it would wait for a writer forever
    (tmp_path / "zero.wav").symlink_to("/dev/zero")
    for name in ("pipe.wav", "zero.wav"):
        with pytest.raises(AudioError, match="not a regular file"):
            info(tmp_path / name)
