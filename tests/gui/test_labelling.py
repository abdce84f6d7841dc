"""Safe labelling in the app: "Label selection" previews what it touches and offers whole tracks or segment tags;
Edit ▸ Undo (Ctrl+Z) takes back labels, tags and finding reviews, also after a restart; another library closes
the dialog and shows its own undo stack."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

pytest.importorskip("PySide6")
from PySide6.QtCore import QSettings, Qt  # noqa: E402
from PySide6.QtWidgets import QDialogButtonBox  # noqa: E402

from musicemb_core.common.progress import drive  # noqa: E402
from musicemb_core.data import edits  # noqa: E402
from musicemb_core.data.ingest import iter_ingest  # noqa: E402
from musicemb_core.data.library import Library  # noqa: E402
from musicemb_gui.main_window import MainWindow  # noqa: E402
from musicemb_gui.panels.track_table import TRACK_ID  # noqa: E402
from musicemb_gui.widgets.audio_player import AudioPlayer  # noqa: E402
from tests.conftest import write_tone  # noqa: E402
from tests.gui.helpers import FakeBackend  # noqa: E402


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Tracks a.wav, b.wav (label rock) and c.wav (jazz) of 9 s: 3 segments each; not embedded."""
    root = tmp_path_factory.mktemp("labelling")
    for label, name, freq in (("rock", "a", 440), ("rock", "b", 550), ("jazz", "c", 660)):
        write_tone(root / "audio" / label / f"{name}.wav", freq, seconds=9.0, sr=8000)
    with Library(root / "lib", create=True) as lib:
        drive(iter_ingest(lib, [root / "audio"], labels="folders", jobs=1))
    return root / "lib"


@pytest.fixture
def lib_path(built, tmp_path):
    return shutil.copytree(built, tmp_path / "lib")


def _window(qtbot, tmp_path) -> MainWindow:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings, player=AudioPlayer(backend=FakeBackend()))
    qtbot.addWidget(win)
    win.show()
    win.activateWindow()
    qtbot.waitExposed(win)
    return win


def _segments_of(win, name: str) -> list[int]:
    s = win.session
    tid = next(t.id for t in s.tracks.values() if t.path.endswith(name))
    return [int(i) for i, t in zip(s.segments["id"], s.segments["track_id"], strict=True) if t == tid]


def _track_labels(path) -> dict[str, str | None]:
    with Library(path) as lib:
        return {t.path.rsplit("/", 1)[-1]: t.label for t in lib.tracks()}


def _tags(path) -> dict[int, str]:
    with Library(path) as lib:
        return edits.segment_tags(lib)


def _label(qtbot, win, ids, label: str, *, whole: bool | None = None):
    """Select ``ids`` (as a lasso does), open the dialog, fill it in and press Label; returns the dialog."""
    mp = win.map_panel
    mp._on_selection(np.array(ids, dtype=np.int64))
    qtbot.mouseClick(mp.label_sel, Qt.MouseButton.LeftButton)
    dialog = mp.label_dialog
    assert dialog.isVisible()
    dialog.label.setText(label)
    if whole is not None:
        (dialog.whole if whole else dialog.segments).setChecked(True)
    qtbot.mouseClick(dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok),
                     Qt.MouseButton.LeftButton)
    return dialog


def _undo_action(win):
    return next(a for a in win.menuBar().actions() if a.text() == "&Edit").menu().actions()[0]


