"""Labels, track and file names are shown as written: a label "<b>x</b>" showed in bold (its tags gone) and "x<y"
lost what followed the "<" in the map legend, the map's status line, the inspection evidence title, spectrogram
titles and the messages in place of a spectrogram."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")
from PySide6.QtCore import Qt  # noqa: E402

from musicemb_gui.panels.evaluation_panel import metrics_html  # noqa: E402
from musicemb_gui.panels.inspection_panel import InspectionPanel  # noqa: E402
from musicemb_gui.panels.player_bar import PlayerBar  # noqa: E402
from musicemb_gui.widgets.scatter_view import ScatterView  # noqa: E402
from musicemb_gui.widgets.spectrogram_view import SpectrogramView  # noqa: E402
from tests.gui.helpers import shown_window  # noqa: E402

ODD = ["<b>x</b>", "a < b", "x<y & z"]


def _plain(label, text: str) -> bool:
    return label.text() == text and label.textFormat() == Qt.TextFormat.PlainText


def test_the_map_legend_shows_labels_as_written(qtbot):
    view = ScatterView()
    qtbot.addWidget(view)
    view.set_points(np.zeros((3, 2), np.float32), np.arange(3, dtype=np.int64), np.arange(3),
                    ["#e41a1c", "#377eb8", "#4daf4a"], ODD)
    assert [label.item.toPlainText() for _sample, label in view.legend.items] == ODD


def test_a_spectrogram_title_and_the_message_in_its_place_show_names_as_written(qtbot):
    view = SpectrogramView()
    qtbot.addWidget(view)
    view.resize(900, 300)
    view.set_image(np.zeros((8, 10), np.float32), hop_s=0.01, row_hz=np.geomspace(20, 8000, 8), unit="dB",
                   title="<b>x</b> & a < b @ 3.0 s")
    assert view.plot.titleLabel.item.toPlainText() == "<b>x</b> & a < b @ 3.0 s"
    view.stack.set_empty(True, "No spectrogram of <b>x</b> @ 3.0 s: file not found")
    assert _plain(view.stack.label, "No spectrogram of <b>x</b> @ 3.0 s: file not found")


def test_the_inspection_evidence_title_names_the_label_as_written(qtbot):
    panel = InspectionPanel()
    qtbot.addWidget(panel)
    panel.set_findings([{"id": 1, "kind": "label", "segment_id": None, "track_id": 7, "path": "/m/a.flac",
                         "label": "a < b", "start_s": 0.0, "end_s": 30.0, "score": 0.9, "reason": "label looks wrong",
                         "status": "open", "details": {"suggested": "<b>x</b>", "example_segment_id": 71,
                                                       "segments": [{"segment_id": 71, "start_s": 0.0, "end_s": 3.0,
                                                                     "p": 0.9}]}}])
    panel.table.selectRow(0)
    assert _plain(panel.evidence_title, "Segments that sound most like '<b>x</b>':")


def test_the_map_status_line_and_more_like_this_title_and_the_player_show_names_as_written(qtbot, tmp_path):
    windows = shown_window(qtbot, tmp_path)
    win = next(windows)
    win.map_controller.status.emit("<b>x</b>: this segment has no embedding yet")
    assert _plain(win.map_panel.status, "<b>x</b>: this segment has no embedding yet")
    assert win.map_panel.similar_title.textFormat() == Qt.TextFormat.PlainText
    assert win.training_panel.state.textFormat() == win.evaluation_panel.state.textFormat() == Qt.TextFormat.PlainText
    next(windows, None)
    bar = PlayerBar()
    qtbot.addWidget(bar)
    bar.title.setText("<b>x</b> – a < b")
    assert _plain(bar.title, "<b>x</b> – a < b")


def test_the_evaluation_figures_name_the_model_as_written():
    html = metrics_html({"model": "<b>m</b>", "segments": 3, "tracks": 2, "clustering": {"k": 2, "ks": [2, 3], "purity": None}})
    assert "&lt;b&gt;m&lt;/b&gt;" in html and "<b>m</b>" not in html


def _as_shown(tip: str) -> str:
    """What a tooltip shows: Qt renders it as HTML when it looks like HTML."""
    from PySide6.QtGui import Qt as G
    from PySide6.QtGui import QTextDocument

    if not G.mightBeRichText(tip):
        return tip
    doc = QTextDocument()
    doc.setHtml(tip)
    return doc.toPlainText().replace("\u2028", "\n")


def test_tooltips_show_paths_and_messages_as_written(qtbot):
    """A file "<b>x</b>.mp3" showed "x.mp3" in bold on hover in the library table, the hum results, the set and the
    spectrogram; a job's message likewise."""
    from musicemb_gui.panels.hum_panel import HumPanel
    from musicemb_gui.panels.library_panel import LibraryPanel
    from musicemb_gui.widgets.plain_text import tooltip

    odd = "/music/<b>x</b> & <i>y</i>.mp3"
    assert _as_shown(tooltip(odd)) == odd and _as_shown(tooltip(odd + "\nsounds like: rock")) == odd + "\nsounds like: rock"
    assert tooltip("/music/plain.mp3") == "/music/plain.mp3"  # plain text stays as it was
    library = LibraryPanel()
    qtbot.addWidget(library)
    library.set_rows([(1, odd, 200.0, "", 3, "ok")])
    assert _as_shown(library.proxy.index(0, 0).data(Qt.ItemDataRole.ToolTipRole)) == odd
    hum = HumPanel(recorder_factory=lambda **kw: None)
    qtbot.addWidget(hum)
    hum.set_results([{"track_id": 1, "path": odd, "label": "", "score": 0.9, "segment_id": 3, "start_s": 1.0}])
    assert _as_shown(hum.results.item(0, 2).toolTip()) == odd
    hum.state.setText("cannot read <b>x</b>.mp3")
    assert hum.state.textFormat() == Qt.TextFormat.PlainText
    view = SpectrogramView()
    qtbot.addWidget(view)
    view.set_image(np.zeros((8, 10), np.float32), hop_s=0.01, row_hz=np.geomspace(20, 8000, 8), unit="dB", title=odd)
    assert _as_shown(view.toolTip()) == odd
