"""The library table's model: one row per track (or failed file), held as plain Python values and sorted here.

At 20,000 tracks a QStandardItemModel took 1-3 s to fill (140,000 items) and the proxy's sort called back into
Python for every comparison; this model fills in a few tens of milliseconds, sorts with Python's ``sorted``, and a
refill with the same tracks (a label edited) updates the cells in place, so the selection and the scroll stay."""

from __future__ import annotations

import os
import re

from PySide6.QtCore import Qt, Signal

from musicemb_gui.panels.table_rows import CELL, SortedRows
from musicemb_gui.widgets.plain_text import tooltip

COLUMNS = ("Track", "Length", "Label", "Segments", "Status", "BPM", "Key")
LABEL = COLUMNS.index("Label")
STATUS = COLUMNS.index("Status")
SORT = Qt.ItemDataRole.UserRole
TRACK_ID = Qt.ItemDataRole.UserRole + 1
PATH = Qt.ItemDataRole.UserRole + 2
SOUNDS = Qt.ItemDataRole.UserRole + 3  # what the track sounds like (the tagger's tags): on hover, and filtered on
_SHOWN = (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole)


def _bpm_cell(bpm: float | str | None) -> tuple[str, float]:
    """Text and sort key of a BPM given as a number or a text like "128.0 (tag 127)" / "tag 127" (its first
    number; -1 for none)."""
    text = bpm if isinstance(bpm, str) else "" if bpm is None else f"{bpm:.1f}"
    number = re.search(r"\d+(\.\d+)?", text)
    return text, float(number.group()) if number else -1.0


