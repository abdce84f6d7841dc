"""The default arrangement scales with the window: at 1280x720 the library table still shows several rows and the
map's spectrogram and the bottom tabs keep readable heights; at 1920x1200 they grow with it. A small spectrogram
elides its title and thins its frequency ticks rather than overflow."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")
from PySide6.QtCore import QSettings  # noqa: E402

from musicemb_gui.dock_layout import fit_docks  # noqa: E402
from musicemb_gui.main_window import MainWindow  # noqa: E402
from musicemb_gui.widgets.spectrogram_view import SpectrogramView  # noqa: E402


@pytest.mark.parametrize("size, rows, spectrogram_px, bottom_px",
                         [((1280, 720), 4, 110, 250), ((1920, 1200), 12, 180, 440)])
def test_docks_take_shares_of_the_window(qtbot, tmp_path, size, rows, spectrogram_px, bottom_px):
    win = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    win.resize(*size)
    qtbot.wait(50)
    assert win.width() == size[0]  # nothing forces the window wider (the library's filter rows included)
    fit_docks(win, win.docks)
    qtbot.wait(100)
    table = win.library_panel.table
    assert table.viewport().height() >= rows * table.verticalHeader().defaultSectionSize()
    assert win.map_panel.spectrogram.height() >= spectrogram_px
    assert win.docks["Training"].height() >= bottom_px


def test_a_small_spectrogram_elides_its_title_and_thins_its_ticks(qtbot):
    view = SpectrogramView()
    qtbot.addWidget(view)
    view.resize(300, 120)
    view.show()
    title = "A rather long artist name – and an even longer title of the track @ 12.0 s"
    view.set_spectrogram(np.zeros((128, 50)), sr=16000, hop_length=512, fmin=0.0, fmax=8000.0, title=title)
    shown = view.plot.titleLabel.text
    assert "…" in shown and len(shown) < len(title) and view.toolTip() == title
    qtbot.wait(20)
    assert view.plot.geometry().width() <= view.width() + 1  # the colour bar stays in view
    assert 3 <= len(view.plot.getAxis("left")._tickLevels[0]) <= 120 // 20
    view.resize(900, 600)
    qtbot.wait(20)
    assert view.plot.titleLabel.text == title and len(view.plot.getAxis("left")._tickLevels[0]) > 6
