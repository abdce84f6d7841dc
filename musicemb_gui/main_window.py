"""Main window: dockable panels (library, map, training, evaluation, jobs), menus, status bar, settings that
persist, one audio player. Long work runs in jobs; errors reach the user as messages, bugs as a dialog with
the traceback and the log path, and the app keeps running."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QToolBar,
)

# Everything the app's jobs run is imported here, at start-up: an import holds the GIL (numba's alone 0.3 s), and
# made inside a job it stalled the window.
from musicemb_core.audio.decode import load
from musicemb_core.common.errors import Cancelled, MusicEmbError
from musicemb_core.common.paths import data_home
from musicemb_core.data.ingest import iter_ingest
from musicemb_core.data.library import Library
from musicemb_core.stored_vectors import builtin_models
from musicemb_core.workflows.demo import iter_build_demo
from musicemb_core.workflows.ingest_embed import iter_ingest_embed, iter_search_indexes
from musicemb_gui.dock_layout import fit_docks
from musicemb_gui.panels.evaluation_panel import EvaluationPanel
from musicemb_gui.panels.export_controller import ExportController
from musicemb_gui.panels.hum_controller import HumController
from musicemb_gui.panels.hum_panel import HumPanel
from musicemb_gui.panels.inspection_controller import InspectionController
from musicemb_gui.panels.inspection_panel import InspectionPanel
from musicemb_gui.panels.jobs_panel import JobsPanel
from musicemb_gui.panels.library_controller import LibraryController
from musicemb_gui.panels.library_panel import LibraryPanel
from musicemb_gui.panels.map_controller import MapController
from musicemb_gui.panels.map_panel import MapPanel
from musicemb_gui.panels.missing_tracks import MissingTracks
from musicemb_gui.panels.model_controller import ModelController
from musicemb_gui.panels.model_picker import ModelPicker
from musicemb_gui.panels.playback_controller import PlaybackController
from musicemb_gui.panels.player_bar import PlayerBar
from musicemb_gui.panels.selection_sync import SelectionSync
from musicemb_gui.panels.training_panel import TrainingPanel
from musicemb_gui.session import Session, segment_gone
from musicemb_gui.widgets.audio_player import AudioPlayer
from musicemb_gui.widgets.plain_text import tooltip
from musicemb_gui.workers import Job, JobManager, alive, run_in_thread, wait_for

log = logging.getLogger("musicemb.gui")
CHECK_MS = 2500  # how often the window looks for other programs' changes to the open library (a few stats)


def _indexes(lib, token):
    """``iter_search_indexes`` after an import or embed: a cancel there keeps what they did (the job's result is
    theirs: the tables are read again, the new vectors shown); the next import or embed finishes the indexes."""
    with contextlib.suppress(Cancelled):
        yield from iter_search_indexes(lib, cancel=token)


def log_path() -> Path:
    return data_home() / "musicemb-gui.log"


class MainWindow(QMainWindow):
    def __init__(self, settings: QSettings | None = None, *, player: AudioPlayer | None = None):
        super().__init__()
        self.settings = settings or QSettings("musicemb", "musicemb")
        self.jobs = JobManager()
        self.session = Session(self.jobs)
        self.player = player or AudioPlayer()
        self.player.unavailable.connect(lambda msg: self.statusBar().showMessage(msg, 15000))
        self.setWindowTitle("musicemb")
        self.resize(1400, 900)

        self.library_panel = LibraryPanel()
        self.map_controller = MapController(self.session, self.player.cache)
        self.map_panel = MapPanel(self.map_controller)
        self.models = ModelController(self.session, ModelPicker())
        self.map_panel.bar.insertWidget(0, self.models.picker)
        self.training_panel = TrainingPanel(self.session)
        self.training_panel.may_embed = self.models.may_embed
        self.evaluation_panel = EvaluationPanel(self.session)
        self.inspection_panel = InspectionPanel()
        self.inspection = InspectionController(self.session, self.inspection_panel)
        self.map_controller.finding_kinds = self.inspection.kinds_of
        self.hum_panel = HumPanel()
        self.hum = HumController(self.session, self.hum_panel)
        self.jobs_panel = JobsPanel(self.jobs)
        self.library_controller = LibraryController(self.session, self.library_panel,
                                                    map_selection=lambda: self.map_panel.selected_ids)
        self.exports = ExportController(self.session, self, library=self.library_controller,
                                        map_controller=self.map_controller, map_panel=self.map_panel,
                                        inspection=self.inspection)
        self.selection = SelectionSync(self.session, self.library_panel, self.map_panel)
        self.player_bar = PlayerBar()
        self.playback = PlaybackController(self.session, self.player, self.player_bar, self, self.settings)
        self._embed_jobs: dict[tuple, Job] = {}  # (library opening, model) -> the last embed job asked for
        self.missing_tracks = MissingTracks(self.session, self)
        centre = QSplitter(Qt.Orientation.Vertical)
        centre.addWidget(self.map_panel)
        centre.addWidget(self.player_bar)
        centre.setStretchFactor(0, 1)
        self.setCentralWidget(centre)
        self.docks = {}
        for name, widget, area in (("Library", self.library_panel, Qt.DockWidgetArea.LeftDockWidgetArea),
                                   ("Training", self.training_panel, Qt.DockWidgetArea.BottomDockWidgetArea),
                                   ("Evaluation", self.evaluation_panel, Qt.DockWidgetArea.BottomDockWidgetArea),
                                   ("Inspection", self.inspection_panel, Qt.DockWidgetArea.BottomDockWidgetArea),
                                   ("Hum", self.hum_panel, Qt.DockWidgetArea.BottomDockWidgetArea),
                                   ("Jobs", self.jobs_panel, Qt.DockWidgetArea.LeftDockWidgetArea)):
            dock = QDockWidget(name, self)
            dock.setObjectName(name.lower())
            dock.setWidget(widget)
            self.addDockWidget(area, dock)
            self.docks[name] = dock
        self.tabifyDockWidget(self.docks["Training"], self.docks["Evaluation"])
        self.tabifyDockWidget(self.docks["Evaluation"], self.docks["Inspection"])
        self.tabifyDockWidget(self.docks["Inspection"], self.docks["Hum"])
        self.docks["Training"].raise_()
        self.splitDockWidget(self.docks["Library"], self.docks["Jobs"], Qt.Orientation.Vertical)
        fit_docks(self, self.docks)
        self._menus()
        self._notice_bar()

        self.library_panel.addPaths.connect(self.import_paths)
        self.library_panel.labelEdited.connect(self._label_edited)
        self.library_panel.playRequested.connect(self.play_track)
        self.library_panel.moreLikeRequested.connect(self.more_like_track)
        self.library_controller.set_dialog.playRequested.connect(self.play_track)
        self.library_controller.set_dialog.toggleRequested.connect(self.playback.toggle)
        for panel in (self.library_panel, self.library_controller.set_dialog, self.map_panel, self.hum_panel,
                      self.inspection_panel):  # Space in their lists: the selected row, unless the player holds it
            panel.now_playing = self.playback.holds
        self.map_panel.playRequested.connect(self.play_segment)
        self.playback.playSegment.connect(self.play_segment)
        self.playback.playTrack.connect(self.play_track)
        self.map_panel.search.textChanged.connect(self.library_panel.filter.setText)  # one filter, two boxes
        self.library_panel.filter.textChanged.connect(self.map_panel.search.setText)
        self.map_panel.trackPlayRequested.connect(self.play_track)
        self.inspection_panel.playRequested.connect(self.play_segment)
        self.inspection_panel.showOnMap.connect(self.show_on_map)
        self.inspection_panel.segmentSelected.connect(self.map_controller.request_spectrogram)
        self.hum_panel.playRequested.connect(self.play_segment)
        self.hum_panel.showOnMap.connect(self.show_on_map)
        self.inspection.findingsChanged.connect(self._findings_changed)
        self.session.libraryOpened.connect(self._library_opened)
        self.session.message.connect(self.statusBar().showMessage)
        # a message wider than the bar (a path, beside the read-only note) is cut: whole on hover
        self.statusBar().messageChanged.connect(lambda text: self.statusBar().setToolTip(tooltip(text)))
        self.read_only_label = QLabel()  # a permanent widget: not covered by the status bar's messages
        self.read_only_label.setStyleSheet("QLabel { background: #fff4c2; border: 1px solid #d9c36c; "
                                           "border-radius: 3px; padding: 1px 8px; }")
        self.statusBar().addPermanentWidget(self.read_only_label)
        self.read_only_label.hide()
        self.session.readOnlyChanged.connect(self._read_only_changed)
        self._jobs_indicator()
        self.session.edits.changed.connect(lambda _description: self._undo_state())  # after the action's own slot
        self.jobs.jobAdded.connect(self._watch_job)
        self._fit_on_show = not self.settings.value("geometry")  # a first run: docks sized for the shown window
        if not self._fit_on_show:
            self.restoreGeometry(self.settings.value("geometry"))
            self.restoreState(self.settings.value("window_state"))
        self.notice.hide()  # shown again by restoreState if the window closed with it
        self.statusBar().showMessage("No library open — File ▸ Open library…")

    # -- menus ---------------------------------------------------------------------------------------------
    def _menus(self) -> None:
        def action(menu, text, slot, shortcut=None):
            act = QAction(text, self)
            if shortcut is not None:
                act.setShortcut(shortcut)
            act.triggered.connect(slot)
            menu.addAction(act)
            return act

        file = self.menuBar().addMenu("&File")
        action(file, "&Open library…", self._ask_open, QKeySequence.StandardKey.Open)
        action(file, "&New library…", self._ask_new, QKeySequence.StandardKey.New)
        # the actions that write to the library: off while it is read-only, saying why (see _read_only_changed)
        self.writers = [action(file, "Add &files…", self.library_panel._ask_files),
                        action(file, "Add f&older…", self.library_panel._ask_folder)]
        file.addMenu(self.exports.menu())
        file.addSeparator()
        action(file, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        edit = self.menuBar().addMenu("&Edit")
        self.undo_action = self.session.edits.undo_action(self)
        edit.addAction(self.undo_action)
        lib = self.menuBar().addMenu("&Library")
        self.writers.append(action(lib, "&Embed with the current model", self.embed_library))
        action(lib, "E&valuate", self.evaluation_panel.start)
        self.writers.append(action(lib, "&Inspect", self.inspection.run))
        self.writers.append(action(lib, "&Remove missing tracks…", self.missing_tracks.ask))
        action(lib, "Build a &set from the selection", self.library_controller.build_set)
        for menu in (file, edit, lib):
            menu.setToolTipsVisible(True)  # why an action is off
        view = self.menuBar().addMenu("&View")
        for dock in self.docks.values():
            view.addAction(dock.toggleViewAction())
        jobs = self.menuBar().addMenu("&Jobs")
        action(jobs, "&Cancel all", self.jobs.cancel_all)

    def _notice_bar(self) -> None:
        """The bar saying that another program changed the library (a cron import, `musicemb inspect`), with
        Reload; a timer looks for such changes while a library is open."""
        bar = self.notice = QToolBar("Changed by another program", self)
        bar.setObjectName("changed_elsewhere")
        bar.setMovable(False)
        bar.setFloatable(False)
        bar.toggleViewAction().setVisible(False)
        bar.setStyleSheet("QToolBar { background: #fff4c2; border-bottom: 1px solid #d9c36c; spacing: 8px; "
                          "padding: 3px 8px; } QToolButton { border: 1px solid #b59f3b; border-radius: 3px; "
                          "padding: 2px 12px; background: #fffbe8; }")
        self.notice_text = QLabel()
        self.notice_text.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        bar.addWidget(self.notice_text)
        self.reload_action = bar.addAction("Reload", self.reload_library)
        self.reload_action.setToolTip("Read the library again: the other program's changes are shown")
        self.dismiss_action = bar.addAction("Dismiss", bar.hide)
        self.dismiss_action.setToolTip("Keep working on the library as the window shows it")
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
        bar.hide()
        self._changes: list[str] = []  # what the notice says (also when dismissed)
        self._looking = False  # a look at the library under way (see check_elsewhere)
        self.check_timer = QTimer(self)
        self.check_timer.setInterval(CHECK_MS)
        self.check_timer.timeout.connect(self.check_elsewhere)

    def _jobs_indicator(self) -> None:
        """A button in the status bar naming the jobs running while the Jobs dock is out of sight (a bottom tab
        behind another in a laptop's window, or closed); it brings the dock forward."""
        self.jobs_button = QPushButton()
        self.jobs_button.setFlat(True)
        self.jobs_button.setToolTip("Show the Jobs tab: each job's progress, time left and Cancel")
        self.jobs_button.clicked.connect(self.show_jobs)
        self.statusBar().addPermanentWidget(self.jobs_button)
        self.jobs_button.hide()
        self.jobs.jobAdded.connect(self._jobs_state)
        self.jobs.jobEnded.connect(self._jobs_state)
        self.docks["Jobs"].visibilityChanged.connect(self._jobs_state)

    def _jobs_state(self, *_) -> None:
        """"Running: import 3 item(s) ▸" / "Running: 2 jobs ▸", shown while jobs run and the Jobs dock is out of sight."""
        running, dock = self.jobs.jobs, self.docks["Jobs"]
        self.jobs_button.setText(f"Running: {running[0].name} ▸" if len(running) == 1 else
                                 f"Running: {len(running)} jobs ▸")
        self.jobs_button.setVisible(bool(running) and (dock.isHidden() or dock.visibleRegion().isEmpty()))

    def show_jobs(self) -> None:
        """Bring the Jobs dock forward (opened again if closed)."""
        self.docks["Jobs"].show()
        self.docks["Jobs"].raise_()

    def check_elsewhere(self) -> None:
        """Show what other programs changed in the library (not while the app's own jobs run: they read again
        what they change when they end); changes dismissed are not said again, more changes are."""
        self.session.check_writable()
        watch = self.session.watch
        if self.jobs.jobs or self.session.loading or self._looking:  # a library being read: not the window's yet
            return
        findings, reads = {r["id"]: r["status"] for r in self.inspection.rows}, watch.reads
        self._looking = True
        try:  # a big library's look (seconds) on a thread, the window's events going on
            changes = wait_for(lambda: watch.changes(findings)) if watch.big() else watch.changes(findings)
        finally:
            self._looking = False
        if not alive(self):
            return
        if watch.reads != reads:  # the window read the library (or changed it) meanwhile: compared at the next look
            watch.look_again()
            return
        if changes is None or changes == self._changes:
            return
        self._changes = changes
        self.notice_text.setText(f"The library was changed by another program ({', '.join(changes)}).")
        self.notice.setVisible(bool(changes))

    def reload_library(self) -> None:
        """Read the open library again (Reload of the notice)."""
        self.notice.hide()
        self._changes = []
        try:
            self.session.refresh()
        except MusicEmbError as e:
            self.statusBar().showMessage(str(e))
            return
        self.statusBar().showMessage(f"library read again: {len(self.session.tracks)} tracks", 10000)

    def _ask_open(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a musicemb library")
        if folder:
            self.open_library(folder)

    def _ask_new(self) -> None:
        """Name a new library's folder (created if it does not exist yet), or pick an existing folder."""
        folder, _ = QFileDialog.getSaveFileName(self, "New library: name its folder", "",
                                                options=QFileDialog.Option.ShowDirsOnly)
        if folder:
            self.create_library(folder)

    def build_demo(self, root: str | Path, **demo) -> None:
        """Build the demo library as a job (the window shows its progress), then open it. ``demo``: arguments of
        ``iter_build_demo`` (its size)."""
        self.statusBar().showMessage("Building the demo library: 50 songs in 5 styles, imported and embedded "
                                     "(progress under Jobs); it opens when ready")

        def factory(token):
            return (yield from iter_build_demo(root, cancel=token, **demo))
        job = self.jobs.submit("build the demo library", factory, writes=True)
        generation = self.session.generation  # another library opened meanwhile stays open; a cancelled build
        job.finished.connect(lambda _report: job.state == "done" and self.session.is_current(generation)
                             and self.open_library(root))  # is not opened half-built
        job.cancelled.connect(lambda: self.statusBar().showMessage(
            "Demo library build cancelled; it is finished (not started again) the next time you open the demo"))

    def create_library(self, folder: str | Path) -> bool:
        """Make a library in ``folder`` (created if absent) and open it; on failure say why."""
        try:
            Library(folder, create=True).close()
        except MusicEmbError as e:
            QMessageBox.warning(self, "Cannot create library", str(e))
            return False
        return self.open_library(folder)

    # -- library -------------------------------------------------------------------------------------------
    def open_library(self, path: str | Path) -> bool:
        """Open a library; on a bad folder say why and keep the current one."""
        try:
            summary = self.session.open(path)
        except MusicEmbError as e:
            QMessageBox.warning(self, "Cannot open library", str(e))
            return False
        if summary is None:  # another library was opened while this one was read: that one is open
            return False
        self.settings.setValue("last_library", summary["path"])
        self._show_title()
        self.statusBar().showMessage(f"{summary['tracks']} tracks, {summary['segments']} segments, "
                                     f"{summary['duration_s'] / 3600:.2f} h, {len(summary['failed'])} failed")
        return True

    def _show_title(self) -> None:
        name = self.session.lib_path.name
        self.setWindowTitle(f"musicemb — {name} (read-only)" if self.session.read_only else f"musicemb — {name}")

    def read_only_note(self) -> str:
        """Why the actions that write are off ("" when the open library may be written)."""
        why = self.session.read_only
        return f"The library is read-only here ({why}): {self.session.lib_path}" if why else ""

    def _read_only_changed(self, why: str) -> None:
        """The open library cannot be written (a read-only mount, a folder this user may not write), or may be
        again: said once, in the title and the status bar, and every action that would write is off meanwhile,
        its tooltip saying why. Reading (play, maps, neighbours, sets, evaluation, humming) works either way."""
        note = self.read_only_note()
        self._show_title()
        self.read_only_label.setText(f"Read-only library: {why}")
        self.read_only_label.setToolTip(
            f"{note}.\nImporting, embedding, training, inspecting and editing labels or findings are off; the map, "
            "neighbours, “More like this”, sets, evaluation and humming work (a map or index computed is not kept).")
        self.read_only_label.setVisible(bool(why))
        for act in self.writers:
            act.setEnabled(not why)
            act.setToolTip(note)
        self._undo_state()
        for panel in (self.library_panel, self.map_panel, self.training_panel, self.inspection_panel):
            panel.set_read_only(note)

    def _undo_state(self) -> None:
        """Undo is on when there is an edit to undo and the library may be written."""
        self.undo_action.setEnabled(self.session.edits.last_id is not None and not self.session.read_only)
        self.undo_action.setToolTip(self.read_only_note())

    def _library_opened(self) -> None:
        """Another library: stop the old one's sound and results (panels with state reset themselves)."""
        self.player.stop()
        self.hum_panel.clear_results()
        self.notice.hide()
        self._changes = []
        self.check_timer.start()

    def _label_edited(self, track_id: int, label: str) -> None:
        try:
            self.session.set_label(track_id, label or None)  # a failure (read-only library) is said in the status bar
        except MusicEmbError as e:
            self.statusBar().showMessage(str(e))
        t, edits = self.session.tracks.get(track_id), self.session.edits
        stored_later = edits.busy is not None and not edits.error  # by a job (a library of many tags)
        if t is not None and (t.label or "") != label and not stored_later:  # not stored: the stored label again
            # not while the table's model is still emitting the edit
            QTimer.singleShot(0, self.library_controller.fill_table)

    def import_paths(self, paths: list[str]) -> None:
        """Import files/folders as a job (creating the library if none is open) and embed what is new: with a
        built-in model, both built-in spaces in the import's own decode (then the melody index)."""
        if self.session.lib_path is None:
            self._ask_new()
            if self.session.lib_path is None:
                return
        if self.session.read_only:
            self.statusBar().showMessage(f"nothing imported: {self.session.lib_path} is read-only here "
                                         f"({self.session.read_only})")
            return
        labels = "folders" if self.library_panel.folder_labels.isChecked() else None
        one_pass = self.session.model in builtin_models()
        jobs = max(1, (os.cpu_count() or 2) - 1)  # a core left to the window: the map stays live meanwhile

        def work(lib, token):
            if not one_pass:
                return (yield from iter_ingest(lib, paths, labels=labels, jobs=jobs, cancel=token, isolate=True))
            r = yield from iter_ingest_embed(lib, paths, labels=labels, jobs=jobs, cancel=token, isolate=True)
            if not (r.ingest.cancelled or r.embed.cancelled):
                yield from _indexes(lib, token)
            return r.ingest
        job = self.session.library_job(f"import {len(paths)} item(s)", work, writes=True,
                                       on_done=lambda report: self._imported(report, embedded=one_pass))
        job.cancelled.connect(lambda: job.started or self.statusBar().showMessage(
            "Import cancelled before it started: nothing changed"))

    def _imported(self, report, *, embedded: bool = False) -> None:
        again = f", {report.reanalysed} analysed again (new tempo/key estimates)" if report.reanalysed else ""
        gone = (f", {len(report.missing)} tracks whose files are gone (kept; Library ▸ Remove missing tracks "
                "removes them)" if report.missing else "")
        self.statusBar().showMessage(f"import {'cancelled' if report.cancelled else 'done'}: {report.added} added, "
                                     f"{report.updated} updated, {len(report.failed)} failed{again}{gone}")
        self.session.refresh()  # the tables and, embedded in the import's own decode, the new vectors
        if not embedded and (report.added or report.updated) and not report.cancelled:  # cancelled: no new job
            self.embed_library()

    def embed_library(self) -> None:
        if self.session.lib_path is None or not self.models.may_embed(self.session.model):
            return
        model = self.session.model
        ahead = self._embed_jobs.get((self.session.generation, model))
        if ahead is not None and ahead.state in ("queued", "running"):  # a second would find nothing left to embed
            self.statusBar().showMessage(f"{ahead.name} is already {ahead.state} (see Jobs)")
            return
        builtin = model in builtin_models()

        def work(lib, token):  # a built-in model: both built-in spaces, one decode pass
            from musicemb_core.inference import iter_embed  # torch: in the job, not at the app's start

            r = yield from iter_embed(lib, model=None if builtin else model, cancel=token)
            if builtin and not r.cancelled:
                yield from _indexes(lib, token)
            return r
        key = (self.session.generation, model)
        self._embed_jobs = {key: self.session.library_job(f"embed with {model}", work, writes=True,
                                                          on_done=lambda _r: self.session.reload_embeddings())}

    def more_like_track(self, track_id: int) -> None:
        """List the tracks most like ``track_id`` beside the map and bring the map forward."""
        self.map_panel.more_like_track(track_id)
        self.map_panel.similar.setFocus()

    def show_on_map(self, seg_id: int) -> None:
        """Select a segment on the map (plays it, lists neighbours) and pan to it."""
        self.map_panel.select_segment(seg_id)
        self.map_panel.scatter.center_on(seg_id)

    def _findings_changed(self) -> None:
        if self.map_panel.colour.currentText() == "finding":
            self.map_controller.request_colours("finding")

    # -- audio ---------------------------------------------------------------------------------------------
    def play_segment(self, seg_id: int) -> None:
        """Play a segment now if its audio is cached, else as soon as it is decoded (off the GUI thread)."""
        s, playback = self.session, self.playback
        playback.want(seg_id)  # of quick requests (arrow keys) the last wins, whichever decode ends first
        if seg_id not in s.seg_row:  # a row of a list made before another program removed its track
            playback.cannot_play(seg_id, segment_gone(seg_id))
            return
        cache, live = self.map_controller.audio, self._live_slot()
        audio = cache.peek(seg_id)
        if audio is not None:
            playback.deliver(seg_id, *audio)
            return

        def play(result, key=seg_id):
            cache.put(key, result)
            playback.deliver(key, *result)
        run_in_thread(lambda: s.segment_audio(seg_id), live(play),
                      live(lambda msg: playback.cannot_play(seg_id, msg)))

    def play_track(self, track_id: int) -> None:
        key, playback, track = ("track", track_id), self.playback, self.session.tracks.get(track_id)
        playback.want(key)
        if track is None:  # a row of a list ("more like this", a set) made before another program removed it
            playback.cannot_play(key, f"track {track_id} is no longer in the library (removed since it was listed)")
            return
        live = self._live_slot()
        run_in_thread(lambda: load(track.path, duration=30.0), live(lambda r: playback.deliver(key, *r)),
                      live(lambda msg: playback.cannot_play(key, msg)))

    def _live_slot(self):
        """``live(slot)``: ``slot`` run only while the library open now still is (ids start at 1 in every library:
        a decode of the one before, ending after a point of the next with its id was clicked, played for it)."""
        s, generation = self.session, self.session.generation
        return lambda slot: lambda *args: slot(*args) if s.is_current(generation) else None

    # -- jobs ----------------------------------------------------------------------------------------------
    def _watch_job(self, job) -> None:
        job.failed.connect(lambda msg, tb, name=job.name: self._job_failed(name, msg, tb))

    def _job_failed(self, name: str, message: str, tb: str) -> None:
        if not tb:  # a user-level problem (bad file, missing model): say it plainly
            self.statusBar().showMessage(f"{name}: {message}", 20000)
            return
        log.error("%s failed: %s\n%s", name, message, tb)
        box = QMessageBox(QMessageBox.Icon.Critical, "musicemb hit a bug",
                          f"{name} failed: {message}\n\nThe app keeps running. Details are in {log_path()}.",
                          parent=self)
        box.setDetailedText(tb)
        box.setModal(False)
        box.show()

    def showEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().showEvent(event)
        if self._fit_on_show:
            self._fit_on_show = False
            QTimer.singleShot(0, lambda: fit_docks(self, self.docks))  # once the window has its final size

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("window_state", self.saveState())
        self.hum_panel.discard_recording()
        self.check_timer.stop()
        self.jobs.shutdown(5000)
        self.player.stop()
        super().closeEvent(event)
