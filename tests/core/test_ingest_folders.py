"""Import from messy folders and files that change: deep trees, looping links, unreadable folders, files touched,
gone bad, deleted or still being written while they are read."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import musicemb_core.data.ingest as ingest_mod
from musicemb_core.common.config import SegmentConfig
from musicemb_core.common.errors import MusicEmbError
from musicemb_core.common.progress import drive
from musicemb_core.data.ingest import IngestReport, find_audio, iter_ingest
from musicemb_core.data.library import Library

SR = 8000
SEG1 = SegmentConfig(window_s=1.0, hop_s=1.0)


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("MUSICEMB_HOME", str(tmp_path / "home"))


def tone(path: Path, seconds: float, freq: float) -> Path:
    """A sine plus seeded noise (distinct audio per freq), 16-bit WAV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SR)) / SR
    noise = 0.01 * np.random.default_rng(int(freq)).standard_normal(len(t))
    sf.write(path, (0.4 * np.sin(2 * np.pi * freq * t) + noise).astype(np.float32), SR, subtype="PCM_16")
    return path


def run(lib: Library, paths, **kw) -> IngestReport:
    return drive(iter_ingest(lib, [str(p) for p in paths], segments=SEG1, jobs=1, analyse=False, **kw))


def test_a_tree_deeper_than_the_recursion_limit_is_searched(tmp_path):
    """os.walk recurses once per level: a tree deeper than Python's recursion limit stopped the whole import with a
    RecursionError. The walk has its own stack now."""
    depth = sys.getrecursionlimit() + 100
    top = tmp_path / "deep"
    top.mkdir()
    fd = os.open(top, os.O_RDONLY)
    try:
        for _ in range(depth):  # made level by level: os.makedirs recurses too
            os.mkdir("d", dir_fd=fd)
            fd, old = os.open("d", os.O_RDONLY, dir_fd=fd), fd
            os.close(old)
    finally:
        os.close(fd)
    try:
        bottom = top.joinpath(*["d"] * depth) / "bottom.wav"
        bottom.write_bytes(tone(top / "top.wav", 0.5, 400).read_bytes())  # libsndfile refuses so long a name
        (top / "d" / "loop").symlink_to(top)
        assert find_audio([top]) == [top / "top.wav", bottom]  # a folder's files, then its folders
    finally:  # pytest's own clean-up recurses
        subprocess.run(["rm", "-rf", str(top)], check=True)


def test_a_link_looping_on_itself_given_as_the_path_is_a_one_line_error(tmp_path):
    (tmp_path / "l1").symlink_to(tmp_path / "l2")
    (tmp_path / "l2").symlink_to(tmp_path / "l1")
    with pytest.raises(MusicEmbError, match="l1: no such file or folder"), \
            Library(tmp_path / "lib", create=True) as lib:
        run(lib, [tmp_path / "l1"])


def test_the_same_files_reached_twice_are_read_once(tmp_path):
    music = tone(tmp_path / "music" / "a.wav", 1.0, 300).parent
    tone(music / "sub" / "b.wav", 1.0, 400)
    (tmp_path / "alias").symlink_to(music)
    (music / "sub" / "again").symlink_to(music / "sub")
    assert find_audio([music, tmp_path / "alias", music / "sub" / "b.wav", music]) == [
        music / "a.wav", music / "sub" / "b.wav"]


def test_a_touched_file_is_told_by_its_bytes_not_decoded(tmp_path, decoded):
    """A file whose mtime alone changed (copied to a new drive without keeping times, a backup tool) was decoded
    again in full to find it unchanged; its bytes tell it now (the README: "size+mtime, then content hash"). A file
    of the same size with other bytes is still decoded."""
    music = tmp_path / "m"
    a, b = tone(music / "a.wav", 2.0, 300), tone(music / "b.wav", 2.0, 400)
    with Library(tmp_path / "lib", create=True) as lib:
        run(lib, [music])
        before = {t.path: t for t in lib.tracks()}
        seg_ids = lib.segments()["id"].tolist()
        decoded.clear()
        os.utime(a, (1_600_000_000, 1_600_000_000))
        tone(b, 2.0, 450)  # new audio, the same size
        os.utime(b, (1_600_000_000, 1_600_000_000))
        report = run(lib, [music])
        assert decoded == [str(b)]
        assert (report.unchanged, report.updated, report.added, report.failed) == (1, 1, 0, [])
        t = lib.track_by_path(str(a))
        assert (t.id, t.mtime, t.content_hash, t.audio_hash) == (before[str(a)].id, 1_600_000_000.0,
                                                                before[str(a)].content_hash, before[str(a)].audio_hash)
        assert lib.segments()["id"].tolist()[:2] == seg_ids[:2]  # a's segments kept
        decoded.clear()
        assert run(lib, [music]).unchanged == 2 and decoded == []  # skipped by size and mtime again


