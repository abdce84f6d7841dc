"""Real-world oddities an import of a messy disk meets: lengths a header only estimates, WAVs over 4 GB whose size
wrapped, codecs no decoder has, constant-level files, and decoders failing in ways nobody foresaw."""

from __future__ import annotations

import struct

import av
import numpy as np
import pytest
import soundfile as sf

import musicemb_core.data.ingest as ingest_mod
from musicemb_core.audio.decode import info, load
from musicemb_core.common.errors import AudioError
from musicemb_core.common.progress import drive
from musicemb_core.data.ingest import iter_ingest
from musicemb_core.data.library import Library
from tests.conftest import dominant_freq, write_tone

SR = 44100


def _encode(path, y, *, codec: str, fmt: str, bit_rate: int, options: dict | None = None) -> bytes:
    """``y`` encoded as mono ``codec`` in ``fmt``; the file's bytes."""
    with av.open(str(path), "w", format=fmt, options=options or {}) as out:
        st = out.add_stream(codec, rate=SR)
        st.layout, st.bit_rate = "mono", bit_rate
        sample_fmt = st.codec_context.codec.audio_formats[0].name
        scale = {"s16": 32767, "s16p": 32767, "s32": 2147483647, "s32p": 2147483647}.get(sample_fmt)
        data = y if scale is None else (np.clip(y, -1, 1).astype(np.float64) * scale).astype(
            np.int16 if scale < 1e5 else np.int32)
        for i in range(0, len(data), 1152):
            frame = av.AudioFrame.from_ndarray(data[None, i:i + 1152], format=sample_fmt, layout="mono")
            frame.sample_rate, frame.pts = SR, i
            for pkt in st.encode(frame):
                out.mux(pkt)
        for pkt in st.encode(None):
            out.mux(pkt)
    return path.read_bytes()


