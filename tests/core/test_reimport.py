"""Importing again files whose tags, names, folders or audio changed: what a track keeps (its segments, segment
tags, reviewed findings, label) and what the report says."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import mutagen
import numpy as np
import pytest
import soundfile as sf

from musicemb_core.common.config import SegmentConfig
from musicemb_core.common.progress import drive
from musicemb_core.data.edits import segment_tags, tag_segments
from musicemb_core.data.ingest import IngestReport, iter_ingest, read_label_csv
from musicemb_core.data.library import MIGRATIONS, Library

SR = 16000
SEG3 = SegmentConfig(window_s=3.0, hop_s=3.0)


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("MUSICEMB_HOME", str(tmp_path / "home"))


def tone(path: Path, seconds: float, freq: float) -> Path:
    """A sine plus seeded noise (distinct audio per freq), WAV or FLAC by the extension."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SR)) / SR
    noise = 0.02 * np.random.default_rng(int(freq)).standard_normal(len(t))
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t) + noise).astype(np.float32), SR, subtype="PCM_16")
    return path


def run(lib: Library, paths, **kw) -> IngestReport:
    return drive(iter_ingest(lib, [str(p) for p in paths], segments=SEG3, jobs=1, analyse=False, **kw))


def seg_ids(lib: Library, path: Path) -> list[int]:
    return [r[0] for r in lib.conn.execute("SELECT s.id FROM segments s JOIN tracks t ON t.id = s.track_id "
                                           "WHERE t.path = ? ORDER BY s.start_s", (str(path),))]


def review(lib: Library, segment_id: int, track_id: int, status: str) -> None:
    """A reviewed clipping finding on one segment (3-6 s), as `inspect` and the app's review make."""
    lib.replace_findings([{"kind": "clipping", "segment_id": segment_id, "track_id": track_id, "start_s": 3.0,
                           "end_s": 6.0, "score": 1.0, "reason": "test"}], kinds=["clipping"])
    lib.set_finding_status(lib.findings()[0]["id"], status)


def test_tag_edit_keeps_segments_their_tags_and_reviews(tmp_path):
    song = tone(tmp_path / "m" / "song.flac", 9.0, 220)
    with Library(tmp_path / "lib", create=True) as lib:
        run(lib, [song.parent])
        track = lib.track_by_path(str(song))
        ids = seg_ids(lib, song)
        tag_segments(lib, [ids[0]], "intro")
        tag_segments(lib, [ids[2]], "drop")
        review(lib, ids[1], track.id, "dismissed")

        f = mutagen.File(song)
        f["artist"] = "Someone"
        f.save()
        report = run(lib, [song.parent])
        assert (report.added, report.updated, report.moved) == (0, 1, 0)
        after = lib.track_by_path(str(song))
        assert after.id == track.id and after.content_hash != track.content_hash
        assert after.tags["artist"] == "Someone"
        assert seg_ids(lib, song) == ids  # same segments: their vectors stay valid
        assert segment_tags(lib) == {ids[0]: "intro", ids[2]: "drop"}
        assert [(x["segment_id"], x["status"]) for x in lib.findings()] == [(ids[1], "dismissed")]
        assert run(lib, [song.parent]).unchanged == 1


def test_changed_audio_keeps_tags_and_reviews_where_their_spans_remain(tmp_path):
    song = tone(tmp_path / "m" / "song.wav", 9.0, 220)
    with Library(tmp_path / "lib", create=True) as lib:
        run(lib, [song.parent])
        tid = lib.track_by_path(str(song)).id
        ids = seg_ids(lib, song)
        tag_segments(lib, [ids[0]], "intro")
        tag_segments(lib, [ids[2]], "outro")  # 6-9 s: past the end of the new audio
        review(lib, ids[1], tid, "accepted")

        tone(song, 6.0, 330)  # re-exported: other audio, shorter
        report = run(lib, [song.parent])
        assert (report.added, report.updated) == (0, 1)
        new = seg_ids(lib, song)
        assert lib.track_by_path(str(song)).id == tid
        assert len(new) == 2 and not set(new) & set(ids)  # cut again: new ids, old vectors not reused
        assert segment_tags(lib) == {new[0]: "intro"}
        assert [(x["start_s"], x["status"]) for x in lib.findings()] == [(3.0, "accepted")]


@pytest.mark.parametrize("old_name", ["track (old).wav", "zz old track.wav"])  # before or after the old name
def test_renamed_file_with_a_new_file_at_its_old_name(tmp_path, old_name):
    music = tmp_path / "music"
    track = tone(music / "track.wav", 6.0, 220)
    labels = tmp_path / "labels.csv"
    labels.write_text("track.wav,ambient\n")
    with Library(tmp_path / "lib", create=True) as lib:
        run(lib, [music], labels=read_label_csv(labels))
        old = lib.track_by_path(str(track))
        ids = seg_ids(lib, track)
        tag_segments(lib, [ids[0]], "intro")

        renamed = track.rename(music / old_name)
        tone(track, 6.0, 880)
        report = run(lib, [music])
        assert (report.moved, report.added, report.updated, report.duplicates) == (1, 1, 0, [])
        moved, new = lib.track_by_path(str(renamed)), lib.track_by_path(str(track))
        assert (moved.id, moved.label, moved.content_hash) == (old.id, "ambient", old.content_hash)
        assert new.id != old.id and new.label is None
        assert seg_ids(lib, renamed) == ids and segment_tags(lib) == {ids[0]: "intro"}


