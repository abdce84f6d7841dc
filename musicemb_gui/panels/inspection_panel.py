"""Inspection panel: the findings of ``musicemb inspect`` (mislabelled tracks, faulty segments, outliers,
near-duplicates) in a sortable, filterable table, with accept / dismiss / reopen / relabel / play / show on map, and
the selected finding's spectrogram from 20 Hz (linear or logarithmic frequency axis) so hum and rumble show.
Reviewing runs from the keyboard too (see KEYS_TIP), through the same buttons."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QItemSelection, QItemSelectionModel, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QStyledItemDelegate,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from musicemb_gui.panels.findings_table import COLUMNS, REASON, ROW, FindingsFilter, FindingsTable
from musicemb_gui.panels.table_rows import row_runs
from musicemb_gui.widgets.space_play import SpacePlays
from musicemb_gui.widgets.spectrogram_view import SpectrogramView

ALL_KINDS = "All kinds"
SPECTROGRAM_HINT = "Select a finding to see its spectrogram from 20 Hz"
RUN_TIP = "Find mislabelled tracks, faulty segments, outliers and near-duplicates"
REASON_LINES = 3  # a row shows this many lines of its reason at most; a longer one ends in "…" (its tooltip: all)
ROW_PADDING = 6  # pixels above and below a row's lines together: rows of two or three lines read apart
KEYS_HINT = "Keys: A accept · D dismiss · O reopen · R relabel · Space play"
KEYS_TIP = ("In the findings table: A accepts and D dismisses the selected findings, then selects the next open "
            "finding (playing it if you played the one reviewed); O reopens them; R or L types a label for the "
            "finding (Enter relabels and goes on, Esc goes back); Space plays the finding or stops it")
REVIEW_TIPS = {"accepted": "Accept the selected findings (A)", "dismissed": "Dismiss the selected findings (D)",
               "open": "Reopen the selected findings: open again, to be reviewed (O)"}
RELABEL_TIP = "Give the track this label and accept the finding (R or L types it, Enter stores it)"
REVIEW_KEYS = {Qt.Key.Key_A: "accepted", Qt.Key.Key_D: "dismissed", Qt.Key.Key_O: "open"}
LABEL_KEYS = (Qt.Key.Key_R, Qt.Key.Key_L)
COMMAND_MODIFIERS = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier | \
    Qt.KeyboardModifier.MetaModifier  # with one of them a letter is not a review key (Ctrl+A selects all)


class _ReasonDelegate(QStyledItemDelegate):
    """A reason cut short ends in "…" (the table elides file names in the middle)."""

    def initStyleOption(self, option, index) -> None:  # noqa: N802 (Qt override)
        super().initStyleOption(option, index)
        option.textElideMode = Qt.TextElideMode.ElideRight


def play_segment(row: dict) -> int | None:
    """The segment to play or show for a finding: its own, or for a whole track the most telling one."""
    sid = row.get("segment_id")
    return sid if sid is not None else row.get("details", {}).get("example_segment_id")


class InspectionPanel(QWidget):
    """Rows are the dicts of ``Library.findings()``; the panel knows nothing else about core types."""

    playRequested = Signal(int)          # segment id
    showOnMap = Signal(int)              # segment id
    segmentSelected = Signal(int)        # segment id of the one selected finding (its spectrogram is shown)
    relabelRequested = Signal(int, str)  # finding id, new label (the finding accepted with it)
    statusChanged = Signal(object, str)  # finding ids (one edit), "accepted" | "dismissed" | "open"
    runRequested = Signal()
    logFrequencyToggled = Signal(bool)  # the spectrogram's frequency axis: True = logarithmic

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = FindingsTable(self)
        self.proxy = FindingsFilter(self)
        self.proxy.setSourceModel(self.model)
        self.read_only = ""  # why the open library cannot be written ("": it can): no run, no review
        self._busy = False
        self._heard: int | None = None  # the finding this panel played last (a review of it plays the next one)
        self.now_playing: Callable[[], object] = lambda: None  # what the window's player holds (a player key)
        self.run = QPushButton("Run inspection")
        self.run.setToolTip(RUN_TIP)
        self.run.clicked.connect(self.runRequested)
        self.kind = QComboBox()
        self.kind.addItem(ALL_KINDS)
        self.kind.currentTextChanged.connect(self._kind_changed)
        self.open_only = QCheckBox("Open only")
        self.open_only.toggled.connect(self._open_only_changed)
        self.filter = QLineEdit(placeholderText="Filter by reason, track or label…")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self._filter_changed)
        self.count = QLabel("")
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(1, Qt.SortOrder.DescendingOrder)  # the most severe first, until the user sorts
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        header.setMinimumSectionSize(60)
        header.setResizeContentsPrecision(500)  # columns fitted to 500 rows, not 1,000, at each fill
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.setItemDelegateForColumn(REASON, _ReasonDelegate(self.table))
        self.table.verticalHeader().hide()
        self._fit_timer = QTimer(self, singleShot=True, interval=0)  # once per burst of scrolls and resizes
        self._fit_timer.timeout.connect(self._fit_rows)
        for signal in (self.table.verticalScrollBar().valueChanged, header.sectionResized, self.proxy.modelReset,
                       self.proxy.layoutChanged, self.proxy.rowsInserted, self.proxy.rowsRemoved):
            signal.connect(lambda *_: self._fit_timer.start())
        self.table.viewport().installEventFilter(self)  # taller: more rows in view to fit
        self.table.installEventFilter(self)  # the review keys
        self.table.doubleClicked.connect(lambda _: self._play())
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.accept = QPushButton("Accept")
        self.dismiss = QPushButton("Dismiss")
        self.reopen = QPushButton("Reopen")
        self._review_buttons = {"accepted": self.accept, "dismissed": self.dismiss, "open": self.reopen}
        self.new_label = QLineEdit(placeholderText="label")
        self.new_label.setToolTip("The label to give the track (the suggested one; edit it if you know better). "
                                  "R or L in the table types here; Enter relabels, Esc goes back")
        self.relabel = QPushButton("Relabel")
        self.play = QPushButton("Play")
        self.play.setToolTip("Play the finding's segment (Space in the table)")
        self.show_map = QPushButton("Show on map")
        for status, button in self._review_buttons.items():
            button.clicked.connect(lambda _=False, status=status: self._set_status(status))
        self.relabel.clicked.connect(self._relabel)
        self.new_label.textChanged.connect(self._relabel_state)
        self.new_label.returnPressed.connect(lambda: self._review_key(self.relabel, "accepted"))
        self.new_label.installEventFilter(self)  # Esc: back to the table
        self.play.clicked.connect(self._play)
        self.show_map.clicked.connect(self._show_map)
        self.spectrogram = SpectrogramView(empty_text=SPECTROGRAM_HINT)
        self.log_freq = QCheckBox("Log frequency")
        self.log_freq.setChecked(True)
        self.log_freq.setToolTip("Logarithmic frequency axis: low frequencies (hum at 50/60 Hz and its "
                                 "harmonics, rumble) get room")
        self.log_freq.toggled.connect(self.logFrequencyToggled)
        self.evidence = QListWidget()
        self.evidence.setToolTip("The segments that argue most for the suggested label: click one, or Space, to "
                                 "hear it")
        self.evidence.itemClicked.connect(self._evidence_clicked)
        SpacePlays(self.evidence, lambda row: int(self.evidence.item(row).data(ROW)),
                   lambda row: self._evidence_clicked(self.evidence.item(row)), lambda: self.now_playing())
        self.evidence_title = QLabel("")
        self.evidence_title.setTextFormat(Qt.TextFormat.PlainText)  # it names a label
        self.evidence_box = QWidget()
        box = QVBoxLayout(self.evidence_box)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.evidence_title)
        box.addWidget(self.evidence)
        self.evidence_title.setWordWrap(True)
        self.evidence_box.setMaximumWidth(16 * self.evidence.fontMetrics().averageCharWidth() + 24)
        self.evidence_box.hide()
        top = QHBoxLayout()
        for w in (self.run, self.kind, self.open_only):
            top.addWidget(w)
        top.addWidget(self.filter, 1)
        top.addWidget(self.count)
        bottom = QHBoxLayout()
        for w in (self.accept, self.dismiss, self.reopen, QLabel("Relabel to:"), self.new_label, self.relabel,
                  self.play, self.show_map):
            bottom.addWidget(w)
        self.hint = QLabel(KEYS_HINT)
        self.hint.setToolTip(KEYS_TIP)
        self.hint.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # cut, not widening the dock
        self.hint.setEnabled(False)  # greyed: a hint, not a control
        bottom.addWidget(self.hint, 1)
        bottom.addWidget(self.log_freq)
        self.split = QSplitter(Qt.Orientation.Horizontal)  # side by side: the dock is wide and short
        for w in (self.table, self.evidence_box, self.spectrogram):
            self.split.addWidget(w)
        self.split.setStretchFactor(0, 3)
        self.split.setStretchFactor(2, 2)
        self.split.setSizes([600, 150, 400])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.split, 1)
        layout.addLayout(bottom)
        self._selection_changed()

    # -- content ---------------------------------------------------------------------------------------------
    def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt override)
        if watched is self.table.viewport() and event.type() == QEvent.Type.Resize:
            self._fit_timer.start()
        elif watched is self.table and event.type() in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress):
            return self._table_key(event) or super().eventFilter(watched, event)
        elif watched is self.new_label and event.type() == QEvent.Type.KeyPress \
                and event.key() == Qt.Key.Key_Escape:
            self._back_to_table()
            return True
        return super().eventFilter(watched, event)

    def _fit_rows(self) -> None:
        """The rows in view as tall as their reason needs at the Reason column's width, REASON_LINES lines at most
        (at 1280 px a third line was cut off). Only those in view: fitting 40,000 rows reads every cell of each."""
        table, most = self.table, REASON_LINES * self.table.fontMetrics().lineSpacing() + ROW_PADDING
        row = max(table.rowAt(0), 0)
        while row < self.proxy.rowCount() and table.rowViewportPosition(row) < table.viewport().height():
            table.setRowHeight(row, min(table.sizeHintForRow(row) + ROW_PADDING, most))
            row += 1

    def set_findings(self, rows: list[dict]) -> None:
        """Rows with id, kind, segment_id, track_id, path, start_s, end_s, score, reason, status, details (a name
        shown in place of the file name). The user's sort, the selected findings still there and the scroll
        position stay; the same findings again (an Undo) are updated in place."""
        selected = {int(r["id"]) for r in self.selected()}
        scroll = self.table.verticalScrollBar().value()
        current = self.kind.currentText()
        self.kind.blockSignals(True)
        self.kind.clear()
        self.kind.addItem(ALL_KINDS)
        kinds = sorted({r["kind"] for r in rows})
        self.kind.addItems(kinds)
        self.kind.setCurrentText(current if self.kind.findText(current) >= 0 else ALL_KINDS)
        self.kind.blockSignals(False)
        self.proxy.kind = self._kind_of(self.kind.currentText())  # the fill filters with it
        same = self.model.set_findings(rows)
        self._update_count()
        for c in (0, 1, 3, 4, 5):
            self.table.resizeColumnToContents(c)
        for c, texts in ((0, kinds), (4, ["whole track"]), (5, ["accepted", "dismissed"])):  # each of their few
            width = max(map(self.table.fontMetrics().horizontalAdvance, texts), default=0) + 12  # values, not only
            self.table.setColumnWidth(c, max(width, self.table.columnWidth(c)))  # those in the rows sampled
        if not same:
            self._reselect(selected)
            self.table.verticalScrollBar().setValue(scroll)
        if not self.table.selectionModel().hasSelection():
            self.clear_spectrogram()

    def update_findings(self, rows: list[dict]) -> None:
        """New values (a status, a track's label) of findings shown, in their rows: the table is not filled
        again."""
        self.model.update(rows)
        self._update_count()

    def forget_heard(self) -> None:
        """No finding was played here (another library is open: its ids name other findings)."""
        self._heard = None

    def _reselect(self, ids: set[int]) -> None:
        """Select the shown findings with these ids (their spectrogram is shown again)."""
        selection = QItemSelection()
        rows = (self.proxy.mapFromSource(self.model.index(r, 0)).row() for r in self.model.rows_of(ids))
        for first, last in row_runs(sorted(r for r in rows if r >= 0)):
            selection.select(self.proxy.index(first, 0), self.proxy.index(last, len(COLUMNS) - 1))
        self.table.selectionModel().select(selection, QItemSelectionModel.SelectionFlag.ClearAndSelect)

    def show_spectrogram(self, S, row_hz, hop_s: float, title: str) -> None:
        """Show a (rows, frames) dB spectrogram with rows centred on ``row_hz``."""
        self.spectrogram.set_image(S, hop_s=hop_s, row_hz=row_hz, unit="dB re full scale", title=title)

    def clear_spectrogram(self, message: str = SPECTROGRAM_HINT) -> None:
        """Show no spectrogram, ``message`` in its place (why, when the finding's audio could not be read: the
        finding selected before stayed on show)."""
        self.spectrogram.clear()
        self.spectrogram.stack.set_empty(True, message)

    def set_busy(self, busy: bool) -> None:
        self._busy = busy
        self.run.setEnabled(not busy and not self.read_only)
        self.run.setText("Inspecting…" if busy else "Run inspection")

    def shown(self) -> list[dict]:
        """The findings the table shows (its filters and sort applied), top to bottom."""
        return [self._finding(r) for r in range(self.proxy.rowCount())]

    def selected(self) -> list[dict]:
        """Finding dicts of the selected rows, in view order."""
        return [self._finding(r) for r in self._selected_rows()]

    def _selected_rows(self) -> list[int]:
        """The selected view rows, top to bottom, from the selection's ranges (``selectedRows()`` made an index of
        every cell, three times a change: selecting all 40,000 findings froze the window for 5 s)."""
        ranges = self.table.selectionModel().selection()
        return sorted({r for rng in ranges for r in range(rng.top(), rng.bottom() + 1)})

    def one_selected(self) -> dict | None:
        """The selected finding when exactly one is (no finding is read for a larger selection)."""
        rows = self._selected_rows()
        return self._finding(rows[0]) if len(rows) == 1 else None

    def _finding(self, view_row: int) -> dict:
        return self.model.finding(self.proxy.mapToSource(self.proxy.index(view_row, 0)).row())

    def _update_count(self) -> None:
        self.count.setText(f"{self.proxy.rowCount()} of {self.model.rowCount()} findings")

    # -- filters ---------------------------------------------------------------------------------------------
    @staticmethod
    def _kind_of(text: str) -> str | None:
        return None if text in ("", ALL_KINDS) else text

    def _kind_changed(self, text: str) -> None:
        self.proxy.refilter(kind=self._kind_of(text))
        self._update_count()

    def _open_only_changed(self, on: bool) -> None:
        self.proxy.refilter(open_only=on)
        self._update_count()

    def _filter_changed(self, text: str) -> None:
        self.proxy.refilter(needle=text.strip().casefold())
        self._update_count()

    def set_read_only(self, note: str) -> None:
        """``note``: why the open library cannot be written ("": it can). Meanwhile running an inspection and
        accepting, dismissing or relabelling findings are off, the buttons saying why; reading them is not."""
        self.read_only = note
        self.run.setToolTip(note or RUN_TIP)
        self.set_busy(self._busy)
        self._review_state()
        self._relabel_state()

    # -- actions ---------------------------------------------------------------------------------------------
    def _review_state(self) -> None:
        """Accept, Dismiss and Reopen are on for a selection, in a library that may be written; the keys follow
        them."""
        rows = self.table.selectionModel().hasSelection()
        for status, button in self._review_buttons.items():
            button.setEnabled(rows and not self.read_only)
            button.setToolTip(self.read_only or REVIEW_TIPS[status])

    def _selection_changed(self, *_) -> None:
        one = self.one_selected()
        self._review_state()
        self.new_label.setEnabled(one is not None)
        self.play.setEnabled(one is not None and play_segment(one) is not None)
        self.show_map.setEnabled(self.play.isEnabled())
        self._show_evidence(one)
        if one is not None:
            self.new_label.setText(self._label_for(one))
            if (sid := play_segment(one)) is not None:
                self.segmentSelected.emit(int(sid))
        self._relabel_state()

    def _relabel_state(self, *_) -> None:
        """Relabel is on for one finding and a label other than its track's now (an outlier's box holds its own
        label: relabelling to it changed nothing yet marked the finding accepted)."""
        one = self.one_selected()
        text = self.new_label.text().strip()
        self.relabel.setEnabled(one is not None and bool(text) and text != (one.get("label") or "")
                                and not self.read_only)
        self.relabel.setToolTip(self.read_only or (RELABEL_TIP if self.relabel.isEnabled() or one is None else
                                                   "Type a label other than the track's own to relabel it"))

    @staticmethod
    def _label_for(row: dict) -> str:
        """What the label box offers for a finding: the suggested label, else its track's own."""
        return row.get("details", {}).get("suggested") or row.get("label") or ""

    def _show_evidence(self, row: dict | None) -> None:
        """List a track label finding's arguing segments (time and probability of the suggested label)."""
        self.evidence.clear()
        segments = (row or {}).get("details", {}).get("segments") or []
        for seg in segments:
            item = QListWidgetItem(f"{seg['start_s']:.1f}–{seg['end_s']:.1f} s  {100 * seg['p']:.0f} %")
            item.setData(ROW, int(seg["segment_id"]))
            self.evidence.addItem(item)
        if segments:
            self.evidence_title.setText(f"Segments that sound most like {row['details']['suggested']!r}:")
        self.evidence_box.setVisible(bool(segments))

    def _evidence_clicked(self, item: QListWidgetItem) -> None:
        sid = int(item.data(ROW))
        self._heard = int(self.selected()[0]["id"])  # the list shows the one selected finding's segments
        self.playRequested.emit(sid)
        self.segmentSelected.emit(sid)

    def _set_status(self, status: str) -> None:
        self._mark(self.selected(), status)

    def _mark(self, rows: list[dict], status: str, *, ask: bool = True) -> None:
        """Show ``rows`` with ``status``; ``ask``: and ask for it (statusChanged)."""
        if not rows:
            return
        self.update_findings([{**row, "status": status} for row in rows])
        if ask:
            self.statusChanged.emit(sorted(int(row["id"]) for row in rows), status)

    def _relabel(self) -> None:
        rows = self.selected()
        label = self.new_label.text().strip()
        if len(rows) == 1 and label:
            self._mark(rows[:1], "accepted", ask=False)  # the relabel accepts it, in the same edit
            self.relabelRequested.emit(int(rows[0]["id"]), label)

    def _play(self) -> None:
        rows = self.selected()
        if len(rows) == 1 and (sid := play_segment(rows[0])) is not None:
            self._heard = int(rows[0]["id"])
            self.playRequested.emit(int(sid))

    def _show_map(self) -> None:
        rows = self.selected()
        if len(rows) == 1 and (sid := play_segment(rows[0])) is not None:
            self.showOnMap.emit(int(sid))

    # -- keys ------------------------------------------------------------------------------------------------
    def _table_key(self, event) -> bool:
        """A, D, O, R or L and Space in the focused table (see KEYS_TIP); True when the key was this panel's.
        Space plays the selected finding unless it is the one played here last: then the window's Space plays or
        stops it as everywhere."""
        key, press = event.key(), event.type() == QEvent.Type.KeyPress
        if event.modifiers() & COMMAND_MODIFIERS:
            return False
        if key == Qt.Key.Key_Space:
            if not self._plays_selection():
                return False
            event.accept()  # the override: not the window's Space
            if press:
                self._play()
            return True
        if not press or key not in (*REVIEW_KEYS, *LABEL_KEYS):
            return False
        if event.isAutoRepeat():  # a key held down reviews one finding, not a run of them
            return True
        if key in LABEL_KEYS:
            self._type_label()
        else:
            self._review_key(self._review_buttons[REVIEW_KEYS[key]], REVIEW_KEYS[key])
        return True

    def _plays_selection(self) -> bool:
        rows = self.selected()
        return len(rows) == 1 and play_segment(rows[0]) is not None and int(rows[0]["id"]) != self._heard

    def _review_key(self, button: QPushButton, status: str) -> None:
        """Click ``button`` (greyed: nothing happens) for a key, back in the table; once stored, an accept or
        dismiss goes on to the next open finding, and plays it if the one reviewed was played here (a reopen
        stays)."""
        if not button.isEnabled():
            return
        view_rows = self._selected_rows()
        ids, following = {int(self._finding(r)["id"]) for r in view_rows}, self._next_open(view_rows)
        button.click()
        self.table.setFocus()
        stored = all(self.model.finding(r)["status"] == status for r in self.model.rows_of(ids))
        if status == "open" or not stored or following is None:  # refused: the finding stays selected
            return
        self._select(following)
        if self._heard in ids:
            self._play()

    def _next_open(self, view_rows: list[int]) -> int | None:
        """Id of the first open finding below the selected ``view_rows`` (sorted) in the table's order (its sort
        and filters), else the first open one above them; None when no other is open."""
        if not view_rows:
            return None
        chosen, last = set(view_rows), view_rows[-1]
        for r in (*range(last + 1, self.proxy.rowCount()), *range(last)):
            if r not in chosen and (f := self._finding(r))["status"] == "open":
                return int(f["id"])
        return None

    def _select(self, finding_id: int) -> None:
        """Select the finding, as the current row (Up and Down go on from it), scrolled into view."""
        [row] = self.model.rows_of({finding_id})
        index = self.proxy.mapFromSource(self.model.index(row, 0))
        if index.isValid():  # a filter may hide it now
            flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
            self.table.selectionModel().setCurrentIndex(index, flags)
            self.table.scrollTo(index)

    def _type_label(self) -> None:
        """R or L: the label box focused for the one selected finding, its suggested label written in (else its
        track's) and selected, so typing replaces it."""
        rows = self.selected()
        if len(rows) != 1 or self.read_only:
            return
        self.new_label.setText(self._label_for(rows[0]))
        self.new_label.setFocus()
        self.new_label.selectAll()

    def _back_to_table(self) -> None:
        """Esc in the label box: what was typed is dropped, the table focused again."""
        rows = self.selected()
        if len(rows) == 1:
            self.new_label.setText(self._label_for(rows[0]))
        self.table.setFocus()
