"""The app's side of the catalogue's edit log: labels, segment tags and finding reviews go through it, and the
Edit ▸ Undo action (Ctrl+Z) names the change it would undo, also one made before a restart."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence

from musicemb_core.common.errors import MusicEmbError
from musicemb_core.common.progress import Progress
from musicemb_core.data import edits
from musicemb_core.data.library import DB_NAME, Library

if TYPE_CHECKING:
    from musicemb_gui.session import Session
    from musicemb_gui.workers import Job

# segments an edit may change in the window; a bigger one (or its undo) is stored by a job: tagging 1.6M segments
# froze the window for 15 s, its undo for 13 s
BIG_EDIT = 50_000
CHANGE_BYTES = 60  # about what one change takes in the edit log (to size an undo without reading its changes)


def finding_is(lib: Library, finding_id: int, about: tuple | None) -> bool:
    """Whether ``finding_id`` still names the finding read as ``about`` (kind, track id, start, end; None: any):
    finding ids are given again to other findings when an inspection replaces them."""
    row = lib.conn.execute("SELECT kind, track_id, start_s, end_s FROM findings WHERE id=?", (int(finding_id),))
    row = row.fetchone()
    return row is not None and (about is None or tuple(row) == tuple(about))


def _last_edit(lib: Library) -> tuple[int, str, int] | None:
    """Id, description and size in bytes of the edit Undo would undo (its changes not decoded: 2.4 s for a tag of
    1.6M segments)."""
    return lib.conn.execute("SELECT id, description, length(changes) FROM edits WHERE undone_at IS NULL "
                            "ORDER BY id DESC LIMIT 1").fetchone()


def tag_table(tags: Mapping[int, str | None]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The tags as arrays: the tagged segment ids (sorted), each one's label as an index into the sorted label
    names (-1: an empty tag), and those names; made where the tags are read (1 s for 1.6M tags)."""
    values = sorted({v for v in set(tags.values()) if v})
    code = {v: i for i, v in enumerate(values)}
    ids = np.fromiter(tags, np.int64, len(tags))
    codes = np.fromiter((code.get(v, -1) for v in tags.values()), np.int64, len(tags))
    order = np.argsort(ids, kind="stable")
    return ids[order], codes[order], values


def read_state(lib: Library, *, table: bool = False) -> tuple:
    """The segment tags, the edit Undo would undo, and (``table``, in a job) the tags' :func:`tag_table`."""
    tags = edits.segment_tags(lib)
    return tags, _last_edit(lib), tag_table(tags) if table else None