def test_preview_then_tags_or_whole_tracks_and_ctrl_z_undoes_each(qtbot, tmp_path, lib_path):
    win = _window(qtbot, tmp_path)
    assert win.open_library(lib_path)
    a, b = _segments_of(win, "a.wav"), _segments_of(win, "b.wav")
    assert len(a) == len(b) == 3
    undo = _undo_action(win)
    assert not undo.isEnabled() and undo.shortcut().toString() == "Ctrl+Z"

    picked = a + b[:1]
    dialog = _label(qtbot, win, picked, "solo")
    summary = dialog.findChildren(type(win.map_panel.status))[0].text()
    assert "4 segments of 2 tracks selected; 1 track only partly selected" in summary
    assert "all 6 segments of the 2 tracks" in dialog.whole.text()
    assert dialog.segments.isChecked()  # a partly selected track: segments by default
    assert _tags(lib_path) == dict.fromkeys(picked, "solo")
    assert _track_labels(lib_path) == {"a.wav": "rock", "b.wav": "rock", "c.wav": "jazz"}
    assert win.session.segment(b[0])["label"] == "solo" and win.session.segment(b[1])["label"] == "rock"
    cats, _palette, names = win.map_controller.colours("label", np.array([a[0], b[0], b[1]]))
    assert [names[c] for c in cats] == ["solo", "solo", "rock"]  # the map colours a tag over its track's label
    assert "solo" in win.map_controller.tooltip(b[0])
    assert undo.isEnabled() and undo.text() == "&Undo tag 4 segments 'solo'"
    assert "tag 4 segments 'solo'" in win.map_panel.status.text()

    _label(qtbot, win, picked, "jazz", whole=True)
    assert _track_labels(lib_path) == {"a.wav": "jazz", "b.wav": "jazz", "c.wav": "jazz"}
    assert _tags(lib_path) == {}
    panel = win.library_panel
    assert sorted(panel.proxy.index(r, 2).data() for r in range(panel.proxy.rowCount())) == ["jazz"] * 3
    assert undo.text() == "&Undo label 2 tracks 'jazz'"

    win.activateWindow()  # as the window manager does when the dialog closes
    qtbot.waitUntil(win.isActiveWindow)
    qtbot.keyClick(win.map_panel.scatter.plot.viewport(), Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert _track_labels(lib_path) == {"a.wav": "rock", "b.wav": "rock", "c.wav": "jazz"}
    assert _tags(lib_path) == dict.fromkeys(picked, "solo")
    assert undo.text() == "&Undo tag 4 segments 'solo'"
    assert "undone: label 2 tracks 'jazz'" in win.statusBar().currentMessage()
    undo.trigger()
    assert _tags(lib_path) == {} and not undo.isEnabled()
    assert win.session.segment(b[0])["label"] == "rock"

    win.map_panel._on_selection(np.array(_segments_of(win, "c.wav"), dtype=np.int64))  # whole track selected
    qtbot.mouseClick(win.map_panel.label_sel, Qt.MouseButton.LeftButton)
    assert win.map_panel.label_dialog.whole.isChecked()
    win.map_panel.label_dialog.reject()
    assert _track_labels(lib_path)["c.wav"] == "jazz"  # cancelled: nothing changed


def test_undo_survives_a_restart_and_covers_finding_reviews(qtbot, tmp_path, lib_path):
    with Library(lib_path) as lib:
        c = next(t.id for t in lib.tracks() if t.path.endswith("c.wav"))
        lib.replace_findings([{"kind": "clipping", "segment_id": None, "track_id": c, "start_s": 0.0, "end_s": 9.0,
                               "score": 1.0, "reason": "clipped"}], kinds=["clipping"])
        fid = lib.findings()[0]["id"]
    win = _window(qtbot, tmp_path)
    assert win.open_library(lib_path)
    _label(qtbot, win, _segments_of(win, "a.wav"), "ambient")
    win.inspection.set_status([fid], "dismissed")
    assert [r["status"] for r in win.inspection.rows] == ["dismissed"]
    assert _undo_action(win).text() == "&Undo dismiss the clipping finding on c.wav"
    win.close()

    again = _window(qtbot, tmp_path / "second")
    assert again.open_library(lib_path)
    undo = _undo_action(again)
    assert undo.text() == "&Undo dismiss the clipping finding on c.wav"
    undo.trigger()
    assert [r["status"] for r in again.inspection.rows] == ["open"]
    assert undo.text() == "&Undo label a.wav 'ambient'"  # a whole track selected: labelled whole
    undo.trigger()
    assert _track_labels(lib_path)["a.wav"] == "rock" and not undo.isEnabled()


def test_another_library_closes_the_dialog_and_has_its_own_undo_stack(qtbot, tmp_path, lib_path, built):
    other = shutil.copytree(built, tmp_path / "other")
    win = _window(qtbot, tmp_path)
    assert win.open_library(lib_path)
    _label(qtbot, win, _segments_of(win, "a.wav")[:1], "intro")
    win.map_panel._on_selection(np.array(_segments_of(win, "b.wav"), dtype=np.int64))
    qtbot.mouseClick(win.map_panel.label_sel, Qt.MouseButton.LeftButton)
    dialog = win.map_panel.label_dialog
    assert dialog.isVisible()
    assert win.open_library(other)
    assert not dialog.isVisible() and not win.map_panel.label_sel.isEnabled()
    undo = _undo_action(win)
    assert not undo.isEnabled()
    undo.trigger()  # nothing to undo in this library: nothing happens
    assert _tags(lib_path) != {} and _tags(other) == {}
    assert win.open_library(lib_path)
    assert undo.text() == "&Undo tag segment " + str(_segments_of(win, "a.wav")[0]) + " 'intro'"


def test_a_label_edit_reads_only_the_labels_again(qtbot, tmp_path, lib_path, monkeypatch):
    """A label edited in the table re-read every track and segment of the library (and its vectors): 6 s frozen
    at 20,000 tracks. Now only the labels are read; the table, the session and the map's colours follow."""
    win = _window(qtbot, tmp_path)
    assert win.open_library(lib_path)
    reads: list[str] = []
    for name in ("tracks", "segments", "failures"):
        method = getattr(Library, name)
        monkeypatch.setattr(Library, name, lambda self, _m=method, _n=name: reads.append(_n) or _m(self))
    panel, s = win.library_panel, win.session
    a = next(t.id for t in s.tracks.values() if t.path.endswith("a.wav"))
    row = next(r for r in range(panel.model.rowCount()) if panel.model.index(r, 0).data(TRACK_ID) == a)
    assert panel.model.setData(panel.model.index(row, 2), "ambient")
    assert reads == []
    assert _track_labels(lib_path)["a.wav"] == "ambient" and s.tracks[a].label == "ambient"
    cats, _palette, names = win.map_controller.colours("label", np.array(_segments_of(win, "a.wav")))
    assert [names[c] for c in cats] == ["ambient"] * 3
    reads.clear()  # _track_labels read them
    _undo_action(win).trigger()
    assert reads == [] and panel.model.index(row, 2).data() == "rock" and s.tracks[a].label == "rock"


def test_undo_takes_back_only_the_edit_it_names_when_another_process_edits_meanwhile(qtbot, tmp_path, lib_path):
    """Edit ▸ Undo named the window's last edit but undid the one another process (the CLI, a second window) had
    made since. Now it says so, undoes nothing and names the edit it would take back now."""
    win = _window(qtbot, tmp_path)
    assert win.open_library(lib_path)
    _label(qtbot, win, _segments_of(win, "a.wav"), "ambient")
    undo = _undo_action(win)
    assert undo.text() == "&Undo label a.wav 'ambient'"
    with Library(lib_path) as other:
        c = next(t.id for t in other.tracks() if t.path.endswith("c.wav"))
        edits.relabel_tracks(other, [c], "folk")
    undo.trigger()
    assert _track_labels(lib_path) == {"a.wav": "ambient", "b.wav": "rock", "c.wav": "folk"}
    assert "nothing undone: another process changed the edits since" in win.statusBar().currentMessage()
    assert undo.text() == "&Undo label c.wav 'folk'"
    undo.trigger()
    assert _track_labels(lib_path)["c.wav"] == "jazz" and undo.text() == "&Undo label a.wav 'ambient'"
    with Library(lib_path) as other:
        edits.undo_last(other)  # undone elsewhere: nothing is left
    undo.trigger()
    assert "nothing is left to undo" in win.statusBar().currentMessage() and not undo.isEnabled()


def test_the_label_box_offers_existing_labels_whatever_their_case(qtbot):
    """Typing "rock" offered nothing when the library had "Rock" (the completer was case-sensitive and matched
    starts only), so a second label "rock" was made by mistake."""
    from musicemb_gui.panels.label_dialog import LabelDialog

    dialog = LabelDialog(edits.LabelPreview(1, 1, 0, 3), ["Rock", "ambient", "Deep House"])
    qtbot.addWidget(dialog)
    completer = dialog.label.completer()
    offered = {}
    for typed in ("rock", "house", "AMB"):
        completer.setCompletionPrefix(typed)
        offered[typed] = [completer.completionModel().index(i, 0).data() for i in range(completer.completionCount())]
    assert offered == {"rock": ["Rock"], "house": ["Deep House"], "AMB": ["ambient"]}


def test_labelling_whole_tracks_finds_the_tracks_of_all_selected_segments_at_once(qtbot, tmp_path, lib_path,
                                                                                 monkeypatch):
    """"Label selection…" as whole tracks looked up each selected segment's track one at a time: 7 s frozen with a
    million segments selected. Now all of them at once (no segment looked up alone)."""
    win = _window(qtbot, tmp_path)
    assert win.open_library(lib_path)
    picked = _segments_of(win, "c.wav")[::-1] + _segments_of(win, "a.wav")[:1] * 2  # unsorted, repeated
    monkeypatch.setattr(win.session, "segment", lambda seg_id: pytest.fail(f"segment {seg_id} looked up alone"))
    win.map_controller.label_segments(np.array(picked), "folk", whole_tracks=True)
    assert _track_labels(lib_path) == {"a.wav": "folk", "b.wav": "rock", "c.wav": "folk"}
    assert "label 2 tracks 'folk'" in win.map_panel.status.text()
