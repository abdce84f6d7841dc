"""The Inspection panel's table: findings as plain Python rows that sort themselves (a model of 240,000
QStandardItems took seconds to fill at 40,000 findings), changed in place row by row, and the filter in front of
it (one kind, open findings only, a text)."""

from __future__ import annotations

import os

from PySide6.QtCore import QSortFilterProxyModel, Qt

from musicemb_gui.panels.table_rows import CELL, SortedRows, row_runs
from musicemb_gui.workers import alive, wait_for

COLUMNS = ("Kind", "Score", "Reason", "Track", "Time", "Status")
REASON, TRACK, STATUS = 2, 3, 5
BIG = 10_000  # findings above which their rows are made on a thread (1 s for 40,000)
ROW = Qt.ItemDataRole.UserRole + 1  # the finding's dict, on the first column


class _Finding:
    """One table row: a finding's dict, its cells' texts and sort keys, and the text the filter searches."""

    __slots__ = ("row", "id", "text", "sort", "haystack")

    def __init__(self, row: dict):
        self.row, self.id = row, int(row["id"])
        when = "whole track" if row.get("segment_id") is None else f"{row['start_s']:.1f}–{row['end_s']:.1f} s"
        name = row.get("name") or os.path.basename(row["path"])
        self.text = [row["kind"], f"{row['score']:.2f}", row["reason"], name, when, row["status"]]
        self.sort = [row["kind"], float(row["score"]), row["reason"], row["path"], float(row["start_s"] or 0.0),
                     row["status"]]
        self.haystack = "\n".join([*self.text, row["path"], row.get("label") or ""]).casefold()


class FindingsTable(SortedRows):
    """The findings held as plain Python values and sorted here: 40,000 findings as QStandardItems (240,000) took
    2.8 s to fill, and the proxy's sort called back into Python at every comparison. Findings updated in place keep
    their rows, so the view's selection and scroll stay."""

    COLUMNS = COLUMNS

    def __init__(self, parent=None):
        super().__init__(parent, sorted_by=(1, Qt.SortOrder.DescendingOrder))  # the most severe first
        self._fills = 0  # counts the fills asked: one whose rows were made after a later one's is dropped

    def set_findings(self, rows: list[dict]) -> bool:
        """Show these findings in the current order. True when they are the ones shown (by id): only those that
        differ are updated, in place, and persistent indexes (the view's selection, its current row) follow their
        rows."""
        self._fills += 1
        mine, shown = self._fills, {f.id: f for f in self._rows}
        ids = {int(r["id"]) for r in rows}
        if len(ids) == len(rows) == len(shown) and ids.issubset(shown):
            self.update([r for r in rows if shown[int(r["id"])].row != r])
            return True

        def make() -> list[_Finding]:
            return self._ordered([_Finding(r) for r in rows])
        made = wait_for(make) if len(rows) > BIG else make()  # the window's events go on meanwhile
        if mine != self._fills or not alive(self):  # a later fill ended first: its rows are shown
            return True
        self.beginResetModel()
        self._rows = made
        self.endResetModel()
        return False

    def update(self, rows: list[dict]) -> None:
        """New values of findings shown (by id), in their rows (sorted again if their order changed)."""
        by_id = {int(r["id"]): r for r in rows}
        changed = [i for i, f in enumerate(self._rows) if f.id in by_id]
        for i in changed:
            self._rows[i] = _Finding(by_id[self._rows[i].id])
        for first, last in row_runs(changed):
            self.dataChanged.emit(self.index(first, 0), self.index(last, len(COLUMNS) - 1))
        if changed:
            self.sort(*self._sorted_by)

    def finding(self, row: int) -> dict:
        """The finding's dict shown in ``row``."""
        return self._rows[row].row

    def rows_of(self, ids: set[int]) -> list[int]:
        return [i for i, f in enumerate(self._rows) if f.id in ids]

    def accepts(self, row: int, kind: str | None, open_only: bool, needle: str) -> bool:
        """Whether a finding is of ``kind`` (None: any), open if ``open_only``, and holds ``needle`` (casefolded) in
        a cell, its path or its label."""
        f = self._rows[row]
        return (kind is None or f.text[0] == kind) and (not open_only or f.text[STATUS] == "open") \
            and needle in f.haystack

    # -- Qt model interface --------------------------------------------------------------------------------
    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        f, col = self._rows[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return f.text[col]
        if role == ROW and col == 0:
            return f.row
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == REASON:
                return f.row["reason"]
            if col == TRACK:
                return f.row["path"] + (f"  [{f.row['label']}]" if f.row.get("label") else "")
        return None

    def flags(self, index):
        return CELL



class FindingsFilter(QSortFilterProxyModel):
    """One kind, open findings only, and a text searched in every cell, the path and the label. Sorting is the
    source model's own (a proxy's sort calls back into Python at every comparison): the proxy keeps its order."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.kind: str | None = None
        self.open_only = False
        self.needle = ""

    def refilter(self, **change) -> None:
        """Set filters (kind, open_only, needle) and filter again."""
        if hasattr(self, "beginFilterChange"):  # Qt >= 6.10 deprecates invalidateFilter()
            self.beginFilterChange()
            self._set(change)
            self.endFilterChange()
        else:
            self._set(change)
            self.invalidateFilter()

    def _set(self, change: dict) -> None:
        for name, value in change.items():
            setattr(self, name, value)

    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:
        self.sourceModel().sort(column, order)

    def filterAcceptsRow(self, row: int, parent) -> bool:  # noqa: N802 (Qt override)
        return self.sourceModel().accepts(row, self.kind, self.open_only, self.needle)
