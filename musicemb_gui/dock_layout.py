"""The main window's default arrangement, scaled to its size: each dock takes a share of the window, so that tables
keep rows and plots stay readable from 1280x720 to 1920x1200. (The bottom tabs keep the full width: beside the
library they would not fit a 1280 px window, and a window cannot shrink below its docks' minimum.)"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget, QMainWindow

LIBRARY_WIDTH = (0.4, 460, 760)  # share of the window's width, least and most pixels
BOTTOM_HEIGHT = (0.4, 270)       # share of the window's height, least pixels
JOBS_HEIGHT = (0.13, 94)         # share of the window's height under the library, least pixels


def fit_docks(win: QMainWindow, docks: dict[str, QDockWidget]) -> None:
    """Give the docks their shares of the window's current size."""
    w, h = win.width(), win.height()
    share, least, most = LIBRARY_WIDTH
    win.resizeDocks([docks["Library"]], [int(min(most, max(least, share * w)))], Qt.Orientation.Horizontal)
    jobs = int(max(JOBS_HEIGHT[1], JOBS_HEIGHT[0] * h))
    win.resizeDocks([docks["Library"], docks["Jobs"]], [h - jobs, jobs], Qt.Orientation.Vertical)
    bottom = int(max(BOTTOM_HEIGHT[1], BOTTOM_HEIGHT[0] * h))
    win.resizeDocks([docks["Training"]], [bottom], Qt.Orientation.Vertical)
