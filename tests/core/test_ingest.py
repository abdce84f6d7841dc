"""Import through ``iter_ingest``: segmenting, labels, tags, bad inputs, incremental re-import, cancelling."""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import musicemb_core.data.ingest as ingest_mod
from musicemb_core.audio.segment import window_starts
from musicemb_core.common.config import SegmentConfig
from musicemb_core.common.errors import MusicEmbError
from musicemb_core.common.progress import CancelToken, Progress, drive
from musicemb_core.data.ingest import IngestReport, find_audio, iter_ingest, read_label_csv
from musicemb_core.data.library import Library
from tests.conftest import no_worker_processes_left

SR = 8000
SEG3 = SegmentConfig(window_s=3.0, hop_s=3.0)


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("MUSICEMB_HOME", str(tmp_path / "home"))


def tone(path: Path, seconds: float, *, freq: float = 440.0, sr: int = SR, seed: int = 0, amp: float = 0.4,
         **kw) -> Path:
    """A sine plus a little seeded noise (distinct content per freq/seed), written with soundfile."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(round(seconds * sr))) / sr
    noise = 0.01 * np.random.default_rng(seed).standard_normal(len(t))
    sf.write(path, (amp * np.sin(2 * np.pi * freq * t) + noise).astype(np.float32), sr, **kw)
    return path


def run(lib: Library, paths, **kw) -> tuple[IngestReport, list[Progress]]:
    events: list[Progress] = []
    kw.setdefault("jobs", 1)
    report = drive(iter_ingest(lib, [str(p) for p in paths], **kw), events.append)
    return report, events


def segs(lib: Library, path: Path) -> list[tuple[float, float]]:
    return [tuple(r) for r in lib.conn.execute(
        "SELECT s.start_s, s.duration_s FROM segments s JOIN tracks t ON t.id = s.track_id "
        "WHERE t.path = ? ORDER BY s.start_s", (str(path),))]


def n_rows(lib: Library, table: str) -> int:
    return lib.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def failures(lib: Library) -> dict[str, str]:
    return {f["path"]: f["error"] for f in lib.failures()}


# -- segmenting, labels, tags ----------------------------------------------------------------------------------

def test_segments_for_known_durations(tmp_path):
    d = tmp_path / "music"
    files = {10.0: tone(d / "a10.wav", 10.0, freq=300), 11.0: tone(d / "b11.wav", 11.0, freq=350),
             9.0: tone(d / "c9.wav", 9.0, freq=400), 2.0: tone(d / "d2.wav", 2.0, freq=450),
             4.5: tone(d / "e45.flac", 4.5, freq=500)}
    with Library(tmp_path / "lib", create=True) as lib:
        report, events = run(lib, [d], segments=SEG3)
        assert (report.added, report.updated, report.moved, report.unchanged, report.failed) == (5, 0, 0, 0, [])
        assert not report.cancelled
        assert [(e.done, e.total) for e in events] == [(i, 5) for i in range(6)]
        assert events[0].message == "5 files found, 5 to import"
        assert lib.segment_config() == SEG3

        # 10 s: 0, 3, 6 -- the 1 s tail is under min_tail x window (1.5 s), so it gets no window.
        assert segs(lib, files[10.0]) == [(0.0, 3.0), (3.0, 3.0), (6.0, 3.0)]
        # 11 s: the 2 s tail gets a last window aligned to the end, at 8 s.
        assert segs(lib, files[11.0]) == [(0.0, 3.0), (3.0, 3.0), (6.0, 3.0), (8.0, 3.0)]
        assert segs(lib, files[9.0]) == [(0.0, 3.0), (3.0, 3.0), (6.0, 3.0)]
        assert segs(lib, files[2.0]) == [(0.0, 2.0)]  # shorter than a window: one short segment
        assert segs(lib, files[4.5]) == [(0.0, 3.0), (1.5, 3.0)]  # 1.5 s tail == 0.5 x 3 s
        assert n_rows(lib, "segments") == 13

        t = lib.track_by_path(str(files[11.0]))
        assert (t.duration_s, t.sample_rate, t.channels, t.format, t.label, t.warning) == \
            (11.0, SR, 1, "WAV", None, "")
        assert t.size == files[11.0].stat().st_size
        assert t.content_hash == ingest_mod.content_hash(files[11.0]) and len(t.content_hash) == 32
        assert lib.track_by_path(str(files[4.5])).format == "FLAC"
        assert lib.summary()["duration_s"] == 36.5


def test_stereo_and_overlapping_windows(tmp_path):
    path = tmp_path / "music" / "stereo.wav"
    path.parent.mkdir()
    t = np.arange(5 * 16000) / 16000
    y = np.stack([np.sin(2 * np.pi * 220 * t), 0.5 * np.sin(2 * np.pi * 330 * t)], axis=1) * 0.3
    sf.write(path, y.astype(np.float32), 16000, subtype="PCM_24")
    with Library(tmp_path / "lib", create=True) as lib:
        run(lib, [path], segments=SegmentConfig(window_s=2.0, hop_s=1.0))
        t = lib.track_by_path(str(path))
        assert (t.duration_s, t.sample_rate, t.channels) == (5.0, 16000, 2)
        assert segs(lib, path) == [(0.0, 2.0), (1.0, 2.0), (2.0, 2.0), (3.0, 2.0)]


def test_changing_segment_config_recuts_existing_tracks(tmp_path):
    a = tone(tmp_path / "m" / "a.wav", 10.0)
    b = tone(tmp_path / "n" / "b.wav", 6.0, freq=550)
    with Library(tmp_path / "lib", create=True) as lib:
        run(lib, [a.parent], segments=SEG3)
        assert len(segs(lib, a)) == 3
        report, _ = run(lib, [b.parent], segments=SegmentConfig(window_s=5.0, hop_s=5.0))
        assert report.added == 1 and report.recut == 1  # a, outside the folder imported, cut again too
        assert segs(lib, a) == [(0.0, 5.0), (5.0, 5.0)]
        assert segs(lib, b) == [(0.0, 5.0)]  # 6 s: 1 s tail < 2.5 s
        # No segments given: the library's own config is kept.
        report, _ = run(lib, [a.parent, b.parent])
        assert report.unchanged == 2 and lib.segment_config() == SegmentConfig(window_s=5.0, hop_s=5.0)
        assert report.recut == 0


def test_labels_from_folders(tmp_path):
    root = tmp_path / "crate"
    rock = tone(root / "rock" / "r1.wav", 2.0, freq=300)
    tone(root / "rock" / "r2.wav", 2.0, freq=320)
    jazz = tone(root / "jazz" / "deep" / "j1.wav", 2.0, freq=340)
    with Library(tmp_path / "lib", create=True) as lib:
        report, _ = run(lib, [root], labels="folders")
        assert report.added == 3
        assert lib.track_by_path(str(rock)).label == "rock"
        assert lib.track_by_path(str(jazz)).label == "deep"  # the nearest folder's name
        assert lib.summary()["labels"] == {"deep": 1, "rock": 2}


def test_labels_from_csv_by_name_absolute_and_relative_path(tmp_path):
    root = tmp_path / "crate"
    a = tone(root / "a.wav", 2.0, freq=300)
    b = tone(root / "sub" / "b.wav", 2.0, freq=320)
    c = tone(root / "sub" / "c.wav", 2.0, freq=340)
    d = tone(root / "d.wav", 2.0, freq=360)
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text(f"path,label\na.wav, rock \n{b},jazz\nsub/c.wav,pop\nnot-there.wav,x\n", "utf-8")
    labels = read_label_csv(csv_path)
    assert labels == {"a.wav": "rock", str(b): "jazz", "sub/c.wav": "pop", "not-there.wav": "x"}
    with Library(tmp_path / "lib", create=True) as lib:
        report, _ = run(lib, [root], labels=labels)
        assert report.added == 4
        got = {Path(t.path).name: t.label for t in lib.tracks()}
        assert got == {"a.wav": "rock", "b.wav": "jazz", "c.wav": "pop", "d.wav": None}
        assert lib.track_by_path(str(d)).label is None
        # Re-import of a changed file without labels keeps its label.
        tone(a, 3.0, freq=300)
        report, _ = run(lib, [root])
        assert report.updated == 1 and lib.track_by_path(str(a)).label == "rock"
        assert lib.track_by_path(str(c)).label == "pop"


def test_label_csv_missing_file_is_config_error(tmp_path):
    with pytest.raises(MusicEmbError, match="labels CSV"):
        read_label_csv(tmp_path / "nope.csv")


def test_tags_read_with_mutagen(tmp_path):
    from mutagen.flac import FLAC

    path = tone(tmp_path / "m" / "tagged.flac", 2.0)
    f = FLAC(str(path))
    f["title"] = "Night Song"
    f["artist"] = "The Testers"
    f["comment"] = "ignored: not a common tag"
    f.save()
    plain = tone(tmp_path / "m" / "plain.wav", 2.0, freq=600)
    with Library(tmp_path / "lib", create=True) as lib:
        run(lib, [path.parent])
        assert lib.track_by_path(str(path)).tags == {"title": "Night Song", "artist": "The Testers"}
        assert lib.track_by_path(str(plain)).tags == {}
        raw = lib.conn.execute("SELECT tags FROM tracks WHERE path=?", (str(path),)).fetchone()[0]
        assert '"title": "Night Song"' in raw


def test_tags_with_newlines_and_control_characters_are_kept_on_one_line(tmp_path):
    """A title with a line break, a tab or a NUL (multi-value tags) would split a row of `tracks`, the library
    table and an M3U8 #EXTINF line: each run of them becomes one space; a tag of only those is dropped."""
    from mutagen.flac import FLAC

    from musicemb_core.workflows.dj import track_row

    path = tone(tmp_path / "m" / "odd.flac", 2.0)
    f = FLAC(str(path))
    f["title"] = "Night\nSong\t(live)\x00 "
    f["artist"] = "\r\n\t"
    f.save()
    with Library(tmp_path / "lib", create=True) as lib:
        run(lib, [path.parent])
        t = lib.track_by_path(str(path))
        assert t.tags == {"title": "Night Song (live)"}
        assert track_row(t)["title"] == "Night Song (live)"


