"""What the app's large tables share: the flags of a plain cell, and rows grouped into runs (one selection range or
change signal each: Qt walks a selection range by range at every resize)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QAbstractTableModel, Qt

CELL = Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemNeverHasChildren


def ordered(rows: list, column: int, order: Qt.SortOrder, n_columns: int) -> list:
    """``rows`` (each with a ``sort`` list of keys, one per column) sorted by ``column`` (stable); unchanged for a
    column out of range."""
    if not 0 <= column < n_columns:
        return list(rows)
    return sorted(rows, key=lambda r: r.sort[column], reverse=order == Qt.SortOrder.DescendingOrder)


def relayout(model: QAbstractTableModel, rows: list, new: list, keep: Callable[[list], None]) -> None:
    """Show ``new`` (the objects of ``rows``, reordered) in ``model`` as one layout change: ``keep(new)`` stores
    them; persistent indexes (the view's selection, its current row) follow their rows. Nothing when the order is
    the same."""
    if all(a is b for a, b in zip(new, rows, strict=True)):
        return
    model.layoutAboutToBeChanged.emit()
    where = {id(r): i for i, r in enumerate(new)}
    old = model.persistentIndexList()
    model.changePersistentIndexList(old, [model.index(where[id(rows[i.row()])], i.column()) for i in old])
    keep(new)
    model.layoutChanged.emit()


def row_runs(rows: list[int]) -> list[tuple[int, int]]:
    """Sorted row numbers as (first, last) runs of consecutive rows."""
    runs: list[tuple[int, int]] = []
    for r in rows:
        if runs and r == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], r)
        else:
            runs.append((r, r))
    return runs
