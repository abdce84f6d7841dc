"""Log-mel spectrogram display: seconds on x, mel rows labelled in Hz on y, a colour bar with the unit.

Static (:meth:`SpectrogramView.set_spectrogram`) or live (:meth:`~SpectrogramView.start_live` then
:meth:`~SpectrogramView.append_columns` into a preallocated ring, newest column at the right, x in seconds ago).
"""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QVBoxLayout, QWidget

from musicemb_gui.widgets.empty_state import EmptyState
from musicemb_gui.widgets.plain_text import tooltip

TICK_HZ = (1000, 100, 4000, 500, 2000, 8000, 200, 16000, 50, 20)  # by priority: rounder values win crowded rows


def hz_to_mel(f, *, htk: bool = False) -> np.ndarray:
    """Hertz to mels: Slaney's scale (linear below 1 kHz, log above) or HTK's."""
    f = np.asarray(f, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + f / 700.0)
    logstep = np.log(6.4) / 27.0
    return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-12) / 1000.0) / logstep, f * 3.0 / 200.0)


def mel_to_hz(m, *, htk: bool = False) -> np.ndarray:
    """Mels to hertz, the inverse of :func:`hz_to_mel`."""
    m = np.asarray(m, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    logstep = np.log(6.4) / 27.0
    return np.where(m >= 15.0, 1000.0 * np.exp(logstep * (m - 15.0)), m * 200.0 / 3.0)


def mel_band_centres(n_mels: int, fmin: float, fmax: float, *, htk: bool = False) -> np.ndarray:
    """Centre frequency (Hz) of each of ``n_mels`` triangular bands spanning [fmin, fmax], low to high."""
    edges = np.linspace(hz_to_mel(fmin, htk=htk), hz_to_mel(fmax, htk=htk), n_mels + 2)
    return mel_to_hz(edges, htk=htk)[1:-1]


def freq_ticks(centres: np.ndarray, *, max_ticks: int = 24) -> list[tuple[float, str]]:
    """(y, label) ticks at the centre of the row nearest each round frequency, at least 1 / ``max_ticks`` of the
    rows apart."""
    min_gap = max(1, round(len(centres) / max_ticks))
    ticks: list[tuple[float, str]] = []
    for f in TICK_HZ:
        if not centres[0] / 1.25 <= f <= centres[-1] * 1.25:
            continue
        row = int(np.argmin(np.abs(centres - f)))
        if all(abs(row + 0.5 - y) >= min_gap for y, _ in ticks):
            ticks.append((row + 0.5, f"{f // 1000}k" if f >= 1000 else str(f)))
    return sorted(ticks)


class SpectrogramView(QWidget):
    """A log-mel spectrogram as a model sees it: one image row per mel band, low frequencies at the bottom;
    ``empty_text`` in its place until there is one."""

    def __init__(self, parent: QWidget | None = None, *, max_frames: int = 500, colormap: str = "magma",
                 empty_text: str = "No spectrogram to show"):
        super().__init__(parent)
        self.max_frames = max_frames
        self.plot_widget = pg.PlotWidget()
        self.plot = self.plot_widget.getPlotItem()
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.setLabel("bottom", "time (s)")
        self.plot.setLabel("left", "frequency (Hz)")
        self.image = pg.ImageItem(axisOrder="col-major")  # image[frame, mel]: contiguous ring slices
        self.plot.addItem(self.image)
        self.colorbar = pg.ColorBarItem(colorMap=colormap, label="dB", interactive=False, colorMapMenu=False)
        self.colorbar.setImageItem(self.image, insert_in=self.plot)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.stack = EmptyState(self.plot_widget, empty_text)
        layout.addWidget(self.stack)
        self._ring: np.ndarray | None = None
        self._head = 0
        self._fixed_levels: tuple[float, float] | None = None
        self._levels_set = False
        self._centres: np.ndarray | None = None
        self._title = ""

    def set_spectrogram(self, S: np.ndarray, *, sr: int, hop_length: int, fmin: float, fmax: float,
                        htk: bool = False, unit: str = "dB", levels: tuple | None = None, title: str = "") -> None:
        """Show ``S`` (n_mels, frames); ``levels`` (low, high) fixes the colour scale, else the data's range."""
        S = np.array(S, dtype=np.float32)  # a copy: the image keeps a reference, the caller may reuse S
        if S.ndim != 2 or S.shape[1] == 0:
            raise ValueError(f"expected a (n_mels, frames) array with frames > 0, got shape {S.shape}")
        self._ring = None
        self._setup(S.T, hop_length / sr, mel_band_centres(len(S), fmin, fmax, htk=htk), unit, levels, title, x0=0.0)
        self._extend_levels(S)

    def set_image(self, S: np.ndarray, *, hop_s: float, row_hz: np.ndarray, unit: str = "dB",
                  levels: tuple | None = None, title: str = "") -> None:
        """Show any spectrogram ``S`` (rows, frames) whose rows are centred on ``row_hz`` (rising), ``hop_s``
        seconds per frame: a linear or logarithmic frequency axis follows from the rows' spacing."""
        S = np.array(S, dtype=np.float32)
        if S.ndim != 2 or S.shape[1] == 0 or len(row_hz) != len(S):
            raise ValueError(f"expected a (rows, frames) array with one frequency per row, got shape {S.shape}")
        self._ring = None
        self._setup(S.T, hop_s, np.asarray(row_hz, float), unit, levels, title, x0=0.0)
        self._extend_levels(S)

    def start_live(self, n_mels: int, *, sr: int, hop_length: int, fmin: float, fmax: float, htk: bool = False,
                   unit: str = "dB", levels: tuple | None = None, title: str = "") -> None:
        """Start an empty scrolling window of ``max_frames`` columns for :meth:`append_columns`."""
        self._ring = np.full((2 * self.max_frames, n_mels), np.nan, dtype=np.float32)  # NaN: drawn empty
        self._head = self.max_frames
        x0 = -self.max_frames * hop_length / sr
        self._setup(self._ring[: self.max_frames], hop_length / sr, mel_band_centres(n_mels, fmin, fmax, htk=htk),
                    unit, levels, title, x0=x0)
        self.plot.setLabel("bottom", "time (s, 0 = now)")

    def append_columns(self, cols: np.ndarray) -> None:
        """Append (n_mels, k) new columns at the right, dropping the oldest; cheap enough for 25+ calls/s."""
        if self._ring is None:
            raise RuntimeError("call start_live() before append_columns()")
        cols = np.asarray(cols, dtype=np.float32)
        m = self.max_frames
        if cols.ndim != 2 or cols.shape[0] != self._ring.shape[1]:
            raise ValueError(f"expected ({self._ring.shape[1]}, k) columns, got shape {cols.shape}")
        cols = cols[:, -m:]
        k = cols.shape[1]
        if self._head + k > 2 * m:  # slide the newest m - k columns to the front: amortised O(k) per call
            self._ring[: m - k] = self._ring[self._head - (m - k): self._head]
            self._head = m - k
        self._ring[self._head: self._head + k] = cols.T
        self._head += k
        self.image.setImage(self._ring[self._head - m: self._head], autoLevels=False)
        self._extend_levels(cols)

    def data(self) -> np.ndarray:
        """The displayed values, shape (n_mels, frames), oldest column first."""
        return np.zeros((0, 0), np.float32) if self.image.image is None else self.image.image.T

    def clear(self) -> None:
        """Remove the image and stop live mode."""
        self.image.clear()
        self._ring = None
        self._title = ""
        self.plot.setTitle(None)
        self.setToolTip("")
        self.stack.set_empty(True)

    def _setup(self, image, hop_s, centres, unit, levels, title, *, x0) -> None:
        """Show ``image`` (frames, rows) from x = ``x0`` seconds, rows centred on ``centres`` Hz, with Hz ticks,
        unit label and levels."""
        frames, n_mels = image.shape
        width = frames * hop_s
        self._fixed_levels = None if levels is None else (float(levels[0]), float(levels[1]))
        self.colorbar.setLevels(self._fixed_levels or (0.0, 1.0))
        self._levels_set = self._fixed_levels is not None
        self.image.setImage(image, autoLevels=False)  # before setRect, which scales by the image size
        self.image.setRect(QRectF(x0, 0.0, width, n_mels))
        self._centres, self._title = centres, title
        self._fit_to_size()
        self.plot.setLabel("bottom", "time (s)")
        self.plot.setLimits(xMin=x0, xMax=x0 + width, yMin=0, yMax=n_mels)
        self.plot.setRange(xRange=(x0, x0 + width), yRange=(0, n_mels), padding=0)
        self.colorbar.getAxis("left").setLabel(unit)
        self.stack.set_empty(False)

    def _fit_to_size(self) -> None:
        """Frequency ticks thinned to one per 20 px of height, the title elided to the width (whole on hover): a
        long title or crowded ticks would push the plot out of a small view."""
        if self._centres is not None:
            self.plot.getAxis("left").setTicks([freq_ticks(self._centres, max_ticks=max(3, self.height() // 20)), []])
        room = self.width() - 220  # beside the frequency axis and the colour bar, with margins
        title = QFontMetrics(self.plot.titleLabel.item.font()).elidedText(self._title, Qt.TextElideMode.ElideMiddle,
                                                                          max(60, room))
        self.plot.setTitle(html.escape(title) or None)  # a plot title renders HTML; a track name is plain text
        self.setToolTip(tooltip(self._title))

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        self._fit_to_size()

    def _extend_levels(self, values: np.ndarray) -> None:
        """Without fixed levels, widen the colour scale to cover ``values`` (only when it must grow)."""
        if self._fixed_levels is not None or not np.isfinite(values).any():
            return
        lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
        if self._levels_set:
            cur_lo, cur_hi = self.colorbar.levels()
            if lo >= cur_lo and hi <= cur_hi:
                return
            lo, hi = min(lo, cur_lo), max(hi, cur_hi)
        self._levels_set = True
        self.colorbar.setLevels((lo, hi if hi > lo else lo + 1.0))
