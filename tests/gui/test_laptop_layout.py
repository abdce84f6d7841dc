"""The window on a 1366x768 laptop: the library table keeps rows (Jobs is a bottom tab there, named in the status bar
while jobs run behind another tab), the empty neighbour list and model picker say what they are for, and a finding's
long reason is read whole in its row, not cut off."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("PySide6")
pytestmark = pytest.mark.serial  # the docks are fitted once the shown window has settled
from PySide6.QtCore import QRect, QSettings, Qt  # noqa: E402
from PySide6.QtWidgets import QStyleOptionViewItem  # noqa: E402

from musicemb_core.common.progress import Progress  # noqa: E402
from musicemb_core.workflows.models import ModelEntry  # noqa: E402
from musicemb_gui.main_window import MainWindow  # noqa: E402
from musicemb_gui.panels import map_panel, model_picker  # noqa: E402
from musicemb_gui.panels.findings_table import REASON  # noqa: E402
from musicemb_gui.panels.inspection_panel import InspectionPanel  # noqa: E402


def _window(qtbot, settings_path, size) -> MainWindow:
    """A first run's window shown at ``size`` (its docks fitted to it)."""
    win = MainWindow(QSettings(str(settings_path), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    win.resize(*size)
    win.show()
    qtbot.waitExposed(win)
    qtbot.wait(100)
    return win


def _rows_shown(win: MainWindow) -> float:
    table = win.library_panel.table
    return table.viewport().height() / table.verticalHeader().defaultSectionSize()


def _tabbed(win: MainWindow) -> bool:
    return win.docks["Jobs"] in win.tabifiedDockWidgets(win.docks["Training"])


def _in_sight(dock) -> bool:
    return not dock.visibleRegion().isEmpty()


@pytest.mark.parametrize("size, rows, tabbed", [((1366, 768), 10, True), ((1280, 720), 9, True),
                                                ((1920, 1080), 14, False)])
def test_the_library_table_keeps_rows_in_a_laptop_window(qtbot, tmp_path, size, rows, tabbed):
    """At 1366x768 the four control rows, the Jobs dock under the library and the bottom tabs left the track table
    5 rows. Jobs is now a bottom tab in a window that short (Training still in front); at 1920x1080 it stays under
    the library."""
    win = _window(qtbot, tmp_path / "s.ini", size)
    assert win.size().toTuple() == size
    # the docks are fitted once the shown window's size has settled (later than 100 ms on a loaded machine)
    # (Jobs may be out of sight for a moment under the library before the fit: CI failed on that moment)
    def laid_out() -> bool:
        return (_rows_shown(win) >= rows and _tabbed(win) is tabbed and _in_sight(win.docks["Training"])
                and _in_sight(win.docks["Jobs"]) is not tabbed)

    qtbot.waitUntil(laid_out, timeout=10000)
    qtbot.wait(200)  # and it stays so
    assert laid_out(), (_rows_shown(win), _tabbed(win), _in_sight(win.docks["Jobs"]))


def test_a_saved_layout_is_restored_not_arranged_again(qtbot, tmp_path):
    """The user put Jobs back under the library in a laptop's window: the next start shows it there."""
    win = _window(qtbot, tmp_path / "s.ini", (1366, 768))
    win.splitDockWidget(win.docks["Library"], win.docks["Jobs"], Qt.Orientation.Vertical)
    win.docks["Inspection"].raise_()
    qtbot.wait(50)
    win.close()
    again = _window(qtbot, tmp_path / "s.ini", (1366, 768))
    assert not _tabbed(again) and _in_sight(again.docks["Jobs"]) and _in_sight(again.docks["Inspection"])


def test_jobs_running_behind_another_tab_are_named_in_the_status_bar(qtbot, tmp_path):
    """With Jobs a bottom tab, an import's progress was out of sight: the status bar names the job, and its button
    brings the Jobs tab forward."""
    win = _window(qtbot, tmp_path / "s.ini", (1366, 768))
    release = threading.Event()

    def factory(token):
        while not (release.is_set() or token.cancelled):
            yield Progress("wait", 0, None)
            release.wait(0.02)
    job = win.jobs.submit("import 3 item(s)", factory)
    button = win.jobs_button
    qtbot.waitUntil(button.isVisible, timeout=2000)
    assert button.text() == "Running: import 3 item(s) ▸"
    second = win.jobs.submit("UMAP map", factory)
    qtbot.waitUntil(lambda: button.text() == "Running: 2 jobs ▸", timeout=2000)
    button.click()
    qtbot.waitUntil(lambda: _in_sight(win.docks["Jobs"]) and not button.isVisible(), timeout=2000)
    win.docks["Training"].raise_()
    qtbot.waitUntil(button.isVisible, timeout=2000)
    release.set()
    qtbot.waitUntil(lambda: job.state == second.state == "done" and not button.isVisible(), timeout=5000)


def test_the_nearest_segments_list_says_what_it_is_for_until_a_point_is_clicked(qtbot, tmp_path):
    """It was an empty table under its header, nothing saying to click a point."""
    win = _window(qtbot, tmp_path / "s.ini", (1366, 768))
    mp, hint = win.map_panel, map_panel.NEIGHBOURS_HINT
    box = mp.neighbours_box
    assert box.empty and box.label.text() == hint and box.label.isVisible()
    row = {"segment_id": 5, "score": 0.9, "path": "/music/a.flac", "start_s": 3.0, "name": "a.flac"}
    mp._show_neighbours(1, [row])
    assert not box.empty and mp.neighbours.isVisible() and mp.neighbours.rowCount() == 1
    mp.clear_lists()  # another model chosen: its neighbours are void
    assert box.empty and box.label.text() == hint
    mp._show_neighbours(1, [])  # a library of one track: no segment of another
    assert box.empty and box.label.text() == map_panel.NO_NEIGHBOURS


def test_the_model_picker_says_what_it_is_while_no_library_is_open(qtbot):
    """It was an empty, greyed box; with a library's models it is as narrow as their names again."""
    picker, placeholder = model_picker.ModelPicker(), "Model: open a library"
    qtbot.addWidget(picker)
    picker.show()
    assert picker.placeholderText() == placeholder and picker.currentIndex() == -1 and not picker.isEnabled()
    empty_width = picker.minimumSizeHint().width()
    assert empty_width >= picker.fontMetrics().horizontalAdvance(placeholder)
    assert "Open a library" in picker.toolTip()
    picker.set_entries([ModelEntry("similarity", "built-in", None, "", True, "")], "similarity")
    assert picker.placeholderText() == "" and picker.currentText() == "similarity" and picker.isEnabled()
    assert picker.minimumSizeHint().width() < empty_width and "Open a library" not in picker.toolTip()
    picker.set_entries([], "")
    assert picker.placeholderText() == placeholder and picker.currentText() == ""


def _finding(i: int, reason: str) -> dict:
    return {"id": i, "kind": "label", "segment_id": None, "track_id": i, "path": f"/music/t{i}.flac",
            "label": "folk", "start_s": 0.0, "end_s": 20.0, "score": 1.0 - i / 10, "reason": reason,
            "status": "open", "details": {}}


def test_a_findings_reason_is_read_whole_in_its_row(qtbot):
    """At 1280 px a three-line reason showed two lines and the top of a third; now each row in view is as tall as
    its reason needs (a short one stays one line), three lines at most, a longer one ending in "…"."""
    panel = InspectionPanel()
    qtbot.addWidget(panel)
    panel.resize(800, 500)
    panel.show()
    qtbot.waitExposed(panel)
    label = "label looks wrong: 'folk', probably 'rock' (98 % probability, 100 % of its segments disagree)"
    panel.set_findings([_finding(1, "short"), _finding(2, label), _finding(3, "very long, " * 40)])
    table, fm = panel.table, panel.table.fontMetrics()
    for _ in range(3):  # the Reason column (it stretches) as narrow as at 1280 px: the label's reason on 3 lines
        panel.resize(panel.width() + fm.horizontalAdvance(label) // 3 + 40 - table.columnWidth(REASON), 500)
        qtbot.wait(50)

    def height(finding_id: int) -> int:
        return table.rowHeight(next(r for r in range(3) if panel._finding(r)["id"] == finding_id))
    need = fm.boundingRect(QRect(0, 0, table.columnWidth(REASON) - 8, 1000), Qt.TextFlag.TextWordWrap, label)
    assert need.height() >= 3 * fm.lineSpacing()
    assert height(2) >= need.height() > height(1)
    assert height(1) < 2 * fm.lineSpacing()
    assert height(3) < 4 * fm.lineSpacing()  # three lines at most
    option = QStyleOptionViewItem()
    table.itemDelegateForColumn(REASON).initStyleOption(option, panel.proxy.index(0, REASON))
    assert option.textElideMode == Qt.TextElideMode.ElideRight
