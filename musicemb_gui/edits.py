"""The app's side of the catalogue's edit log: labels, segment tags and finding reviews go through it, and the
Edit ▸ Undo action (Ctrl+Z) names the change it would undo, also one made before a restart."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence

from musicemb_core.common.errors import MusicEmbError
from musicemb_core.data import edits

if TYPE_CHECKING:
    from musicemb_gui.session import Session


class EditLog(QObject):
    changed = Signal(str)  # the description of the edit Undo would undo, "" when none
    findingsChanged = Signal()  # a review was changed or undone (labels: the session's labelsChanged)

    def __init__(self, session: Session):
        super().__init__(session)
        self.session = session
        self.tags: dict[int, str] = {}  # segment id -> its own label
        self.last_id: int | None = None  # the edit Undo names (another process may add or undo edits meanwhile)
        session.libraryOpened.connect(self._reload)  # connected first: others read the tags on these signals
        session.libraryChanged.connect(self._reload)
        session.labelsChanged.connect(lambda _changed: self._reload())

    def _reload(self) -> None:
        """Read the open library's segment tags and the edit Undo would undo."""
        with self.session.library() as lib:
            self.tags = edits.segment_tags(lib)
            last = edits.last_edit(lib)
        self.last_id = last.id if last else None
        self.changed.emit(last.description if last else "")

    def _run(self, fn, *args, findings=()):
        """``fn(lib, *args)``, then what it changed re-read; a user-level error goes to the status bar. One caused by
        another program's change (ids read here name nothing now; ``findings``: the finding ids asked for) reads
        the library again and says so."""
        try:
            with self.session.library() as lib:
                result = fn(lib, *args)
        except MusicEmbError as e:
            note = ""
            with contextlib.suppress(MusicEmbError):
                if self.session.changed_elsewhere(findings):
                    QTimer.singleShot(0, self._refresh)  # not within the slot of the view that asked (a table edit)
                    note = ("; another program changed the library since the window read it (an import cut its tracks "
                            "again, removed some, or an inspection replaced the findings): it is read again")
            self.session.message.emit(f"{e}{note}")
            return None
        edit = getattr(result, "edit", result)
        if edit is not None and any(c["kind"] != "finding_status" for c in edit.changes):
            self.session.refresh_labels()  # the tables, the map's colours and the findings' labels
        else:
            self._reload()
            self.findingsChanged.emit()
        return result

    def _refresh(self) -> None:
        try:
            self.session.refresh()
        except MusicEmbError as e:
            self.session.message.emit(str(e))

    def relabel_tracks(self, track_ids, label: str | None) -> edits.Edit | None:
        return self._run(edits.relabel_tracks, list(track_ids), label)

    def tag_segments(self, segment_ids, label: str | None) -> edits.Edit | None:
        return self._run(edits.tag_segments, list(segment_ids), label)

    def relabel_finding(self, finding_id: int, label: str | None) -> edits.Edit | None:
        return self._run(edits.relabel_finding, int(finding_id), label, findings=[finding_id])

    def review_findings(self, finding_ids, status: str) -> edits.Edit | None:
        ids = [int(i) for i in finding_ids]
        return self._run(edits.review_findings, ids, status, findings=ids)

    def undo(self) -> None:
        """Undo the edit the menu names; one made or undone by another process since is said and not undone, and
        the menu then names the edit Undo takes back now."""
        result = self._run(edits.undo_last, self.last_id)
        if result is None:  # refused: the labels as they are now (another process's edit), Undo naming its edit
            with contextlib.suppress(MusicEmbError):  # the library itself gone: said by _run already
                self.session.refresh_labels()
            return
        note = f" ({result.skipped} changed since or gone, kept)" if result.skipped else ""
        self.session.message.emit(f"undone: {result.edit.description}{note}")

    def preview(self, segment_ids) -> edits.LabelPreview:
        return edits.label_preview(self.session.segments, segment_ids)

    def label_of(self, seg_id: int, track_label: str | None) -> str:
        """What a segment shows: its own tag, else its track's label."""
        return self.tags.get(int(seg_id)) or track_label or ""

    def undo_action(self, parent: QObject) -> QAction:
        """Edit ▸ Undo, its text naming the change, disabled when there is none."""
        act = QAction("&Undo", parent)
        act.setShortcut(QKeySequence.StandardKey.Undo)
        act.setEnabled(False)
        act.triggered.connect(self.undo)

        def show(description: str) -> None:
            act.setText(f"&Undo {description}" if description else "&Undo")
            act.setEnabled(bool(description))
        self.changed.connect(show)
        return act
