"""What the app's large tables share: a model over a Python list that sorts itself, the flags of a plain cell,
and rows grouped into runs (one selection range or change signal each: Qt walks a selection range by range at
every resize)."""

from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, Qt

CELL = Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemNeverHasChildren


class SortedRows(QAbstractTableModel):
    """A table over a Python list of rows (``self._rows``, each with a ``sort`` list of keys, one per column of
    ``COLUMNS``) that sorts itself: a proxy's sort calls back into Python at every comparison, and a
    ``QStandardItemModel`` of 20,000 rows takes seconds to fill. Persistent indexes (the view's selection, its
    current row) follow their rows through a sort."""

    COLUMNS: tuple[str, ...] = ()

    def __init__(self, parent=None, *, sorted_by: tuple[int, Qt.SortOrder] = (0, Qt.SortOrder.AscendingOrder)):
        super().__init__(parent)
        self._rows: list = []
        self._sorted_by = sorted_by

    def _ordered(self, rows: list) -> list:
        """``rows`` in the current order (stable)."""
        column, order = self._sorted_by
        if not 0 <= column < len(self.COLUMNS):
            return list(rows)
        return sorted(rows, key=lambda r: r.sort[column], reverse=order == Qt.SortOrder.DescendingOrder)

    def rowCount(self, parent=None) -> int:  # noqa: N802 (Qt override)
        return 0 if parent is not None and parent.isValid() else len(self._rows)

    def columnCount(self, parent=None) -> int:  # noqa: N802 (Qt override)
        return 0 if parent is not None and parent.isValid() else len(self.COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802 (Qt override)
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.COLUMNS[section]
        return None

    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:
        """Order the rows by ``column``'s sort keys (stable) as one layout change."""
        self._sorted_by = (column, order)
        rows = self._ordered(self._rows)
        if all(a is b for a, b in zip(rows, self._rows, strict=True)):
            return
        self.layoutAboutToBeChanged.emit()
        where = {id(r): i for i, r in enumerate(rows)}
        old = self.persistentIndexList()
        self.changePersistentIndexList(old, [self.index(where[id(self._rows[i.row()])], i.column()) for i in old])
        self._rows = rows
        self.layoutChanged.emit()


def row_runs(rows: list[int]) -> list[tuple[int, int]]:
    """Sorted row numbers as (first, last) runs of consecutive rows."""
    runs: list[tuple[int, int]] = []
    for r in rows:
        if runs and r == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], r)
        else:
            runs.append((r, r))
    return runs
