"""Exports as other programs read them: a CSV table Excel opens (a byte-order mark, no cell run as a formula) and
`ingest --labels` reads back (its path and label columns), playlists and rekordbox XML of awkward file names."""

from __future__ import annotations

import csv
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from musicemb_core.common.errors import MusicEmbError
from musicemb_core.common.progress import drive
from musicemb_core.data.ingest import iter_ingest, read_label_csv
from musicemb_core.data.library import Library
from musicemb_core.workflows.dj import export, item_rows, track_rows
from tests.conftest import write_tone

# file name -> label: text a spreadsheet would run as a formula, a number, an apostrophe, unicode, no label
LABELS = {"=1+2.wav": "=SUM(A1)", "-3.5 dB.wav": "-1", "@home, #1; 100%.wav": "+8 dB",
          "'Til dawn.wav": "'Til dawn", "Déjà vu.wav": "Électro", "plain.wav": None}


@pytest.fixture
def music(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("MUSICEMB_HOME", str(tmp_path / "home"))
    for i, name in enumerate(LABELS):
        write_tone(tmp_path / "music" / name, 220.0 * (i + 1), seconds=1.0, seed=i)
    return tmp_path / "music"


def _import(root: Path, music: Path, labels) -> dict[str, str | None]:
    with Library(root, create=True) as lib:
        drive(iter_ingest(lib, [music], labels=labels, jobs=1, analyse=False))
        return {Path(t.path).name: t.label for t in lib.tracks()}


def test_csv_export_opens_in_a_spreadsheet_and_its_labels_import_again(music, tmp_path):
    assert _import(tmp_path / "a", music, LABELS) == LABELS
    with Library(tmp_path / "a") as lib:
        rows = track_rows(lib)
    items = [{"track_id": r["track_id"], "gain_db": -3.5, "note": "-3.5 dB"} for r in rows]
    with Library(tmp_path / "a") as lib:
        out = export(item_rows({t.id: t for t in lib.tracks()}, items), tmp_path / "crate.csv")
    assert out.read_bytes().startswith(b"\xef\xbb\xbfposition,")  # Excel reads UTF-8 only after a BOM
    with out.open(encoding="utf-8-sig", newline="") as f:
        got = {Path(r["path"]).name: r for r in csv.DictReader(f)}
    assert got["=1+2.wav"]["title"] == "'=1+2" and got["=1+2.wav"]["label"] == "'=SUM(A1)"
    assert got["@home, #1; 100%.wav"]["title"] == "'@home, #1; 100%" and got["'Til dawn.wav"]["title"] == "'Til dawn"
    assert got["-3.5 dB.wav"]["title"] == "'-3.5 dB" and got["-3.5 dB.wav"]["label"] == "-1"  # a number stays one
    assert {r["gain_db"] for r in got.values()} == {"-3.5"} and {r["note"] for r in got.values()} == {"'-3.5 dB"}
    assert got["Déjà vu.wav"]["label"] == "Électro" and got["plain.wav"]["label"] == ""
    # the table as labels for another import: its path and label columns, the text as it was
    assert _import(tmp_path / "b", music, read_label_csv(out)) == LABELS


def test_labels_csv_keeps_apostrophes_a_sniffer_took_for_quotes(tmp_path):
    """A European spreadsheet's "path;label" file: "'Til dawn'" lost its apostrophes (read as a quoted field)."""
    f = tmp_path / "labels.csv"
    f.write_text("\ufeffpath;label\r\n/m/a.wav;'Til dawn'\r\n/m/b.wav;'s Nachts'\r\n/m/c.wav;\"12\"\" vinyl; dub\"\r\n",
                 encoding="utf-8")
    assert read_label_csv(f) == {"/m/a.wav": "'Til dawn'", "/m/b.wav": "'s Nachts'", "/m/c.wav": '12" vinyl; dub'}


def test_a_name_too_long_is_a_one_line_error_naming_it(tmp_path):
    out = tmp_path / ("x" * 300 + ".csv")
    with pytest.raises(MusicEmbError, match=f"^{re.escape(str(out))}: cannot write the export \\(File name too long\\)$"):
        export([], out)


def test_playlists_of_awkward_names_read_back(music, tmp_path):
    """M3U8: one path line per track, none a comment; rekordbox XML parses with control characters in tags."""
    _import(tmp_path / "a", music, None)
    with Library(tmp_path / "a") as lib:
        rows = track_rows(lib)
    for r in rows:
        r["title"] += "\x01\x1b\n#x"
    lines = export(rows, tmp_path / "p.m3u8").read_text(encoding="utf-8").split("\n")
    assert lines[2:-1:2] == [r["path"] for r in rows] and lines[-1] == ""
    assert all(line.startswith("#EXTINF:1,") for line in lines[1:-1:2])
    root = ET.parse(export(rows, tmp_path / "p.xml", playlist="a\x02b")).getroot()
    assert [t.get("Location") for t in root.iter("TRACK") if t.get("Location")] == [
        "file://localhost" + Path(r["path"]).as_uri()[len("file://"):] for r in rows]
    assert {t.get("Name") for t in root.iter("TRACK") if t.get("Name")} == {r["title"].replace("\x01\x1b", "")
                                                                           for r in rows}


def test_tables_open_in_a_spreadsheet_and_read_back(tmp_path):
    """`map --out`, `features --out` and `inspect --out` tables: no cell run as a formula, text restorable, no BOM
    (pandas, R and Python's csv read the header as written)."""
    from musicemb_core.common.tables import cell_text, write_table

    rows = [{"track": "=HYPERLINK(\"x\")", "label": "-3.5 dB", "x": -3.5, "note": "-3.5", "empty": None},
            {"track": "bad\udcff.wav", "label": "'=quoted", "x": 1.0, "note": "@me", "empty": ""}]
    write_table(rows, tmp_path / "t.csv")
    raw = (tmp_path / "t.csv").read_bytes()
    assert raw.startswith(b"track,") and b"bad\xff.wav" in raw  # a non-UTF-8 name as its own bytes
    with open(tmp_path / "t.csv", encoding="utf-8", errors="surrogateescape", newline="") as f:
        got = list(csv.DictReader(f))
    assert [r["track"] for r in got] == ["'=HYPERLINK(\"x\")", "bad\udcff.wav"]
    assert [r["label"] for r in got] == ["'-3.5 dB", "''=quoted"] and [r["x"] for r in got] == ["-3.5", "1.0"]
    assert [r["note"] for r in got] == ["-3.5", "'@me"] and [r["empty"] for r in got] == ["", ""]
    assert [[cell_text(r[c]) for c in ("track", "label", "note")] for r in got] == [
        [r["track"], r["label"], r["note"]] for r in rows]


@pytest.mark.parametrize(("text", "error"), [
    ("a.wav,rock\nplain.wav,Drum, Bass\n", "line 2 has 3 fields, not path,label ('plain.wav,Drum, Bass'); put a path "
                                           "or label holding ',' in double quotes"),
    ("my,song.wav,rock\n", "line 1 has 3 fields"),
    ("a.wav,rock\n\"tone.wav,rock\nb.wav,x\n", "line 2: a quote is opened and never closed ('tone.wav,rock\\nb.wav,x"),
])
def test_a_labels_row_that_is_no_path_and_label_is_an_error_naming_its_line(tmp_path, text, error):
    """More fields than two were read as the first two: "plain.wav,Drum, Bass" was labelled "Drum", "my,song.wav,rock"
    labelled nothing (and no error, another line matching), and a quote left open took the rest as one path."""
    f = tmp_path / "labels.csv"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(MusicEmbError, match=f"^{re.escape(str(f))}: {re.escape(error)}"):
        read_label_csv(f)


def test_labels_rows_with_quoted_commas_trailing_empty_fields_or_a_tables_columns_are_read(tmp_path):
    f = tmp_path / "labels.csv"
    f.write_text('a.wav,"Drum, Bass"\n"my,song.wav",rock\nb.wav,jazz,,\n', encoding="utf-8")
    assert read_label_csv(f) == {"a.wav": "Drum, Bass", "my,song.wav": "rock", "b.wav": "jazz"}
    f.write_text("path,label,bpm\na.wav,rock,120\n", encoding="utf-8")
    assert read_label_csv(f) == {"a.wav": "rock"}
