"""The DJ's row filters and texts: half/double time in the BPM filter, the tag's BPM and key beside ours."""

from __future__ import annotations

from musicemb_core.workflows.dj import bpm_text, keep, key_text


def row(bpm=None, key=None, camelot=None, tag_bpm=None, tag_key=None) -> dict:
    return {"bpm": bpm, "key": key, "camelot": camelot, "tag_bpm": tag_bpm, "tag_key": tag_key, "label": None}


def test_bpm_filter_half_and_double_time():
    rows = [row(64.0), row(128.0), row(250.0), row(100.0), row(tag_bpm=126.0), row()]
    assert sum(keep(r, bpm=(124.0, 132.0)) for r in rows) == 2  # 128, and the tag's 126
    assert sum(keep(r, bpm=(124.0, 132.0), half_double=True) for r in rows) == 4  # also 64 (x2) and 250 (x1/2)
    assert sum(keep(r, bpm=(60.0, 66.0), half_double=True) for r in rows) == 3  # 64, 128 and 126 at half time


def test_tag_shown_beside_our_estimate():
    assert bpm_text(row(128.0, tag_bpm=127.0)) == "128.0 (tag 127)"
    assert bpm_text(row(128.0, tag_bpm=128.2)) == "128.0"
    assert bpm_text(row(tag_bpm=127.0)) == "tag 127" and bpm_text(row()) == ""
    assert key_text(row(key="A minor", camelot="8A", tag_key="E minor")) == "8A  A minor (tag 9A)"
    assert key_text(row(key="A minor", camelot="8A", tag_key="A minor")) == "8A  A minor"
    assert key_text(row(tag_key="E minor")) == "9A  E minor (tag)" and key_text(row()) == ""
