"""The app's DJ helpers on odd but legal input: a map coloured by tempo and key where only the tags have them,
and a typed ".m3u" kept by the export's file dialog."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
from musicemb_core.data.library import Track  # noqa: E402
from musicemb_gui.panels.dj_colours import NO_VALUE, camelot_colour, track_colours  # noqa: E402
from musicemb_gui.panels.export_controller import export_file  # noqa: E402


def track(tid: int, *, bpm=None, key=None, tags=None) -> Track:
    return Track(tid, f"/m/{tid}.wav", "h", 1, 1.0, 180.0, 44100, 2, "WAV", None, tags or {}, "", bpm=bpm, key=key)


def test_map_colours_take_the_tags_where_there_is_no_estimate():
    tracks = [track(1, bpm=120.0, key="A minor"), track(2, tags={"bpm": "124", "initialkey": "Em"}),
              track(3, tags={"initialkey": "not a key"})]
    cats, palette, names = track_colours("key", tracks)
    assert [palette[c] for c in cats] == [camelot_colour("8A"), camelot_colour("9A"), NO_VALUE]
    assert names == ["8A  A minor", "9A  E minor", "(no key)"]
    cats, palette, names = track_colours("BPM", tracks)
    assert [names[c] for c in cats] == ["120-125 BPM", "120-125 BPM", "(no tempo)"]


@pytest.mark.parametrize("typed, chosen, written", [
    ("/x/crate.m3u", "M3U8 playlist (*.m3u8)", "/x/crate.m3u"),  # was crate.m3u.m3u8
    ("/x/crate.CSV", "M3U8 playlist (*.m3u8)", "/x/crate.CSV"),
    ("/x/crate", "rekordbox XML (*.xml)", "/x/crate.xml"),
    ("/x/crate.v2", "CSV table (*.csv)", "/x/crate.v2.csv")])
def test_the_save_dialogs_name_keeps_a_suffix_the_export_writes(typed, chosen, written):
    assert export_file(typed, chosen) == written
