"""What a scale hunt of the window found (20,000 tracks, 400,000 segments, 40,000 findings): work done on the GUI
thread that grew with the library. Each test counts the work (calls, rows read), never the time it took."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from musicemb_core.data.library import Library  # noqa: E402
from musicemb_gui.panels.inspection_panel import InspectionPanel  # noqa: E402
from tests.gui.helpers import shown_window, tone_library  # noqa: E402
from tests.gui.test_inspection_panel import ROWS  # noqa: E402


@pytest.fixture
def window(qtbot, tmp_path):
    yield from shown_window(qtbot, tmp_path)


def _counted(monkeypatch, owner, name: str) -> list:
    """Calls of ``owner.name`` from now on (one entry each)."""
    calls, real = [], getattr(owner, name)

    def counted(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)
    monkeypatch.setattr(owner, name, counted)
    return calls


def test_selecting_many_findings_reads_none_of_them(qtbot, monkeypatch):
    """Select all of 40,000 findings: ``selectedRows()`` (an index per cell) three times and a dict made for every
    finding selected, three times, froze the window for 5 s; the buttons need only whether one or more is."""
    panel = InspectionPanel()
    qtbot.addWidget(panel)
    panel.set_findings([dict(ROWS[i % len(ROWS)], id=i + 1) for i in range(400)])
    read = _counted(monkeypatch, panel.model, "finding")
    panel.table.selectAll()
    assert read == []
    assert panel.accept.isEnabled() and not panel.relabel.isEnabled() and not panel.play.isEnabled()
    panel.table.selectRow(0)
    assert len(read) <= 3  # the one selected finding: its label box, play and relabel state
    assert panel.play.isEnabled() or panel.new_label.isEnabled()


def _findings_library(tmp_path):
    """The two tones' library with an outlier finding on each of its 6 segments."""
    root = tone_library(tmp_path)
    with Library(root) as lib:
        seg = lib.segments()
        lib.replace_findings([{"kind": "outlier", "segment_id": int(s), "track_id": int(t), "start_s": float(st),
                               "end_s": float(st) + 3, "score": 0.5, "reason": "far from its track", "details": {}}
                              for s, t, st in zip(seg["id"], seg["track_id"], seg["start_s"], strict=True)],
                             kinds=["outlier"])
    return root


def test_a_label_edit_or_an_undo_updates_the_findings_in_place(window, tmp_path, monkeypatch):
    """A label edit, a segment tag or an Undo read every finding again and filled the table again (1-6 s at 40,000
    findings, at each edit); now only the rows whose status or track label changed are updated."""
    assert window.open_library(_findings_library(tmp_path))
    ctl, panel = window.inspection, window.inspection_panel
    ctl.load()
    assert len(ctl.rows) == 6
    read = _counted(monkeypatch, Library, "findings")
    filled = _counted(monkeypatch, panel, "set_findings")
    seg = window.session.segments
    tid = int(seg["track_id"][0])
    window.map_controller.label_segments(seg["id"][:1], "tagged", whole_tracks=True)
    window.map_controller.label_segments(seg["id"][-1:], "segment tag", whole_tracks=False)
    shown = {panel.model.finding(i)["id"]: panel.model.finding(i) for i in range(panel.model.rowCount())}
    assert {r["label"] for r in shown.values() if r["track_id"] == tid} == {"tagged"}
    assert {r["label"] for r in shown.values() if r["track_id"] != tid} == {None}
    fid = ctl.rows[0]["id"]
    ctl.set_status([fid], "dismissed")
    assert {r["id"]: r["status"] for r in ctl.rows}[fid] == "dismissed"
    for _ in range(3):  # the review, the segment tag, the label
        window.undo_action.trigger()
    shown = {panel.model.finding(i)["id"]: panel.model.finding(i) for i in range(panel.model.rowCount())}
    assert {r["status"] for r in shown.values()} == {"open"} and {r["label"] for r in shown.values()} == {None}
    assert {r["status"] for r in ctl.rows} == {"open"} and {r["label"] for r in ctl.rows} == {None}
    assert read == [] and filled == []


def test_selecting_tracks_reads_their_ids_without_making_cells(window, tmp_path, monkeypatch):
    """Select All in the library table, or a lasso of points of 20,000 tracks: each row's track id was read through
    ``data()``, which made the cell's roles and tooltip (half of a 0.5-0.9 s freeze); now from the model's rows."""
    from musicemb_gui.panels import track_table

    assert window.open_library(tone_library(tmp_path))
    panel = window.library_panel
    made = _counted(monkeypatch, track_table, "tooltip")
    got = []
    panel.tracksSelected.connect(got.append)
    panel.table.selectAll()
    window.library_panel.select_tracks(list(window.session.tracks))
    assert got == [panel.shown_tracks()] and sorted(got[0]) == sorted(window.session.tracks)
    assert panel.selected_tracks() == panel.shown_tracks()
    assert made == []
