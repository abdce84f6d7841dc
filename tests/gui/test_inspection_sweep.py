"""The Inspection panel driven as a demanding analyst would: a library whose label findings cannot be computed,
relabelling from a finding on one segment of a mixed track. Every test fails on an exception raised in a Qt slot
or a job failing with a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from musicemb_core.data import edits  # noqa: E402
from musicemb_core.data.library import Library  # noqa: E402
from tests.conftest import embedded_tones  # noqa: E402
from tests.gui.test_gui_sweep import boxes, bugs, window  # noqa: E402, F401 (fixtures)


@pytest.fixture
def lib_path(tmp_path) -> Path:
    """Four 9 s tones (3 segments each), imported and embedded, no labels."""
    return embedded_tones(tmp_path)


def status(win) -> str:
    return win.statusBar().currentMessage()


def test_an_inspection_that_skipped_the_label_findings_says_why(qtbot, window, lib_path, bugs):  # noqa: F811
    """A library with no labels: the status bar said "inspection done: 0 findings", as if no track looked
    mislabelled, while the label findings were never computed (the CLI warns "skipped label: ...")."""
    assert window.open_library(lib_path)
    window.inspection.run()
    qtbot.waitUntil(lambda: status(window).startswith("inspection"), timeout=30000)
    assert status(window) == ("inspection done: 0 findings; skipped label: needs at least 2 labels on at least "
                              "2 tracks")
    qtbot.waitUntil(window.inspection_panel.run.isEnabled)


def test_relabel_from_a_mixed_tracks_segment_finding_tags_only_that_segment(qtbot, window, lib_path, bugs):  # noqa: F811
    """"Mixed track: this segment sounds like 'jazz', not its track's 'rock'": Relabel (to the suggested
    'jazz') labelled the whole track 'jazz', its other segments included. Now it tags the one segment."""
    with Library(lib_path) as lib:
        track = min(t.id for t in lib.tracks())
        edits.relabel_tracks(lib, [track], "rock")
        seg = lib.segments()
        sid = int(seg["id"][seg["track_id"] == track][1])
        lib.replace_findings([{"kind": "label", "segment_id": sid, "track_id": track, "start_s": 3.0, "end_s": 6.0,
                               "score": 0.5, "reason": "mixed track: this segment sounds like 'jazz'",
                               "details": {"given": "rock", "suggested": "jazz", "scope": "segment"}}],
                             kinds=["label"])
    assert window.open_library(lib_path)
    panel = window.inspection_panel
    panel.table.selectRow(0)
    assert panel.new_label.text() == "jazz"
    panel.relabel.click()
    assert window.session.tracks[track].label == "rock" and window.session.edits.tags == {sid: "jazz"}
    assert [r["status"] for r in window.inspection.rows] == ["accepted"]
    with Library(lib_path) as lib:
        assert edits.segment_tags(lib) == {sid: "jazz"} and lib.tracks()[0].label == "rock"
    window.session.edits.undo()  # one Undo takes back the tag and the acceptance (they were two steps)
    assert window.session.edits.tags == {} and [r["status"] for r in window.inspection.rows] == ["open"]


def test_a_purity_of_zero_is_shown_and_none_is_not():
    from musicemb_gui.panels.evaluation_panel import metrics_html

    r = {"model": "m", "segments": 3, "tracks": 2, "clustering": {"k": 2, "purity": 0.0}}
    assert "k = 2 by silhouette, purity 0.000" in metrics_html(r)
    assert "purity" not in metrics_html({**r, "clustering": {"k": 2, "purity": None}})


def test_a_re_identification_of_no_readable_snippet_shows_no_figure():
    """Every snippet unreadable: "top-1 0.000" was shown for nothing scored (now None from the core)."""
    from musicemb_gui.panels.evaluation_panel import metrics_html

    r = {"model": "m", "segments": 3, "tracks": 2, "clustering": {"k": 2, "purity": None},
         "reid": {"snippet_s": 3.0, "n": 0, "top1": None, "top2": None, "unreadable": ["/m/a.wav"]}}
    assert "no snippet could be read" in metrics_html(r) and "top-1" not in metrics_html(r)


def _outliers(lib_path: Path) -> None:
    """One outlier finding per segment, scored by its row."""
    with Library(lib_path) as lib:
        seg = lib.segments()
        lib.replace_findings([{"kind": "outlier", "segment_id": int(s), "track_id": int(t), "start_s": 0.0,
                               "end_s": 3.0, "score": float(i), "reason": f"outlier {i}", "details": {}}
                              for i, (s, t) in enumerate(zip(seg["id"], seg["track_id"], strict=True))],
                             kinds=["outlier"])


def test_accepting_a_finding_keeps_the_users_sort_and_selection(qtbot, window, lib_path, bugs):  # noqa: F811
    """Sorted by track, a finding selected, Accept: the table came back sorted by score, nothing selected (the
    spectrogram gone), scrolled to the top: the analyst lost their place at every review."""
    from PySide6.QtCore import Qt

    _outliers(lib_path)
    assert window.open_library(lib_path)
    panel = window.inspection_panel
    panel.table.sortByColumn(3, Qt.SortOrder.AscendingOrder)
    order = [r["id"] for r in panel.shown()]
    panel.table.selectRow(3)
    chosen = panel.selected()[0]["id"]
    panel.accept.click()
    assert [r["status"] for r in window.inspection.rows if r["id"] == chosen] == ["accepted"]
    header = panel.table.horizontalHeader()
    assert (header.sortIndicatorSection(), header.sortIndicatorOrder()) == (3, Qt.SortOrder.AscendingOrder)
    assert [r["id"] for r in panel.shown()] == order
    assert [r["id"] for r in panel.selected()] == [chosen]


def test_a_finding_whose_file_is_gone_shows_no_spectrogram_of_another(qtbot, window, lib_path, bugs):  # noqa: F811
    """Select a finding, then one whose file was deleted since: its spectrogram failed (a status line) and the
    first finding's spectrogram stayed on show, under the second one's row, in the panel and beside the map."""
    from PySide6.QtCore import Qt

    _outliers(lib_path)
    assert window.open_library(lib_path)
    panel, spectrograms = window.inspection_panel, (window.inspection_panel.spectrogram, window.map_panel.spectrogram)
    gone = window.session.tracks[panel.shown()[0]["track_id"]].path
    other = next(r for r, f in enumerate(panel.shown()) if f["path"] != gone)
    panel.table.selectRow(other)
    qtbot.waitUntil(lambda: not any(s.stack.empty for s in spectrograms), timeout=20000)
    Path(gone).unlink()
    panel.table.selectRow(0)
    qtbot.waitUntil(lambda: all(s.stack.empty for s in spectrograms), timeout=20000)
    for s in spectrograms:
        assert s.stack.label.text().startswith("No spectrogram of ") and "file not found" in s.stack.label.text()
    panel.table.clearSelection()
    panel.set_findings(window.inspection.rows)  # no finding selected: the hint again
    assert panel.spectrogram.stack.label.text() == "Select a finding to see its spectrogram from 20 Hz"
    assert panel.table.horizontalHeader().sortIndicatorOrder() == Qt.SortOrder.DescendingOrder


def test_a_review_or_relabel_changes_its_rows_in_place_and_an_undo_only_the_rows_that_differ(
        qtbot, window, lib_path, bugs, monkeypatch):  # noqa: F811
    """Every Accept, Dismiss or Relabel read all the findings from the catalogue again and filled the table anew
    (7 s frozen at 40,000 findings), and so did an Undo. Now a review or relabel changes its rows in place, and the
    findings read again after an Undo change only the rows that differ; sort, selection and scroll stay."""
    from PySide6.QtCore import Qt

    _outliers(lib_path)
    assert window.open_library(lib_path)
    panel, ctl = window.inspection_panel, window.inspection
    panel.table.sortByColumn(3, Qt.SortOrder.AscendingOrder)
    order = [r["id"] for r in panel.shown()]
    panel.table.selectRow(4)
    chosen = panel.selected()[0]
    reads, resets, changed, recoloured = [], [], set(), []
    findings = Library.findings
    monkeypatch.setattr(Library, "findings", lambda self, **kw: reads.append(1) or findings(self, **kw))
    panel.model.modelReset.connect(lambda: resets.append("reset"))
    panel.model.rowsRemoved.connect(lambda *_: resets.append("removed"))
    panel.model.dataChanged.connect(lambda first, last, *_: changed.update(range(first.row(), last.row() + 1)))
    ctl.findingsChanged.connect(lambda: recoloured.append(1))

    def rows_of_track() -> dict[int, dict]:
        return {r["id"]: r for r in panel.shown() if r["track_id"] == chosen["track_id"]}

    panel.dismiss.click()
    assert reads == [] and resets == [] and changed == {order.index(chosen["id"])} and recoloured == [1]
    assert [r["status"] for r in ctl.rows if r["id"] == chosen["id"]] == ["dismissed"]
    assert [(r["id"], r["status"]) for r in panel.selected()] == [(chosen["id"], "dismissed")]

    changed.clear()
    panel.new_label.setText("drone")
    panel.relabel.click()  # the track labelled, the finding accepted: its track's other findings show the label
    assert reads == [] and resets == [] and len(rows_of_track()) == 3 and changed == {order.index(i) for i in
                                                                                     rows_of_track()}
    assert {r["label"] for r in rows_of_track().values()} == {"drone"}
    assert rows_of_track()[chosen["id"]]["status"] == "accepted" and "[drone]" in panel.proxy.index(
        order.index(chosen["id"]), 3).data(Qt.ItemDataRole.ToolTipRole)

    changed.clear()
    window.session.edits.undo()  # only the statuses read again: the three rows of the track differ, the others kept
    assert reads == [] and resets == [] and changed == {order.index(i) for i in rows_of_track()}
    assert {r["label"] for r in rows_of_track().values()} == {None}
    assert rows_of_track()[chosen["id"]]["status"] == "dismissed"
    header = panel.table.horizontalHeader()
    assert (header.sortIndicatorSection(), header.sortIndicatorOrder()) == (3, Qt.SortOrder.AscendingOrder)
    assert [r["id"] for r in panel.shown()] == order and [r["id"] for r in panel.selected()] == [chosen["id"]]
