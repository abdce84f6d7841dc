"""Library panel: a sortable, filterable table of the library's tracks and of the files that failed."""

from __future__ import annotations

from PySide6.QtCore import QSortFilterProxyModel, Qt
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QHeaderView, QLineEdit, QTableView, QVBoxLayout, QWidget

COLUMNS = ("Path", "Duration (s)", "Label", "Segments", "Status")


def _item(value, *, sort_key=None) -> QStandardItem:
    item = QStandardItem(str(value))
    item.setEditable(False)
    if sort_key is not None:
        item.setData(sort_key, Qt.ItemDataRole.UserRole)
    return item


class LibraryPanel(QWidget):
    """Shows rows built from a library summary and its track list; knows nothing about core types."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = QStandardItemModel(0, len(COLUMNS), self)
        self.model.setHorizontalHeaderLabels(COLUMNS)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(Qt.ItemDataRole.UserRole)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.proxy.setFilterKeyColumn(-1)
        self.filter = QLineEdit(placeholderText="Filter by path, label or status…")
        self.filter.textChanged.connect(self.proxy.setFilterFixedString)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().hide()
        layout = QVBoxLayout(self)
        layout.addWidget(self.filter)
        layout.addWidget(self.table)

    def set_rows(self, rows: list[tuple[str, float | None, str, int | None, str]]) -> None:
        """Rows of (path, duration_s, label, n_segments, status)."""
        self.model.setRowCount(0)
        for path, dur, label, n_seg, status in rows:
            self.model.appendRow([
                _item(path, sort_key=path),
                _item("" if dur is None else f"{dur:.1f}", sort_key=dur if dur is not None else -1.0),
                _item(label, sort_key=label),
                _item("" if n_seg is None else n_seg, sort_key=n_seg if n_seg is not None else -1),
                _item(status, sort_key=status),
            ])
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
