"""Embedding map: per-category scatter with level of detail, hit-testing, selection, highlights and links.

Points are drawn with one pyqtgraph ``ScatterPlotItem`` per category (one shared brush, pxMode, no outline).
When more than ``lod_threshold`` shown points fall inside the view, a density image (2-D histogram over the
view at about screen resolution, log-scaled, coloured by the majority category) replaces them; it is
recomputed on pan/zoom at most every 30 ms (QTimer). Hit-testing goes through a ``cKDTree`` built once per
:meth:`ScatterView.set_points`. Points with a NaN or infinite coordinate are neither drawn nor hit.
"""

from __future__ import annotations

import html
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from matplotlib.path import Path
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainterPath, QPolygonF
from PySide6.QtWidgets import QGraphicsPathItem, QVBoxLayout, QWidget
from scipy.spatial import cKDTree

from musicemb_gui.widgets.empty_state import EmptyState
from musicemb_gui.widgets.scatter_items import MapViewBox, SharedStyleScatter

SELECT_MODES = ("box", "lasso", "none")


MAX_LEGEND = 12  # entries: a legend of 300 genres covered the whole map
LEGEND_OFFSET = 10  # pixels between the legend and the view's top left corner
LEGEND_CHARS = 32  # a longer name is cut ("…"; whole in a point's tooltip): a long label's legend covered the map


def legend_entries(palette: list[str], names: list[str], counts: np.ndarray,
                   most: int = MAX_LEGEND) -> list[tuple[str, str]]:
    """(colour, name) of the categories, at most ``most``: the largest, in their own order, and a last line
    counting the others. A "(none)", "(no tempo)"... with no point is left out (every track labelled listed
    "(none)"); an empty band of a ramp (BPM) stays, the scale reads on."""
    shown = [i for i in range(min(len(palette), len(names))) if counts[i] > 0 or not names[i].startswith("(")]
    if len(shown) <= most:
        return [(palette[i], names[i]) for i in shown]
    keep = set(sorted(shown, key=lambda i: -counts[i])[: most - 1])
    rest = len(shown) - len(keep)
    return [(palette[i], names[i]) for i in shown if i in keep] + [("#00000000", f"… {rest} more (hover a point)")]


def index_points(xy: np.ndarray, ids: np.ndarray) -> dict:
    """What :meth:`ScatterView.set_points` finds of the points: those with a position, a search tree of them, their
    bounds and orders by id and by x. Plain arrays (no Qt): made on a worker thread for a big map (the tree of 1.6M
    points takes 1.4 s, the GIL released)."""
    xy = np.ascontiguousarray(xy, dtype=np.float32).reshape(-1, 2)
    ids = np.asarray(ids, dtype=np.int64)
    if ids.shape != (len(xy),):
        raise ValueError(f"ids must have shape ({len(xy)},) (one per point), got {ids.shape}")
    finite = np.isfinite(xy).all(1)
    placed = np.flatnonzero(finite)
    by_id = np.argsort(ids, kind="stable")
    by_x = np.argsort(xy[:, 0], kind="stable")
    return {"xy": xy, "ids": ids, "placed": placed, "tree": cKDTree(xy[placed]) if len(placed) else None,
            "bounds": (xy[placed].min(0), xy[placed].max(0)) if len(placed) else None,
            "id_order": by_id[finite[by_id]], "x_order": by_x[finite[by_x]]}


def _as_categories(categories, palette: list[str], n: int) -> np.ndarray:
    cat = np.asarray(categories, dtype=np.int64)
    if cat.shape != (n,):
        raise ValueError(f"categories must have shape ({n},) (one per point), got {cat.shape}")
    if n and (cat.min() < 0 or cat.max() >= len(palette)):
        raise ValueError(f"categories must lie in [0, {len(palette)}) (one palette colour each)")
    return cat


