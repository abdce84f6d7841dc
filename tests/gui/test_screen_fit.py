"""What a user reads on a laptop screen (1366x768): a status message wider than the bar, the map's legend in a short
view, the training form's fields, the time a hum file's search took, a long name in the player bar, the library's
BPM and Key columns."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("PySide6")
from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QFormLayout  # noqa: E402

from musicemb_gui.main_window import MainWindow  # noqa: E402
from musicemb_gui.panels.training_panel import TrainingPanel  # noqa: E402
from musicemb_gui.session import Session  # noqa: E402
from musicemb_gui.widgets.plain_text import tooltip  # noqa: E402
from musicemb_gui.widgets.scatter_view import LEGEND_OFFSET, MAX_LEGEND, ScatterView  # noqa: E402
from tests.gui.test_hum_confidence import StubSearcher, hum  # noqa: E402, F401 (a fixture)
from tests.gui.test_hum_panel import SR_MIC, hum_signal  # noqa: E402
from tests.gui.test_main_window import library  # noqa: E402, F401 (a fixture: two tracks and a broken file)


def test_a_status_message_wider_than_the_bar_reads_whole_on_hover(qtbot, tmp_path):
    """At 1366 px an import's summary ran under the read-only note, cut mid-word with no way to read the rest."""
    win = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    bar = win.statusBar()
    message = ("import done: 120 added, 4 updated, 2 failed, 5 tracks whose files are gone (kept; `musicemb ingest "
               "--prune` removes them)")
    bar.showMessage(message)
    assert bar.toolTip() == message
    bar.showMessage("<b>odd</b>.mp3: not a readable audio file")  # a file's name, as written
    assert bar.toolTip() == tooltip("<b>odd</b>.mp3: not a readable audio file") != bar.currentMessage()
    bar.showMessage("50 tracks")
    assert bar.toolTip() == "50 tracks"
    bar.clearMessage()
    assert bar.toolTip() == ""


def _legend(view: ScatterView) -> list[str]:
    return [label.text for _sample, label in view.legend.items]


def test_the_map_legend_keeps_to_the_views_height_and_says_how_many_more(qtbot):
    """Coloured by key (24 keys), the legend ran off the bottom of a 1366x768 window's map: its last entries and
    the "… more" line counting the others were cut off."""
    view = ScatterView()
    qtbot.addWidget(view)
    view.resize(500, 190)
    view.show()
    qtbot.waitExposed(view)
    n = 24
    xy = np.random.default_rng(0).normal(size=(480, 2)).astype(np.float32)
    view.set_points(xy, np.arange(480), np.arange(480) % n, ["#1f77b4"] * n, [f"key {i:02d}" for i in range(n)])
    qtbot.wait(50)
    shown = _legend(view)
    assert 2 <= len(shown) < MAX_LEGEND
    assert shown[-1] == f"… {n - len(shown) + 1} more (hover a point)"
    assert LEGEND_OFFSET + view.legend.geometry().height() <= view.vb.height()
    view.resize(500, 700)
    qtbot.waitUntil(lambda: len(_legend(view)) == MAX_LEGEND, timeout=2000)
    assert _legend(view)[-1] == f"… {n - MAX_LEGEND + 1} more (hover a point)"


def test_training_fields_say_what_they_are_and_their_unit(qtbot):
    """The form showed bare field names: "lr", "shift s", "neighbour s", "dim", none with a tooltip."""
    panel = TrainingPanel(Session())
    qtbot.addWidget(panel)

    def label(form, name: str) -> str:
        return form.layout_.labelForField(form.editors[name]).text()
    train, model = panel.train_form, panel.model_form
    assert [label(train, f) for f in ("lr", "shift_s", "neighbour_s", "patience", "tile_frames")] == [
        "learning rate", "shift (s)", "neighbour (s)", "patience (epochs)", "tile (frames)"]
    assert label(model, "dim") == "embedding size"
    for form in (train, model):
        for name, editor in form.editors.items():
            row_label = form.layout_.labelForField(editor)
            assert editor.toolTip().startswith(f"{name}: ") and len(editor.toolTip()) > len(name) + 10, name
            assert row_label.toolTip() == editor.toolTip()
            assert form.layout_.itemAt(form.layout_.getWidgetPosition(editor)[0],
                                       QFormLayout.ItemRole.LabelRole).widget() is row_label