@dataclass(frozen=True)
class GrowingTap:
    """Rewrites ``path`` longer once its decode is over (before it is hashed): a recorder still writing it."""

    path: str

    def start(self, sr: int) -> GrowingTap:
        return self

    def __call__(self, mono: np.ndarray) -> None:
        pass

    def result(self, starts: np.ndarray) -> None:
        if Path(self.path).stat().st_size < 40_000:
            tone(Path(self.path), 4.0, 300)


def test_a_file_changed_while_it_is_read_is_read_again_next_time(tmp_path):
    """A file still growing while it was read kept the length decoded and the hash of the bytes after: the next
    import found the hash unchanged and the track stayed 1 s long forever. It fails now and the next import reads
    it whole."""
    rec = tone(tmp_path / "field" / "rec.wav", 1.0, 300)
    with Library(tmp_path / "lib", create=True) as lib:
        report = run(lib, [rec.parent], tap=GrowingTap(str(rec)))
        assert report.added == 0 and lib.tracks() == []
        assert [(Path(p).name, r.startswith("changed while it was read")) for p, r in report.failed] == [
            ("rec.wav", True)]
        report = run(lib, [rec.parent])
        assert (report.added, report.still_failed, report.failed) == (1, 0, [])
        t = lib.track_by_path(str(rec))
        assert (t.duration_s, t.size) == (4.0, rec.stat().st_size)
        assert len(lib.segments()["id"]) == 4 and lib.failures() == []


def test_a_tracks_file_gone_bad_is_not_decoded_at_every_import(tmp_path, decoded):
    """A track's file damaged since its import (a bad copy) was decoded again at every import, failing each time;
    it is now "still failing" until it changes, as a new bad file is, and the track is kept."""
    a = tone(tmp_path / "m" / "a.wav", 2.0, 300)
    with Library(tmp_path / "lib", create=True) as lib:
        run(lib, [a.parent])
        track = lib.track_by_path(str(a))
        a.write_bytes(a.read_bytes()[:2000])
        report = run(lib, [a.parent])
        assert [(Path(p).name, r.split(":")[0]) for p, r in report.failed] == [("a.wav", "truncated")]
        decoded.clear()
        report = run(lib, [a.parent])
        assert (report.still_failed, report.failed, report.unchanged, decoded) == (1, [], 0, [])
        assert lib.tracks() == [track] and [f["path"] for f in lib.failures()] == [str(a)]
        tone(a, 2.0, 300)  # restored
        report = run(lib, [a.parent])
        assert (report.unchanged, report.still_failed, decoded) == (1, 0, [])  # its bytes are the track's
        assert lib.failures() == [] and lib.track_by_path(str(a)).id == track.id


def test_failures_of_files_deleted_since_are_forgotten(tmp_path):
    """A bad file deleted (or renamed) stayed a failure in `musicemb info` forever."""
    music, other = tmp_path / "m", tmp_path / "other"
    tone(music / "good.wav", 1.0, 300)
    for d in (music, other):
        d.mkdir(exist_ok=True)
        (d / "bad.wav").write_text("not audio")
    (music / "link.wav").symlink_to(music / "nowhere.wav")
    with Library(tmp_path / "lib", create=True) as lib:
        run(lib, [music, other])
        assert {Path(f["path"]).relative_to(tmp_path).as_posix() for f in lib.failures()} == {
            "m/bad.wav", "m/link.wav", "other/bad.wav"}
        (music / "bad.wav").rename(music / "bad2.wav")
        report = run(lib, [music])
        assert [Path(p).name for p, _ in report.failed] == ["link.wav", "bad2.wav"]
        assert {Path(f["path"]).relative_to(tmp_path).as_posix() for f in lib.failures()} == {
            "m/bad2.wav", "m/link.wav", "other/bad.wav"}  # a dangling link is there; other/ was not imported


