"""What a monkey test of the window found (seeded random sequences of menus, buttons, keys, map clicks, other
programs changing the library): each test is the shortest sequence that showed the bug. Every test fails on an
exception raised in a Qt slot or a job failing with a traceback (``bugs``)."""

# ruff: noqa: F811 (the fixtures imported from test_gui_sweep are the tests' arguments)
from __future__ import annotations

import os
import threading

import pytest

pytest.importorskip("PySide6")
from PySide6.QtWidgets import QMessageBox  # noqa: E402

from musicemb_core.data.library import Library  # noqa: E402
from tests.gui.test_gui_sweep import boxes, bugs, embedded, library_copy, status, window  # noqa: E402, F401


def _held(window, monkeypatch, name: str) -> threading.Event:
    """The session's ``name`` (a worker's read of a segment) waits until the returned event is set."""
    release, real = threading.Event(), getattr(window.session, name)

    def held(seg_id):
        release.wait(10)
        return real(seg_id)
    monkeypatch.setattr(window.session, name, held)
    return release


def _remove_track_of(window, seg_id: int) -> None:
    """Another program removes the segment's track; the user presses Reload."""
    with Library(window.session.lib_path) as lib:
        lib.remove_tracks([window.session.segment(seg_id)["track_id"]])
    window.reload_library()
    assert seg_id not in window.session.seg_row


def test_a_point_whose_track_goes_while_it_decodes_says_so_in_words(qtbot, window, library_copy, monkeypatch):
    """Click a point, its track removed (another program, then Reload) before the worker looked it up: the status
    bar said "cannot play: KeyError: 7"."""
    assert window.open_library(library_copy)
    seg_id = int(window.session.segments["id"][0])
    release = _held(window, monkeypatch, "segment_audio")
    window.play_segment(seg_id)
    _remove_track_of(window, seg_id)
    release.set()
    qtbot.waitUntil(lambda: status(window).startswith("cannot play"), timeout=30000)
    assert status(window) == f"cannot play: segment {seg_id} is no longer in the library (its track was removed)"
    assert window.backend.calls == []


def test_a_spectrogram_whose_track_goes_while_it_is_computed_says_so_in_words(qtbot, window, library_copy,
                                                                             monkeypatch):
    """The same race for the model's view of a clicked point: "spectrogram: KeyError: 4" under the map."""
    assert window.open_library(library_copy)
    seg_id = int(window.session.segments["id"][0])
    said: list[str] = []  # what the line under the map said (a map job ending later says its own line again)
    window.map_controller.status.connect(said.append)
    release = _held(window, monkeypatch, "segment_logmel")
    window.map_controller.request_spectrogram(seg_id)
    _remove_track_of(window, seg_id)
    release.set()
    qtbot.waitUntil(lambda: any(s.startswith("spectrogram") for s in said), timeout=30000)
    assert [s for s in said if s.startswith("spectrogram")] == [
        f"spectrogram: segment {seg_id} is no longer in the library (its track was removed)"]


def test_remove_missing_tracks_with_the_map_coloured_by_finding(qtbot, window, library_copy, boxes, bugs,
                                                                monkeypatch):
    """Colour the map by finding, a track's file deleted, Library ▸ Remove missing tracks: the findings read again
    coloured the map shown, whose points still held the removed track's segments (KeyError in the slot); a colour
    picked next raised it again. The removed track's points leave the map at once."""
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *a, **k: QMessageBox.StandardButton.Yes))
    assert window.open_library(library_copy)
    mp = window.map_panel
    qtbot.waitUntil(lambda: len(window.map_controller.ids) == 12, timeout=30000)
    mp.colour.setCurrentText("finding")
    os.remove(window.session.tracks[1].path)
    window.missing_tracks.ask()
    qtbot.waitUntil(lambda: 1 not in window.session.tracks, timeout=30000)
    qtbot.wait(50)
    assert not bugs
    kept = window.session.segments["id"]
    assert len(kept) == 9 and sorted(window.map_controller.ids.tolist()) == sorted(kept.tolist())
    mp.colour.setCurrentText("track")
    qtbot.wait(50)
    assert len(mp.scatter._ids) == 9


def test_remove_missing_tracks_with_the_map_coloured_by_cluster(qtbot, window, library_copy, boxes, bugs,
                                                                monkeypatch):
    """The map coloured by k-means cluster (one value per point shown), then Remove missing tracks: the points
    left had a cluster list of the map before (ValueError in the slot, the map not drawn)."""
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *a, **k: QMessageBox.StandardButton.Yes))
    assert window.open_library(library_copy)
    mp, ctl = window.map_panel, window.map_controller
    qtbot.waitUntil(lambda: len(ctl.ids) == 12, timeout=30000)
    mp.colour.setCurrentText("cluster")
    qtbot.waitUntil(lambda: "cluster" in ctl._extra, timeout=30000)
    os.remove(window.session.tracks[1].path)
    window.missing_tracks.ask()
    qtbot.waitUntil(lambda: 1 not in window.session.tracks, timeout=30000)
    qtbot.waitUntil(lambda: len(ctl._extra.get("cluster", ())) == 9, timeout=30000)  # computed again
    assert not bugs
    assert len(ctl.ids) == 9 and len(mp.scatter._ids) == 9

