"""Main window: menus, status bar, dockable panels; opens a library and fills the panels from it."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget, QFileDialog, QLabel, QMainWindow, QMessageBox

from musicemb_core.common.errors import MusicEmbError
from musicemb_core.data.library import Library
from musicemb_gui.panels.library_panel import LibraryPanel


class MainWindow(QMainWindow):
    def __init__(self, settings: QSettings | None = None):
        super().__init__()
        self.settings = settings or QSettings("musicemb", "musicemb")
        self.lib_path: Path | None = None
        self.setWindowTitle("musicemb")
        self.resize(1100, 700)
        self.library_panel = LibraryPanel()
        dock = QDockWidget("Library", self)
        dock.setObjectName("library")
        dock.setWidget(self.library_panel)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
        self.setCentralWidget(QLabel("The embedding map arrives in a later release.",
                                     alignment=Qt.AlignmentFlag.AlignCenter))
        menu = self.menuBar().addMenu("&File")
        open_act = QAction("&Open library…", self, shortcut=QKeySequence.StandardKey.Open)
        open_act.triggered.connect(self._ask_open)
        menu.addAction(open_act)
        quit_act = QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit)
        quit_act.triggered.connect(self.close)
        menu.addAction(quit_act)
        self.menuBar().addMenu("&View").addAction(dock.toggleViewAction())
        self.statusBar().showMessage("No library open")

    def _ask_open(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a musicemb library")
        if folder:
            self.open_library(folder)

    def open_library(self, path: str | Path) -> bool:
        """Load the library's tracks into the panels; on a bad folder, say why and keep the current one."""
        try:
            with Library(path) as lib:
                summary = lib.summary()
                tracks = lib.tracks()
                counts = dict(lib.conn.execute("SELECT track_id, COUNT(*) FROM segments GROUP BY track_id"))
        except MusicEmbError as e:
            QMessageBox.warning(self, "Cannot open library", str(e))
            return False
        rows = [(t.path, t.duration_s, t.label or "", counts.get(t.id, 0), t.warning or "ok") for t in tracks]
        rows += [(f["path"], None, "", None, f"failed: {f['error']}") for f in summary["failed"]]
        self.library_panel.set_rows(rows)
        self.lib_path = Path(summary["path"])
        self.settings.setValue("last_library", str(self.lib_path))
        self.setWindowTitle(f"musicemb — {self.lib_path.name}")
        self.statusBar().showMessage(f"{summary['tracks']} tracks, {summary['segments']} segments, "
                                     f"{summary['duration_s'] / 3600:.2f} h, {len(summary['failed'])} failed")
        return True
