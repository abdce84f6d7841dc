"""Library panel: add files or folders (buttons or drag and drop), a sortable, filterable table of tracks and
failed files, labels edited in place, tempo and key (Camelot code first, so sorting by key walks the wheel),
double-click to play a track, "More like this" for the selected track."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

COLUMNS = ("File", "Duration (s)", "Label", "Segments", "Status", "BPM", "Key")
TRACK_ID = Qt.ItemDataRole.UserRole + 1
PATH = Qt.ItemDataRole.UserRole + 2
SORT = Qt.ItemDataRole.UserRole


def _item(value, *, sort_key=None, editable: bool = False) -> QStandardItem:
    item = QStandardItem(str(value))
    item.setEditable(editable)
    item.setData(sort_key if sort_key is not None else str(value), SORT)
    return item


class _PathFilter(QSortFilterProxyModel):
    """Filters on every column's text and on the full path (column 0 shows only the file name)."""

    needle = ""

    def set_needle(self, text: str) -> None:
        self.needle = text.strip().lower()
        self.setFilterFixedString(text.strip())

    def filterAcceptsRow(self, row: int, parent) -> bool:  # noqa: N802 (Qt override)
        if super().filterAcceptsRow(row, parent):
            return True
        path = self.sourceModel().index(row, 0, parent).data(PATH) or ""
        return bool(self.needle) and self.needle in path.lower()


def _wheel_position(key: str | None) -> int:
    """Sort key of "8A  A minor": 8A, 8B, 9A, ... in wheel order; -1 for none."""
    code = (key or "").split(" ", 1)[0]
    if len(code) < 2 or not code[:-1].isdigit():
        return -1
    return 2 * int(code[:-1]) + (code[-1].upper() == "B")


class LibraryPanel(QWidget):
    """Rows are plain tuples; the panel knows nothing about core types."""

    addPaths = Signal(list)              # files or folders to import
    labelEdited = Signal(int, str)       # track id, new label ("" = none)
    playRequested = Signal(int)          # track id
    moreLikeRequested = Signal(int)      # track id: "more like this"

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setAcceptDrops(True)
        self._filling = False
        self.model = QStandardItemModel(0, len(COLUMNS), self)
        self.model.setHorizontalHeaderLabels(COLUMNS)
        self.model.itemChanged.connect(self._item_changed)
        self.proxy = _PathFilter(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.proxy.setFilterKeyColumn(-1)
        self.filter = QLineEdit(placeholderText="Filter by path, label or status…")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self.proxy.set_needle)
        self.add_files = QPushButton("Add files…")
        self.add_folder = QPushButton("Add folder…")
        self.add_files.clicked.connect(self._ask_files)
        self.add_folder.clicked.connect(self._ask_folder)
        self.folder_labels = QCheckBox("Label by folder")
        self.folder_labels.setToolTip("Imported files take their parent folder's name as label")
        self.folder_labels.setChecked(True)
        self.more_like = QPushButton("More like this")
        self.more_like.setToolTip("Tracks most like the selected one (similarity space), listed beside the map")
        self.more_like.setEnabled(False)
        self.more_like.clicked.connect(self._more_like)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        for col in range(len(COLUMNS)):
            self.table.horizontalHeader().setSectionResizeMode(
                col, QHeaderView.ResizeMode.Stretch if col == 0 else QHeaderView.ResizeMode.ResizeToContents)
        self.table.verticalHeader().hide()
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideLeft)  # the file name matters more than the folders
        self.table.doubleClicked.connect(self._double_clicked)
        self.table.selectionModel().selectionChanged.connect(
            lambda *_: self.more_like.setEnabled(self.selected_track() is not None))
        buttons = QHBoxLayout()  # on their own row, so that the filter and the table keep the dock's width
        for w in (self.add_files, self.add_folder, self.folder_labels):
            buttons.addWidget(w)
        buttons.addStretch(1)
        buttons.addWidget(self.more_like)
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.filter)
        layout.addWidget(self.table)

    def set_rows(self, rows: list[tuple]) -> None:
        """Rows of (track_id or None, path, duration_s or None, label, n_segments or None, status[, bpm or None,
        key text like "8A  A minor" or ""])."""
        self._filling = True  # not blockSignals: the proxy must see the inserted rows
        self.model.setRowCount(0)
        for row in rows:
            tid, path, dur, label, n_seg, status = row[:6]
            bpm, key = (row[6], row[7]) if len(row) >= 8 else (None, "")
            first = _item(Path(path).name, sort_key=path)  # the name; the full path on hover and in the filter
            first.setData(tid, TRACK_ID)
            first.setData(path, PATH)
            first.setToolTip(path)
            self.model.appendRow([
                first,
                _item("" if dur is None else f"{dur:.1f}", sort_key=-1.0 if dur is None else float(dur)),
                _item(label, editable=tid is not None),
                _item("" if n_seg is None else n_seg, sort_key=-1 if n_seg is None else int(n_seg)),
                _item(status),
                _item("" if bpm is None else f"{bpm:.1f}", sort_key=-1.0 if bpm is None else float(bpm)),
                _item(key or "", sort_key=_wheel_position(key)),
            ])
        self._filling = False
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)

    def track_id_at(self, proxy_row: int) -> int | None:
        return self.proxy.index(proxy_row, 0).data(TRACK_ID)

    def selected_track(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        return self.track_id_at(rows[0].row()) if rows else None

    def _more_like(self) -> None:
        tid = self.selected_track()
        if tid is not None:
            self.moreLikeRequested.emit(int(tid))

    def _item_changed(self, item: QStandardItem) -> None:
        if item.column() == 2 and not self._filling:
            tid = self.model.item(item.row(), 0).data(TRACK_ID)
            if tid is not None:
                self.labelEdited.emit(int(tid), item.text().strip())

    def _double_clicked(self, index) -> None:
        tid = self.track_id_at(index.row())
        if tid is not None and index.column() != 2:
            self.playRequested.emit(int(tid))

    def _ask_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Add audio files")
        if files:
            self.addPaths.emit(files)

    def _ask_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder of audio")
        if folder:
            self.addPaths.emit([folder])

    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 (Qt override)
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            self.addPaths.emit(paths)
            event.acceptProposedAction()