def length_text(seconds: float | None) -> str:
    """A track's length as players show it: "4:03", "1:02:05"; tenths under 10 s ("0:04.5"); "" for none."""
    if seconds is None:
        return ""
    if round(seconds, 1) < 10:
        return f"0:{seconds:04.1f}"
    h, rest = divmod(int(round(seconds)), 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def _wheel_position(key: str | None) -> int:
    """Sort key of "8A  A minor": 8A, 8B, 9A, ... in wheel order; -1 for none."""
    code = (key or "").split(" ", 1)[0]
    if len(code) < 2 or not code[:-1].isdigit():
        return -1
    return 2 * int(code[:-1]) + (code[-1].upper() == "B")


_EDITABLE = CELL | Qt.ItemFlag.ItemIsEditable


class _Row:
    """One table row: its cells' texts and sort keys, and what hovering and filtering read."""

    __slots__ = ("key", "track_id", "path", "sounds", "tooltip", "text", "sort", "haystack", "source")

    def __init__(self, row: tuple):
        self.source = row
        tid, path, dur, label, n_seg, status = row[:6]
        bpm, key = (row[6], row[7]) if len(row) >= 8 else (None, "")
        base = os.path.basename(path)  # not pathlib: 20,000 Path objects took 0.3 s
        name = row[8] if len(row) >= 9 else base
        self.sounds = row[9] if len(row) >= 10 else ""
        self.key = tid if tid is not None else ("failed", path)
        self.track_id, self.path = tid, path
        self.tooltip = ("\n".join([path] if name == base else [name, path])
                        + (f"\nsounds like: {self.sounds}" if self.sounds else ""))
        bpm_text, bpm_sort = _bpm_cell(bpm)
        self.text = [name, length_text(dur), label or "", "" if n_seg is None else str(n_seg),
                     status, bpm_text, key or ""]
        self.sort = [name.casefold(), -1.0 if dur is None else float(dur), label or "",
                     -1 if n_seg is None else int(n_seg), status, bpm_sort, _wheel_position(key)]
        self._index_text()

    def _index_text(self) -> None:
        self.haystack = "\n".join([*self.text, self.path, self.sounds or ""]).casefold()

    def set_label(self, label: str) -> None:
        self.text[LABEL] = self.sort[LABEL] = label
        self.source = None  # no longer what it was made of: a fill with those texts makes it again
        self._index_text()


class TrackTable(SortedRows):
    """Rows of (track_id or None, path, duration_s or None, label, n_segments or None, status[, bpm (a number, a
    text like "128.0 (tag 127)", or None), key text like "8A  A minor" or ""[, name[, sounds like]]]); the name
    (default: the file name) is shown, the path and what it sounds like on hover. Labels of tracks are editable:
    an edit emits ``labelEdited``."""

    labelEdited = Signal(int, str)  # track id, the label typed (stripped; "" = none)
    COLUMNS = COLUMNS

    def __init__(self, parent=None):
        super().__init__(parent)
        self._made: dict[tuple, _Row] = {}  # the rows shown, by the tuple they were made of

    def make_rows(self, rows: list[tuple]) -> list[_Row]:
        """The table's rows of these tuples, those unchanged as they are (no Qt: made on a worker thread for a big
        table, 1.4 s for 20,000 rows)."""
        made = self._made
        return [m if (m := made.get(r)) is not None and m.source is not None else _Row(r)
                for r in rows]  # an unchanged row is not made again (0.3 s for 20,000)

    def set_rows(self, rows: list[tuple], made: list[_Row] | None = None) -> None:
        """Show these rows (``made``: their :meth:`make_rows`), in the current sort order; the same tracks as now
        (labels or tempo changed) are updated in place: persistent indexes (the view's selection, its current row)
        follow their rows."""
        new = self.make_rows(rows) if made is None else made
        self._made = {r.source: r for r in new}
        by_key = {r.key: r for r in new}
        if len(by_key) == len(new) == len(self._rows) and all(r.key in by_key for r in self._rows):
            self._rows = [by_key[r.key] for r in self._rows]
            if new:
                self.dataChanged.emit(self.index(0, 0), self.index(len(new) - 1, len(COLUMNS) - 1))
            self.sort(*self._sorted_by)
            return
        self.beginResetModel()
        self._rows = self._ordered(new)
        self.endResetModel()

    def set_labels(self, labels: dict[int, str | None]) -> None:
        """New labels of some tracks ({track id: label}), updated in place (and sorted again if sorted by label)."""
        for i, r in enumerate(self._rows):
            if r.track_id in labels and r.text[LABEL] != (labels[r.track_id] or ""):
                r.set_label(labels[r.track_id] or "")
                self.dataChanged.emit(self.index(i, 0), self.index(i, len(COLUMNS) - 1))
        if self._sorted_by[0] == LABEL:
            self.sort(*self._sorted_by)

    def track_id(self, row: int) -> int | None:
        return self._rows[row].track_id

    def matches(self, row: int, needle: str) -> bool:
        """Whether any cell's text, the path or what the track sounds like holds ``needle`` (casefolded)."""
        return needle in self._rows[row].haystack

    # -- Qt model interface --------------------------------------------------------------------------------
    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        r, col = self._rows[index.row()], index.column()
        if role in _SHOWN:
            return r.text[col]
        if role == SORT:
            return r.sort[col]
        if col == 0:
            return {TRACK_ID: r.track_id, PATH: r.path, SOUNDS: r.sounds,
                    Qt.ItemDataRole.ToolTipRole: tooltip(r.tooltip)}.get(role)
        return None

    def flags(self, index):
        # Qt asks every selected cell at each resize (140,000 calls with 20,000 rows selected): constants, no
        # call into the base class
        if index.column() == LABEL and index.isValid() and self._rows[index.row()].track_id is not None:
            return _EDITABLE
        return CELL

    def setData(self, index, value, role=Qt.ItemDataRole.EditRole) -> bool:  # noqa: N802 (Qt override)
        if not (index.isValid() and role == Qt.ItemDataRole.EditRole and self.flags(index)
                & Qt.ItemFlag.ItemIsEditable):
            return False
        r, text = self._rows[index.row()], str(value)
        if text == r.text[LABEL]:
            return False
        r.set_label(text)
        self.dataChanged.emit(index, index)
        self.labelEdited.emit(int(r.track_id), text.strip())
        return True

