"""A built set: the tracks in play order with tempo, key and the cost of the transition into each (smaller is
smoother), the order's total against the given and a random order, double-click or Space to play, export."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from musicemb_gui.widgets.plain_text import tooltip
from musicemb_gui.widgets.space_play import SpacePlays

COLUMNS = ("#", "Track", "BPM", "Key", "Transition cost")
ROUGH = 0.5  # a transition at least this costly (a key clash, a big tempo jump) is marked


class SetDialog(QDialog):
    playRequested = Signal(int)  # track id
    toggleRequested = Signal()   # Space: stop what plays, or play it again (the main window's Space)
    exportRequested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Set")
        self.setModal(False)
        self.resize(640, 480)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        for col in range(len(COLUMNS)):
            self.table.horizontalHeader().setSectionResizeMode(
                col, QHeaderView.ResizeMode.Stretch if col == 1 else QHeaderView.ResizeMode.ResizeToContents)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setToolTip("Play order; the cost is of the transition from the track above (double-click or "
                              "Space: play)")
        self.now_playing: Callable[[], object] = lambda: None  # what the window's player holds (a player key)
        self.table.cellDoubleClicked.connect(lambda row, _c: self._play(row))
        SpacePlays(self.table, lambda row: ("track", self.track_ids()[row]), self._play, lambda: self.now_playing())
        QShortcut(QKeySequence(Qt.Key.Key_Space), self, self.toggleRequested.emit)  # the window's does not reach
        self.export = QPushButton("Export…")
        self.export.clicked.connect(self.exportRequested)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.export, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.hide)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)

    def show_set(self, rows: list[tuple], summary: str) -> None:
        """Rows of (track id, title, path, tempo text, key text, cost of the transition into it or None)."""
        note = " — a red cost marks a rough transition (a key clash or a tempo jump)" if rows else ""
        self.summary.setText(summary + note)
        self.table.setRowCount(len(rows))
        for r, (tid, title, path, bpm, key, cost) in enumerate(rows):
            values = (r + 1, title, bpm or "", key, "start" if cost is None else f"{cost:.3f}")
            for c, v in enumerate(values):
                item = QTableWidgetItem(str(v))
                item.setData(Qt.ItemDataRole.UserRole, tid)
                item.setToolTip(tooltip(path))
                if c == 4 and cost is not None and cost >= ROUGH:
                    item.setForeground(QColor("#d62728"))
                self.table.setItem(r, c, item)

    def _play(self, row: int) -> None:
        self.playRequested.emit(self.track_ids()[row])

    def track_ids(self) -> list[int]:
        return [int(self.table.item(r, 0).data(Qt.ItemDataRole.UserRole)) for r in range(self.table.rowCount())]

    def clear(self) -> None:
        self.show_set([], "")
        self.hide()
