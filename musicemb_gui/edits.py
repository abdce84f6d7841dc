"""The app's side of the catalogue's edit log: labels, segment tags and finding reviews go through it, and the
Edit ▸ Undo action (Ctrl+Z) names the change it would undo, also one made before a restart."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Mapping
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence

from musicemb_core.common.errors import MusicEmbError
from musicemb_core.data import edits
from musicemb_core.data.library import DB_NAME, Library

if TYPE_CHECKING:
    from musicemb_gui.session import Session


def finding_is(lib: Library, finding_id: int, about: tuple | None) -> bool:
    """Whether ``finding_id`` still names the finding read as ``about`` (kind, track id, start, end; None: any):
    finding ids are given again to other findings when an inspection replaces them."""
    row = lib.conn.execute("SELECT kind, track_id, start_s, end_s FROM findings WHERE id=?", (int(finding_id),))
    row = row.fetchone()
    return row is not None and (about is None or tuple(row) == tuple(about))


class EditLog(QObject):
    changed = Signal(str)  # the description of the edit Undo would undo, "" when none
    findingsChanged = Signal()  # a review was changed or undone (labels: the session's labelsChanged)

    def __init__(self, session: Session):
        super().__init__(session)
        self.session = session
        self.tags: dict[int, str] = {}  # segment id -> its own label
        self.last_id: int | None = None  # the edit Undo names (another process may add or undo edits meanwhile)
        self.error = ""  # why the last change asked was not stored ("": stored, or nothing to change)
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

    def _run(self, fn, *args, findings: Mapping[int, tuple | None] | None = None, **kwargs):
        """``fn(lib, *args, **kwargs)``, then what it changed re-read; a user-level error goes to the status bar.
        One caused by another program's change (ids read here name nothing now; ``findings``: the finding ids asked
        for, each with what the window read of it, checked by the core inside the edit's transaction) reads the
        library again and says so."""
        findings, self.error = findings or {}, ""
        try:
            with self.session.library() as lib:
                result = fn(lib, *args, **kwargs)
        except MusicEmbError as e:
            note = ""
            with contextlib.suppress(MusicEmbError):
                if self.session.changed_elsewhere(findings):
                    QTimer.singleShot(0, self._refresh)  # not within the slot of the view that asked (a table edit)
                    note = ("; another program changed the library since the window read it (an import cut its tracks "
                            "again, removed some, or an inspection replaced the findings): it is read again")
            self.error = f"{e}{note}"
        except sqlite3.DatabaseError as e:  # a full disk mid-change: SQLite rolled it back, the core's own rollback
            while isinstance(e.__context__, sqlite3.Error):  # then failed ("no transaction is active")
                e = e.__context__
            self.error = f"{self.session.lib_path / DB_NAME}: cannot write the catalogue ({e})"
        if self.error:
            self.session.message.emit(self.error)
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

    def relabel_finding(self, finding_id: int, label: str | None, about: tuple | None = None) -> edits.Edit | None:
        """``about``: what the window read of the finding (kind, track id, start, end); refused if the id names
        another finding now."""
        return self._run(edits.relabel_finding, int(finding_id), label, about=about, findings={int(finding_id): about})

    def review_findings(self, finding_ids, status: str, about: Mapping[int, tuple] | None = None
                        ) -> edits.Edit | None:
        """``about``: what the window read of these findings (kind, track id, start, end), as for
        :meth:`relabel_finding`."""
        ids = [int(i) for i in finding_ids]
        about = about or {}
        return self._run(edits.review_findings, ids, status, about=about, findings={i: about.get(i) for i in ids})

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
