"""What a first look at the app shows: empty panels say what to do, counts and units read as a DJ reads them,
names are not squeezed out of a 1280 px window, and controls that cannot act are off."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")
from PySide6.QtCore import Qt  # noqa: E402

from musicemb_gui.panels.library_panel import NO_TRACKS, TRACK_MIN_PX, LibraryPanel  # noqa: E402


def _rows(n: int) -> list[tuple]:
    styles = ("techno", "house", "ambient")
    return [(i, f"/music/{styles[i % 3]}/A rather long artist name - track title number {i}.flac", 243.7 + i,
             styles[i % 3], 81, "ok", 124.0 + i % 5, "8A  A minor") for i in range(n)]


def test_the_library_table_says_what_to_do_when_it_shows_no_row_and_counts_the_tracks(qtbot):
    panel = LibraryPanel()
    qtbot.addWidget(panel)
    panel.resize(600, 500)
    panel.show()
    assert panel.empty.isVisible() and panel.empty.text() == NO_TRACKS and panel.count.text() == ""
    panel.set_rows(_rows(30))
    assert not panel.empty.isVisible() and panel.count.text() == "30 tracks"
    panel.filter.setText("techno")
    assert panel.count.text() == "10 of 30 tracks" and not panel.empty.isVisible()
    panel.filter.setText("zzzz")
    assert panel.empty.isVisible() and panel.count.text() == "0 of 30 tracks"
    assert panel.empty.text() == "No track matches “zzzz”: clear it to see all 30 tracks."
    assert panel.empty.geometry() == panel.table.viewport().rect()  # over the rows, centred
    panel.filter.clear()
    assert not panel.empty.isVisible()


def test_the_track_name_keeps_its_width_in_a_narrow_dock(qtbot):
    panel = LibraryPanel()
    qtbot.addWidget(panel)
    panel.resize(480, 400)  # the library dock of a 1280x720 window
    panel.show()
    panel.set_rows(_rows(30))
    qtbot.wait(10)
    head = panel.table.horizontalHeader()
    assert head.sectionSize(0) >= TRACK_MIN_PX  # it was squeezed to "…" (21 px) by the other columns
    panel.resize(1400, 400)
    qtbot.waitUntil(lambda: head.sectionSize(0) > TRACK_MIN_PX)
    # wide: the name takes the spare width, no horizontal scrolling
    assert sum(head.sectionSize(c) for c in range(head.count())) <= panel.table.viewport().width()


def test_the_map_legend_lists_only_categories_with_points_and_at_most_a_dozen(qtbot):
    from musicemb_gui.widgets.scatter_view import MAX_LEGEND, ScatterView

    view = ScatterView()
    qtbot.addWidget(view)

    def legend() -> list[str]:
        return [label.text for _sample, label in view.legend.items]
    xy = np.random.default_rng(0).normal(size=(400, 2)).astype(np.float32)
    view.set_points(xy, np.arange(400), np.arange(400) % 2, ["#1f77b4", "#ff7f0e", "#9a9a9a"], ["a", "b", "(none)"])
    assert legend() == ["a", "b"]  # every track labelled: no "(none)" entry for no point
    cats = np.minimum(np.arange(400) // 10, 29)  # 30 labels, the last the largest (40 points against 10)
    names = [f"genre {i:02d}" for i in range(30)]
    view.set_categories(cats, ["#1f77b4"] * 30, names)
    assert len(legend()) == MAX_LEGEND and legend()[-1] == "… 19 more (hover a point)"
    assert "genre 29" in legend() and legend()[:2] == ["genre 00", "genre 01"]  # the largest, in their order


def _map_panel(qtbot):
    from musicemb_gui.panels.map_controller import MapController
    from musicemb_gui.panels.map_panel import MapPanel
    from musicemb_gui.session import Session

    panel = MapPanel(MapController(Session()))
    qtbot.addWidget(panel)
    return panel


def test_the_map_status_line_comes_back_after_a_colouring_is_computed(qtbot):
    """Colouring by cluster ended with an empty status: the map's line (what it is, how to select) was gone."""
    panel = _map_panel(qtbot)
    panel._set_status("UMAP map of 350 segments — click a point to listen", summary=True)
    panel.ctl.status.emit("computing cluster…")
    assert panel.status.text() == "computing cluster…"
    panel.ctl.status.emit("")  # the colouring is done
    assert panel.status.text() == "UMAP map of 350 segments — click a point to listen"
    panel.clear()
    panel.ctl.status.emit("")
    assert panel.status.text() == ""


