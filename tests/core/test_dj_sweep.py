"""DJ commands on odd but legal input: what a track sounds like in every export, rekordbox's own key names, a
file in the current folder named like a track id, line breaks in file names in the CSV, a set's CSV with its
transition costs."""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from musicemb_core import cli
from musicemb_core.common.paths import user_path
from musicemb_core.data.library import Library
from musicemb_core.features.camelot import NAMES
from musicemb_core.workflows import dj
from tests.conftest import catalogued_tones

# (file name, bpm, key); the second holds a carriage return, which a file name may
TRACKS = [("one.wav", 124.0, "C# minor"), ("two\rlines.wav", 126.0, "C# major"), ("three.wav", 125.0, "A minor")]
SOUNDS = {1: [("electronic", 0.8)], 2: [("techno", 0.7)], 3: [("house", 0.6)]}
# the 24 Tonality values rekordbox writes
RB_KEYS = {"C", "Am", "G", "Em", "D", "Bm", "A", "F#m", "E", "Dbm", "B", "Abm", "F#", "Ebm", "Db", "Bbm", "Ab", "Fm",
           "Eb", "Cm", "Bb", "Gm", "F", "Dm"}


@pytest.fixture
def lib(tmp_path, monkeypatch) -> Path:
    """Three tracks in a real catalogue (no decoding), with what they sound like as if embedded."""
    root = catalogued_tones(tmp_path / "lib", tmp_path / "music", [
        {"name": name, "bpm": bpm, "bpm_confidence": 0.9, "key": key, "key_confidence": 0.8}
        for name, bpm, key in TRACKS])
    monkeypatch.setattr(dj, "library_sounds", lambda _lib: SOUNDS)
    return root


def read_csv(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_named_tracks_export_what_they_sound_like(lib, tmp_path):
    """Tracks named by id (or a set) are exported with their ``sounds_like``, as the whole crate is."""
    out = tmp_path / "named.csv"
    assert cli.main(["export", str(lib), "3", "1", "--out", str(out)]) == 0
    assert [(r["track_id"], r["sounds_like"]) for r in read_csv(out)] == [("3", "house"), ("1", "electronic")]


def test_set_csv_has_sounds_and_transition_costs(lib, tmp_path, capsys):
    out = tmp_path / "set.csv"
    assert cli.main(["set", str(lib), "1", "2", "3", "--out", str(out), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    rows = read_csv(out)
    assert [int(r["track_id"]) for r in rows] == [r["track_id"] for r in plan["tracks"]]
    assert all(r["sounds_like"] for r in rows) and all(r["sounds_like"] for r in plan["tracks"])
    assert rows[0]["transition_cost"] == "" and [float(r["transition_cost"]) for r in rows[1:]] == plan["steps"]


def test_rekordbox_tonality_uses_rekordbox_key_names(lib, tmp_path):
    """rekordbox names D flat "Db"/"Dbm"; "C#m" is not one of its keys."""
    out = tmp_path / "crate.xml"
    assert cli.main(["export", str(lib), "--out", str(out)]) == 0
    assert [t.get("Tonality") for t in ET.parse(out).getroot().iter("TRACK") if t.get("Location")] == [
        "Dbm", "Db", "Am"]
    with Library(lib) as library:
        row = dj.track_row(library.track(3))
    keys = [f"{n} {mode}" for n in NAMES for mode in ("major", "minor")]
    xml = ET.fromstring(dj.rekordbox_xml([{**row, "path": f"/m/{i}.wav", "key": k} for i, k in enumerate(keys)]))
    assert {t.get("Tonality") for t in xml.iter("TRACK") if t.get("Location")} == RB_KEYS


def test_a_file_named_like_a_track_id_does_not_hide_the_track(lib, tmp_path, monkeypatch):
    """In a folder holding files "2" and "3" (not tracks), ids 2 and 3 still name tracks, typed by the user or
    found by --similar-to."""
    here = tmp_path / "cwd"
    here.mkdir()
    for name in ("2", "3"):
        (here / name).write_text("not audio")
    monkeypatch.chdir(here)
    out = tmp_path / "x.m3u8"
    assert cli.main(["export", str(lib), "2", "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8").count("#EXTINF:181,") == 1

    class Space:  # the similarity space, without embedding: track 1's neighbours are 3, then 2
        def __init__(self, lib, model):
            pass

        def resolve(self, query):
            return None, [1]

        def query(self, queries, k):
            return [{"results": [{"track_id": 3}, {"track_id": 2}]}]

    monkeypatch.setattr("musicemb_core.search.similar.SimilarTracks", Space)
    out = tmp_path / "near.csv"
    assert cli.main(["export", str(lib), "--similar-to", "1", "--out", str(out)]) == 0
    assert [(r["track_id"], r["sounds_like"]) for r in read_csv(out)] == [
        ("1", "electronic"), ("3", "house"), ("2", "techno")]
    assert cli.main(["set", str(lib), "1", "3", "--start", "2"]) == 0


def test_csv_quotes_a_carriage_return_in_a_file_name(lib, tmp_path):
    """A path with a bare CR stays one field of one row when read back."""
    out = tmp_path / "all.csv"
    assert cli.main(["export", str(lib), "--out", str(out)]) == 0
    rows = read_csv(out)
    assert [Path(r["path"]).name for r in rows] == [name for name, _, _ in TRACKS]
    assert rows[1]["title"] == "two\rlines"


def test_a_name_starting_with_a_tilde_is_a_plain_name(lib, tmp_path, monkeypatch, capsys):
    """``--out ~mix.m3u8`` (no user "mix") said "unexpected RuntimeError: Could not determine home directory";
    a leading ``~`` that names no user's home is part of the name, and ``~/x`` still means the home folder."""
    monkeypatch.chdir(tmp_path)
    assert cli.main(["export", str(lib), "1", "--out", "~mix.m3u8"]) == 0
    assert (tmp_path / "~mix.m3u8").read_text(encoding="utf-8").startswith("#EXTM3U")
    assert cli.main(["export", str(lib), "~nobody-here/x.wav", "--out", "y.m3u8"]) == 1
    assert "~nobody-here/x.wav: not a track of this library" in capsys.readouterr().err
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_path("~/set.xml") == tmp_path / "home" / "set.xml"


def test_an_export_names_the_files_gone_since_the_import(lib, tmp_path, capsys):
    """A playlist of tracks deleted after the import was written without a word (rekordbox then lists them as
    missing); the export still lists them, and says which are gone."""
    with Library(lib) as library:
        paths = {t.id: Path(t.path) for t in library.tracks()}
    paths[1].unlink()
    assert cli.main(["export", str(lib), "--out", str(tmp_path / "all.m3u8")]) == 0
    err = capsys.readouterr().err
    assert f"{paths[1]}: the file is not there any more" in err and "and 1 more" not in err
    assert str(paths[1]) in (tmp_path / "all.m3u8").read_text(encoding="utf-8")
    paths[3].unlink()
    assert cli.main(["set", str(lib), "1", "2", "3", "--out", str(tmp_path / "set.xml")]) == 0
    assert "and 1 more: the file is not there any more" in capsys.readouterr().err
    assert cli.main(["export", str(lib), "2", "--out", str(tmp_path / "two.csv")]) == 0
    assert "warning" not in capsys.readouterr().err
