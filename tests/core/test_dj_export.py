"""Exports of any list of tracks (a selection, neighbours, findings, a set): rows with their own fields, CSV
read back with the csv module, M3U8 and rekordbox XML listing each track once, the XML read back by
pyrekordbox (a rekordbox XML reader written independently of ours)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from musicemb_core.common.config import SegmentConfig
from musicemb_core.common.errors import MusicEmbError
from musicemb_core.data.library import Library
from musicemb_core.workflows.dj import export, item_rows
from tests.conftest import write_tone

# (file name, bpm, key, artist, title tag)
TRACKS = [("Déjà vu 128.wav", 128.0, "A minor", "Ann", "Déjà vu"),
          ("b two.wav", 124.5, "F# major", "", ""),
          ("c.wav", None, None, "Cy", "No tempo")]


@pytest.fixture
def tracks(tmp_path) -> dict:
    """Three tracks in a real catalogue, one without tempo and key (a reason instead)."""
    with Library(tmp_path / "lib", create=True) as lib:
        for i, (name, bpm, key, artist, title) in enumerate(TRACKS):
            path = write_tone(tmp_path / "music" / name, 220.0 * (i + 1), seconds=2.0, seed=i)
            tags = {"artist": artist, "title": title} if title else {}
            tid = lib.save_track({"path": str(path.resolve()), "content_hash": f"h{i}", "size": 1, "mtime": 1.0,
                                  "duration_s": 200.0 + i, "sample_rate": 8000, "channels": 1, "format": "WAV",
                                  "label": "house" if i < 2 else None, "tags": tags, "warning": "",
                                  "bpm": bpm, "bpm_confidence": 0.9 if bpm else None, "key": key,
                                  "key_confidence": 0.8 if key else None,
                                  "analysis": {} if bpm else {"bpm_reason": "too quiet", "key_reason": "too quiet"}},
                                 cfg=SegmentConfig(), starts_of=lambda d, cfg: [0.0])
            assert tid == i + 1
        return {t.id: t for t in lib.tracks()}


def test_csv_keeps_every_row_and_its_own_fields(tracks, tmp_path):
    items = [{"track_id": 2, "kind": "clipping", "start_s": 3.0, "end_s": 6.0, "score": 0.9},
             {"track_id": 2, "kind": "dropouts", "start_s": 9.0, "end_s": 12.0, "score": 0.5},
             {"track_id": 1, "kind": "noise", "start_s": 0.0, "end_s": 3.0, "score": 0.2},
             {"track_id": 99, "kind": "gone", "start_s": 0.0, "end_s": 3.0, "score": 0.1}]
    out = export(item_rows(tracks, items), tmp_path / "findings.csv")
    with out.open(encoding="utf-8-sig", newline="") as f:  # the byte-order mark Excel needs
        rows = list(csv.DictReader(f))
    assert [(r["position"], r["track_id"], r["kind"], r["start_s"]) for r in rows] == [
        ("1", "2", "clipping", "3.0"), ("2", "2", "dropouts", "9.0"), ("3", "1", "noise", "0.0")]
    assert rows[2]["title"] == "Déjà vu" and rows[2]["artist"] == "Ann" and rows[2]["camelot"] == "8A"
    assert rows[0]["bpm"] == "124.5" and rows[0]["key"] == "F# major" and rows[0]["title"] == "b two"
    assert list(rows[0])[-4:] == ["kind", "start_s", "end_s", "score"]


def test_m3u8_lists_each_track_once_in_order(tracks, tmp_path):
    out = export(item_rows(tracks, [{"track_id": 3}, {"track_id": 1}, {"track_id": 3}]), tmp_path / "x.m3u8")
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines == ["#EXTM3U", "#EXTINF:202,Cy - No tempo", tracks[3].path, "#EXTINF:200,Ann - Déjà vu",
                     tracks[1].path]


def test_rekordbox_xml_reads_back_with_pyrekordbox(tracks, tmp_path):
    from pyrekordbox import rbxml  # pinned in the dev extras
    order = [2, 3, 1, 2]  # a set: the repeat is listed once
    out = export(item_rows(tracks, [{"track_id": t} for t in order]), tmp_path / "set.xml", playlist="My set")
    xml = rbxml.RekordboxXml(out)
    assert xml.num_tracks == 3 and xml.product_name == "musicemb"
    got = xml.get_tracks()
    # pyrekordbox's decode_path drops the leading "/" of file://localhost/<absolute posix path>
    assert ["/" + t["Location"] for t in got] == [tracks[i].path for i in (2, 3, 1)]
    assert [t["AverageBpm"] for t in got] == [124.5, 0.0, 128.0]
    assert [t["Tonality"] for t in got] == ["F#", "", "Am"]
    assert [t["Name"] for t in got] == ["b two", "No tempo", "Déjà vu"]
    assert [t["TotalTime"] for t in got] == [201, 202, 200]
    assert [t["Kind"] for t in got] == ["WAV File"] * 3
    playlist = xml.get_playlist("My set")
    assert playlist.is_playlist and playlist.key_type == "TrackID" and playlist.entries == 3
    assert playlist.get_tracks() == [t["TrackID"] for t in got]
    assert all(Path("/" + t["Location"]).exists() for t in got)


def test_unwritable_or_unknown_target_is_one_line_error(tracks, tmp_path):
    rows = item_rows(tracks, [{"track_id": 1}])
    with pytest.raises(MusicEmbError, match="no folder"):
        export(rows, tmp_path / "missing" / "x.csv")
    with pytest.raises(MusicEmbError, match=r"\.csv \(table\)"):
        export(rows, tmp_path / "x.txt")
