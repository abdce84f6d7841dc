"""Files whose header does not give their length: a WAV left unfinished by its recorder, a FLAC encoded to a pipe."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from musicemb_core.audio import info, load
from musicemb_core.audio.validate import scan
from musicemb_core.common.errors import AudioError
from tests.conftest import sine, write_sf

SR = 16000


def unfinished_wav(path: Path, y: np.ndarray) -> Path:
    """A WAV whose RIFF and data sizes are still 0, as a recorder that crashed leaves it."""
    data = bytearray(write_sf(path, y, SR, subtype="PCM_16").read_bytes())
    at = data.find(b"data")
    data[4:8] = data[at + 4:at + 8] = struct.pack("<I", 0)
    path.write_bytes(bytes(data))
    return path


def streamed_flac(path: Path, y: np.ndarray) -> Path:
    """A FLAC whose STREAMINFO leaves the total sample count at 0 (unknown), as encoders writing to a pipe do."""
    data = bytearray(write_sf(path, y, SR).read_bytes())
    assert data[:4] == b"fLaC"
    data[21] &= 0xF0  # the 36-bit total sample count: the low 4 bits of byte 21 and bytes 22-25
    data[22:26] = bytes(4)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("make", [unfinished_wav, streamed_flac])
def test_a_file_without_its_length_in_the_header_is_read_to_its_end(tmp_path, make):
    y = sine(440, sr=SR, seconds=2.0)
    p = make(tmp_path / f"x.{'wav' if make is unfinished_wav else 'flac'}", y)
    out, sr = load(p)
    assert sr == SR and len(out) == len(y)
    assert np.abs(out - y).max() < 1e-4
    head = scan(p)
    assert head.frames == len(y) and head.duration_s == pytest.approx(2.0) and not head.warning
    part, _ = load(p, offset=0.5, duration=0.25)
    np.testing.assert_array_equal(part, out[SR // 2:SR // 2 + SR // 4])
    assert info(p).duration_s < 3.0  # not "160127986751.0 h" (libsndfile's unknown length)


def test_max_duration_holds_when_the_header_does_not_say(tmp_path):
    p = streamed_flac(tmp_path / "long.flac", sine(440, sr=SR, seconds=3.0))
    with pytest.raises(AudioError, match=r"long\.flac: too long: more than the limit"):
        scan(p, max_duration_s=2.0)
    assert scan(p, max_duration_s=4.0).frames == 3 * SR


def test_an_empty_wav_is_still_empty(tmp_path):
    p = write_sf(tmp_path / "empty.wav", np.zeros(0, np.float32), SR)
    with pytest.raises(AudioError, match=r"empty\.wav: no audio samples"):
        scan(p)
    assert load(p)[0].shape == (0,)


def test_float_audio_far_beyond_full_scale_is_refused_naming_the_file(tmp_path):
    """A float WAV peaking at 1e18 (finite) was imported, then failed at embed as a damaged model; a query of it
    ended in "unexpected ParameterError" or empty answers. Float audio a little over full scale is kept."""
    from musicemb_core.audio.resample import samples
    from musicemb_core.common.errors import ConfigError
    from musicemb_core.common.progress import drive
    from musicemb_core.data.ingest import iter_ingest
    from musicemb_core.data.library import Library

    y = sine(220.0, seconds=3.0)
    (tmp_path / "music").mkdir()
    loud = write_sf(tmp_path / "music" / "loud.wav", 2e18 * y, 16000, subtype="FLOAT")
    write_sf(tmp_path / "music" / "hot.wav", 4.0 * y, 16000, subtype="FLOAT")  # +6 dB over full scale: audio
    for read in (lambda p: load(p, sr=16000), scan):
        with pytest.raises(AudioError, match=r"loud.wav: samples far beyond full scale \(peak 1e\+18 at 0.00 s"):
            read(loud)
    with Library(tmp_path / "lib", create=True) as lib:
        report = drive(iter_ingest(lib, [tmp_path / "music"], jobs=1, analyse=False))
        assert [t.path.rsplit("/", 1)[1] for t in lib.tracks()] == ["hot.wav"]
    assert [(p.rsplit("/", 1)[1], "far beyond full scale" in why) for p, why in report.failed] == [("loud.wav", True)]
    with pytest.raises(ConfigError, match=r"y: samples far beyond full scale \(peak 1e\+18\)"):
        samples(2e18 * y)
