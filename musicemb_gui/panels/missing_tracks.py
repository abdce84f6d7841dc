"""Library ▸ Remove missing tracks: the tracks whose files are gone (deleted, or moved where the library does not
look), found off the GUI thread, listed in a confirmation and removed as a writing job (the app's
`musicemb ingest --prune`; the files themselves are never touched)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QMessageBox, QWidget

from musicemb_core.common.progress import Progress
from musicemb_core.data.ingest import file_gone
from musicemb_gui.session import Session
from musicemb_gui.workers import run_in_thread

SHOWN = 5  # folders named in the confirmation


def missing(paths: dict[int, str]) -> list[int]:
    """The track ids of ``paths`` (id -> path) whose files are gone (as ``ingest --prune`` judges them)."""
    return [tid for tid, path in paths.items() if file_gone(path)]


def folders(paths: list[str]) -> list[tuple[str, int, str]]:
    """The folders holding ``paths``, most first: (folder, how many, the first file's name)."""
    found: dict[str, list[str]] = {}
    for p in paths:
        found.setdefault(str(Path(p).parent), []).append(Path(p).name)
    return sorted(((f, len(names), names[0]) for f, names in found.items()), key=lambda x: (-x[1], x[0]))


def iter_remove(lib, ids: list[int]):
    """Remove the tracks of ``ids`` whose files are still gone now (a drive mounted since keeps its tracks)."""
    yield Progress("remove", 0, 1, f"{len(ids)} tracks")
    wanted = set(ids)
    still = [t.id for t in lib.tracks() if t.id in wanted and file_gone(t.path)]
    lib.remove_tracks(still)
    yield Progress("remove", 1, 1, f"{len(still)} tracks")
    return len(still)


class MissingTracks(QObject):
    """Finds, confirms and removes the open library's tracks whose files are gone."""

    def __init__(self, session: Session, parent: QWidget):
        super().__init__(parent)
        self.session, self.parent_widget = session, parent

    def ask(self) -> None:
        """Look for the tracks whose files are gone (off the GUI thread: 20,000 files on a slow drive), then ask."""
        s = self.session
        if s.lib_path is None:
            return
        paths, generation = {t.id: t.path for t in s.tracks.values()}, s.generation
        s.message.emit(f"looking for missing files among {len(paths)} tracks…")
        run_in_thread(lambda: missing(paths),
                      lambda ids: self._confirm(ids, paths) if s.is_current(generation) else None,
                      lambda msg: s.message.emit(f"cannot look for missing files: {msg}"))

    def _confirm(self, ids: list[int], paths: dict[int, str]) -> None:
        s = self.session
        if not ids:
            s.message.emit(f"every track's file is in place ({len(paths)} tracks)")
            return
        where = folders([paths[t] for t in ids])
        lines = [f"{folder}: {n} ({name}{', …' if n > 1 else ''})" for folder, n, name in where[:SHOWN]]
        text = (f"{len(ids)} of {len(paths)} tracks have files that are gone:\n\n" + "\n".join(lines)
                + (f"\n… and {len(where) - SHOWN} more folders" if len(where) > SHOWN else "")
                + "\n\nRemove them from the library, with their segments, labels and findings? The files are not "
                  "touched. If they are on a drive that is not mounted, mount it instead: nothing is lost then.")
        answer = QMessageBox.question(self.parent_widget, "Remove missing tracks", text,
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.No)
        if answer != QMessageBox.StandardButton.Yes:
            return
        s.library_job(f"remove {len(ids)} missing tracks", lambda lib, _token: iter_remove(lib, ids), writes=True,
                      on_done=self._removed)

    def _removed(self, n: int) -> None:
        self.session.refresh()
        self.session.message.emit(f"{n} missing tracks removed from the library (Library ▸ Embed drops their vectors)")