def test_converted_and_moved_file_is_the_same_track(tmp_path):
    wav = tone(tmp_path / "a" / "song.wav", 6.0, 220)
    with Library(tmp_path / "lib", create=True) as lib:
        run(lib, [tmp_path / "a"])
        tid, ids = lib.track_by_path(str(wav)).id, seg_ids(lib, wav)
        flac = tmp_path / "b" / "song.flac"
        flac.parent.mkdir()
        sf.write(flac, sf.read(wav, dtype="int16")[0], SR, subtype="PCM_16")  # the same samples, another format
        wav.unlink()
        report = run(lib, [tmp_path / "b"])
        assert (report.moved, report.added) == (1, 0)
        t = lib.track_by_path(str(flac))
        assert (t.id, t.format) == (tid, "FLAC") and seg_ids(lib, flac) == ids


def test_track_moved_to_another_folder_takes_its_label(tmp_path):
    music = tmp_path / "music"
    a = tone(music / "House" / "a.wav", 4.0, 220)
    tone(music / "House" / "b.wav", 4.0, 330)
    with Library(tmp_path / "lib", create=True) as lib:
        run(lib, [music], labels="folders")
        (music / "Techno").mkdir()
        moved = a.rename(music / "Techno" / "a.wav")
        report = run(lib, [music], labels="folders")
        assert (report.moved, report.relabelled, report.added) == (1, 1, 0)
        assert {Path(t.path).name: t.label for t in lib.tracks()} == {"a.wav": "Techno", "b.wav": "House"}
        assert lib.track_by_path(str(moved)).label == "Techno"


def test_empty_label_in_csv_is_no_label(tmp_path):
    music = tmp_path / "m"
    for i in range(4):
        tone(music / f"f{i}.wav", 2.0, 200 + 50 * i)
    csv = tmp_path / "labels.csv"
    csv.write_text("f0.wav,\nf1.wav, \nf2.wav,techno\n")
    assert read_label_csv(csv) == {"f0.wav": None, "f1.wav": None, "f2.wav": "techno"}
    with Library(tmp_path / "lib", create=True) as lib:
        run(lib, [music], labels=read_label_csv(csv))
        assert {Path(t.path).name: t.label for t in lib.tracks()} == {
            "f0.wav": None, "f1.wav": None, "f2.wav": "techno", "f3.wav": None}
        assert lib.summary()["labels"] == {"": 3, "techno": 1}


def test_summary_counts_empty_and_missing_labels_together(tmp_path):
    with Library(tmp_path / "lib", create=True) as lib:
        run(lib, [tone(tmp_path / "m" / f"f{i}.wav", 2.0, 200 + 50 * i) for i in range(4)])
        ids = [t.id for t in lib.tracks()]
        lib.set_label(ids[0], "")  # as an older import stored an empty CSV label
        lib.set_label(ids[1], "")
        lib.set_label(ids[2], "techno")
        assert lib.summary()["labels"] == {"": 3, "techno": 1}


def test_older_library_empty_labels_become_no_label(tmp_path):
    root = tmp_path / "old"
    root.mkdir()
    con = sqlite3.connect(root / "library.sqlite")
    for script in MIGRATIONS[:3]:
        con.executescript(script)
    for i, label in enumerate(["", "", None, "techno"]):
        con.execute("INSERT INTO tracks (path, content_hash, size, mtime, duration_s, sample_rate, channels, "
                    "format, label, added_at) VALUES (?, ?, 1, 1.0, 10.0, 8000, 1, 'WAV', ?, 0)",
                    (f"/m/{i}.wav", f"h{i}", label))
    con.execute("PRAGMA user_version=3")
    con.commit()
    con.close()
    with Library(root) as lib:
        assert [t.label for t in lib.tracks()] == [None, None, None, "techno"]
        assert [t.audio_hash for t in lib.tracks()] == [""] * 4
        assert lib.summary()["labels"] == {"": 3, "techno": 1}


def test_deleted_files_are_listed_then_pruned_and_searches_skip_them(tmp_path, capsys):
    """A file deleted from an imported folder: the next import lists its track as missing and keeps it; with
    ``prune`` the track goes (segments, tags, findings), and searches over vectors and landmarks computed before
    do not trip over it."""
    from musicemb_core import cli
    from musicemb_core.inference import iter_embed
    from musicemb_core.search.fingerprints import iter_fingerprint

    music = tmp_path / "m"
    for i in range(3):
        tone(music / f"s{i}.wav", 6.0, 220.0 * (i + 1))
    tone(tmp_path / "elsewhere" / "x.wav", 6.0, 990.0)
    with Library(tmp_path / "lib", create=True) as lib:
        run(lib, [music, tmp_path / "elsewhere" / "x.wav"])
        drive(iter_embed(lib))
        drive(iter_fingerprint(lib))
        gone = lib.track_by_path(str(music / "s1.wav"))
        tag_segments(lib, [int(lib.segments()["id"][lib.segments()["track_id"] == gone.id][0])], "intro")
        (music / "s1.wav").unlink()
        (tmp_path / "elsewhere" / "x.wav").unlink()  # not under the folder imported: not this import's business
        listed = run(lib, [music])
        assert listed.missing == [gone.path] and listed.removed == 0 and len(lib.tracks()) == 4
        pruned = run(lib, [music], prune=True)
        assert pruned.missing == [gone.path] and pruned.removed == 1
        assert lib.track_by_path(gone.path) is None and len(lib.tracks()) == 3
        assert gone.id not in set(lib.segments()["track_id"].tolist()) and segment_tags(lib) == {}
    capsys.readouterr()
    for argv in (["identify", str(tmp_path / "lib"), str(music / "s0.wav"), "--json"],
                 ["similar", str(tmp_path / "lib"), str(music / "s2.wav"), "--json"]):
        assert cli.main([*argv, "-q"]) == 0
        out = capsys.readouterr().out
        assert str(music / "s0.wav") in out and gone.path not in out