class ScatterView(QWidget):
    """Zoomable 2-D map of up to millions of points coloured by category; with no points, ``empty_text``.

    Parameters
    ----------
    lod_threshold : show a density image instead of points when more shown points than this are in view.
    point_size : marker diameter in pixels.
    hover_px, click_px : hit radius in pixels for hovering and clicking.
    bin_px : density image bin size in screen pixels.

    Signals
    -------
    hovered(int) : id under the cursor, -1 when none (emitted on change); ``tooltip_fn(id)`` is shown beside
        the point for as long as the cursor stays on it.
    pointClicked(int) : id nearest a left click (nothing when no point is within ``click_px``).
    selectionChanged(object) : ``np.ndarray`` of ids inside a box or lasso selection.
    """

    hovered = Signal(int)
    pointClicked = Signal(int)
    selectionChanged = Signal(object)

    def __init__(self, parent: QWidget | None = None, *, lod_threshold: int = 300_000,
                 point_size: float = 4.0, hover_px: float = 6.0, click_px: float = 8.0, bin_px: int = 2,
                 empty_text: str = "No points to show"):
        super().__init__(parent)
        self.lod_threshold, self.point_size = lod_threshold, point_size
        self.hover_px, self.click_px, self.bin_px = hover_px, click_px, bin_px
        self.tooltip_fn: Callable[[int], str] | None = None
        self.vb = MapViewBox(self)
        self.vb.setAspectLocked(True)
        self.plot = pg.PlotWidget(viewBox=self.vb)
        self.stack = EmptyState(self.plot, empty_text)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.stack)
        self.scatter_items: list[SharedStyleScatter] = []
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.link_item = pg.PlotCurveItem(pen=pg.mkPen("#ffd54f", width=1.5))
        self.ring_item = SharedStyleScatter(pxMode=True, size=point_size + 7, brush=None,
                                             pen=pg.mkPen("w", width=1.5))
        self._outline = QGraphicsPathItem()
        self._outline.setPen(pg.mkPen("w", width=1, style=Qt.PenStyle.DashLine, cosmetic=True))
        self.hover_label = pg.TextItem(color="#f0f0f0", fill=pg.mkBrush(30, 30, 30, 220),
                                       border=pg.mkPen("#9a9a9a"))
        self.hover_label.hide()
        self.hover_label.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        for z, item in enumerate((self.image_item, self.link_item, self.ring_item, self._outline,
                                  self.hover_label)):
            item.setZValue(100 * z - 10)  # the density image below the points, overlays above
            self.vb.addItem(item, ignoreBounds=True)
        self.legend = pg.LegendItem(offset=(LEGEND_OFFSET, LEGEND_OFFSET))
        self.legend.setParentItem(self.vb)
        self._legend_of: tuple = ([], [], np.zeros(0, np.int64))  # palette, names, counts of the categories
        self._legend_shown: list[tuple[str, str]] = []
        self.vb.sigResized.connect(lambda *_: self._fit_legend())
        self.plot.getPlotItem().hideButtons()  # auto-range ignores our items; use reset_view()
        self._timer = QTimer(self, singleShot=True, interval=30, timeout=self.refresh)
        self.vb.sigRangeChanged.connect(self._schedule_refresh)
        self._fit = True  # whole map in view until the user pans or zooms; kept through resizes
        self.vb.sigRangeChangedManually.connect(lambda *_: setattr(self, "_fit", False))
        self.vb.sigResized.connect(lambda *_: self._fit and self.reset_view())
        self.plot.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self._select_mode = "none"
        self._lasso: list[QPointF] = []
        self.set_points(np.zeros((0, 2), np.float32), np.zeros(0, np.int64), np.zeros(0, int), [])

    def set_points(self, xy: np.ndarray, ids: np.ndarray, categories: np.ndarray, palette: list[str],
                   category_names: list[str] | None = None, *, index: dict | None = None) -> None:
        """Replace all points: ``xy`` (n, 2) float32, ``ids`` (n,) int64, ``categories`` (n,) into palette;
        ``index``: :func:`index_points` of ``xy`` and ``ids`` when made already (on a worker thread)."""
        index = index or index_points(xy, ids)
        xy, ids = index["xy"], index["ids"]
        categories = _as_categories(categories, palette, len(xy))
        self._xy, self._ids, self._placed = xy, ids, index["placed"]  # rows with a position
        self._tree, self._bounds = index["tree"], index["bounds"]
        self._id_order, self._x_order = index["id_order"], index["x_order"]
        self._ids_sorted = ids[self._id_order]
        self._mask: np.ndarray | None = None
        self._cat: np.ndarray | None = None  # makes set_categories regroup the points
        self._hover = -1
        self.hover_label.hide()
        self.ring_item.clear()
        self._ringed = np.zeros(0, np.intp)
        self.ringed_ids = np.zeros(0, np.int64)  # the points with a ring (selected or highlighted)
        self.clear_links()
        self.stack.set_empty(not len(self._placed))
        self.reset_view()
        self.set_categories(categories, palette, category_names)

    def reset_view(self) -> None:
        """Zoom to show all points (and keep them all in view when the widget is resized)."""
        self._fit = True
        if self._bounds is not None:
            lo, hi = self._bounds[0].astype(float), self._bounds[1].astype(float)
            pad = np.maximum((hi - lo) * 0.02, 1e-6)
            lo, hi = lo - pad, hi + pad
            self.vb.setRange(xRange=(lo[0], hi[0]), yRange=(lo[1], hi[1]), padding=0)

    def set_categories(self, categories: np.ndarray, palette: list[str],
                       category_names: list[str] | None = None) -> None:
        """Recolour the points: ``categories`` (n,) index into ``palette`` (hex colours); only the brushes
        change when the categories are unchanged and the palette has as many colours."""
        cat = _as_categories(categories, palette, len(self._xy))
        names = list(category_names) if category_names is not None else [str(i) for i in range(len(palette))]
        self._palette = list(palette)
        self._rgb = np.array([QColor(c).getRgb()[:3] for c in palette], dtype=np.uint8).reshape(-1, 3)
        if (self._cat is not None and len(palette) == len(self.scatter_items)
                and np.array_equal(cat, self._cat)):
            for item, colour in zip(self.scatter_items, palette, strict=True):
                item.setBrush(pg.mkBrush(colour))
        else:
            for old in self.scatter_items:
                self.vb.removeItem(old)
            self.scatter_items = [SharedStyleScatter(pxMode=True, size=self.point_size, pen=None,
                                                      brush=pg.mkBrush(c), antialias=False) for c in palette]
            counts = np.bincount(cat, minlength=len(palette))
            for item, count in zip(self.scatter_items, counts, strict=True):
                self.vb.addItem(item, ignoreBounds=True)
                if len(cat) > self.lod_threshold:  # now rather than at the first zoom-in
                    item.reserve(min(count, 2 * self.lod_threshold))
            self._cat = cat
            self._update_shown()
        self._legend_of = (palette, names, np.bincount(cat, minlength=len(palette)))
        self._show_legend(legend_entries(*self._legend_of))
        self._fit_legend()
        self.refresh()

    def _show_legend(self, entries: list[tuple[str, str]]) -> None:
        self._legend_shown = entries
        self.legend.clear()
        for colour, name in entries:
            short = name if len(name) <= LEGEND_CHARS else f"{name[:LEGEND_CHARS - 1]}…"
            self.legend.addItem(pg.ScatterPlotItem(size=10, pen=None, brush=pg.mkBrush(colour)),
                                html.escape(short))  # a legend renders HTML: a label "<b>x</b>" read as written
        for sample, _label in self.legend.items:
            sample.setAcceptedMouseButtons(Qt.MouseButton.NoButton)

    def _fit_legend(self) -> None:
        """As many legend rows as the view's height holds, the last counting the others (a dozen overflowed the
        map of a 1366x768 window: that count and the last entries were cut off)."""
        entries = legend_entries(*self._legend_of)
        rows, room = len(self.legend.items), self.vb.height() - 2 * LEGEND_OFFSET
        if rows and room > 0:
            row_px = self.legend.geometry().height() / rows
            if len(entries) * row_px > room:
                entries = legend_entries(*self._legend_of, most=max(2, int(room // row_px)))
        if entries != self._legend_shown:
            self._show_legend(entries)

    def set_visible_mask(self, mask: np.ndarray | None) -> None:
        """Show only points where ``mask`` (n,) bool is true (None shows all); hidden points are not hit."""
        mask = None if mask is None else np.asarray(mask, dtype=bool)
        if mask is not None and mask.shape != (len(self._xy),):
            raise ValueError(f"mask must have shape ({len(self._xy)},), got {mask.shape}")
        self._mask = mask
        self._update_shown()
        self.refresh()

    def set_legend_visible(self, visible: bool) -> None:
        self.legend.setVisible(visible)

    def set_select_mode(self, mode: str) -> None:
        """What a plain left drag does: ``"box"``, ``"lasso"`` or ``"none"`` (pan)."""
        if mode not in SELECT_MODES:
            raise ValueError(f"select mode must be one of {SELECT_MODES}, got {mode!r}")
        self._select_mode = mode

    def _update_shown(self) -> None:
        """Index the shown points sorted by x (contiguous x, y, category copies for fast range queries)."""
        order = self._x_order if self._mask is None else self._x_order[self._mask[self._x_order]]
        self._shown, self._sx, self._sy = order, self._xy[order, 0], self._xy[order, 1]
        self._scat = self._cat[order].astype(np.min_scalar_type(len(self._palette)))
        self._loaded: QRectF | str | None = None

    def _indices(self, ids) -> np.ndarray:
        """Row indices of the known ``ids`` (unknown ids and points without a position are dropped)."""
        ids = np.atleast_1d(np.asarray(ids, dtype=np.int64))
        pos = np.searchsorted(self._ids_sorted, ids).clip(0, max(len(self._ids_sorted) - 1, 0))
        ok = (self._ids_sorted[pos] == ids) if len(self._ids_sorted) else np.zeros(len(ids), bool)
        return self._id_order[pos[ok]]

    def _rect_query(self, x0: float, y0: float, x1: float, y1: float) -> tuple[slice, np.ndarray]:
        """Shown points in x0 <= x <= x1, y0 <= y <= y1: (slice of the x-sorted arrays, mask over it)."""
        f32 = np.float32  # float64 keys would make numpy convert the whole array
        sl = slice(np.searchsorted(self._sx, f32(x0), "left"), np.searchsorted(self._sx, f32(x1), "right"))
        y = self._sy[sl]
        return sl, (y >= f32(y0)) & (y <= f32(y1))

    def _in_rect(self, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
        sl, m = self._rect_query(x0, y0, x1, y1)
        return self._shown[sl][m]  # row indices

    def _schedule_refresh(self) -> None:
        """Throttle: refresh 30 ms after the first range change, so a long pan still updates."""
        if not self._timer.isActive():
            self._timer.start()

    def refresh(self) -> None:
        """Show points or the density image for the current view range (runs ~30 ms after pan/zoom)."""
        self._timer.stop()
        (x0, x1), (y0, y1) = self.vb.viewRange()
        sl, m = self._rect_query(x0, y0, x1, y1)
        density = bool(np.count_nonzero(m) > self.lod_threshold)
        if density:
            self._draw_density(sl, m, x0, x1, y0, y1)
        elif len(self._shown) <= self.lod_threshold:
            if self._loaded != "all":
                self._fill(slice(None))
                self._loaded = "all"
        elif not (isinstance(self._loaded, QRectF)
                  and self._loaded.contains(QRectF(x0, y0, x1 - x0, y1 - y0))):
            self._load_around(x0, x1, y0, y1)
        self.image_item.setVisible(density)
        for item in self.scatter_items:
            item.setVisible(not density)
        if len(self._ringed) > self.lod_threshold:
            self._draw_rings()

    def _load_around(self, x0: float, x1: float, y0: float, y1: float) -> None:
        """Load the view plus the widest margin holding <= 2 x threshold points (painting culls cheaply)."""
        w, h = x1 - x0, y1 - y0
        for margin in (1.0, 0.5, 0.25, 0.1, 0.0):  # the view alone holds <= lod_threshold points here
            rect = QRectF(x0 - margin * w, y0 - margin * h, (1 + 2 * margin) * w, (1 + 2 * margin) * h)
            sl, m = self._rect_query(rect.left(), rect.top(), rect.right(), rect.bottom())
            if margin == 0.0 or np.count_nonzero(m) <= 2 * self.lod_threshold:
                self._fill(sl, m)
                self._loaded = rect
                return

    def _fill(self, sl: slice, m: np.ndarray | None = None) -> None:
        """Put the shown points ``[sl][m]`` (x-sorted arrays) into the per-category scatter items."""
        x, y, cat = self._sx[sl], self._sy[sl], self._scat[sl]
        if m is not None:
            x, y, cat = x[m], y[m], cat[m]
        order = np.argsort(cat, kind="stable")  # radix sort: categories are small unsigned ints
        x, y = x[order], y[order]
        bounds = np.concatenate([[0], np.cumsum(np.bincount(cat, minlength=len(self.scatter_items)))])
        for c, item in enumerate(self.scatter_items):
            item.set_xy(x[bounds[c]:bounds[c + 1]], y[bounds[c]:bounds[c + 1]])

    def _draw_density(self, sl: slice, m: np.ndarray, x0: float, x1: float, y0: float, y1: float) -> None:
        """Log-scaled 2-D histogram of the view's points, coloured by each bin's majority category."""
        w = max(16, int(self.vb.width() / self.bin_px))
        h = max(16, int(self.vb.height() / self.bin_px))
        ix = ((self._sx[sl][m] - np.float32(x0)) * np.float32(w / (x1 - x0))).astype(np.int64).clip(0, w - 1)
        iy = ((self._sy[sl][m] - np.float32(y0)) * np.float32(h / (y1 - y0))).astype(np.int64).clip(0, h - 1)
        n_cat = max(len(self._palette), 1)
        key = self._scat[sl][m].astype(np.int64) * (w * h) + iy * w + ix
        counts = np.bincount(key, minlength=n_cat * w * h).reshape(n_cat, w * h)
        total = counts.sum(0)
        nz = np.flatnonzero(total)
        img = np.zeros((w * h, 4), np.uint8)
        if len(nz):
            img[nz, :3] = self._rgb[counts[:, nz].argmax(0)]
            level = np.log1p(total[nz]) / np.log1p(total[nz].max())
            img[nz, 3] = (70 + 185 * level).astype(np.uint8)
        self.image_item.setImage(img.reshape(h, w, 4), autoLevels=False)
        self.image_item.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))

    def point_at(self, x: float, y: float, radius_px: float) -> int:
        """Id of the shown point nearest view position (x, y) within ``radius_px`` screen pixels, else -1."""
        sx, sy = self.vb.viewPixelSize()
        if self._tree is None or not (sx > 0 and sy > 0):
            return -1
        cand = self._placed[np.asarray(self._tree.query_ball_point((x, y), radius_px * max(sx, sy)), dtype=np.intp)]
        if self._mask is not None:
            cand = cand[self._mask[cand]]
        if not len(cand):
            return -1
        d2 = ((self._xy[cand, 0] - x) / sx) ** 2 + ((self._xy[cand, 1] - y) / sy) ** 2
        j = int(np.argmin(d2))
        return int(self._ids[cand[j]]) if d2[j] <= radius_px ** 2 else -1

    def _on_mouse_moved(self, scene_pos: QPointF | None) -> None:
        hit = -1
        if scene_pos is not None and self.vb.sceneBoundingRect().contains(scene_pos):
            p = self.vb.mapSceneToView(scene_pos)
            hit = self.point_at(p.x(), p.y(), self.hover_px)
        if hit == self._hover:
            return
        self._hover = hit
        self.hovered.emit(hit)
        text = self.tooltip_fn(hit) if hit >= 0 and self.tooltip_fn is not None else ""
        if text:  # beside the point, towards the middle of the view; no timer: it stays while hovered
            (x, y), = self._xy[self._indices([hit])].tolist()
            (x0, x1), (y0, y1) = self.vb.viewRange()
            self.hover_label.setAnchor((-0.05 if x < (x0 + x1) / 2 else 1.05, 1.1 if y < (y0 + y1) / 2 else -0.1))
            self.hover_label.setText(text)
            self.hover_label.setPos(x, y)
        self.hover_label.setVisible(bool(text))

    def leaveEvent(self, event) -> None:
        self._on_mouse_moved(None)
        super().leaveEvent(event)

    def _on_click(self, p: QPointF) -> None:
        hit = self.point_at(p.x(), p.y(), self.click_px)
        if hit >= 0:
            self.highlight([hit])
            self.pointClicked.emit(hit)

    def _selection_mode(self, modifiers) -> str | None:
        if modifiers & Qt.KeyboardModifier.ShiftModifier:
            return "box"
        if modifiers & Qt.KeyboardModifier.ControlModifier:
            return "lasso"
        return None if self._select_mode == "none" else self._select_mode

    def _on_select_drag(self, mode: str, start: QPointF, cur: QPointF, finish: bool) -> None:
        path = QPainterPath()
        if mode == "box":
            path.addRect(QRectF(start, cur).normalized())
        else:
            if not self._lasso:
                self._lasso = [start]
            self._lasso.append(cur)
            path.addPolygon(QPolygonF(self._lasso))
            path.closeSubpath()
        self._outline.setPath(path)
        self._outline.setVisible(not finish)
        if not finish:
            return
        if mode == "box":
            self.select_rect(start.x(), start.y(), cur.x(), cur.y())
        else:
            self.select_polygon(np.array([(q.x(), q.y()) for q in self._lasso]))
            self._lasso = []

    def select_rect(self, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
        """Select the shown points inside a view rectangle; highlight them, emit and return their ids."""
        (x0, x1), (y0, y1) = sorted((x0, x1)), sorted((y0, y1))
        return self._select(self._in_rect(x0, y0, x1, y1))

    def select_polygon(self, polygon: np.ndarray) -> np.ndarray:
        """Select shown points inside a polygon (m, 2) in view coordinates; highlight, emit, return ids."""
        poly = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
        if len(poly) < 3:
            return self._select(np.zeros(0, np.intp))
        (x0, y0), (x1, y1) = poly.min(0), poly.max(0)
        cand = self._in_rect(x0, y0, x1, y1)
        return self._select(cand[Path(poly).contains_points(self._xy[cand])])

    def _select(self, idx: np.ndarray) -> np.ndarray:
        idx = np.sort(idx)
        self._ring(idx)
        ids = self._ids[idx]
        self.selectionChanged.emit(ids)
        return ids

    def highlight(self, ids) -> None:
        """Draw rings around the points with these ids (replacing earlier rings); [] clears them."""
        self._ring(self._indices(ids))

    def _ring(self, idx: np.ndarray) -> None:
        self._ringed, self.ringed_ids = idx, self._ids[idx]
        self._draw_rings()

    def _draw_rings(self) -> None:
        """Ring the ringed points; above ``lod_threshold``, those in view, thinned to that many (a lasso of 1.6M
        points made 1.6M ring records: 2.7 s, more than 3 s with its first paint)."""
        idx = self._ringed
        if len(idx) > self.lod_threshold:
            (x0, x1), (y0, y1) = self.vb.viewRange()
            x, y = self._xy[idx, 0], self._xy[idx, 1]
            idx = idx[(x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)]
            idx = idx[::-(-len(idx) // self.lod_threshold) or 1]
        self.ring_item.set_xy(self._xy[idx, 0], self._xy[idx, 1])

    def show_links(self, src_id: int, dst_ids) -> None:
        """Draw a segment from point ``src_id`` to each of ``dst_ids`` (e.g. its k nearest neighbours)."""
        src, dst = self._indices([src_id]), self._indices(dst_ids)
        if not len(src) or not len(dst):
            self.clear_links()
            return
        seg = np.empty((2 * len(dst), 2), np.float32)
        seg[0::2], seg[1::2] = self._xy[src[0]], self._xy[dst]
        self.link_item.setData(x=seg[:, 0], y=seg[:, 1], connect="pairs")

    def clear_links(self) -> None:
        self.link_item.setData(x=np.zeros(0), y=np.zeros(0))

    def center_on(self, point_id: int) -> None:
        """Pan so the point ``point_id`` is in the centre, keeping the zoom."""
        for x, y in self._xy[self._indices([point_id])].tolist():
            (x0, x1), (y0, y1) = self.vb.viewRange()
            self.zoom_to((x - (x1 - x0) / 2, x + (x1 - x0) / 2), (y - (y1 - y0) / 2, y + (y1 - y0) / 2))

    def zoom_to(self, x_range: tuple[float, float], y_range: tuple[float, float]) -> None:
        """Show this part of the map (kept through resizes, like a user's zoom)."""
        self._fit = False
        self.vb.setRange(xRange=x_range, yRange=y_range, padding=0)
