"""Input level meter: a horizontal bar on a dBFS scale with labelled ticks (green, amber near clipping, red)."""

from __future__ import annotations

import math

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget

TICKS_DB = (-60, -40, -20, -10, 0)
ZONES = ((-60.0, "#43a047"), (-12.0, "#fbc02d"), (-3.0, "#e53935"))  # colour from each level up


class LevelMeter(QWidget):
    """Shows a peak level in dBFS between ``floor_db`` and 0; :meth:`set_level` takes -inf for silence."""

    def __init__(self, parent: QWidget | None = None, *, floor_db: float = -60.0):
        super().__init__(parent)
        self.floor_db = floor_db
        self.level_db = -math.inf
        self.setMinimumSize(180, 30)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.setToolTip("Input level (peak, dBFS)")

    def set_level(self, dbfs: float) -> None:
        self.level_db = float(dbfs)
        self.update()

    def fraction(self, db: float) -> float:
        """Where ``db`` falls along the bar, 0 at the floor (or below), 1 at 0 dBFS (or above)."""
        if not math.isfinite(db):
            return 0.0 if db < 0 else 1.0
        return min(max((db - self.floor_db) / -self.floor_db, 0.0), 1.0)

    def paintEvent(self, _event) -> None:  # noqa: N802 (Qt override)
        p = QPainter(self)
        font = p.font()
        font.setPointSizeF(max(6.0, font.pointSizeF() * 0.75))
        p.setFont(font)
        label_h = p.fontMetrics().height()
        margin = p.fontMetrics().horizontalAdvance("-60") / 2 + 1
        bar = QRectF(margin, 1, self.width() - 2 * margin, max(6, self.height() - label_h - 4))
        p.fillRect(bar, QColor("#262626"))
        lit = self.fraction(self.level_db)
        for i, (start, colour) in enumerate(ZONES):
            end = ZONES[i + 1][0] if i + 1 < len(ZONES) else 0.0
            a, b = self.fraction(start), min(self.fraction(end), lit)
            if b > a:
                p.fillRect(QRectF(bar.left() + a * bar.width(), bar.top(), (b - a) * bar.width(), bar.height()),
                           QColor(colour))
        p.setPen(self.palette().color(self.foregroundRole()))
        for db in TICKS_DB:
            x = bar.left() + self.fraction(db) * bar.width()
            p.drawLine(int(x), int(bar.bottom()), int(x), int(bar.bottom()) + 3)
            if db:
                p.drawText(QRectF(x - 20, bar.bottom() + 2, 40, label_h), Qt.AlignmentFlag.AlignHCenter, str(db))
            else:  # the unit, flush with the right edge
                p.drawText(QRectF(0, bar.bottom() + 2, self.width(), label_h), Qt.AlignmentFlag.AlignRight, "0 dB")
        p.end()