class EditLog(QObject):
    changed = Signal(str)  # the description of the edit Undo would undo, "" when none
    findingsChanged = Signal()  # a review was changed or undone (labels: the session's labelsChanged)

    def __init__(self, session: Session):
        super().__init__(session)
        self.session = session
        self.tags: dict[int, str] = {}  # segment id -> its own label
        self._tag_table: tuple | None = None  # the tags as arrays (tag_table), made when first asked
        self.last_id: int | None = None  # the edit Undo names (another process may add or undo edits meanwhile)
        self.last_description, self.last_size = "", 0  # what it did, its size in bytes
        self.error = ""  # why the last change asked was not stored ("": stored, or nothing to change)
        self.busy: Job | None = None  # the job storing a big edit: no other edit meanwhile
        self._applied = False  # the tags were read with the labels being applied: not read again
        session.libraryOpened.connect(self._library_opened)  # connected first: others read the tags on these signals
        session.libraryChanged.connect(lambda: self._reload(session.edit_state))  # read with the tables
        session.labelsChanged.connect(lambda _changed: self._applied or self._reload())

    def _library_opened(self) -> None:
        """Nothing of the library before; this one's tags are read with its tables (``libraryChanged``)."""
        self.busy = None  # a big edit of the library before ends in its own catalogue
        self._reload(({}, None, None))

    def _reload(self, state: tuple | None = None) -> None:
        """Read the open library's segment tags and the edit Undo would undo (``state``: as a job read them)."""
        if state is None:
            with self.session.library() as lib:
                state = read_state(lib)
        self.tags, last, self._tag_table = state
        self.last_id, self.last_description, self.last_size = (last[0], last[1], last[2] or 0) if last else \
            (None, "", 0)
        self.changed.emit(self.last_description)

    def _run(self, fn, *args, findings: Mapping[int, tuple | None] | None = None, size: int = 0, name: str = "",
             **kwargs):
        """``fn(lib, *args, **kwargs)``, then what it changed re-read; a user-level error goes to the status bar.
        One caused by another program's change (ids read here name nothing now; ``findings``: the finding ids asked
        for, each with what the window read of it, checked by the core inside the edit's transaction) reads the
        library again and says so. An edit of more than ``BIG_EDIT`` segments (``size``; or in a library of more
        tags than that: all are read again after it, 2 s for 1.6M) is stored by a job named ``name`` (see ``busy``):
        None here, its result applied when the job ends."""
        findings, self.error = findings or {}, ""
        if self.busy is not None:
            self.error = f"not changed: {self.busy.name} is still being stored (see Jobs)"
            self.session.message.emit(self.error)
            return None
        if size > BIG_EDIT:
            self._submit(name, fn, args, kwargs)
            return None
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
        self._apply(result)
        return result

    def _submit(self, name: str, fn, args: tuple, kwargs: dict) -> None:
        """Store a big edit in a job that also reads what the window shows of it again (tags, labels)."""
        def work(lib, _token):
            yield Progress("store", 0, 1, "storing the change and its undo")
            result = fn(lib, *args, **kwargs)
            yield Progress("store", 1, 1, "reading the labels again")
            return result, read_state(lib, table=True), lib.labels()
        job = self.session.library_job(name, work, writes=True, on_done=lambda out: self._apply(*out),
                                       on_failed=self._failed)
        self.busy = job
        job.ended.connect(lambda _job: self.busy is job and setattr(self, "busy", None))

    def _failed(self, message: str) -> None:
        """A big edit not stored (rolled back: nothing changed)."""
        self.error = message
        self.session.message.emit(message)

    def _apply(self, result, state: tuple | None = None, labels: dict | None = None) -> None:
        """Show what an edit (or an undo) changed: ``state`` and ``labels`` as a job read them after it, else read
        here. An undo's result is said in the status bar."""
        edit = getattr(result, "edit", result)
        self._reload(state)
        if edit is not None and any(c["kind"] != "finding_status" for c in edit.changes):
            self._applied = True
            try:
                self.session.refresh_labels(labels)  # the tables, the map's colours and the findings' labels
            finally:
                self._applied = False
        else:
            self.findingsChanged.emit()
        if isinstance(result, edits.UndoResult):
            note = f" ({result.skipped} changed since or gone, kept)" if result.skipped else ""
            self.session.message.emit(f"undone: {result.edit.description}{note}")

    def _refresh(self) -> None:
        try:
            self.session.refresh()
        except MusicEmbError as e:
            self.session.message.emit(str(e))

    def relabel_tracks(self, track_ids, label: str | None) -> edits.Edit | None:
        """None also while a big relabel is being stored (``busy``)."""
        track_ids = np.asarray(track_ids, np.int64).tolist()
        segments = self.session.segments.get("track_id", np.zeros(0, np.int64))
        size = int(np.isin(segments, track_ids).sum()) if len(track_ids) > 1 else 0  # the tags it may remove
        return self._run(edits.relabel_tracks, track_ids, label, size=max(size, len(self.tags)),
                         name=f"label {len(track_ids):,} tracks")

    def tag_segments(self, segment_ids, label: str | None) -> edits.Edit | None:
        """None also while a big tag is being stored (``busy``)."""
        segment_ids = np.asarray(segment_ids, np.int64).tolist()  # a loop: 0.7 s for 1.6M
        return self._run(edits.tag_segments, segment_ids, label, size=max(len(segment_ids), len(self.tags)),
                         name=f"tag {len(segment_ids):,} segments")

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
        result = self._run(edits.undo_last, self.last_id, size=max(self.last_size // CHANGE_BYTES, len(self.tags)),
                           name=f"undo {self.last_description}")
        if result is None and self.busy is None:  # refused: the labels as they are now (another process's edit), Undo
            with contextlib.suppress(MusicEmbError):  # naming its edit; the library itself gone: said by _run
                self.session.refresh_labels()

    def preview(self, segment_ids) -> edits.LabelPreview:
        return edits.label_preview(self.session.segments, segment_ids)

    def tag_table(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """The tags as :func:`tag_table` arrays."""
        if self._tag_table is None:
            self._tag_table = tag_table(self.tags)
        return self._tag_table

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