def _quiet_then_loud(seconds: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(int(seconds * SR)) / SR
    quiet = (0.001 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    loud = 0.4 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.random.default_rng(0).standard_normal(len(t))
    return quiet, loud.astype(np.float32)


def _vbr_mp3_without_xing(path):
    """2 s at 32 kbps then 2 s at 320 kbps, no Xing frame: its length estimated from the first frame's bitrate
    is 22 s."""
    quiet, loud = _quiet_then_loud()
    no_xing = {"write_xing": "0", "id3v2_version": "0"}
    head = _encode(path, quiet, codec="libmp3lame", fmt="mp3", bit_rate=32000, options=no_xing)
    path.write_bytes(head + _encode(path, loud, codec="libmp3lame", fmt="mp3", bit_rate=320000, options=no_xing))
    return path


def _adts_aac(path):
    """Raw AAC (ADTS) starting quietly: FFmpeg estimates its length from the bitrate it starts with."""
    _encode(path, np.concatenate(_quiet_then_loud(3.0)), codec="aac", fmt="adts", bit_rate=128000)
    return path


def _import(tmp_path, folder, **kw):
    with Library(tmp_path / "lib", create=True) as lib:
        report = drive(iter_ingest(lib, [folder], jobs=1, analyse=False, **kw))
        tracks = {t.path.rsplit("/", 1)[1]: t for t in lib.tracks()}
        per_track = lib.segments()["track_id"]
        segments = {name: int((per_track == t.id).sum()) for name, t in tracks.items()}
    return report, tracks, segments


@pytest.mark.parametrize("name, make, seconds", [("vbr.mp3", _vbr_mp3_without_xing, 4.0),
                                                 ("raw.aac", _adts_aac, 6.0)])
def test_a_length_the_header_only_estimates_is_no_truncation(tmp_path, name, make, seconds):
    """A VBR MP3 without a Xing frame and a raw AAC stream were refused as "truncated: header declares 22 s but
    only 4 s could be decoded": their header length is an estimate from the bitrate. Now imported at their
    decoded length; a cut MP3 whose Xing frame counts its frames is still truncated."""
    (tmp_path / "a").mkdir()
    path = make(tmp_path / "a" / name)
    assert info(path).duration_s > 1.4 * seconds  # the estimate
    xing = tmp_path / "a" / "cut.mp3"
    xing.write_bytes(_encode(xing, np.concatenate(_quiet_then_loud()), codec="libmp3lame", fmt="mp3",
                             bit_rate=128000)[:-20000])
    report, tracks, segments = _import(tmp_path, tmp_path / "a")
    assert report.added == 1 and list(tracks) == [name]
    assert tracks[name].duration_s == pytest.approx(seconds, abs=0.1)
    assert segments[name] == int(seconds // 3)
    assert [(p.rsplit("/", 1)[1], e.split(":")[0]) for p, e in report.failed] == [("cut.mp3", "truncated")]


def test_a_wav_of_a_codec_no_decoder_has_fails_alone(tmp_path):
    """A WAV of a codec FFmpeg lacks (format tag 0x1234) stopped the whole import with an AttributeError (its
    stream has no codec context); now it fails with its reason and the others are imported."""
    write_tone(tmp_path / "a" / "good.wav", 440)
    fmt = struct.pack("<HHIIHH", 0x1234, 1, 8000, 4000, 1, 4)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", 16000) + bytes(16000)
    (tmp_path / "a" / "odd.wav").write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    report, tracks, _ = _import(tmp_path, tmp_path / "a")
    assert list(tracks) == ["good.wav"]
    assert [(p.rsplit("/", 1)[1], e) for p, e in report.failed] == [
        ("odd.wav", "its audio is in a codec FFmpeg cannot decode")]


def test_a_decoder_failing_unforeseen_costs_its_file_only(tmp_path, monkeypatch):
    """Any exception a decoder raises on one file (not only the audio errors foreseen) stopped the import, at
    every run again; now that file fails with the exception named, on one line."""
    write_tone(tmp_path / "a" / "good.wav", 440)
    write_tone(tmp_path / "a" / "weird.wav", 550, seed=1)
    real = ingest_mod.scan

    def scan(path, **kw):
        if str(path).endswith("weird.wav"):
            raise ValueError("buffer size must be\na multiple of element size")
        return real(path, **kw)

    monkeypatch.setattr(ingest_mod, "scan", scan)
    report, tracks, _ = _import(tmp_path, tmp_path / "a")
    assert list(tracks) == ["good.wav"]
    assert [(p.rsplit("/", 1)[1], e) for p, e in report.failed] == [
        ("weird.wav", "cannot decode: ValueError: buffer size must be a multiple of element size")]


def test_a_constant_level_is_silent(tmp_path):
    """A file holding one constant level (DC, here -10 dBFS; a stereo one at two levels) carries no sound but
    passed the peak rule; it now fails as silent. A tone riding on a DC offset is imported."""
    (tmp_path / "a").mkdir()
    n = 4 * 8000
    sf.write(tmp_path / "a" / "dc.wav", np.full(n, 0.316, np.float32), 8000, subtype="PCM_16")
    sf.write(tmp_path / "a" / "dc2.wav", np.tile(np.float32([[0.2, -0.1]]), (n, 1)), 8000, subtype="FLOAT")
    tone = 0.3 + 0.01 * np.sin(np.arange(n) * 0.3)
    sf.write(tmp_path / "a" / "offset.wav", tone.astype(np.float32), 8000, subtype="PCM_16")
    report, tracks, _ = _import(tmp_path, tmp_path / "a")
    assert list(tracks) == ["offset.wav"]
    assert sorted((p.rsplit("/", 1)[1], e) for p, e in report.failed) == [
        ("dc.wav", "silent: a constant level (DC) at -10 dBFS over 4.0 s"),
        ("dc2.wav", "silent: a constant level (DC) at -14 dBFS over 4.0 s")]


def test_a_wav_over_4_gb_whose_size_wrapped_is_read_whole(tmp_path):
    """A RIFF WAV over 4 GiB (a recorder or a tool that does not write RF64) keeps the data size modulo 2**32;
    libsndfile trusted it and a 9.3-hour recording read as its first 16 minutes. Its length and its last second
    are now read (the file is sparse: zeros between a second of tone at each end)."""
    sr, frames = 8000, (1 << 32) // 2 + 8000 * 1000  # 16-bit mono: 4 GiB + 16 MB of samples
    size = frames * 2
    fmt = struct.pack("<HHIIHH", 1, 1, sr, 2 * sr, 2, 16)
    head = (b"RIFF" + struct.pack("<I", (36 + size) % (1 << 32)) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
            + b"data" + struct.pack("<I", size % (1 << 32)))
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(sr) / sr) * 32767).astype("<i2").tobytes()
    path = tmp_path / "long.wav"
    with open(path, "wb") as f:
        f.write(head + tone)
        f.seek(len(head) + size - len(tone))
        f.write(tone)
    assert info(path).frames == frames
    y, _ = load(path, offset=frames / sr - 1.0)
    assert len(y) == sr and np.abs(y).max() == pytest.approx(0.5, abs=1e-3)


def test_chained_ogg_streams_are_read_to_the_end(tmp_path):
    """Two Opus files joined end to end (as a radio stream's recording is): libsndfile read the first stream only
    and the track was 4 s of its 8; now the import, and decoding it later, read both."""
    (tmp_path / "a").mkdir()
    t = np.arange(4 * 48000) / 48000
    parts = []
    for i, freq in enumerate((440, 660)):
        sf.write(tmp_path / f"{i}.opus", (0.4 * np.sin(2 * np.pi * freq * t)).astype(np.float32), 48000,
                 format="OGG", subtype="OPUS")
        parts.append((tmp_path / f"{i}.opus").read_bytes())
    joined = tmp_path / "a" / "joined.opus"
    joined.write_bytes(b"".join(parts))
    first = sf.info(tmp_path / "0.opus").duration
    _, tracks, segments = _import(tmp_path, tmp_path / "a")
    assert tracks["joined.opus"].duration_s == pytest.approx(2 * first, abs=0.05)
    assert segments["joined.opus"] == 3  # at 0, 3 and 5 s
    y, sr = load(joined, sr=16000, offset=first + 0.5, duration=1.0)
    assert len(y) == sr and abs(dominant_freq(y, sr) - 660) < 5


def test_a_query_is_measured_where_its_header_only_estimates_its_length(tmp_path):
    """A 4 s VBR MP3 without a Xing frame, estimated 22 s long, was refused as a query or hum longer than the
    limit (here 10 s) from that estimate; now it is measured by decoding up to the limit. A file whose header
    states its length is still refused from the header alone."""
    from musicemb_core.audio.validate import check_query_length

    path = _vbr_mp3_without_xing(tmp_path / "hum.mp3")
    assert info(path).duration_s > 10.0
    check_query_length(str(path), 10.0, "hums")
    with pytest.raises(AudioError, match="0.1 min long; hums may be at most 0.05 min"):
        check_query_length(str(path), 3.0, "hums")
    write_tone(tmp_path / "long.wav", 440, seconds=12.0)
    with pytest.raises(AudioError, match="0.2 min long; queries may be at most 0.166667 min"):
        check_query_length(str(tmp_path / "long.wav"), 10.0, "queries")
