"""DJ commands on files as DJ tools leave them: an export into a folder that cannot be written is refused before
a set is ordered (also as root, where permission bits do not stop a write), German key names (B is B flat, H is
B), and the tag values DJ tools write (BPM "128,5", keys "G#m", "8A/Am", "08A")."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from musicemb_core import cli
from musicemb_core.common.errors import MusicEmbError
from musicemb_core.common.paths import check_output_folder
from musicemb_core.features.camelot import camelot, parse_key, parse_key_or_none
from musicemb_core.workflows import dj
from tests.conftest import catalogued_tones

# (file name, tag bpm, tag key) as rekordbox, Serato, Traktor and Mixed In Key write them
TAGGED = [("a.wav", "128,5", "G#m"), ("b.wav", "128.00", "8A/Am"), ("c.wav", "0", "08A"), ("d.wav", "999", "h-moll")]


@pytest.fixture
def lib(tmp_path) -> Path:
    return catalogued_tones(tmp_path / "lib", tmp_path / "music", [
        {"name": name, "tags": {"bpm": bpm, "initialkey": key}, "duration_s": 180.4 + i}
        for i, (name, bpm, key) in enumerate(TAGGED)])


def _cannot_write(folder: Path) -> bool:
    try:
        tempfile.TemporaryFile(dir=folder).close()
    except OSError:
        return True
    return False


@pytest.fixture
def unwritable(tmp_path) -> Path:
    """A folder no file can be made in: one without write permission, or (as root, whom permission bits do not
    stop) /sys, whose folders root cannot add files to either."""
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    if not _cannot_write(folder):
        folder = Path("/sys")
        if not (folder.is_dir() and os.access(folder, os.W_OK) and _cannot_write(folder)):
            pytest.skip("no folder here that looks writable but is not")
    yield folder
    (tmp_path / "ro").chmod(0o755)


def test_an_unwritable_export_folder_is_said_before_the_set_is_ordered(lib, unwritable, capsys, monkeypatch):
    """`set ... --out` into a folder it cannot write ordered the whole crate (25 s for 2,000 tracks) and only then
    failed; the export name is checked before, as the README promises."""
    def no_plan(*_a, **_k):
        raise AssertionError("ordered before the export folder was checked")
    monkeypatch.setattr(dj, "iter_plan_set", no_plan)
    out = unwritable / "set.m3u8"
    assert cli.main(["set", str(lib), "1", "2", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"musicemb: error: {out}: cannot write the export") and len(err.splitlines()) == 1
    with pytest.raises(MusicEmbError, match="cannot write the table there"):
        check_output_folder(unwritable / "new" / "t.csv", "table")
    assert not out.exists()


@pytest.mark.parametrize("text, code", [("a-Moll", "8A"), ("C-Dur", "8B"), ("B-Dur", "6B"), ("b-moll", "3A"),
                                        ("H-Dur", "1B"), ("h-moll", "10A"), ("Fis-Dur", "2B"), ("cis-moll", "12A"),
                                        ("Es-Dur", "5B"), ("as moll", "1A"), ("Ges-Dur", "2B"), ("Bb-Dur", "6B")])
def test_german_key_names(text, code):
    """German names B for B flat and H for B, and -is / -es for sharp / flat: "B-Dur" was read as B major, a
    semitone off, and "h-moll" or "Fis-Dur" not at all."""
    assert camelot(parse_key(text)) == code


def test_english_names_keep_their_meaning():
    """Without a German mode word B is B: "Bm" B minor, "B" B major, "Bb-Dur" B flat major."""
    assert camelot(parse_key("Bm")) == "10A" and camelot(parse_key("B")) == "1B" and parse_key_or_none("H") is None


def test_tag_tempo_and_key_in_the_exports(lib, tmp_path):
    """Tag values as DJ tools write them reach the rekordbox XML (BPM with a dot, rekordbox key names, whole
    seconds) and the playlist; "0" and "999" BPM are no tempo."""
    import xml.etree.ElementTree as ET

    out = tmp_path / "crate.xml"
    assert cli.main(["export", str(lib), "--out", str(out)]) == 0
    tracks = [t for t in ET.parse(out).getroot().iter("TRACK") if t.get("Location")]
    assert [(t.get("AverageBpm"), t.get("Tonality"), t.get("TotalTime")) for t in tracks] == [
        ("128.50", "Abm", "180"), ("128.00", "Am", "181"), ("0.00", "Am", "182"), ("0.00", "Bm", "183")]
