"""Map panel: the 2-D map of every segment (PCA at once, UMAP/t-SNE as background jobs, all cached), colour by
label / cluster / predicted label / track / finding / BPM / key, click to play, hover to read (and optionally
listen), box/lasso selection with labelling, the clicked segment's nearest neighbours listed and drawn, and its
log-mel spectrogram exactly as the model sees it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from musicemb_gui.panels.label_dialog import LabelDialog
from musicemb_gui.panels.map_controller import MapController
from musicemb_gui.widgets.cluster_count_box import ClusterCountBox
from musicemb_gui.widgets.empty_state import EmptyState
from musicemb_gui.widgets.plain_text import tooltip
from musicemb_gui.widgets.scatter_view import ScatterView, index_points
from musicemb_gui.widgets.space_play import SpacePlays
from musicemb_gui.widgets.spectrogram_view import SpectrogramView
from musicemb_gui.workers import alive, wait_for

METHODS = {"PCA": "pca", "UMAP": "umap", "t-SNE": "tsne"}
BIG_MAP = 100_000  # points above which a map's search tree is made on a thread (1.4 s for 1.6M points)
EMPTY_MAP = ("No map yet. Add music with File ▸ Add folder… or by dropping files on the Library: it is embedded "
             "and mapped by itself (Library ▸ Embed does it again).")
COLOUR_BY = ("label", "cluster", "predicted label", "track", "finding", "BPM", "key")
SPECTROGRAM_HINT = "Click a point to see its log-mel spectrogram as the model sees it."
NEIGHBOURS_HINT = "Click a point on the map: the segments that sound most like it are listed here."
NO_NEIGHBOURS = ("Nothing to list: the library holds no other segment (of another track, with “segments of other "
                 "tracks only”).")


class _ColourBox(QComboBox):
    """As wide as its choice where the toolbar has room ("predicted label" showed as "predicted la" at any width),
    as narrow as 6 characters where it has not (a 1280 px window)."""

    def __init__(self):
        super().__init__()
        self.currentIndexChanged.connect(lambda _i: self.updateGeometry())

    def sizeHint(self):  # noqa: N802 (Qt override)
        hint = super().sizeHint()
        fm = self.fontMetrics()
        frame = super().minimumSizeHint().width() - fm.horizontalAdvance("x" * self.minimumContentsLength())
        return hint.expandedTo(QSize(fm.horizontalAdvance(self.currentText()) + frame, hint.height()))


def _table(headers: list[str], stretch: int) -> QTableWidget:
    """A read-only, row-selecting list with column ``stretch`` taking the spare width."""
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(headers)
    head = table.horizontalHeader()
    for col in range(len(headers)):
        head.setSectionResizeMode(col, QHeaderView.ResizeMode.Stretch if col == stretch else
                                  QHeaderView.ResizeMode.ResizeToContents)
    table.setWordWrap(False)
    table.setTextElideMode(Qt.TextElideMode.ElideRight)  # names: their start matters
    table.verticalHeader().hide()
    table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 8)  # compact: more rows
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
    table.setMinimumHeight(48)  # a header and a row: room for the spectrogram in a 720 px high window
    return table


class MapPanel(QWidget):
    playRequested = Signal(int)  # segment id
    trackPlayRequested = Signal(int)  # track id

    def __init__(self, controller: MapController):
        super().__init__()
        self.ctl = controller
        self.method = QComboBox()
        self.method.addItems(list(METHODS))
        self.method.setCurrentText("UMAP")
        self.method.setToolTip("How the map is drawn from the embeddings")
        self.colour = _ColourBox()
        self.colour.addItems(list(COLOUR_BY))
        self.colour.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.colour.setMinimumContentsLength(6)
        self.clusters = ClusterCountBox(50, "How many k-means clusters to colour by")
        self.clusters.setVisible(False)
        self.search = QLineEdit(placeholderText="Find by name, label, key…")
        self.search.setClearButtonEnabled(True)
        self.search.setMinimumWidth(100)
        self.search.setToolTip("The library's filter: the table lists the tracks found, the map greys out the rest")
        self.match_count = QLabel("")
        self.fit = QPushButton("Fit")
        self.fit.setToolTip("Zoom to show the whole map (F)")
        self.fit.setFixedWidth(44)
        self.hover_play = QCheckBox("Listen on hover")
        self.other_tracks = QCheckBox("segments of other tracks only")
        self.other_tracks.setToolTip("List only segments of other tracks: a track's own seconds are always alike")
        self.other_tracks.setChecked(True)
        self.k = QSpinBox(minimum=1, maximum=100, value=10, prefix="k = ")
        self.k.setToolTip("How many segments or tracks to list")
        self.label_sel = QPushButton("Label selection…")
        self.label_sel.setEnabled(False)
        self.status = QLabel("")
        self.status.setWordWrap(True)  # long messages take two lines rather than widen the window
        self.status.setTextFormat(Qt.TextFormat.PlainText)  # it names tracks and labels: never HTML
        self.scatter = ScatterView(empty_text=EMPTY_MAP)
        self.scatter.tooltip_fn = controller.tooltip
        self.spectrogram = SpectrogramView(empty_text=SPECTROGRAM_HINT)
        self.neighbours = _table(["#", "cosine", "track", "time (s)"], 2)
        self.similar_title = QLabel("More like this: click a point")
        self.similar_title.setTextFormat(Qt.TextFormat.PlainText)
        self.similar = _table(["#", "cosine", "track", "label"], 2)
        self.similar.setToolTip("Whole tracks like the clicked point's track (similarity space); versions sharing its "
                                "audio (edits, remasters: ♪) first; double-click or Space to play")

        self.bar = bar = QHBoxLayout()  # the window puts the model picker first
        for w in (self.method, QLabel("Colour:"), self.colour, self.clusters, self.search,
                  self.fit, self.hover_play, self.label_sel):
            bar.addWidget(w)
        neighbours_box = QWidget()  # the neighbour options above their list: the map's bar fits 1280 px
        nl = QVBoxLayout(neighbours_box)
        nl.setContentsMargins(0, 0, 0, 0)
        options = QHBoxLayout()
        for w in (self.k, self.other_tracks):
            options.addWidget(w)
        options.addStretch(1)
        nl.addLayout(options)
        self.neighbours_box = EmptyState(self.neighbours, NEIGHBOURS_HINT)  # what the empty list is for
        nl.addWidget(self.neighbours_box)
        similar_box = QWidget()
        similar_layout = QVBoxLayout(similar_box)
        similar_layout.setContentsMargins(0, 0, 0, 0)
        similar_layout.addWidget(self.similar_title)
        similar_layout.addWidget(self.similar)
        self.lists = QTabWidget()  # one list at a time: each keeps rows to read in a 720 px high window
        self.lists.addTab(neighbours_box, "Nearest segments")
        self.lists.addTab(similar_box, "More like this")
        side = QSplitter(Qt.Orientation.Vertical)
        side.addWidget(self.spectrogram)
        side.addWidget(self.lists)
        side.setSizes([320, 280])
        side.setMinimumWidth(380)  # the spectrogram's axes and colour bar do not shrink below this
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.scatter)
        split.addWidget(side)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(split, 1)
        bottom = QHBoxLayout()
        bottom.addWidget(self.status, 1)
        bottom.addWidget(self.match_count)
        layout.addLayout(bottom)

        self._hover_timer = QTimer(self, singleShot=True, interval=250)
        self._hover_timer.timeout.connect(self._hover_audition)
        self._hovered = -1
        self.now_playing: Callable[[], object] = lambda: None  # what the window's player holds (a player key)
        SpacePlays(self.neighbours, self._neighbour_at, lambda row: self._neighbour_clicked(row, 0),
                   lambda: self.now_playing())
        SpacePlays(self.similar, lambda row: ("track", self._similar_at(row)),
                   lambda row: self._similar_clicked(row, 0), lambda: self.now_playing())
        self.selected_ids = np.zeros(0, np.int64)
        self.label_dialog: LabelDialog | None = None
        self.read_only = ""  # why the open library cannot be written ("": it can): no labelling
        self.method.currentTextChanged.connect(lambda name: controller.request_map(METHODS[name]))
        self.colour.currentTextChanged.connect(controller.request_colours)
        self.colour.currentTextChanged.connect(lambda mode: self.clusters.setVisible(mode == "cluster"))
        self.clusters.valueChanged.connect(lambda _k: controller.set_cluster_ks(self.clusters.ks()))
        controller.session.libraryOpened.connect(self.search.clear)
        controller.session.trackFilterChanged.connect(self._count)
        self.fit.clicked.connect(self.scatter.reset_view)
        QShortcut(QKeySequence("F"), self, self.scatter.reset_view,
                  context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.scatter.pointClicked.connect(self.select_segment)
        self.scatter.hovered.connect(self._on_hover)
        self.scatter.selectionChanged.connect(self._on_selection)
        self.neighbours.cellDoubleClicked.connect(self._neighbour_clicked)
        self.neighbours.currentCellChanged.connect(self._neighbour_current)
        self.similar.cellDoubleClicked.connect(self._similar_clicked)
        self.label_sel.clicked.connect(self._label_selection)
        controller.mapReady.connect(self._show_map)
        controller.coloursReady.connect(self._show_colours)
        controller.neighboursReady.connect(self._show_neighbours)
        controller.similarTracksReady.connect(self._show_similar)
        controller.spectrogramReady.connect(self._show_spectrogram)
        controller.spectrogramFailed.connect(self._no_spectrogram)
        self._map_status = ""  # what the map shown is and how to use it: the status line when nothing else is said
        self._maps = 0  # counts the maps asked to be shown: one indexed after a later one is dropped
        controller.status.connect(self._set_status)
        controller.cleared.connect(self.clear)
        controller.listsCleared.connect(self.clear_lists)

    # -- controller -> view --------------------------------------------------------------------------------
    def _show_map(self, ids: np.ndarray, xy: np.ndarray, method: str) -> None:
        self._maps += 1
        mine, index = self._maps, None
        if len(ids) > BIG_MAP:  # its search tree made on a thread of its own, the window's events going on
            index = wait_for(lambda: index_points(xy, ids))
            if mine != self._maps or not alive(self):  # another map (or none: another library) shown meanwhile
                return
        cats, palette, names = self.ctl.colours(self.colour.currentText(), ids)
        self.scatter.set_points(xy, ids, cats, palette, names, index=index)
        self.show_selection(self.selected_ids[np.isin(self.selected_ids, ids)])  # not the segments gone since
        self._count()
        unplaced = len(xy) - int(np.isfinite(xy).all(1).sum())
        self._set_status(f"{method.upper()} map of {len(ids):,} segments in the {self.ctl.session.model!r} space — "
                            + (f"{unplaced:,} without a position (NaN) are not drawn; " if unplaced else "")
                            + "click a point to listen, Shift+drag: box, Ctrl+drag: lasso", summary=True)

    def _set_status(self, text: str, *, summary: bool = False) -> None:
        """Say ``text`` under the map; "" (a colouring done, say) brings back the map's own line, which it wiped."""
        if summary:
            self._map_status = text
        self.status.setText(text or self._map_status)

    def _show_colours(self, cats: np.ndarray, palette: list[str], names: list[str]) -> None:
        if len(cats) == len(self.scatter._ids):  # else of a map still being indexed: coloured when it is shown
            self.scatter.set_categories(cats, palette, names)

    def _show_neighbours(self, src: int, rows: list[dict]) -> None:
        self.neighbours_box.set_empty(not rows, NO_NEIGHBOURS)
        self.neighbours.setRowCount(len(rows))
        for r, n in enumerate(rows):
            name = n.get("name") or Path(n["path"]).name
            for c, v in enumerate((r + 1, f"{n['score']:.3f}", name, f"{n['start_s']:.1f}")):
                item = QTableWidgetItem(str(v))
                item.setData(Qt.ItemDataRole.UserRole, n["segment_id"])
                item.setToolTip(tooltip(n["path"]))
                self.neighbours.setItem(r, c, item)
        self.scatter.show_links(src, np.array([n["segment_id"] for n in rows], dtype=np.int64))

    def clear(self) -> None:
        """Show nothing: another library was opened, or this one has no embeddings yet."""
        self._map_status = ""
        self._maps += 1  # a map being indexed is not shown
        self.scatter.set_points(np.zeros((0, 2), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64),
                                ["#9a9a9a"], [])
        self.clear_lists()
        self.spectrogram.clear()
        self.spectrogram.stack.set_empty(True, SPECTROGRAM_HINT)
        self._on_selection(np.zeros(0, np.int64))
        if self.label_dialog is not None:  # it names the old library's segments
            self.label_dialog.reject()
        self._hovered = -1

    def clear_lists(self) -> None:
        """Empty the neighbour and "more like this" lists and the links drawn (another model was chosen: their
        scores were its)."""
        for table in (self.neighbours, self.similar):
            table.setRowCount(0)
        self.neighbours_box.set_empty(True, NEIGHBOURS_HINT)
        self.scatter.clear_links()
        self.similar_title.setText("More like this: click a point")

    def _show_similar(self, track_id: int, rows: list[dict]) -> None:
        name = self.ctl.session.track_name
        self.similar_title.setText(f"More like this: tracks like {name(track_id)}")
        self.similar.setRowCount(len(rows))
        for r, t in enumerate(rows):
            version = t.get("version", False)
            title = f"♪ {name(t['track_id'])} (version)" if version else name(t["track_id"])
            for c, v in enumerate((r + 1, f"{t['score']:.3f}", title, t["label"] or "")):
                item = QTableWidgetItem(str(v))
                item.setData(Qt.ItemDataRole.UserRole, t["track_id"])
                item.setToolTip(tooltip(f"{t['path']}\nanother version: it shares this track's audio (an edit, "
                                        "a remaster)" if version else t["path"]))
                self.similar.setItem(r, c, item)

    def _similar_at(self, row: int) -> int:
        return int(self.similar.item(row, 0).data(Qt.ItemDataRole.UserRole))

    def _similar_clicked(self, row: int, _col: int) -> None:
        self.trackPlayRequested.emit(self._similar_at(row))

    def more_like_track(self, track_id: int) -> None:
        """List the tracks most like ``track_id`` and bring their list forward (the library panel asks)."""
        self.ctl.request_similar_tracks(int(track_id), self.k.value())
        self.lists.setCurrentIndex(1)

    def _show_spectrogram(self, seg_id: int, S: np.ndarray, cfg, title: str) -> None:
        """The model's input, coloured on a dB scale: standardised inputs are mapped back linearly (the same
        picture), peak-normalised ones read as dB below the segment's loudest bin."""
        unit = {"none": "dB", "standard": "dB", "peak": "dB re segment peak", "minmax": "min-max [0, 1]"}.get(
            cfg.normalise, cfg.normalise)
        if cfg.normalise in ("standard", "peak"):
            S = S * cfg.std + cfg.mean
        self.spectrogram.set_spectrogram(S, sr=cfg.sr, hop_length=cfg.hop_length, fmin=cfg.fmin,
                                         fmax=cfg.fmax or cfg.sr / 2, htk=cfg.htk, unit=unit, title=title)

    def _no_spectrogram(self, _seg_id: int, message: str) -> None:
        """No spectrogram, ``message`` in its place (the point clicked before stayed on show)."""
        self.spectrogram.clear()
        self.spectrogram.stack.set_empty(True, message)

    # -- user actions --------------------------------------------------------------------------------------
    def select_segment(self, seg_id: int) -> None:
        """Play, highlight, list neighbours and show the spectrogram of ``seg_id``."""
        if seg_id < 0:
            return
        if int(seg_id) not in self.ctl.session.seg_row:  # a stale id (a result of a library changed since)
            self.status.setText(f"segment {seg_id} is not in the open library")
            return
        self.playRequested.emit(int(seg_id))
        self.scatter.highlight(np.array([seg_id], dtype=np.int64))
        self.ctl.request_neighbours(int(seg_id), self.k.value(), other_tracks=self.other_tracks.isChecked())
        self.ctl.request_similar_tracks(self.ctl.session.segment(int(seg_id))["track_id"], self.k.value())
        self.ctl.request_spectrogram(int(seg_id))

    def _on_hover(self, seg_id: int) -> None:
        self._hovered = seg_id
        if seg_id >= 0:
            self.ctl.prefetch(seg_id)
            if self.hover_play.isChecked():
                self._hover_timer.start()

    def _hover_audition(self) -> None:
        if self._hovered >= 0:
            self.playRequested.emit(self._hovered)

    def _on_selection(self, ids) -> None:
        self.selected_ids = np.asarray(ids, dtype=np.int64)
        self.label_sel.setEnabled(len(self.selected_ids) > 0 and not self.read_only)
        self.label_sel.setText(f"Label {len(self.selected_ids)} selected…" if len(self.selected_ids) else
                               "Label selection…")

    def set_read_only(self, note: str) -> None:
        """``note``: why the open library cannot be written ("": it can); labelling the selection is off meanwhile,
        its button saying why. The map itself is drawn (a UMAP or t-SNE map is then not kept)."""
        self.read_only = note
        self.label_sel.setToolTip(note)
        self._on_selection(self.selected_ids)

    def show_selection(self, ids) -> None:
        """Ring and select these segments (chosen elsewhere: the library table) without a ``selectionChanged``."""
        self.scatter.highlight(ids)
        self._on_selection(self.scatter.ringed_ids)

    def _label_selection(self) -> None:
        """Preview what the selection touches, then label whole tracks or tag the selected segments."""
        s, ids = self.ctl.session, self.selected_ids
        labels = {t.label for t in s.tracks.values() if t.label} | set(s.edits.tags.values())
        self.label_dialog = LabelDialog(s.edits.preview(ids), sorted(labels), self)
        self.label_dialog.accepted.connect(
            lambda d=self.label_dialog: self.ctl.label_segments(ids, d.choice()[0], whole_tracks=d.choice()[1]))
        self.label_dialog.open()

    def _neighbour_at(self, row: int) -> int:
        return int(self.neighbours.item(row, 0).data(Qt.ItemDataRole.UserRole))

    def _neighbour_clicked(self, row: int, _col: int) -> None:
        seg_id = self._neighbour_at(row)
        self.playRequested.emit(seg_id)
        self.scatter.center_on(seg_id)

    def _neighbour_current(self, row: int, _col: int, old_row: int, _old_col: int) -> None:
        """Up/Down in the focused neighbour list: play the next or previous neighbour."""
        if row != old_row and row >= 0 and self.neighbours.hasFocus():
            self._neighbour_clicked(row, 0)

    def _count(self, *_) -> None:
        """How many points the library's filters (the search among them) let through."""
        s, ids = self.ctl.session, self.ctl.ids
        if s.track_filter is None:
            self.match_count.setText("")
            return
        found = int(np.isin(s.segment_tracks(ids), np.fromiter(s.track_filter, np.int64)).sum())
        self.match_count.setText(f"<b>{found:,} of {len(ids):,} segments match</b>")
