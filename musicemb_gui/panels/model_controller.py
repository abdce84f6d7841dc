"""What the model picker asks of the core: the library's models, the active one (kept in the catalogue), and
a confirmation before the library is embedded with a partly trained model (a damaged one is refused, saying why)."""

from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QMessageBox

from musicemb_core.common.errors import MusicEmbError
from musicemb_core.workflows.models import list_models
from musicemb_gui.panels.model_picker import ModelPicker
from musicemb_gui.session import Session


class ModelController(QObject):
    def __init__(self, session: Session, picker: ModelPicker):
        super().__init__()
        self.session, self.picker = session, picker
        picker.chosen.connect(self.choose)
        picker.aboutToShow.connect(self.reload)
        for signal in (session.libraryOpened, session.modelChanged, session.embeddingsChanged):
            signal.connect(self.reload)
        session.jobs.jobEnded.connect(lambda _job: self.reload())  # a model the app's own run trained is listed
        picker.set_entries([], "")

    def reload(self) -> None:
        """List the open library's models, the active one shown (a model another program trains after this is
        said by the session's notice of other programs' changes)."""
        if self.session.lib_path is None:
            return
        try:
            with self.session.library() as lib:
                self.session.watch.models_read(lib.conn)  # before they are listed: one registered meanwhile is said
                entries = list_models(lib)
        except MusicEmbError as e:  # the library's folder is gone (moved, its drive unplugged)
            self.session.message.emit(str(e))
            return
        self.picker.set_entries(entries, self.session.model)

    def choose(self, name: str) -> None:
        """Use ``name`` for the map, neighbours, evaluation, inspection and "more like this"."""
        if name == self.session.model:
            return
        try:
            self.session.set_model(name)
        except MusicEmbError as e:
            self.session.message.emit(str(e))
            self.reload()
            return
        entry = self.picker.entry(name)
        if entry is not None and not entry.embedded:
            self.session.message.emit(f"{name}: the library has no embeddings of it yet; Library ▸ Embed with "
                                      "the current model computes them")

    def may_embed(self, name: str) -> bool:
        """Whether the library may be embedded with ``name``: at once for a finished model or one the library is
        already embedded with (new tracks), never for one whose files are damaged (said), else only if the user
        confirms."""
        self.reload()
        entry = self.picker.entry(name)
        if entry is not None and entry.problem:
            self.session.message.emit(f"cannot embed with {name}: {entry.problem}")
            return False
        if entry is None or not entry.partial or entry.embedded:
            return True
        box = QMessageBox(QMessageBox.Icon.Warning, "Partly trained model",
                          f"{name} is partly trained ({entry.partial}). Its map may show little structure.\n\n"
                          "Embed the library with it anyway?", parent=self.picker.window())
        box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.button(QMessageBox.StandardButton.Yes).setText("Embed anyway")
        return box.exec() == QMessageBox.StandardButton.Yes