def test_find_audio_filters_folders_but_takes_named_files(tmp_path):
    root = tmp_path / "m"
    tone(root / "b.wav", 1.0)
    tone(root / "A.FLAC", 1.0, freq=500)
    (root / "notes.txt").write_text("x")
    (root / "cover.jpg").write_bytes(b"\xff\xd8")
    tone(root / ".hidden.wav", 1.0)
    tone(root / ".cache" / "c.wav", 1.0)
    named = root / "notes.txt"
    found = find_audio([root, named, root / "b.wav"])
    assert [p.name for p in found] == ["A.FLAC", "b.wav", "notes.txt"]  # no duplicates, order kept
    with pytest.raises(MusicEmbError, match="no such file or folder") as e:
        find_audio([tmp_path / "missing"])
    assert str(tmp_path / "missing") in str(e.value)


# -- bad inputs ------------------------------------------------------------------------------------------------

def _bad_inputs(d: Path) -> dict[str, str]:
    """Write one file per problem; return {file name: expected substring of the reason}."""
    d.mkdir(parents=True, exist_ok=True)
    (d / "random.mp3").write_bytes(np.random.default_rng(1).bytes(5000))
    good = tone(d / "_src.wav", 4.0, subtype="PCM_16")
    data = good.read_bytes()
    (d / "cut.wav").write_bytes(data[:len(data) // 3])
    good.unlink()
    mp3 = tone(d / "_src.mp3", 4.0)
    data = mp3.read_bytes()
    (d / "cut.mp3").write_bytes(data[:len(data) // 3])
    mp3.unlink()
    (d / "empty.wav").write_bytes(b"")
    sf.write(d / "silent.wav", np.zeros(4 * SR, np.int16), SR, subtype="PCM_16")
    y = np.full(4 * SR, 0.25, np.float32)
    y[SR:SR + 100] = np.nan
    sf.write(d / "nan.wav", y, SR, subtype="FLOAT")
    (d / "text.wav").write_text("this is not audio\n" * 40, "utf-8")
    return {"random.mp3": "not a readable audio file", "cut.wav": "truncated", "cut.mp3": "truncated",
            "empty.wav": "zero-length", "silent.wav": "silent", "nan.wav": "NaN", "text.wav":
            "not a readable audio file"}


@pytest.mark.parametrize("jobs", [1, 2])
def test_bad_inputs_are_reported_and_import_goes_on(tmp_path, jobs):
    d = tmp_path / "mixed"
    expected = _bad_inputs(d)
    good = [tone(d / "good1.wav", 4.0, freq=300), tone(d / "good2.mp3", 4.0, freq=700),
            tone(d / "flac_named.wav", 4.0, freq=500, format="FLAC")]
    with Library(tmp_path / "lib", create=True) as lib:
        report, _ = run(lib, [d], segments=SEG3, jobs=jobs)
        reported = {Path(p).name: r for p, r in report.failed}
        assert set(reported) == set(expected)
        stored = {Path(p).name: r for p, r in failures(lib).items()}
        assert stored == reported  # same reasons in the report and in the failures table
        for name, needle in expected.items():
            assert needle in reported[name], (name, reported[name])
            assert "\n" not in reported[name] and 0 < len(reported[name]) < 200
        assert "first at 1.00 s" in reported["nan.wav"]
        assert "digital silence" in reported["silent.wav"]
        assert reported["cut.wav"].startswith("truncated: header declares 4.00 s but only 1.3")

        assert report.added == 3
        assert sorted(Path(t.path).name for t in lib.tracks()) == ["flac_named.wav", "good1.wav", "good2.mp3"]
        for f in good:  # 4 s: one window at 0; the 1 s tail is under half a window
            assert segs(lib, f) == [(0.0, 3.0)]
        assert n_rows(lib, "segments") == 3
        assert lib.track_by_path(str(good[1])).format == "MP3"
        assert "FLAC" in lib.track_by_path(str(good[2])).warning


def test_wrong_extension_flac_imported_with_warning(tmp_path):
    d = tmp_path / "m"
    f = tone(d / "flac_named.wav", 4.0, freq=500, format="FLAC")
    with Library(tmp_path / "lib", create=True) as lib:
        report, _ = run(lib, [d], segments=SEG3)
        assert report.added == 1 and report.failed == []
        t = lib.track_by_path(str(f))
        assert t.format == "FLAC"
        assert t.warning == "extension .wav but the content is FLAC; imported anyway"
        assert lib.summary()["warnings"] == [{"path": str(f), "warning": t.warning}]
        assert segs(lib, f) == [(0.0, 3.0)]


def test_field_recorder_wav_variants_are_wav_and_checked_for_truncation(tmp_path):
    """A field recorder's 24-bit or multichannel WAV (WAVE_FORMAT_EXTENSIBLE) or one over 4 GB (RF64) was warned
    about as "extension .wav but the content is WAVEX", and a truncated copy of one was imported at its shorter
    length without a word. They are WAV now, and checked for truncation as WAV is."""
    d = tmp_path / "rec"
    for freq, fmt in ((300, "WAVEX"), (400, "RF64")):
        good = tone(d / f"{fmt}.wav", 4.0, freq=freq, subtype="PCM_24", format=fmt)
        data = good.read_bytes()
        (d / f"cut_{fmt}.wav").write_bytes(data[:len(data) // 2])
    with Library(tmp_path / "lib", create=True) as lib:
        report, _ = run(lib, [d], segments=SEG3, analyse=False)
        assert (report.added, report.warnings) == (2, [])
        assert {Path(t.path).name: (t.format, t.duration_s, t.warning) for t in lib.tracks()} == {
            "WAVEX.wav": ("WAVEX", 4.0, ""), "RF64.wav": ("RF64", 4.0, "")}
        assert sorted((Path(p).name, r) for p, r in report.failed) == [
            (f"cut_{fmt}.wav", "truncated: header declares 4.00 s but only 2.00 s could be decoded")
            for fmt in ("RF64", "WAVEX")]


def test_too_long_file(tmp_path):
    path = tmp_path / "long" / "long.wav"
    path.parent.mkdir()
    sr, total = 1000, 15_000_000  # 15,000 s = 4.17 h at 1 kHz mono int16 (30 MB)
    chunk = np.round(8000 * np.sin(2 * np.pi * 50 * np.arange(1_000_000) / sr)).astype(np.int16)
    with sf.SoundFile(path, "w", samplerate=sr, channels=1, subtype="PCM_16") as f:
        for _ in range(total // len(chunk)):
            f.write(chunk)
    good = tone(tmp_path / "long" / "short.wav", 2.0)
    with Library(tmp_path / "lib", create=True) as lib:
        report, _ = run(lib, [path.parent], segments=SEG3)
        assert report.added == 1
        assert [(p, r) for p, r in report.failed] == [(str(path), failures(lib)[str(path)])]
        reason = report.failed[0][1]
        assert reason.startswith("too long: 4.2 h exceeds the limit of 4.0 h"), reason
        assert lib.track_by_path(str(good)) is not None

        # The limit is the only problem: the next run looks at the file again (cheaply, from its header) so
        # that raising the limit -- as the reason suggests -- takes effect without touching the file.
        report, _ = run(lib, [path.parent], segments=SEG3)
        assert (report.unchanged, report.added, len(report.failed)) == (1, 0, 1)
        assert report.failed[0][1].startswith("too long")
        report, _ = run(lib, [path], segments=SEG3, max_duration_s=None)
        assert report.added == 1 and report.failed == []
        t = lib.track_by_path(str(path))
        assert (t.duration_s, t.sample_rate) == (15000.0, 1000)
        assert len(segs(lib, path)) == 5000
        assert failures(lib) == {}


# -- incremental re-import -------------------------------------------------------------------------------------

def _segment_ids(lib: Library, track_id: int) -> list[int]:
    return [r[0] for r in lib.conn.execute("SELECT id FROM segments WHERE track_id=? ORDER BY id", (track_id,))]


def test_second_run_changes_nothing(tmp_path, monkeypatch):
    d = tmp_path / "m"
    for i in range(4):
        tone(d / f"t{i}.wav", 4.0 + i, freq=300 + 50 * i)
    with Library(tmp_path / "lib", create=True) as lib:
        assert run(lib, [d], segments=SEG3)[0].added == 4
        before = (lib.tracks(), lib.conn.execute("SELECT * FROM segments ORDER BY id").fetchall())
        probed = []
        monkeypatch.setattr(ingest_mod, "probe_file", lambda p, *a: probed.append(p))
        report, events = run(lib, [d], segments=SEG3)
        assert report.to_dict() == {"added": 0, "updated": 0, "moved": 0, "unchanged": 4, "duplicates": [],
                                    "failed": [], "warnings": [], "still_failed": 0, "relabelled": 0, "reanalysed": 0, "retagged": 0,
                                    "recut": 0, "window_s": 3.0, "hop_s": 3.0, "missing": [], "removed": 0,
                                    "cancelled": False}
        assert probed == []  # unchanged size and mtime: not even hashed
        assert [(e.done, e.total) for e in events] == [(0, 0)]
        assert events[0].message == "4 files found, 0 to import"
        assert (lib.tracks(), lib.conn.execute("SELECT * FROM segments ORDER BY id").fetchall()) == before


def test_touched_but_same_content_is_unchanged(tmp_path):
    a = tone(tmp_path / "m" / "a.wav", 4.0)
    with Library(tmp_path / "lib", create=True) as lib:
        run(lib, [a])
        tid = lib.track_by_path(str(a)).id
        os.utime(a, (1_600_000_000, 1_600_000_000))
        report, _ = run(lib, [a])
        assert (report.unchanged, report.updated, report.added) == (1, 0, 0)
        t = lib.track_by_path(str(a))
        assert (t.id, t.mtime) == (tid, 1_600_000_000.0)  # mtime refreshed: next run skips by stat again


def test_modified_file_is_updated_in_place(tmp_path):
    d = tmp_path / "m"
    a = tone(d / "a.wav", 4.0, freq=300)
    b = tone(d / "b.wav", 4.0, freq=400)
    with Library(tmp_path / "lib", create=True) as lib:
        run(lib, [d], segments=SEG3, labels="folders")
        old = lib.track_by_path(str(a))
        old_segments = _segment_ids(lib, old.id)
        assert len(old_segments) == 1

        tone(a, 10.0, freq=900)  # new content, new length
        report, _ = run(lib, [d], segments=SEG3)
        assert (report.added, report.updated, report.unchanged, report.moved) == (0, 1, 1, 0)
        new = lib.track_by_path(str(a))
        assert new.id == old.id
        assert new.content_hash != old.content_hash and new.duration_s == 10.0
        assert new.label == "m"  # kept from the first import
        assert segs(lib, a) == [(0.0, 3.0), (3.0, 3.0), (6.0, 3.0)]
        assert not set(_segment_ids(lib, new.id)) & set(old_segments)  # replaced, not appended
        assert n_rows(lib, "tracks") == 2 and n_rows(lib, "segments") == 4
        assert len(segs(lib, b)) == 1


def test_new_file_only_added(tmp_path, monkeypatch):
    d = tmp_path / "m"
    tone(d / "a.wav", 4.0, freq=300)
    tone(d / "b.wav", 4.0, freq=400)
    with Library(tmp_path / "lib", create=True) as lib:
        run(lib, [d])
        ids = {t.path: t.id for t in lib.tracks()}
        c = tone(d / "c.wav", 7.0, freq=500)
        probed = []
        real = ingest_mod.probe_file
        monkeypatch.setattr(ingest_mod, "probe_file", lambda p, *a: probed.append(p) or real(p, *a))
        report, _ = run(lib, [d])
        assert (report.added, report.unchanged, report.updated) == (1, 2, 0)
        assert probed == [str(c)]
        assert {t.path: t.id for t in lib.tracks() if t.path != str(c)} == ids
        assert n_rows(lib, "tracks") == 3


def test_moved_file_is_relinked(tmp_path):
    old_dir, new_dir = tmp_path / "old", tmp_path / "new"
    a = tone(old_dir / "a.wav", 7.0, freq=300)
    tone(old_dir / "b.wav", 4.0, freq=400)
    with Library(tmp_path / "lib", create=True) as lib:
        run(lib, [old_dir], segments=SEG3, labels="folders")
        before = lib.track_by_path(str(a))
        seg_ids = _segment_ids(lib, before.id)
        new_dir.mkdir()
        moved = new_dir / "renamed.wav"
        a.rename(moved)
        report, _ = run(lib, [new_dir], segments=SEG3)
        assert (report.moved, report.added, report.duplicates, report.failed) == (1, 0, [], [])
        after = lib.track_by_path(str(moved))
        assert after.id == before.id and after.content_hash == before.content_hash
        assert after.label == "old"
        assert lib.track_by_path(str(a)) is None
        assert _segment_ids(lib, after.id) == seg_ids  # segments (and anything hanging off them) kept
        assert n_rows(lib, "tracks") == 2
        assert lib.conn.execute("SELECT COUNT(DISTINCT content_hash) FROM tracks").fetchone()[0] == 2
        # And the next run of the new folder is a no-op.
        report, _ = run(lib, [new_dir], segments=SEG3)
        assert (report.unchanged, report.moved, report.added) == (1, 0, 0)


def test_copy_is_a_duplicate_not_added(tmp_path):
    a = tone(tmp_path / "m" / "a.wav", 4.0)
    copy = tmp_path / "elsewhere" / "copy of a.wav"
    copy.parent.mkdir()
    copy.write_bytes(a.read_bytes())
    with Library(tmp_path / "lib", create=True) as lib:
        run(lib, [a.parent])
        report, _ = run(lib, [a.parent, copy.parent])
        assert report.added == 0 and report.unchanged == 1
        assert report.duplicates == [(str(copy), str(a))]
        assert report.to_dict()["duplicates"] == [{"path": str(copy), "of": str(a)}]
        assert [t.path for t in lib.tracks()] == [str(a)]
        assert n_rows(lib, "segments") == 1


def test_a_known_copy_is_not_decoded_again_at_each_import(tmp_path, monkeypatch):
    """Copies were never recorded: each import decoded (and analysed) every copy again, to find it a duplicate
    again. A copy of a track whose file is in place is now told by its bytes; a copy of a moved track still takes
    it over (told by its bytes too: not decoded)."""
    a = tone(tmp_path / "m" / "a.wav", 4.0)
    with Library(tmp_path / "lib", create=True) as lib:
        run(lib, [a.parent])
        other = tmp_path / "elsewhere"
        copy = other / "copy of a.wav"
        other.mkdir()
        copy.write_bytes(a.read_bytes())
        b = tone(other / "b.wav", 4.0, freq=660)  # the size of a.wav: its bytes tell it apart
        decoded = []
        real = ingest_mod.scan
        monkeypatch.setattr(ingest_mod, "scan", lambda p, **kw: decoded.append(p) or real(p, **kw))
        report, _ = run(lib, [a.parent, other])
        assert b.stat().st_size == a.stat().st_size
        assert decoded == [str(b)] and report.duplicates == [(str(copy), str(a))] and report.added == 1
        report, _ = run(lib, [a.parent, other])
        assert decoded == [str(b)] and report.duplicates == [(str(copy), str(a))] and report.unchanged == 2
        a.rename(tmp_path / "m" / "a moved away.wav.bak")
        report, _ = run(lib, [other])
        assert decoded == [str(b)] and report.moved == 1 and report.duplicates == []
        assert lib.track_by_path(str(copy)) is not None


def test_linked_folders_are_searched_once_and_unlistable_ones_named(tmp_path, monkeypatch):
    """A linked folder (~/Music/External -> /mnt/disk) imported nothing, and a folder that could not be listed was
    skipped without a word. Links are followed now, each real folder once (a link looping back ends there)."""
    music, disk = tmp_path / "music", tmp_path / "disk"
    tone(music / "a.wav", 4.0)
    b = tone(disk / "b.wav", 4.0, freq=660)
    (music / "External").symlink_to(disk)
    (disk / "back").symlink_to(music)  # a loop
    tone(music / "locked" / "c.wav", 4.0, freq=880)
    scandir = os.scandir

    def refuse(path="."):
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)
    monkeypatch.setattr(os, "scandir", refuse)
    with Library(tmp_path / "lib", create=True) as lib:
        report, _ = run(lib, [music])
        assert sorted(t.path.rsplit("/", 1)[-1] for t in lib.tracks()) == ["a.wav", "b.wav"]
        assert lib.track_by_path(str(music / "External" / b.name)) is not None
        assert report.warnings == [(str(music / "locked"), "folder not searched: Permission denied")]


def test_failed_file_not_redecoded_until_fixed(tmp_path, monkeypatch):
    d = tmp_path / "m"
    good = tone(d / "good.wav", 4.0)
    bad = d / "bad.wav"
    bad.write_bytes(b"RIFF not really a wave file")
    with Library(tmp_path / "lib", create=True) as lib:
        report, _ = run(lib, [d])
        assert [(p, "not a readable audio file" in r) for p, r in report.failed] == [(str(bad), True)]

        probed = []
        real = ingest_mod.probe_file
        monkeypatch.setattr(ingest_mod, "probe_file", lambda p, *a: probed.append(p) or real(p, *a))
        report, _ = run(lib, [d])
        assert (report.still_failed, report.unchanged, report.failed, report.added) == (1, 1, [], 0)
        assert probed == []
        assert list(failures(lib)) == [str(bad)]

        tone(bad, 5.0, freq=660)  # fixed
        report, _ = run(lib, [d])
        assert (report.added, report.still_failed, report.failed) == (1, 0, [])
        assert probed == [str(bad)]
        assert failures(lib) == {}
        assert lib.track_by_path(str(bad)).duration_s == 5.0
        assert lib.track_by_path(str(good)) is not None


# -- cancelling ------------------------------------------------------------------------------------------------

def _consistent(lib: Library, cfg: SegmentConfig) -> None:
    assert lib.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert lib.conn.execute("PRAGMA foreign_key_check").fetchall() == []
    for t in lib.tracks():
        n = lib.conn.execute("SELECT COUNT(*) FROM segments WHERE track_id=?", (t.id,)).fetchone()[0]
        assert n == len(window_starts(t.duration_s, cfg)), t.path


@pytest.mark.parametrize("jobs", [1, 2])
def test_cancel_after_first_event_then_resume(tmp_path, jobs):
    d = tmp_path / "m"
    for i in range(8):
        tone(d / f"t{i}.wav", 4.0, freq=300 + 40 * i)
    token = CancelToken()
    with Library(tmp_path / "lib", create=True) as lib:
        events = []

        def on_event(e):
            events.append(e)
            token.cancel()

        report = drive(iter_ingest(lib, [d], segments=SEG3, jobs=jobs, cancel=token), on_event)
        assert report.cancelled
        assert report.added == 0 and len(events) == 1  # cancelled before the first file was started
        _consistent(lib, SEG3)

        token = CancelToken()
        gen = iter_ingest(lib, [d], segments=SEG3, jobs=jobs, cancel=token)
        report = drive(gen, lambda e: e.done == 3 and token.cancel())
        assert report.cancelled and report.added == 3
        assert n_rows(lib, "tracks") == 3
        _consistent(lib, SEG3)

        report, _ = run(lib, [d], segments=SEG3, jobs=jobs)
        assert not report.cancelled
        assert (report.added, report.unchanged) == (5, 3)
        assert n_rows(lib, "tracks") == 8 and n_rows(lib, "segments") == 8
        _consistent(lib, SEG3)


class StuckTap:
    """A tap whose file never finishes: a worker stuck in a very long file (picklable for the workers)."""

    def start(self, sr: int) -> StuckTap:
        return self

    def __call__(self, mono: np.ndarray) -> None:
        time.sleep(600)

    def result(self, starts: np.ndarray) -> None:
        return None


def test_cancel_does_not_wait_for_a_worker_stuck_in_a_file(tmp_path):
    """Cancelling waited for the file a worker was reading (a worker's first file also loads the decoders and
    encoders): closing the app during an import could outlast its 5 s. Now the import stops at once, the
    worker is ended, and nothing of that file is stored."""
    d = tmp_path / "m"
    for i in range(2):
        tone(d / f"t{i}.wav", 2.0, freq=300 + 40 * i)
    token = CancelToken()
    with Library(tmp_path / "lib", create=True) as lib:
        gen = iter_ingest(lib, [d], jobs=1, isolate=True, tap=StuckTap(), cancel=token)
        assert next(gen).done == 0  # files found; the worker starts on the first
        timer = threading.Timer(3.0, token.cancel)
        timer.start()
        t0 = time.monotonic()
        report = drive(gen)
        waited = time.monotonic() - t0
        assert report.cancelled and report.added == 0 and n_rows(lib, "tracks") == 0
        assert waited < 60  # the stuck file holds its worker for 600 s
        assert no_worker_processes_left()  # ended: they would sleep on otherwise
        _consistent(lib, SegmentConfig())


@dataclass(frozen=True)
class KillerTap:
    """Kills its worker process (as the kernel's OOM killer would) on a file at 11025 Hz, and on the first file at
    12000 Hz while ``once`` does not exist yet."""

    once: str

    def start(self, sr: int) -> NoTap:
        if sr == 11025 or (sr == 12000 and not os.path.exists(self.once)):
            if sr == 12000:
                Path(self.once).touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return NoTap()


class NoTap:
    def __call__(self, mono: np.ndarray) -> None:
        pass

    def result(self, starts: np.ndarray) -> None:
        return None


def test_a_worker_killed_mid_file_costs_that_file_only(tmp_path):
    """A worker killed mid-file broke the pool: the import stopped with a BrokenProcessPool traceback. Now the
    file is read again alone by new workers (a one-off death, e.g. the machine short of memory, costs nothing)
    and fails with a reason if its worker dies again; the other files are imported."""
    d = tmp_path / "m"
    for i in range(4):
        tone(d / f"t{i}.wav", 2.0, freq=300 + 40 * i)
    tone(d / "deadly.wav", 2.0, freq=700, sr=11025)
    tone(d / "flaky.wav", 2.0, freq=800, sr=12000)
    with Library(tmp_path / "lib", create=True) as lib:
        report, _ = run(lib, [d], jobs=2, analyse=False, tap=KillerTap(str(tmp_path / "once")))
        assert report.added == 5 and (tmp_path / "once").exists()
        assert [(Path(p).name, "worker process died" in r) for p, r in report.failed] == [("deadly.wav", True)]
        assert no_worker_processes_left()
        _consistent(lib, SegmentConfig())


def test_cancel_on_last_event_is_not_a_cancel(tmp_path):
    d = tmp_path / "m"
    for i in range(3):
        tone(d / f"t{i}.wav", 2.0, freq=300 + 40 * i)
    token = CancelToken()
    with Library(tmp_path / "lib", create=True) as lib:
        report = drive(iter_ingest(lib, [d], jobs=1, cancel=token), lambda e: e.done == 3 and token.cancel())
        assert report.added == 3 and not report.cancelled


def test_closing_the_generator_keeps_work_done(tmp_path):
    d = tmp_path / "m"
    for i in range(5):
        tone(d / f"t{i}.wav", 2.0, freq=300 + 40 * i)
    with Library(tmp_path / "lib", create=True) as lib:
        gen = iter_ingest(lib, [d], jobs=2)
        for e in gen:
            if e.done == 2:
                break
        gen.close()  # what the GUI/CLI does on an error or Ctrl-C
        assert n_rows(lib, "tracks") == 2
        _consistent(lib, SegmentConfig())
        assert run(lib, [d])[0].added == 3


def test_labels_given_again_relabel_known_tracks(tmp_path):
    for i, label in enumerate(("jazz", "rock")):
        (tmp_path / "a" / label).mkdir(parents=True)
        tone(tmp_path / "a" / label / f"{label}.wav", 4.0, freq=300 + 100 * i)
    with Library(tmp_path / "lib", create=True) as lib:
        run(lib, [tmp_path / "a"], segments=SEG3)
        assert {t.label for t in lib.tracks()} == {None}
        report, _ = run(lib, [tmp_path / "a"], segments=SEG3, labels="folders")
        assert report.relabelled == 2 and report.added == 0
        assert sorted(t.label for t in lib.tracks()) == ["jazz", "rock"]
        report, _ = run(lib, [tmp_path / "a"], segments=SEG3, labels={"jazz.wav": "swing"})
        assert report.relabelled == 1
        assert sorted(t.label for t in lib.tracks()) == ["rock", "swing"]


def test_broken_links_and_a_file_vanishing_mid_import_fail_alone(tmp_path):
    music = tmp_path / "music"
    for i in range(4):
        tone(music / f"t{i}.wav", 4.0, freq=300 + 100 * i, seed=i)
    (music / "dangling.wav").symlink_to(music / "nowhere.wav")
    (music / "loop1.wav").symlink_to(music / "loop2.wav")
    (music / "loop2.wav").symlink_to(music / "loop1.wav")
    vanished = []

    def remove_one(ev: Progress) -> None:  # after the scan: t3 goes away while t0.. are imported
        if not vanished and ev.done == 1:
            (music / "t3.wav").unlink()
            vanished.append(True)

    with Library(tmp_path / "lib", create=True) as lib:
        report = drive(iter_ingest(lib, [music], jobs=1, analyse=False), remove_one)
        failed = dict(report.failed)
        assert report.added == 3 and vanished
        assert "link" in failed[str(music / "dangling.wav")] and "link" in failed[str(music / "loop1.wav")]
        assert "not found" in failed[str(music / "t3.wav")]
        # t3.wav is gone: the report names it, the catalogue keeps no failure for it
        assert {Path(f["path"]).name for f in lib.failures()} == {"dangling.wav", "loop1.wav", "loop2.wav"}
