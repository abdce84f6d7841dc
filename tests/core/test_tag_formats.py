"""Tags as DJ tools write them in every container: the ID3 chunk of WAV and AIFF files (rekordbox, Serato), a key
in an MP4 freeform atom (Mixed In Key, Traktor), several values of one tag."""

from __future__ import annotations

import av
import numpy as np
import soundfile as sf
from mutagen.aiff import AIFF
from mutagen.flac import FLAC
from mutagen.id3 import TBPM, TCON, TIT2, TKEY, TPE1
from mutagen.mp4 import MP4, MP4FreeForm
from mutagen.wave import WAVE

from musicemb_core.common.progress import drive
from musicemb_core.data.ingest import iter_ingest, read_tags
from musicemb_core.data.library import Library
from tests.conftest import write_tone


def _id3(tags) -> None:
    tags.add(TIT2(encoding=3, text=["Night Drive"]))
    tags.add(TPE1(encoding=3, text=["Ann", "Bo"]))
    tags.add(TBPM(encoding=3, text=["124"]))
    tags.add(TKEY(encoding=3, text=["8A"]))
    tags.add(TCON(encoding=3, text=["(52)"]))  # ID3v1 genre number 52: Electronic


def test_the_id3_chunk_of_wav_and_aiff_files_is_read(tmp_path):
    """WAV and AIFF tags (an ID3 chunk) came back as {}: title, artist, tempo and key of a DJ's WAV files lost."""
    wav = write_tone(tmp_path / "m" / "a.wav", 440.0, seconds=3.0)
    f = WAVE(wav)
    f.add_tags()
    _id3(f.tags)
    f.save()
    aiff = tmp_path / "m" / "b.aiff"
    sf.write(aiff, 0.3 * np.sin(np.arange(24000) / 8000 * 2 * np.pi * 550).astype(np.float32), 8000, format="AIFF")
    f = AIFF(aiff)
    f.add_tags()
    _id3(f.tags)
    f.save()
    expected = {"title": "Night Drive", "artist": "Ann; Bo", "bpm": "124", "initialkey": "8A", "genre": "Electronic"}
    with Library(tmp_path / "lib", create=True) as lib:
        drive(iter_ingest(lib, [tmp_path / "m"], jobs=1, analyse=False))
        assert lib.track_by_path(str(wav)).tags == expected
        assert lib.track_by_path(str(aiff)).tags == expected


def test_an_mp4_freeform_key_is_read(tmp_path):
    """Mixed In Key and Traktor write an M4A's key as '----:com.apple.iTunes:initialkey', which was never read."""
    path = tmp_path / "c.m4a"
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=44100, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 44100), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 44100
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    f = MP4(path)
    f["\xa9nam"] = ["Dawn"]
    f["----:com.apple.iTunes:initialkey"] = [MP4FreeForm(b"11B")]
    f.save()
    assert read_tags(path) == {"title": "Dawn", "initialkey": "11B"}


def test_several_values_of_a_name_are_joined_and_of_a_number_the_first_kept(tmp_path):
    """A Vorbis or ID3v2.4 artist of two values kept only the first; a tempo keeps its first value."""
    path = tmp_path / "d.flac"
    sf.write(path, np.zeros(8000, np.float32), 8000)
    f = FLAC(path)
    f["artist"] = ["Ann", "Bo", "Ann"]
    f["bpm"] = ["128", "64"]
    f.save()
    assert read_tags(path) == {"artist": "Ann; Bo", "bpm": "128"}


def test_tracks_imported_before_get_their_tags_at_the_next_import_of_them_all(tmp_path, monkeypatch):
    """A WAV library imported by a release that could not read its tags: the next import of every file reads them
    again (no decode), once; an import of part of the library leaves the rest for later."""
    from musicemb_core.data import ingest

    for i, name in enumerate("ab"):
        f = WAVE(write_tone(tmp_path / "m" / name / f"{name}.wav", 440.0 + 110 * i, seconds=3.0, seed=i))
        f.add_tags()
        _id3(f.tags)
        f.save()
    with Library(tmp_path / "lib", create=True) as lib:
        drive(iter_ingest(lib, [tmp_path / "m"], jobs=1, analyse=False))
        assert lib.get_meta("tags_version") == str(ingest.TAGS_VERSION)
        lib.set_tags([(t.id, {}) for t in lib.tracks()])  # as the older release stored them
        lib.set_meta("tags_version", "1")
        part = drive(iter_ingest(lib, [tmp_path / "m" / "a"], jobs=1, analyse=False))
        assert part.retagged == 1 and part.unchanged == 1 and lib.get_meta("tags_version") == "1"
        reads, original = [], ingest.read_tags
        monkeypatch.setattr(ingest, "read_tags", lambda p: reads.append(p) or original(p))
        report = drive(iter_ingest(lib, [tmp_path / "m"], jobs=1, analyse=False))
        assert report.retagged == 1 and report.unchanged == 2 and len(reads) == 2
        assert all(t.tags["title"] == "Night Drive" for t in lib.tracks())
        assert lib.get_meta("tags_version") == str(ingest.TAGS_VERSION)
        reads.clear()
        assert drive(iter_ingest(lib, [tmp_path / "m"], jobs=1, analyse=False)).retagged == 0 and reads == []
