"""Confusion matrix heatmap: true classes down, predicted across, counts in the cells, a hover readout."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from musicemb_gui.widgets.empty_state import EmptyState
from musicemb_gui.widgets.plain_text import tooltip

HINT = "hover a cell for its count"
MAX_CHARS = 24  # longer class names are cut, with an ellipsis (the readout shows them whole)


def abbreviate(label: str, max_chars: int = MAX_CHARS) -> str:
    """``label`` cut to ``max_chars`` characters, ending in an ellipsis when cut."""
    return label if len(label) <= max_chars else label[: max_chars - 1] + "…"


class ClassAxis(pg.AxisItem):
    """Class names at the cell centres, sized to fit them; a bottom axis draws them reading upwards if crowded."""

    def __init__(self, orientation: str):
        super().__init__(orientation)
        self.setTickFont(QFont())
        self.setStyle(autoExpandTextSpace=False)
        self.rotated = False

    def set_labels(self, labels: list[str]) -> None:
        """Tick the cells with their (abbreviated) labels and reserve room for the widest one."""
        labels = [abbreviate(s) for s in labels]
        metrics = QFontMetricsF(self.style["tickFont"])
        widest = int(max((metrics.horizontalAdvance(s) for s in labels), default=0)) + 4
        self._labels, self._step, self._line = labels, 0, int(metrics.height())
        if self.orientation == "left":
            self.setStyle(tickTextWidth=widest)
        else:
            self._widest, self._n = widest, len(labels)
            self._update_rotation()
        self._update_ticks()

    def _update_ticks(self) -> None:
        """Every cell's label where a line of text fits across a cell, else every ``step``-th one (60 labels in
        a small panel wrote them over each other)."""
        labels = getattr(self, "_labels", [])
        view = self.linkedView()
        if not labels or view is None:
            return
        px = view.viewPixelSize()[1 if self.orientation == "left" else 0] if view.width() > 0 else 0.0
        across = self.orientation == "left" or self.rotated  # the text's line height lies along the axis
        step = max(1, math.ceil((self._line + 2) * px)) if across and px > 0 else 1
        if step != self._step:
            self._step = step
            self.setTicks([[(i + 0.5, s) for i, s in enumerate(labels) if i % step == 0]])

    def _update_rotation(self) -> None:
        """Bottom labels read upwards when the widest does not fit in a cell at the current width."""
        if self.orientation == "left" or not getattr(self, "_n", 0):
            return
        view = self.linkedView()
        px = view.viewPixelSize()[0] if view is not None and view.width() > 0 else 0.0
        cell_px = 1.0 / px if px > 0 else 0.0  # a cell is one view unit wide
        rotated = self._widest > cell_px
        if rotated == self.rotated and self.style.get("tickTextHeight") is not None:
            return
        self.rotated = rotated
        # hideOverlappingLabels: keep end labels even where their unrotated text would overflow the axis
        self.setStyle(tickTextHeight=self._widest if rotated else self._line, hideOverlappingLabels=self._widest)

    def linkedViewChanged(self, view, newRange=None):  # noqa: N802 (pyqtgraph override)
        super().linkedViewChanged(view, newRange)
        self._update_rotation()
        self._update_ticks()

    def drawPicture(self, p, axisSpec, tickSpecs, textSpecs):
        if not self.rotated:
            super().drawPicture(p, axisSpec, tickSpecs, textSpecs)
            return
        super().drawPicture(p, axisSpec, tickSpecs, [])
        p.setFont(self.style["tickFont"])
        p.setPen(self.textPen())
        for rect, _flags, text in textSpecs:
            p.save()
            p.translate(rect.center().x(), rect.top())
            p.rotate(-90)  # text runs upwards and ends just below its tick
            p.drawText(QRectF(-self.style["tickTextHeight"], -rect.height() / 2, self.style["tickTextHeight"],
                              rect.height()), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, text)
            p.restore()


class CellCounts(pg.GraphicsObject):
    """Every cell's count in one item, centred in its cell at a fixed font size (white on dark colours, black on
    light ones); none while the cells are too small to hold the longest (one TextItem per cell took 12 s to make
    for 100 labels, and 10 s to remove)."""

    def __init__(self):
        super().__init__()
        self.texts: list[str] = []
        self.dark = np.zeros(0, bool)
        self.font = QFont()

    def set_counts(self, cm: np.ndarray, dark: np.ndarray, font: QFont) -> None:
        self.prepareGeometryChange()
        self.texts, self.dark, self.font = [str(n) for n in cm.ravel()], dark, font
        self.update()

    def fits(self, transform) -> bool:
        """Whether the longest count fits in a cell drawn through ``transform`` (view to device)."""
        cell = transform.mapRect(QRectF(0, 0, 1, 1))
        metrics = QFontMetricsF(self.font)
        widest = max((metrics.horizontalAdvance(t) for t in self.texts), default=0.0)
        return widest + 2 <= cell.width() and metrics.height() <= cell.height()

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt override)
        k = math.isqrt(len(self.texts))
        return QRectF(0, 0, k, k)

    def paint(self, p, *_args) -> None:
        tr = p.transform()
        if not self.texts or not self.fits(tr):
            return
        k = math.isqrt(len(self.texts))
        p.resetTransform()  # text in device pixels: the view's scale would stretch it
        p.setFont(self.font)
        pens = (QColor("black"), QColor("white"))
        for idx, text in enumerate(self.texts):
            p.setPen(pens[bool(self.dark[idx])])
            p.drawText(tr.mapRect(QRectF(idx % k, idx // k, 1, 1)), Qt.AlignmentFlag.AlignCenter, text)


class ConfusionView(QWidget):
    """A (k, k) confusion matrix; colour is the fraction of each true class (or the count), text the count;
    ``empty_text`` in its place until there is one."""

    def __init__(self, parent: QWidget | None = None, *, colormap: str = "viridis",
                 empty_text: str = "No confusion matrix to show"):
        super().__init__(parent)
        self.plot_widget = pg.PlotWidget(axisItems={"bottom": ClassAxis("bottom"), "left": ClassAxis("left")})
        self.plot = self.plot_widget.getPlotItem()
        self.plot.invertY(True)  # first true class at the top, as confusion matrices are read
        # cells fill the space (not square): a short dock still gives cells tall enough to read
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.setLabel("bottom", "predicted")
        self.plot.setLabel("left", "true")
        self.image = pg.ImageItem(axisOrder="row-major")  # image[true, predicted]
        self.plot.addItem(self.image)
        self.colormap = pg.colormap.get(colormap)
        self.colorbar = pg.ColorBarItem(colorMap=self.colormap, values=(0, 1), interactive=False,
                                        colorMapMenu=False)
        self.colorbar.setImageItem(self.image, insert_in=self.plot)
        self.readout = QLabel(HINT)
        self.readout.setTextFormat(Qt.TextFormat.PlainText)  # labels such as "<3" or "<b>" read as written
        self.readout.setIndent(6)
        page = QWidget()
        inner = QVBoxLayout(page)
        inner.setContentsMargins(0, 0, 0, 0)
        inner.addWidget(self.plot_widget)
        inner.addWidget(self.readout)
        self.stack = EmptyState(page, empty_text)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.stack)
        self._cm = np.zeros((0, 0), dtype=np.int64)
        self._frac = np.zeros((0, 0))
        self._labels: list[str] = []
        self._idle = HINT  # the readout when no cell is hovered
        self.counts = CellCounts()
        self.plot.addItem(self.counts)
        self.plot.scene().sigMouseMoved.connect(self._on_mouse_moved)

    def set_matrix(self, cm: np.ndarray, labels: list[str], *, normalise_rows: bool = True, title: str = "") -> None:
        """Show ``cm[true, predicted]`` counts; colour by row fraction, or by count if not ``normalise_rows``."""
        cm = np.asarray(cm, dtype=np.int64)
        k = len(labels)
        if k == 0 or cm.shape != (k, k):
            raise ValueError(f"expected a ({k}, {k}) matrix for {k} labels, got shape {cm.shape}")
        self._cm, self._labels = cm, list(labels)
        self._frac = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        top = max(int(cm.max(initial=0)), 1)
        self.image.setImage((self._frac if normalise_rows else cm).astype(np.float32), autoLevels=False)
        self.image.setRect(QRectF(0, 0, k, k))
        self.colorbar.setLevels((0.0, 1.0) if normalise_rows else (0.0, float(top)))
        self.colorbar.getAxis("left").setLabel("fraction of true class" if normalise_rows else "count")
        self._write_counts(self._frac if normalise_rows else cm / top)
        self.plot.getAxis("bottom").set_labels(self._labels)
        self.plot.getAxis("left").set_labels(self._labels)
        self.plot.setRange(xRange=(0, k), yRange=(0, k), padding=0)
        self._idle = f"{title} — {HINT}" if title else HINT  # a title line would cost the cells their height
        self.readout.setText(self._idle)
        self.stack.set_empty(False)

    def clear(self) -> None:
        """Show no matrix."""
        self._cm, self._frac, self._labels = np.zeros((0, 0), dtype=np.int64), np.zeros((0, 0)), []
        self.image.clear()
        self.counts.set_counts(self._cm, np.zeros(0, bool), QFont())
        for axis in ("bottom", "left"):
            self.plot.getAxis(axis).set_labels([])
        self.readout.setText("")
        self.stack.set_empty(True)

    def counts_written(self) -> bool:
        """Whether the cells are big enough at this size to hold the counts (else the readout alone tells them)."""
        return self.counts.fits(self.counts.sceneTransform() * self.plot_widget.viewportTransform())

    def cell_text(self, i: int, j: int) -> str:
        """The text written in cell (true ``i``, predicted ``j``)."""
        return self.counts.texts[i * len(self._labels) + j]

    def hover_text(self, i: int, j: int) -> str:
        """The readout for cell (true ``i``, predicted ``j``)."""
        return (f"true {self._labels[i]} -> predicted {self._labels[j]}: "
                f"{self._cm[i, j]} ({100 * self._frac[i, j]:.1f} %)")

    def _write_counts(self, values: np.ndarray) -> None:
        """Each cell's count; ``values`` in [0, 1] pick white text on dark colours, black on light ones."""
        k = len(self._labels)
        rgba = self.colormap.map(values.ravel(), mode=pg.ColorMap.FLOAT)
        font = QFont()
        font.setPointSize(max(7, min(11, 96 // max(k, 1))))
        self.counts.set_counts(self._cm, rgba[:, :3] @ np.array([0.2126, 0.7152, 0.0722]) < 0.5, font)

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        k = len(self._labels)
        pos = self.plot.vb.mapSceneToView(scene_pos)
        i, j = math.floor(pos.y()), math.floor(pos.x())
        text = self.hover_text(i, j) if k and 0 <= i < k and 0 <= j < k else ""
        self.readout.setText(text or self._idle)
        self.plot_widget.setToolTip(tooltip(text))
