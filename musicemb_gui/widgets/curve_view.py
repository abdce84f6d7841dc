"""Live training curves: a loss plot and a metric plot side by side, named series appended point by point."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QVBoxLayout, QWidget

from musicemb_gui.widgets.empty_state import EmptyState

COLOURS = ("#4c9be8", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#edc948")
PANELS = ("loss", "metric")


class _Series:
    """Growable x/y arrays (capacity doubles) behind one curve."""

    def __init__(self, curve: pg.PlotDataItem):
        self.curve = curve
        self.x = np.empty(64)
        self.y = np.empty(64)
        self.n = 0

    def append(self, x: float, y: float) -> None:
        if self.n == len(self.x):
            self.x = np.concatenate([self.x, np.empty_like(self.x)])
            self.y = np.concatenate([self.y, np.empty_like(self.y)])
        self.x[self.n], self.y[self.n] = x, y
        self.n += 1
        self.curve.setData(self.x[: self.n], self.y[: self.n])


class CurveView(QWidget):
    """Training curves: series whose name contains "loss" go to the left plot, others to the right one.

    Series sharing a first word ("train loss", "train acc") share a colour; series not starting with "train"
    are also drawn with point markers, so sparse validation points stay visible. Until the first series,
    ``empty_text`` stands in place of the plots.
    """

    def __init__(self, parent: QWidget | None = None, *, x_label: str = "step", metric_label: str = "accuracy",
                 empty_text: str = "No curves yet"):
        super().__init__(parent)
        self.layout_widget = pg.GraphicsLayoutWidget()
        self.plots = {"loss": self.layout_widget.addPlot(0, 0), "metric": self.layout_widget.addPlot(0, 1)}
        for (name, plot), title in zip(self.plots.items(), ("loss", metric_label), strict=True):
            plot.setTitle(title)
            plot.setLabel("left", title)
            plot.getAxis("left").enableAutoSIPrefix(False)  # accuracy 0.3, not "300 (x0.001)"
            plot.showGrid(x=True, y=True, alpha=0.2)
            plot.setDownsampling(auto=True, mode="peak")
            plot.setClipToView(True)
            plot.addLegend(offset=(-10, 10) if name == "loss" else (-10, -10),  # loss falls, accuracy rises
                           brush=pg.mkBrush(0, 0, 0, 190))  # readable where a curve still passes under it
        self.plots["metric"].setXLink(self.plots["loss"])
        self.set_x_label(x_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.stack = EmptyState(self.layout_widget, empty_text)
        layout.addWidget(self.stack)
        self._series: dict[str, _Series] = {}
        self._colour_of: dict[str, int] = {}

    def set_x_label(self, label: str) -> None:
        """Name the shared x axis, e.g. "step" or "epoch"."""
        for plot in self.plots.values():
            plot.setLabel("bottom", label)

    def add_series(self, name: str, panel: str | None = None) -> None:
        """Create series ``name`` on ``panel`` ("loss" or "metric"; default: by name); no-op if it exists."""
        if name in self._series:
            return
        panel = panel or ("loss" if "loss" in name.lower() else "metric")
        if panel not in PANELS:
            raise ValueError(f"panel must be one of {PANELS}, got {panel!r}")
        colour = COLOURS[self._colour_of.setdefault(name.partition(" ")[0], len(self._colour_of)) % len(COLOURS)]
        markers = {} if name.startswith("train") else {"symbol": "o", "symbolSize": 6, "symbolPen": None,
                                                       "symbolBrush": colour}
        pen = pg.mkPen(colour, width=2, style=Qt.PenStyle.SolidLine if not markers else Qt.PenStyle.DashLine)
        self._series[name] = _Series(self.plots[panel].plot(name=name, pen=pen, **markers))
        self.stack.set_empty(False)

    def add_point(self, series: str, x: float, y: float) -> None:
        """Append one point to ``series`` (created on first use)."""
        self.add_series(series)
        self._series[series].append(x, y)

    def series_data(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the (x, y) points of series ``name`` (empty before its first point)."""
        s = self._series.get(name)
        if s is None:
            return np.zeros(0), np.zeros(0)
        return s.x[: s.n].copy(), s.y[: s.n].copy()

    def clear(self, message: str | None = None) -> None:
        """Remove every series (and its legend entry); show ``message`` (else the empty text) until the next."""
        for plot in self.plots.values():
            plot.clear()
        self._series.clear()
        self._colour_of.clear()
        self.stack.set_empty(True, message)
