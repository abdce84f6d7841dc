"""Export from the app: the library's selection or shown tracks, the map's selection, the neighbour list, "more
like this", the findings or the built set, to M3U8, CSV or rekordbox XML through the core's writers (fast enough
to run at once: the rows come from the session's tracks). Each list keeps its own fields in the CSV (scores,
finding kinds and times, transition costs)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QFileDialog, QMenu, QMessageBox, QTableWidget, QWidget

from musicemb_core.common.errors import MusicEmbError
from musicemb_core.workflows.dj import EXPORT_SUFFIXES, export, item_rows
from musicemb_gui.panels.inspection_controller import InspectionController
from musicemb_gui.panels.library_controller import LibraryController
from musicemb_gui.panels.map_controller import MapController
from musicemb_gui.panels.map_panel import MapPanel
from musicemb_gui.session import Session

SOURCES = {"selection": "Selected tracks", "shown": "Tracks shown in the library", "map": "Map selection",
           "neighbours": "Neighbour list", "similar": "More like this", "findings": "Findings shown", "set": "Set"}
FILTERS = {"M3U8 playlist (*.m3u8)": ".m3u8", "CSV table (*.csv)": ".csv", "rekordbox XML (*.xml)": ".xml"}


def export_file(path: str, chosen: str) -> str:
    """The file the save dialog's answer names: ``path``, with the ``chosen`` filter's suffix added unless it
    already ends in one the export writes (".m3u" too)."""
    return path if Path(path).suffix.lower() in EXPORT_SUFFIXES else path + FILTERS.get(chosen, ".m3u8")


class ExportController(QObject):
    def __init__(self, session: Session, parent: QWidget, *, library: LibraryController, map_controller: MapController,
                 map_panel: MapPanel, inspection: InspectionController):
        super().__init__(parent)
        self.session, self.window, self.library, self.inspection = session, parent, library, inspection
        self.map_panel = map_panel
        self.neighbours: list[dict] = []
        self.similar: list[dict] = []
        map_controller.neighboursReady.connect(lambda _src, rows: setattr(self, "neighbours", rows))
        map_controller.similarTracksReady.connect(lambda _tid, rows: setattr(self, "similar", rows))
        map_controller.cleared.connect(self._clear)
        map_controller.listsCleared.connect(self._clear)
        library.panel.exportRequested.connect(
            lambda: self.ask("selection" if library.panel.selected_tracks() else "shown"))
        library.set_dialog.exportRequested.connect(lambda: self.ask("set"))
        for table, source in ((map_panel.neighbours, "neighbours"), (map_panel.similar, "similar")):
            self._add_context_menu(table, source)

    def _clear(self) -> None:
        self.neighbours, self.similar = [], []

    def _add_context_menu(self, table: QTableWidget, source: str) -> None:
        table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)

        def show(pos):
            menu = QMenu(table)
            menu.addAction(f"Export this list ({len(self.items(source))})…", lambda: self.ask(source))
            menu.exec(table.viewport().mapToGlobal(pos))
        table.customContextMenuRequested.connect(show)

    def items(self, source: str) -> list[dict]:
        """The tracks of ``source`` in order, each a dict with ``track_id`` and the list's own fields."""
        if source == "selection":
            return [{"track_id": t} for t in self.library.panel.selected_tracks()]
        if source == "shown":
            return [{"track_id": t} for t in self.library.panel.shown_tracks()]
        if source == "map":
            return [{"track_id": t} for t in self.library.map_tracks()]
        if source == "neighbours":
            return [{k: n[k] for k in ("track_id", "segment_id", "start_s", "score")} for n in self.neighbours]
        if source == "similar":
            return [{"track_id": n["track_id"], "score": n["score"]} for n in self.similar]
        if source == "findings":
            return [{k: f[k] for k in ("track_id", "kind", "start_s", "end_s", "score", "reason", "status")}
                    for f in self.inspection.panel.shown()]  # as the table filters and sorts them
        if source == "set":
            return self.library.set_items()
        raise ValueError(f"unknown export source {source!r}; one of {', '.join(SOURCES)}")

    def export(self, source: str, path: str | Path) -> Path:
        """Write ``source``'s tracks to ``path`` (.m3u8, .csv or .xml). Raises MusicEmbError when there is
        nothing to export or the file cannot be written."""
        rows = item_rows(self.session.tracks, self.items(source), self.session.sounds)
        if not rows:
            raise MusicEmbError(f"nothing to export: the {SOURCES[source].lower()} is empty")
        return export(rows, path, playlist=f"musicemb {SOURCES[source].lower()}")

    def ask(self, source: str) -> None:
        """Ask for a file, then export ``source`` to it and say so in the status bar."""
        n = len(self.items(source))
        if not n:
            self.session.message.emit(f"nothing to export: the {SOURCES[source].lower()} is empty")
            return
        start = str((self.session.lib_path or Path.home()).parent / f"musicemb-{source}.m3u8")
        path, chosen = QFileDialog.getSaveFileName(self.window, f"Export: {SOURCES[source]} ({n})", start,
                                                   ";;".join(FILTERS))
        if not path:
            return
        try:
            out = self.export(source, export_file(path, chosen))
        except MusicEmbError as e:
            QMessageBox.warning(self.window, "Cannot export", str(e))
            return
        self.session.message.emit(f"exported {n} rows ({SOURCES[source].lower()}) to {out}")

    def menu(self) -> QMenu:
        """File ▸ Export: one entry per list, each saying how many tracks it holds (disabled when empty)."""
        menu = QMenu("&Export", self.window)

        def refresh():
            menu.clear()
            for source, title in SOURCES.items():
                n = len(self.items(source))
                menu.addAction(f"{title} ({n})…", lambda s=source: self.ask(s)).setEnabled(n > 0)
        menu.aboutToShow.connect(refresh)
        return menu