def test_tracks_in_a_folder_that_cannot_be_read_are_not_pruned(tmp_path, monkeypatch):
    """A folder that could not be read (no permission, a drive's I/O error) made its tracks "missing", and
    ``prune`` removed them with their labels and segment tags. Only a file that is not there is missing now. The
    folder is refused by patching (chmod 000 does not stop root)."""
    music = tmp_path / "music"
    tone(music / "a.wav", 1.0, 300)
    locked = tone(music / "locked" / "c.wav", 1.0, 400)
    gone = tone(music / "gone.wav", 1.0, 500)
    with Library(tmp_path / "lib", create=True) as lib:
        run(lib, [music], labels="folders")
        gone.unlink()
        scandir, stat = os.scandir, os.stat

        def refused(path) -> bool:
            return str(music / "locked") in os.fsdecode(path)

        def no_scandir(path="."):
            if refused(path):
                raise PermissionError(13, "Permission denied", str(path))
            return scandir(path)

        def no_stat(path, *a, **kw):
            if refused(path) and os.fsdecode(path) != str(music / "locked"):
                raise PermissionError(13, "Permission denied", str(path))
            return stat(path, *a, **kw)
        monkeypatch.setattr(os, "scandir", no_scandir)
        monkeypatch.setattr(os, "stat", no_stat)
        report = run(lib, [music], prune=True)
        assert (report.missing, report.removed) == ([str(gone)], 1)
        assert report.warnings == [(str(music / "locked"), "folder not searched: Permission denied")]
        assert sorted(Path(t.path).name for t in lib.tracks()) == ["a.wav", "c.wav"]
        assert lib.track_by_path(str(locked)).label == "locked"


def test_prune_keeps_the_tracks_of_a_folder_found_empty(tmp_path):
    """An external drive not mounted leaves its mount point an empty folder: ``prune`` removed every track imported
    from it. A folder where nothing is found now keeps its tracks (listed missing, with a warning); pruning from a
    folder above it removes them."""
    disk = tmp_path / "mnt" / "disk"
    for i in range(3):
        tone(disk / "day1" / f"rec{i}.wav", 1.0, 300 + 100 * i)
    tone(tmp_path / "mnt" / "other.wav", 1.0, 900)
    with Library(tmp_path / "lib", create=True) as lib:
        run(lib, [disk], labels="folders")
        subprocess.run(["rm", "-rf", str(disk / "day1")], check=True)  # the drive unmounted
        report = run(lib, [disk], prune=True)
        assert (len(report.missing), report.removed, len(lib.tracks())) == (3, 0, 3)
        assert report.warnings[-1] == (str(disk), "no audio files found: its 3 missing tracks are kept, not pruned "
                                                  "(a drive not mounted?); --prune with a folder above it removes them")
        report = run(lib, [tmp_path / "mnt"], prune=True)
        assert (len(report.missing), report.removed, report.added) == (3, 3, 1)
        assert [Path(t.path).name for t in lib.tracks()] == ["other.wav"]


def test_a_folder_given_with_a_tilde_has_its_missing_tracks_listed(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    a = tone(tmp_path / "music" / "a.wav", 1.0, 300)
    tone(tmp_path / "music" / "b.wav", 1.0, 400)
    with Library(tmp_path / "lib", create=True) as lib:
        run(lib, ["~/music"])
        a.unlink()
        assert run(lib, ["~/music"]).missing == [str(a)]


def test_a_touched_file_whose_analysis_is_out_of_date_is_analysed_again(tmp_path, decoded):
    a = tone(tmp_path / "m" / "a.wav", 2.0, 300)
    with Library(tmp_path / "lib", create=True) as lib:
        drive(iter_ingest(lib, [str(a)], segments=SEG1, jobs=1))
        lib.conn.execute("UPDATE tracks SET analysis = json_set(analysis, '$.version', 1)")
        os.utime(a, (1_600_000_000, 1_600_000_000))
        decoded.clear()
        report = drive(iter_ingest(lib, [str(a)], segments=SEG1, jobs=1))
        assert (report.reanalysed, report.unchanged, decoded) == (1, 1, [str(a)])
        assert lib.track_by_path(str(a)).analysis["version"] == ingest_mod.ANALYSIS_VERSION