def test_a_hum_file_says_how_long_its_search_took_not_since_a_stop(qtbot, hum, tmp_path):  # noqa: F811
    """A loaded file's results said "(0.41 s after you stopped)": nothing had been recorded nor stopped."""
    panel, controller = hum
    controller._searcher = StubSearcher(True)
    sf.write(tmp_path / "hum.wav", hum_signal(2.0), SR_MIC)
    with qtbot.waitSignal(controller.resultsShown, timeout=5000):
        controller.search_file(str(tmp_path / "hum.wav"))
    assert panel.state.text().startswith("2 songs, best first (searched in ") and "stopped" not in panel.state.text()
    with qtbot.waitSignal(controller.resultsShown, timeout=5000):
        controller.search(hum_signal(2.0), SR_MIC, "recording")
    assert panel.state.text().endswith(" s after you stopped).")


def test_a_long_track_name_in_the_player_bar_keeps_to_one_line_and_reads_whole_on_hover(qtbot):
    """A tagged name ("Artist & Artist – A Long Title (Extended Version)") wrapped over four lines in the bar's
    height of two: its first line and the part playing were cut off."""
    from musicemb_gui.panels.player_bar import PlayerBar

    bar = PlayerBar()
    qtbot.addWidget(bar)
    name = "Nils Frahm & Ólafur Arnalds – Four Hands in a Very Long Title (Extended Version)"
    bar.show_title(name, "15.0–18.0 s of 412.0 s")
    first, second = bar.title.text().split("\n")
    assert first.endswith("…") and name.startswith(first[:-1]) and second == "15.0–18.0 s of 412.0 s"
    fm = bar.title.fontMetrics()
    assert bar.title.heightForWidth(bar.title.width()) <= 2 * fm.lineSpacing() + 2  # two lines, no wrapping
    assert bar.title.toolTip() == f"{name}\n15.0–18.0 s of 412.0 s"
    bar.show_title("tone440.wav", "0–9.0 s of 9.0 s")
    assert bar.title.text() == "tone440.wav\n0–9.0 s of 9.0 s"
    bar.reset()
    assert bar.title.toolTip() == ""


def test_bpm_and_key_are_in_sight_in_a_laptop_window_with_a_failed_file(qtbot, tmp_path, library):  # noqa: F811
    """At 1366x768 the library table's Key column was behind a horizontal scroll (Segments and Status before it),
    further off with a failed file's long status."""
    from musicemb_gui.dock_layout import fit_docks
    from musicemb_gui.panels.track_table import COLUMNS

    win = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    win.resize(1366, 768)
    win.show()
    qtbot.waitExposed(win)
    fit_docks(win, win.docks)
    assert win.open_library(library)
    qtbot.wait(50)
    table = win.library_panel.table
    head = table.horizontalHeader()
    statuses = [table.model().index(r, COLUMNS.index("Status")).data() for r in range(table.model().rowCount())]
    assert sorted(statuses)[0].startswith("failed: ") and statuses.count("ok") == 2
    assert [COLUMNS[head.logicalIndex(v)] for v in range(len(COLUMNS))] == [
        "Track", "Length", "Label", "BPM", "Key", "Segments", "Status"]
    for name in ("Track", "Label", "BPM", "Key"):
        left = head.sectionViewportPosition(COLUMNS.index(name))
        assert left >= 0 and left + head.sectionSize(COLUMNS.index(name)) <= table.viewport().width(), name
    win.jobs.wait(10000)
