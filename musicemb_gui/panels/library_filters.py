"""The DJ's filters above the library table: a BPM range (half and double time counted by default, as DJs mix
them) and "compatible with key…" (a Camelot code; the tracks that mix with it pass), plus "Match selected" to
take both from the selected track. Plain values only: which tracks pass is decided by the library controller."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

ANY_KEY = "any key"


class DjFilterBar(QWidget):
    changed = Signal()
    matchRequested = Signal()  # take the BPM range and key from the selected track

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.bpm_on = QCheckBox("BPM")
        self.bpm_on.setToolTip("Only tracks whose tempo (our estimate, else the tag) is in this range")
        self.bpm_lo = QDoubleSpinBox(minimum=20.0, maximum=400.0, value=118.0, decimals=1, singleStep=1.0)
        self.bpm_hi = QDoubleSpinBox(minimum=20.0, maximum=400.0, value=130.0, decimals=1, singleStep=1.0)
        self.half_double = QCheckBox("×½ ×2")
        self.half_double.setChecked(True)
        self.half_double.setToolTip("Also tracks at half or double a tempo in this range (a 64 BPM track mixes "
                                    "with 128 BPM ones)")
        self.key = QComboBox()
        self.key.addItem(ANY_KEY, None)
        self.key.setToolTip("Only tracks that mix with this key: the same Camelot code, one step either way, "
                            "or the relative major/minor")
        self.match = QPushButton("Match selected")
        self.match.setToolTip("Filter by the selected track's tempo (±6 %) and the keys compatible with its key")
        self.match.setEnabled(False)
        layout = QVBoxLayout(self)  # two short rows: the library dock stays narrow enough for 1280 px
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        rows = (QHBoxLayout(), QHBoxLayout())
        for w in (self.bpm_on, self.bpm_lo, QLabel("–"), self.bpm_hi, self.half_double):
            rows[0].addWidget(w)
        for w in (QLabel("Compatible with:"), self.key):
            rows[1].addWidget(w)
        rows[1].addStretch(1)
        rows[1].addWidget(self.match)
        rows[0].addStretch(1)
        for row in rows:
            layout.addLayout(row)
        self._set_bpm_enabled(False)
        self.bpm_on.toggled.connect(self._set_bpm_enabled)
        self.bpm_on.toggled.connect(self.changed)
        for box in (self.bpm_lo, self.bpm_hi):
            box.valueChanged.connect(lambda _v: self.bpm_on.isChecked() and self.changed.emit())
        self.half_double.toggled.connect(lambda _on: self.bpm_on.isChecked() and self.changed.emit())
        self.key.currentIndexChanged.connect(self.changed)
        self.match.clicked.connect(self.matchRequested)

    def _set_bpm_enabled(self, on: bool) -> None:
        self.bpm_lo.setEnabled(on)
        self.bpm_hi.setEnabled(on)
        self.half_double.setEnabled(on)

    def set_keys(self, keys: list[tuple[str, str]]) -> None:
        """The keys offered: (Camelot code, text like "8A  A minor"), in wheel order."""
        self.key.blockSignals(True)
        self.key.clear()
        self.key.addItem(ANY_KEY, None)
        for code, text in keys:
            self.key.addItem(text, code)
        self.key.blockSignals(False)

    def bpm_range(self) -> tuple[float, float] | None:
        if not self.bpm_on.isChecked():
            return None
        lo, hi = self.bpm_lo.value(), self.bpm_hi.value()
        return min(lo, hi), max(lo, hi)

    def key_code(self) -> str | None:
        """The Camelot code to be compatible with; None: any key."""
        return self.key.currentData()

    def active(self) -> bool:
        return self.bpm_range() is not None or self.key_code() is not None

    def set_filter(self, bpm_range: tuple[float, float] | None, key_code: str | None) -> None:
        """Set both filters at once (one ``changed``)."""
        self.blockSignals(True)
        self.bpm_on.setChecked(bpm_range is not None)
        if bpm_range is not None:
            self.bpm_lo.setValue(bpm_range[0])
            self.bpm_hi.setValue(bpm_range[1])
        self.key.setCurrentIndex(max(0, self.key.findData(key_code)) if key_code else 0)
        self.blockSignals(False)
        self.changed.emit()

    def reset(self) -> None:
        self.set_filter(None, None)
