"""The default arrangement scales with the window: at 1280x720 the library table still shows several rows and the
map's spectrogram and the bottom tabs keep readable heights; at 1920x1200 they grow with it."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
from PySide6.QtCore import QSettings  # noqa: E402

from musicemb_gui.dock_layout import fit_docks  # noqa: E402
from musicemb_gui.main_window import MainWindow  # noqa: E402


@pytest.mark.parametrize("size, rows, spectrogram_px, bottom_px",
                         [((1280, 720), 4, 110, 250), ((1920, 1200), 12, 180, 440)])
def test_docks_take_shares_of_the_window(qtbot, tmp_path, size, rows, spectrogram_px, bottom_px):
    win = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    win.resize(*size)
    qtbot.wait(50)
    fit_docks(win, win.docks)
    qtbot.wait(100)
    table = win.library_panel.table
    assert table.viewport().height() >= rows * table.verticalHeader().defaultSectionSize()
    assert win.map_panel.spectrogram.height() >= spectrogram_px
    assert win.docks["Training"].height() >= bottom_px