def test_predicted_labels_draw_none_in_grey_as_labels_do_and_the_colour_box_shows_its_choice_whole(qtbot):
    from musicemb_gui.panels.map_controller import NONE_COLOUR

    panel = _map_panel(qtbot)
    ctl, box = panel.ctl, panel.colour
    panel.resize(1400, 600)  # room on the toolbar: the choice shows whole (it read "predicted la")
    panel.show()
    box.setCurrentText("predicted label")  # nothing embedded: no colouring is computed
    qtbot.waitUntil(lambda: box.width() > box.fontMetrics().horizontalAdvance("predicted label") + 20)
    ctl._extra["predicted label"] = np.array([0, 1, 2])
    ctl._extra_names["predicted label"] = ["rock", "techno", "(none)"]
    _cats, palette, names = ctl._colours("predicted label", np.arange(3), np.arange(3))
    assert names[-1] == "(none)" and palette[-1] == NONE_COLOUR  # it was brown
    assert palette[:2] != [NONE_COLOUR, NONE_COLOUR]
    assert box.minimumSizeHint().width() < box.sizeHint().width()  # and it may narrow in a 1280 px window


def test_a_training_run_ends_with_its_epochs_counted_and_its_figures_named_as_the_curves(qtbot):
    from musicemb_core.training.config import FitResult
    from musicemb_gui.panels.training_panel import TrainingPanel
    from musicemb_gui.session import Session

    panel = TrainingPanel(Session())
    qtbot.addWidget(panel)
    panel._planned = 20  # as start_training sets it
    panel._finished(FitResult("m", "/nowhere", "cancelled", 1, [], {"loss": 1.6041, "val_loss": 1.5851}))
    assert panel.state.text() == "m: cancelled after 1 of 20 epochs (loss 1.604, val loss 1.585)"
    panel._planned = 1
    panel._finished(FitResult("m", "/nowhere", "done", 1, [], {}))
    assert panel.state.text() == "m: done after 1 epoch"


def test_evaluation_says_what_it_shows_before_a_run_and_its_results_are_not_editable(qtbot):
    from musicemb_gui.panels.evaluation_panel import EvaluationPanel
    from musicemb_gui.session import Session

    panel = EvaluationPanel(Session())
    qtbot.addWidget(panel)
    assert panel.metrics.toPlainText().startswith("Run evaluation")
    panel.show_result({"model": "m", "segments": 6, "tracks": 2,
                       "clustering": {"k": 2, "purity": 1.0, "ks": [2, 3], "silhouette": [0.5, 0.4],
                                      "composition": [{"cluster": 0, "size": 3, "labels": {"a": 3}}]}})
    item = panel.composition.item(0, 2)
    assert item.text() == "a 3"
    assert panel.composition.editTriggers() == panel.composition.EditTrigger.NoEditTriggers


def test_relabel_is_off_while_the_label_typed_is_the_tracks_own(qtbot):
    from musicemb_gui.panels.inspection_panel import InspectionPanel

    rows = [{"id": 5, "kind": "outlier", "segment_id": 12, "track_id": 3, "path": "/m/t.flac", "label": "techno",
             "start_s": 6.0, "end_s": 9.0, "score": 4.1, "reason": "far from its own track", "status": "open",
             "details": {}},
            {"id": 6, "kind": "label", "segment_id": None, "track_id": 4, "path": "/m/u.flac", "label": "techno",
             "start_s": 0.0, "end_s": 30.0, "score": 0.9, "reason": "label looks wrong", "status": "open",
             "details": {"suggested": "rock"}}]
    panel = InspectionPanel()
    qtbot.addWidget(panel)
    panel.set_findings(rows)
    asked = []
    panel.relabelRequested.connect(lambda fid, label: asked.append((fid, label)))
    by_id = {panel.proxy.index(r, 0).data(Qt.ItemDataRole.UserRole + 1)["id"]: r for r in range(2)}
    panel.table.selectRow(by_id[5])
    assert panel.new_label.text() == "techno" and not panel.relabel.isEnabled()  # relabelling to it did nothing
    panel.new_label.setText("house")
    assert panel.relabel.isEnabled()
    panel.relabel.click()
    assert asked == [(5, "house")]
    panel.table.selectRow(by_id[6])
    assert panel.new_label.text() == "rock" and panel.relabel.isEnabled()
    panel.table.clearSelection()
    assert not panel.relabel.isEnabled()
