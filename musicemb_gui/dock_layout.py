"""The main window's default arrangement, scaled to its size: each dock takes a share of the window, so that tables
keep rows and plots stay readable from 1280x720 to 1920x1200. (The bottom tabs keep the full width: beside the
library they would not fit a 1280 px window, and a window cannot shrink below its docks' minimum.) In a window as
short as a laptop's, Jobs is one of the bottom tabs: under the library it left the track table 4 or 5 rows."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget, QMainWindow

LIBRARY_WIDTH = (0.4, 460, 760)  # share of the window's width, least and most pixels
BOTTOM_HEIGHT = (0.4, 270)       # share of the window's height, least pixels
JOBS_HEIGHT = (0.13, 94)         # share of the window's height under the library, least pixels
SHORT_WINDOW = 960               # a window less high than this (1366x768, 1440x900) has Jobs as a bottom tab
BOTTOM_TABS = ("Training", "Evaluation", "Inspection", "Hum")


def fit_docks(win: QMainWindow, docks: dict[str, QDockWidget]) -> None:
    """Give the docks their shares of the window's current size."""
    w, h = win.width(), win.height()
    place_jobs(win, docks, tabbed=h < SHORT_WINDOW)
    share, least, most = LIBRARY_WIDTH
    win.resizeDocks([docks["Library"]], [int(min(most, max(least, share * w)))], Qt.Orientation.Horizontal)
    if h >= SHORT_WINDOW:
        jobs = int(max(JOBS_HEIGHT[1], JOBS_HEIGHT[0] * h))
        win.resizeDocks([docks["Library"], docks["Jobs"]], [h - jobs, jobs], Qt.Orientation.Vertical)
    bottom = int(max(BOTTOM_HEIGHT[1], BOTTOM_HEIGHT[0] * h))
    win.resizeDocks([docks["Training"]], [bottom], Qt.Orientation.Vertical)


def place_jobs(win: QMainWindow, docks: dict[str, QDockWidget], *, tabbed: bool) -> None:
    """Jobs under the library, or (``tabbed``) the last of the bottom tabs, the tab in front staying in front."""
    jobs = docks["Jobs"]
    if tabbed == (jobs in win.tabifiedDockWidgets(docks["Training"])):
        return
    if not tabbed:
        win.splitDockWidget(docks["Library"], jobs, Qt.Orientation.Vertical)
        return
    front = next((docks[n] for n in BOTTOM_TABS if not docks[n].visibleRegion().isEmpty()), docks["Training"])
    win.tabifyDockWidget(docks[BOTTOM_TABS[-1]], jobs)
    front.raise_()
