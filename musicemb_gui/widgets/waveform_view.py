"""Waveform overview of one track: its min/max envelope, the part being played shaded, a moving playhead."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QVBoxLayout, QWidget

from musicemb_gui.widgets.empty_state import EmptyState


def envelope(y: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Min and max of ``y`` (n,) over ``bins`` equal slices (fewer when n < bins), each of shape (bins,)."""
    y = np.asarray(y, dtype=np.float32)
    bins = max(1, min(bins, len(y)))
    if not len(y):
        return np.zeros(1, np.float32), np.zeros(1, np.float32)
    edges = np.linspace(0, len(y), bins + 1).astype(np.int64)[:-1]
    return np.minimum.reduceat(y, edges), np.maximum.reduceat(y, edges)


class WaveformView(QWidget):
    """A track's waveform: :meth:`set_envelope`, then :meth:`set_region` and :meth:`set_playhead` in seconds."""

    def __init__(self, parent: QWidget | None = None, *, message: str = "Nothing played yet"):
        super().__init__(parent)
        self.plot_widget = pg.PlotWidget()
        self.plot = self.plot_widget.getPlotItem()
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")  # the caller says where the shaded part lies
        pen = pg.mkPen("#4c9be8")
        self.upper, self.lower = pg.PlotCurveItem(pen=pen), pg.PlotCurveItem(pen=pen)
        self.fill = pg.FillBetweenItem(self.upper, self.lower, brush=pg.mkBrush("#4c9be8"))
        self.region = pg.LinearRegionItem(movable=False, brush=pg.mkBrush(255, 213, 79, 70),
                                          pen=pg.mkPen("#ffd54f"))
        self.playhead = pg.InfiniteLine(angle=90, pen=pg.mkPen("w", width=2))
        for item in (self.fill, self.upper, self.lower, self.region, self.playhead):
            self.plot.addItem(item)
        self.stack = EmptyState(self.plot_widget, message)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.stack)
        self.duration_s = 0.0
        self.clear()

    def set_envelope(self, lo: np.ndarray, hi: np.ndarray, duration_s: float) -> None:
        """Draw the (bins,) min/max envelope spread over ``duration_s`` seconds."""
        x = np.linspace(0.0, duration_s, len(hi))
        self.upper.setData(x, np.asarray(hi, np.float32))
        self.lower.setData(x, np.asarray(lo, np.float32))
        self.duration_s = float(duration_s)
        peak = float(max(np.abs(lo).max(initial=0), np.abs(hi).max(initial=0), 1e-3))
        self.plot.setRange(xRange=(0, max(duration_s, 1e-3)), yRange=(-peak, peak), padding=0.02)
        self.stack.set_empty(False)

    def set_region(self, start_s: float, end_s: float) -> None:
        """Shade the part being played."""
        self.region.setRegion((start_s, end_s))
        self.region.show()

    def set_playhead(self, t_s: float | None) -> None:
        """Put the playhead at ``t_s`` seconds; None hides it."""
        self.playhead.setVisible(t_s is not None)
        if t_s is not None:
            self.playhead.setValue(t_s)

    def playhead_s(self) -> float | None:
        return self.playhead.value() if self.playhead.isVisible() else None

    def clear(self, message: str | None = None) -> None:
        """No track: show the message instead."""
        for curve in (self.upper, self.lower):
            curve.setData([], [])
        self.region.hide()
        self.playhead.hide()
        self.duration_s = 0.0
        self.stack.set_empty(True, message)
