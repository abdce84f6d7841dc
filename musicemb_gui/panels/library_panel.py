"""Library panel: add files or folders (buttons or drag and drop), a sortable, filterable table of tracks and
failed files, labels edited in place, tempo and key (Camelot code first, so sorting by key walks the wheel),
DJ filters (BPM range, compatible keys) on top of the text filter, double-click to play a track, "More like
this" for the selected track, a set built from the selection, export."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import (
    QEvent,
    QItemSelection,
    QItemSelectionModel,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from musicemb_gui.panels.library_filters import DjFilterBar
from musicemb_gui.panels.table_rows import row_runs
from musicemb_gui.panels.track_table import COLUMNS, LABEL, STATUS, TrackTable
from musicemb_gui.workers import alive, wait_for

NO_TRACKS = ("No tracks yet. Add files… or Add folder… (or drop files here) to import music; File ▸ Open library… "
             "opens a library you already have.")
# shown after BPM and Key: in a 1366 px window those were behind a horizontal scroll, and a failed file's status
# ("failed: not a readable audio file …") pushed them further off
LAST_COLUMNS = ("Segments", "Status")
BIG_TABLE = 5_000  # rows above which the table's rows are made on a thread (1.4 s for 20,000)
TRACK_MIN_PX = 160  # the track's name stays readable however narrow the dock: the other columns scroll instead


class _PathFilter(QSortFilterProxyModel):
    """Filters on every column's text, the full path (column 0 shows the track's name) and what the track sounds
    like, and to the tracks ``allowed`` by the DJ filters (None: all rows). Sorting is the source model's own (a
    proxy's sort calls back into Python for every comparison): the proxy keeps the source's order."""

    needle = ""
    allowed: frozenset[int] | None = None

    def set_needle(self, text: str) -> None:
        self._change(lambda: setattr(self, "needle", text.strip().casefold()))

    def set_allowed(self, track_ids) -> None:
        self._change(lambda: setattr(self, "allowed", None if track_ids is None else frozenset(track_ids)))

    def _change(self, change) -> None:
        if hasattr(self, "beginFilterChange"):  # Qt >= 6.10 deprecates invalidateFilter()
            self.beginFilterChange()
            change()
            self.endFilterChange()
        else:
            change()
            self.invalidateFilter()

    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:
        self.sourceModel().sort(column, order)

    def filterAcceptsRow(self, row: int, parent) -> bool:  # noqa: N802 (Qt override)
        model = self.sourceModel()
        if self.allowed is not None and model.track_id(row) not in self.allowed:
            return False
        return not self.needle or model.matches(row, self.needle)


class LibraryPanel(QWidget):
    """Rows are plain tuples; the panel knows nothing about core types."""

    addPaths = Signal(list)              # files or folders to import
    labelEdited = Signal(int, str)       # track id, new label ("" = none)
    playRequested = Signal(int)          # track id
    moreLikeRequested = Signal(int)      # track id: "more like this"
    setRequested = Signal(list)          # track ids: order them into a set
    exportRequested = Signal()           # export the selection (or the tracks shown)
    tracksSelected = Signal(list)        # track ids of the rows the user selected
    shownTracksChanged = Signal(object)  # track ids the filters show; None when nothing is filtered

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setAcceptDrops(True)
        self._filling = False
        self._fills = 0  # counts the fills asked: one whose rows were made after a later one's is dropped
        self._fitted = False  # the columns were fitted to this library's rows (new_library: not yet)
        self._selecting = False  # rows selected by select_tracks(), not by the user
        self._filtering = False  # a filter changing: the selected rows it hides are signalled once, after
        self._hid_selected = False
        self.read_only = ""  # why the open library cannot be written ("": it can): no imports, no label edits
        self.model = TrackTable(self)
        self.model.labelEdited.connect(self._label_edited)
        self.proxy = _PathFilter(self)
        self.proxy.setSourceModel(self.model)
        self.filter = QLineEdit(placeholderText="Filter by name, path, label or status…")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(lambda text: self._refilter(self.proxy.set_needle, text))
        self.dj_filters = DjFilterBar()
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
        self.build_set = QPushButton("Build set…")
        self.build_set.setToolTip("Order the selected tracks (here or lassoed on the map) into a set of smooth "
                                  "transitions: similar sound, close tempo, compatible keys")
        self.build_set.clicked.connect(lambda: self.setRequested.emit(self.selected_tracks()))
        self.export = QPushButton("Export…")
        self.export.setToolTip("Write the selected tracks (else the tracks shown) as M3U8, CSV or rekordbox XML")
        self.export.clicked.connect(self.exportRequested)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)  # by name until the user clicks another header
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self._edit_triggers = self.table.editTriggers()  # labels are typed in place, unless read-only
        # every column sized by hand (_fit_track_column): the name takes the spare width, but never less than
        # TRACK_MIN_PX (stretched, it was squeezed to "…" in a 1280 px window by the other columns' widths)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setResizeContentsPrecision(500)  # fitted to the first 500 rows at each fill:
        # kept fitted (ResizeToContents) the header read 1,000 rows at every change of a cell, 0.2 s at 20,000 tracks
        self.table.resizeColumnsToContents()  # empty: the headers' widths (not 100 px each, wider than the dock)
        # a header highlighting a column whose every row is selected asks each row whether it is (140,000 calls
        # into the model at every repaint or resize with 20,000 rows selected: 2.4 s)
        self.table.horizontalHeader().setHighlightSections(False)
        self._show_last(LAST_COLUMNS)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)  # compact: more rows
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.table.viewport().installEventFilter(self)
        self.table.installEventFilter(self)  # Space plays the selected track
        self.now_playing: Callable[[], object] = lambda: None  # what the window's player holds (a player key)
        self.empty = QLabel(NO_TRACKS, self.table.viewport())  # over the rows: what to do while none is shown
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setTextFormat(Qt.TextFormat.PlainText)  # it quotes the filter typed
        self.empty.setMargin(12)
        self.empty.setStyleSheet("color: palette(placeholder-text); font-size: 13px;")
        self.empty.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)  # drops and clicks reach the table
        self.count = QLabel("")
        self.count.setToolTip("Tracks the filters show, of all in the library")
        self.table.doubleClicked.connect(self._double_clicked)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self._shown_timer = QTimer(self, singleShot=True, interval=100)  # one signal per burst of filtering
        self._shown_timer.timeout.connect(self._emit_shown)
        for signal in (self.proxy.layoutChanged, self.proxy.rowsInserted, self.proxy.rowsRemoved,
                       self.proxy.modelReset):
            signal.connect(lambda *_: self._filling or self._shown_timer.start())
            signal.connect(lambda *_: self._update_count())
        imports = QHBoxLayout()  # two short rows rather than one wide one: the dock fits beside the map at 1280 px
        for w in (self.add_files, self.add_folder, self.folder_labels):
            imports.addWidget(w)
        imports.addStretch(1)
        imports.addWidget(self.count)
        actions = QHBoxLayout()  # the filter, then what acts on the rows it leaves
        actions.addWidget(self.filter, 1)
        for w in (self.more_like, self.build_set, self.export):
            actions.addWidget(w)
        layout = QVBoxLayout(self)
        layout.addLayout(imports)
        layout.addLayout(actions)
        layout.addWidget(self.dj_filters)
        layout.addWidget(self.table)
        self._update_count()

    def _show_last(self, names: tuple[str, ...]) -> None:
        """Move these columns to the right end, in this order (the model's columns keep their numbers)."""
        head = self.table.horizontalHeader()
        for name in names:
            head.moveSection(head.visualIndex(COLUMNS.index(name)), len(COLUMNS) - 1)

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt override)
        if watched is self.table.viewport() and event.type() == QEvent.Type.Resize:
            self.empty.setGeometry(self.table.viewport().rect())
            self._fit_track_column()
        elif watched is self.table and event.type() in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress):
            return self._space(event) or super().eventFilter(watched, event)
        return super().eventFilter(watched, event)

    def _space(self, event) -> bool:
        """Space in the table plays the one selected track, unless the player holds it: then the window's Space
        stops or plays it again, as everywhere (it replayed whatever was heard last, a map point say)."""
        if event.key() != Qt.Key.Key_Space or event.modifiers() != Qt.KeyboardModifier.NoModifier:
            return False  # before the selection is read: every key of the table passes here
        rows = self._selected_rows()
        tid = self.track_id_at(rows[0]) if len(rows) == 1 else None
        if tid is None or ("track", int(tid)) == self.now_playing():
            return False
        event.accept()  # the override: not the window's Space
        if event.type() == QEvent.Type.KeyPress and not event.isAutoRepeat():
            self._play(int(tid))
        return True

    def _play(self, track_id: int) -> None:
        self.playRequested.emit(track_id)

    def _fit_track_column(self) -> None:
        """The track column takes the width the others leave, at least TRACK_MIN_PX."""
        head = self.table.horizontalHeader()
        others = sum(head.sectionSize(c) for c in range(1, len(COLUMNS)))
        head.resizeSection(0, max(TRACK_MIN_PX, self.table.viewport().width() - others))

    def _update_count(self) -> None:
        """"50 tracks" / "10 of 50 tracks"; in place of the empty rows, what to do."""
        total, shown = self.model.rowCount(), self.proxy.rowCount()
        plural = "s" * (total != 1)
        self.count.setText("" if not total else f"{total:,} track{plural}" if shown == total else
                           f"{shown:,} of {total:,} track{plural}")
        if not total:
            self.empty.setText(NO_TRACKS)
        elif not shown:
            what = [f"“{self.filter.text().strip()}”"] if self.proxy.needle else []
            if self.dj_filters.active():
                what.append("the BPM/key filters")
            self.empty.setText(f"No track matches {' and '.join(what) or 'the filters'}: clear "
                               f"{'them' if len(what) > 1 else 'it'} to see all {total:,} track{plural}.")
        self.empty.setVisible(not shown)

    def set_read_only(self, note: str) -> None:
        """``note``: why the open library cannot be written ("": it can). Meanwhile adding files (buttons, drops)
        and typing labels are off, the buttons saying why."""
        self.read_only = note
        for b in (self.add_files, self.add_folder):
            b.setEnabled(not note)
            b.setToolTip(note)
        self.table.setEditTriggers(QTableView.EditTrigger.NoEditTriggers if note else self._edit_triggers)

    def set_rows(self, rows: list[tuple]) -> None:
        """Rows as :class:`TrackTable` takes them; the same tracks as shown keep their selection and scroll. Many
        rows are made on a thread of their own, the window's events going on: a later fill ending first wins."""
        self._fills += 1
        mine, made = self._fills, None
        if len(rows) > BIG_TABLE:
            made = wait_for(lambda: self.model.make_rows(rows))
            if mine != self._fills or not alive(self):
                return
        self._filling = True  # not blockSignals: the proxy must see the changed rows
        try:
            self.model.set_rows(rows, made)
        finally:
            self._filling = False
        if self._fitted:  # the library read again: the columns keep their widths (a user's too), the text ones
            head = self.table.horizontalHeader()  # only grow (every column fitted again: 0.4 s at 20,000 tracks)
            for c in (LABEL, STATUS):
                head.resizeSection(c, max(head.sectionSize(c), self.table.sizeHintForColumn(c)))
        else:
            self.table.resizeColumnsToContents()
            self._fitted = self.model.rowCount() > 0
        self._fit_track_column()
        self._update_count()
        self._shown_timer.start()

    def new_library(self) -> None:
        """Another library was opened: its first rows fit the columns again."""
        self._fitted = False

    def set_labels(self, labels: dict[int, str | None]) -> None:
        """New labels of some tracks ({track id: label}), shown in place."""
        self._filling = True
        try:
            self.model.set_labels(labels)
        finally:
            self._filling = False
        self.table.resizeColumnToContents(LABEL)  # a longer label is not elided
        self._fit_track_column()

    def track_id_at(self, proxy_row: int) -> int | None:
        """The track of a shown row, from the model's rows (``data()`` made a cell's roles and tooltip for each:
        half the window's freeze when a lasso or Select All picked 20,000 tracks)."""
        source = self.proxy.mapToSource(self.proxy.index(proxy_row, 0))
        return self.model.track_id(source.row()) if source.isValid() else None

    def _selected_rows(self) -> list[int]:
        """The selected rows, top to bottom, from the selection's ranges (``selectedRows()`` is quadratic in them:
        0.45 s for 6,667 of 20,000 rows, at every change of the selection)."""
        ranges = self.table.selectionModel().selection()
        return sorted({r for rng in ranges for r in range(rng.top(), rng.bottom() + 1)})

    def selected_track(self) -> int | None:
        rows = self._selected_rows()
        return self.track_id_at(rows[0]) if rows else None

    def selected_tracks(self) -> list[int]:
        """Track ids of the selected rows, top to bottom (failed files left out)."""
        return [int(t) for t in map(self.track_id_at, self._selected_rows()) if t is not None]

    def shown_tracks(self) -> list[int]:
        """Track ids of the rows the filters let through, top to bottom."""
        return [int(t) for t in map(self.track_id_at, range(self.proxy.rowCount())) if t is not None]

    def select_tracks(self, track_ids) -> None:
        """Select the rows of these tracks (those the filters show) and scroll to the first; no
        ``tracksSelected``: the selection comes from elsewhere (the map)."""
        wanted = {int(t) for t in track_ids}
        rows = [r for r in range(self.proxy.rowCount()) if self.track_id_at(r) in wanted]
        first = rows[0] if rows else None
        selection = QItemSelection()
        for a, b in row_runs(rows):  # one range per run of rows: Qt checks ranges one by one at every resize
            selection.select(self.proxy.index(a, 0), self.proxy.index(b, len(COLUMNS) - 1))
        self._selecting = True
        try:
            self.table.selectionModel().select(selection, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        finally:
            self._selecting = False
        if first is not None:
            self.table.scrollTo(self.proxy.index(first, 0))

    def set_allowed_tracks(self, track_ids) -> None:
        """Show only these tracks (the DJ filters' verdict); None: every row."""
        self._refilter(self.proxy.set_allowed, track_ids)

    def _refilter(self, change, value) -> None:
        """``change(value)`` of a filter, then one ``_selection_changed`` if it hid selected rows (Qt signals them
        range by range: 20,000 rows with a third selected froze the window for 80 s)."""
        self._filtering, self._hid_selected = True, False
        try:
            change(value)
        finally:
            self._filtering = False
        if self._hid_selected:
            self._selection_changed()

    def _selection_changed(self, *_) -> None:
        if self._filtering:
            self._hid_selected = True
            return
        one = self.selected_track() is not None
        self.more_like.setEnabled(one)
        self.dj_filters.match.setEnabled(one)
        if not (self._selecting or self._filling):
            self.tracksSelected.emit(self.selected_tracks())

    def _emit_shown(self) -> None:
        filtered = self.proxy.allowed is not None or bool(self.proxy.needle)
        self.shownTracksChanged.emit(self.shown_tracks() if filtered else None)

    def _more_like(self) -> None:
        tid = self.selected_track()
        if tid is not None:
            self.moreLikeRequested.emit(int(tid))

    def _label_edited(self, track_id: int, label: str) -> None:
        if not self._filling:
            self.labelEdited.emit(track_id, label)

    def _double_clicked(self, index) -> None:
        tid = self.track_id_at(index.row())
        if tid is not None and index.column() != LABEL:
            self._play(int(tid))

    def _ask_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Add audio files")
        if files:
            self.addPaths.emit(files)

    def _ask_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder of audio")
        if folder:
            self.addPaths.emit([folder])

    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if event.mimeData().hasUrls() and not self.read_only:  # read-only: the cursor says no
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 (Qt override)
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths and not self.read_only:
            self.addPaths.emit(paths)
            event.acceptProposedAction()
