"""Inspection panel: findings of a real library in a sortable, filterable table; accept / dismiss / relabel / play /
show on map emit what the main window acts on, and a status change goes back into the library."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("PySide6")
from PySide6.QtCore import Qt  # noqa: E402

from musicemb_core.common.progress import drive  # noqa: E402
from musicemb_core.data.ingest import iter_ingest  # noqa: E402
from musicemb_core.data.library import Library  # noqa: E402
from musicemb_core.data.synthesis import render_song  # noqa: E402
from musicemb_core.workflows.inspect import iter_inspect  # noqa: E402
from musicemb_gui.panels.inspection_panel import ALL_KINDS, InspectionPanel  # noqa: E402

ROWS = [
    {"id": 1, "kind": "label", "segment_id": None, "track_id": 7, "path": "/music/rock/a.flac", "label": "techno",
     "start_s": 0.0, "end_s": 30.0, "score": 0.9, "reason": "label looks wrong: 'techno', probably 'rock'",
     "status": "open", "details": {"given": "techno", "suggested": "rock", "example_segment_id": 71,
                                   "segments": [{"segment_id": 71, "start_s": 12.0, "end_s": 15.0, "p": 0.93},
                                                {"segment_id": 72, "start_s": 15.0, "end_s": 18.0, "p": 0.88}]}},
    {"id": 2, "kind": "clipping", "segment_id": 12, "track_id": 3, "path": "/music/folk/b.flac", "label": "folk",
     "start_s": 3.0, "end_s": 6.0, "score": 4.2, "reason": "clipped: 3.2 % of samples at full scale",
     "status": "open", "details": {"value": 0.032, "threshold": 0.001}},
    {"id": 3, "kind": "clipping", "segment_id": 13, "track_id": 3, "path": "/music/folk/b.flac", "label": "folk",
     "start_s": 6.0, "end_s": 9.0, "score": 1.5, "reason": "clipped: 0.15 % of samples at full scale",
     "status": "dismissed", "details": {"value": 0.0015, "threshold": 0.001}},
    {"id": 4, "kind": "hum", "segment_id": 20, "track_id": 4, "path": "/music/field/c.wav", "label": None,
     "start_s": 0.0, "end_s": 3.0, "score": 2.0, "reason": "hum: 50 Hz mains lines (50, 100 Hz), 12 dB above",
     "status": "open", "details": {}},
]


def _select(panel, finding_id):
    for r in range(panel.proxy.rowCount()):
        if panel.proxy.index(r, 0).data(Qt.ItemDataRole.UserRole + 1)["id"] == finding_id:
            panel.table.selectRow(r)
            return
    raise AssertionError(finding_id)


def test_reviewing_several_findings_is_one_request(qtbot):
    """Accept on 4 selected findings asked for 4 reviews (4 undo steps, 4 rebuilds of the table); now one."""
    panel = InspectionPanel()
    qtbot.addWidget(panel)
    panel.set_findings(ROWS)
    asked = []
    panel.statusChanged.connect(lambda ids, status: asked.append((ids, status)))
    panel.table.selectAll()
    panel.accept.click()
    assert asked == [(sorted(r["id"] for r in ROWS), "accepted")]
    assert {panel.proxy.index(r, 5).data() for r in range(panel.proxy.rowCount())} == {"accepted"}


def test_table_sorts_and_filters(qtbot):
    panel = InspectionPanel()
    qtbot.addWidget(panel)
    panel.set_findings(ROWS)
    assert panel.proxy.rowCount() == 4 and panel.count.text() == "4 of 4 findings"
    scores = [float(panel.proxy.index(r, 1).data()) for r in range(4)]
    assert scores == sorted(scores, reverse=True)  # most severe first
    assert [panel.kind.itemText(i) for i in range(panel.kind.count())] == [ALL_KINDS, "clipping", "hum", "label"]
    panel.kind.setCurrentText("clipping")
    assert panel.proxy.rowCount() == 2 and panel.count.text() == "2 of 4 findings"
    panel.open_only.setChecked(True)
    assert panel.proxy.rowCount() == 1
    panel.kind.setCurrentText(ALL_KINDS)
    panel.filter.setText("mains")
    assert panel.proxy.rowCount() == 1 and panel.proxy.index(0, 0).data() == "hum"
    panel.filter.setText("")
    assert panel.proxy.index(panel.proxy.rowCount() - 1, 4).data() in ("whole track", "0.0–3.0 s")
    panel.table.sortByColumn(4, Qt.SortOrder.AscendingOrder)
    assert panel.proxy.index(panel.proxy.rowCount() - 1, 4).data() == "3.0–6.0 s"


def test_the_filter_finds_a_findings_path_and_label_and_the_count_follows_it(qtbot):
    """The filter box says "Filter by reason, track or label…" but read only the cells (the file name, no label),
    and the count stayed "4 of 4 findings" whatever it hid."""
    panel = InspectionPanel()
    qtbot.addWidget(panel)
    panel.set_findings(ROWS)
    panel.filter.setText("field")  # in finding 4's path only: its cell shows "c.wav"
    assert [r["id"] for r in panel.shown()] == [4] and panel.count.text() == "1 of 4 findings"
    panel.filter.setText("TECHNO")  # finding 1's label (and reason)
    assert [r["id"] for r in panel.shown()] == [1]


def test_actions_emit_signals(qtbot):
    panel = InspectionPanel()
    qtbot.addWidget(panel)
    panel.set_findings(ROWS)
    with qtbot.waitSignal(panel.runRequested):
        panel.run.click()
    with qtbot.waitSignal(panel.segmentSelected) as selected:  # its spectrogram is shown
        _select(panel, 1)
    assert selected.args == [71]
    assert panel.new_label.text() == "rock" and panel.play.isEnabled()
    with qtbot.waitSignal(panel.playRequested) as played:
        panel.play.click()
    assert played.args == [71]  # a whole-track finding plays its most telling segment
    with qtbot.waitSignal(panel.showOnMap) as shown:
        panel.show_map.click()
    assert shown.args == [71]
    assert panel.evidence_box.isVisibleTo(panel) and panel.evidence.count() == 2  # the segments arguing for 'rock'
    assert panel.evidence.item(1).text() == "15.0–18.0 s  88 %" and "rock" in panel.evidence_title.text()
    with qtbot.waitSignal(panel.playRequested) as played:
        panel.evidence.itemClicked.emit(panel.evidence.item(1))
    assert played.args == [72]
    panel.new_label.setText("punk")
    relabels, statuses = [], []
    panel.relabelRequested.connect(lambda *a: relabels.append(a))
    panel.statusChanged.connect(lambda *a: statuses.append(a))
    panel.relabel.click()
    assert relabels == [(1, "punk")] and statuses == []  # finding 1 (track 7): relabelled and accepted in one edit
    _select(panel, 4)
    assert panel.new_label.text() == "" and not panel.evidence_box.isVisibleTo(panel)
    with qtbot.waitSignal(panel.statusChanged) as changed:
        panel.dismiss.click()
    assert changed.args == [[4], "dismissed"]
    statuses = {panel.proxy.index(r, 0).data(Qt.ItemDataRole.UserRole + 1)["id"]: panel.proxy.index(r, 5).data()
                for r in range(panel.proxy.rowCount())}
    assert statuses == {1: "accepted", 2: "open", 3: "dismissed", 4: "dismissed"}
    panel.table.clearSelection()
    assert not panel.accept.isEnabled() and not panel.play.isEnabled()


def test_real_findings_and_status_round_trip(qtbot, tmp_path):
    sr = 16000
    (tmp_path / "audio").mkdir()
    y = render_song("folk", seed=2, duration_s=9.0, sr=sr)
    sf.write(tmp_path / "audio" / "clean.flac", y, sr)
    sf.write(tmp_path / "audio" / "clipped.flac", np.clip(y, -0.2, 0.2) / 0.2 * 0.9, sr)
    with Library(tmp_path / "lib", create=True) as lib:
        drive(iter_ingest(lib, [tmp_path / "audio"], jobs=1))
        drive(iter_inspect(lib, kinds=["clipping", "dead"]))
        panel = InspectionPanel()
        qtbot.addWidget(panel)
        panel.statusChanged.connect(lambda ids, status: [lib.set_finding_status(i, status) for i in ids])
        panel.set_findings(lib.findings())
        assert panel.proxy.rowCount() == 3  # the clipped file's three 3 s segments
        assert {panel.proxy.index(r, 3).data() for r in range(3)} == {"clipped.flac"}
        panel.table.selectAll()
        panel.accept.click()
        assert {f["status"] for f in lib.findings()} == {"accepted"}


def test_the_map_colours_each_segment_by_its_most_severe_open_finding():
    """Per track and per finding, not per segment: a track's whole-track finding marks its segments unless one of
    its own findings scores higher; dismissed findings and segments of other libraries do not count."""
    from types import SimpleNamespace

    from musicemb_gui.panels.inspection_controller import InspectionController

    def row(kind, track, segment, score, status="open"):
        return {"kind": kind, "track_id": track, "segment_id": segment, "score": score, "status": status}
    ctl = SimpleNamespace(rows=[row("label", 1, None, 0.5), row("clipping", 1, 11, 0.9), row("hum", 1, 12, 0.2),
                                row("dead", 2, 21, 0.7), row("noise", 2, 22, 0.8, "dismissed"), row("hum", 3, 99, 1.0)])
    ids, tracks = np.array([12, 11, 22, 21, 13, 31]), np.array([1, 1, 2, 2, 1, 3])
    kinds = InspectionController.kinds_of(ctl, ids, tracks)
    assert kinds.tolist() == ["label", "clipping", None, "dead", "label", None]
