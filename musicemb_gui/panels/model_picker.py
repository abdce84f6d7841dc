"""The model picker on the map's toolbar: the active model by name; its list shows each model's strategy, date,
validation figure, whether the library is embedded with it, and marks partly trained and damaged models."""

from __future__ import annotations

import time

from PySide6.QtCore import Signal
from PySide6.QtGui import QBrush, QColor, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QAbstractItemView, QComboBox, QHeaderView, QTableView

from musicemb_core.workflows.models import ModelEntry

COLUMNS = ("model", "strategy", "trained", "validation", "embedded", "state")
PARTIAL_COLOUR = "#b35c00"
DAMAGED_COLOUR = "#c00000"
ABOUT = "The model whose space the map, neighbours, evaluation, inspection and \"more like this\" use (kept per library)"
NO_LIBRARY = "Model: open a library"  # the empty box says what it is until there are models to pick
OPEN_FIRST = "\n\nOpen a library (File ▸ Open library…) to pick one of its models."


def row_texts(e: ModelEntry) -> tuple[str, ...]:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.created_at)) if e.created_at else "shipped"
    state = f"✖ damaged: {e.problem}" if e.problem else f"⚠ partly trained: {e.partial}" if e.partial else "ok"
    return e.name, e.strategy, when, e.validation or "—", "yes" if e.embedded else "no", state


class ModelPicker(QComboBox):
    chosen = Signal(str)         # a model picked by the user
    aboutToShow = Signal()       # the list is opening: bring it up to date

    def __init__(self):
        super().__init__()
        self.items = QStandardItemModel(0, len(COLUMNS), self)
        self.items.setHorizontalHeaderLabels(list(COLUMNS))
        view = QTableView()
        view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        view.verticalHeader().hide()
        view.setShowGrid(False)
        view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.setModel(self.items)
        self.setView(view)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.entries: list[ModelEntry] = []
        self.activated.connect(lambda row: self.chosen.emit(self.entries[row].name))
        self.set_entries([], "")

    def set_entries(self, entries: list[ModelEntry], active: str) -> None:
        """List ``entries`` and show ``active`` (no signal is emitted)."""
        self.blockSignals(True)
        self.entries = list(entries)
        self.items.setRowCount(0)
        for e in entries:
            row = [QStandardItem(t) for t in row_texts(e)]
            for item in row:
                item.setEditable(False)
                if e.problem:
                    item.setForeground(QBrush(QColor(DAMAGED_COLOUR)))
                    item.setToolTip(f"{e.name} cannot be used: {e.problem}")
                elif e.partial:
                    item.setForeground(QBrush(QColor(PARTIAL_COLOUR)))
                    item.setToolTip(f"{e.name}: {e.partial}; embedding with it asks first")
            self.items.appendRow(row)
        names = [e.name for e in entries]
        self.setPlaceholderText("" if entries else NO_LIBRARY)  # with models: as narrow as their names
        self.setCurrentIndex(names.index(active) if active in names else -1)
        current = self.entry(active)
        facts = [current.strategy, current.validation, current.partial and f"⚠ partly trained: {current.partial}"
                 ] if current else []
        self.setToolTip((f"{active}: {', '.join(f for f in facts if f)}\n\n" if current else "") + ABOUT
                        + ("" if entries else OPEN_FIRST))
        self.blockSignals(False)
        self.setEnabled(bool(entries))

    def minimumSizeHint(self):  # noqa: N802 (Qt override)
        """The width of what the box shows now: Qt keeps the placeholder's width in its minimum once computed."""
        return self.sizeHint()

    def showPopup(self) -> None:  # noqa: N802 (Qt override)
        self.aboutToShow.emit()
        view = self.view()
        view.resizeColumnsToContents()
        view.setMinimumWidth(view.horizontalHeader().length() + 24)
        super().showPopup()

    def entry(self, name: str) -> ModelEntry | None:
        return next((e for e in self.entries if e.name == name), None)

    def row_text(self, row: int, column: str) -> str:
        return self.items.item(row, COLUMNS.index(column)).text()
