"""The main window's default arrangement, scaled to its size: the library and the jobs fill the left side from top
to bottom, the bottom tabs (training, evaluation, inspection, hum) sit under the map only, and each takes a share
of the window, so that tables keep rows and plots stay readable from 1280x720 to 1920x1200."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget, QMainWindow

LIBRARY_WIDTH = (0.4, 460, 760)  # share of the window's width, least and most pixels
BOTTOM_HEIGHT = (0.42, 280)      # share of the window's height, least pixels
JOBS_HEIGHT = (0.2, 130)         # share of the window's height under the library, least pixels


def claim_left_corners(win: QMainWindow) -> None:
    """The left docks run the full height; the bottom docks only span the map."""
    for corner in (Qt.Corner.TopLeftCorner, Qt.Corner.BottomLeftCorner):
        win.setCorner(corner, Qt.DockWidgetArea.LeftDockWidgetArea)


def fit_docks(win: QMainWindow, docks: dict[str, QDockWidget]) -> None:
    """Give the docks their shares of the window's current size."""
    w, h = win.width(), win.height()
    share, least, most = LIBRARY_WIDTH
    win.resizeDocks([docks["Library"]], [int(min(most, max(least, share * w)))], Qt.Orientation.Horizontal)
    jobs = int(max(JOBS_HEIGHT[1], JOBS_HEIGHT[0] * h))
    win.resizeDocks([docks["Library"], docks["Jobs"]], [h - jobs, jobs], Qt.Orientation.Vertical)
    bottom = int(max(BOTTOM_HEIGHT[1], BOTTOM_HEIGHT[0] * h))
    win.resizeDocks([docks["Training"]], [bottom], Qt.Orientation.Vertical)
