"""Noticing what other programs change in the open library (a cron import, inspect or map): cheap file stats
every few seconds, one read-only snapshot compared with what the window holds when they moved."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from musicemb_core.common.names import model_key
from musicemb_core.common.store import POINTER
from musicemb_core.data import layout
from musicemb_core.data.library import DB_NAME

if TYPE_CHECKING:
    from musicemb_gui.session import Session


class ChangeWatch:
    """What other programs changed in a :class:`~musicemb_gui.session.Session`'s library since it read it."""

    def __init__(self, session: Session):
        self.s = session
        self.seen: tuple | None = None  # the library's files at the last comparison; None: compare again
        self.segments_seq = 0  # the catalogue's last segment id ever given when the segments were read
        self.files_seen: tuple = (None, None)  # the pointers of the embeddings read and the maps read or drawn here
        session.jobs.jobEnded.connect(self.files_read)  # maps drawn by the app's own jobs

    def reset(self) -> None:
        """Another library opened: nothing of it seen yet."""
        self.seen, self.files_seen = None, (None, None)

    def look_again(self) -> None:
        """The window read the library again: compare at the next look."""
        self.seen = None

    def segments_read(self, conn: sqlite3.Connection) -> None:
        """The window reads the segments now (``conn``: its connection)."""
        self.segments_seq = _segments_seq(conn)

    def changes(self, findings: Mapping[int, str] | None = None) -> list[str] | None:
        """What other programs changed in the open library that the window does not show ("2 tracks added",
        "labels of 1 track changed"...; [] when nothing), compared with what it read: the app's own edits and jobs
        read again what they change, so they count only until then. None when the catalogue, its WAL and the
        pointers of the embeddings and maps in use are as at the last look (a few stats; no file is held open,
        which would keep a drive from being unplugged), or the library cannot be read now (gone, replaced, locked:
        the next action says so). Never waits for a lock. ``findings``: finding id -> status, as shown."""
        if self.s.lib_path is None:
            return None
        stamp = self.stamp()
        if stamp is None or stamp == self.seen:
            return None
        db = self.s.lib_path / DB_NAME
        try:
            conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=0, isolation_level=None)
        except sqlite3.Error:
            self.seen = stamp  # not to be read here (a read-only folder without the WAL's index): not tried again
            return None
        try:
            conn.execute("BEGIN")  # one snapshot
            created = conn.execute("SELECT value FROM meta WHERE key='created_at'").fetchall()
            tracks = conn.execute("SELECT id, label, content_hash, mtime FROM tracks").fetchall()
            seq = _segments_seq(conn)
            tags = dict(conn.execute("SELECT segment_id, label FROM segment_labels").fetchall())
            stored = dict(conn.execute("SELECT id, status FROM findings").fetchall())
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            if "locked" not in str(e) and "busy" not in str(e):  # locked: tried again at the next look
                self.seen = stamp
            return None
        finally:
            conn.close()
        self.seen = stamp
        if (created[0][0] if created else None) != self.s._created_at:  # another library put in its place
            return None
        held, labels, again = self.s.tracks, 0, 0
        for i, label, content, mtime in tracks:  # one pass: some 30 ms at 20,000 tracks, after a commit only
            t = held.get(i)
            if t is not None:
                labels += t.label != label
                again += t.content_hash != content or t.mtime != mtime
        now = {t[0] for t in tracks}
        added, removed = len(now - held.keys()), len(held.keys() - now)
        said = [f"{_n(added, 'track')} added" if added else "", f"{_n(removed, 'track')} removed" if removed else "",
                f"{_n(again, 'track')} imported again" if again else ""]
        if seq != self.segments_seq and not (added or again):
            said.append("segments cut again")
        retagged = sum(tags.get(s) != self.s.edits.tags.get(s) for s in tags.keys() | self.s.edits.tags.keys())
        said += [f"labels of {_n(labels, 'track')} changed" if labels else "",
                 f"tags of {_n(retagged, 'segment')} changed" if retagged else ""]
        if findings is not None and stored.keys() != findings.keys():
            said.append("findings of another inspection")
        elif findings is not None:
            reviewed = sum(stored[i] != status for i, status in findings.items())
            said.append(f"{_n(reviewed, 'finding')} reviewed" if reviewed else "")
        said += ["new embeddings" if stamp[2] != self.files_seen[0] else "",
                 "new map" if stamp[3] != self.files_seen[1] else ""]
        return [s for s in said if s]

    def stamp(self) -> tuple | None:
        """Stats of the catalogue and its WAL (a commit writes it) and of the pointers of the current embeddings of
        the model in use and of its maps (``musicemb embed`` and ``musicemb map`` replace one); None when the
        catalogue is not there."""
        def stat(path: Path) -> tuple | None:
            try:
                st = path.stat()
            except OSError:
                return None
            return st.st_ino, st.st_size, st.st_mtime_ns
        db = self.s.lib_path / DB_NAME
        catalogue = stat(db)
        if catalogue is None:
            return None
        key, maps = model_key(self.s.model), self.s.lib_path / "maps"
        try:
            names = sorted(e.name for e in os.scandir(maps) if e.name.startswith(f"{key}-"))
        except OSError:
            names = []
        return (catalogue, stat(db.with_name(f"{DB_NAME}-wal")), stat(layout.embeddings(self.s.lib_path, key).folder /
                POINTER), tuple((n, stat(maps / n / POINTER)) for n in names))

    def files_read(self, _job=None, *, embeddings: bool = False) -> None:
        """The maps (and the ``embeddings``) as they are now count as the window's: read again, or drawn by its
        own job (which may end after another program's embed: its vectors are not the window's)."""
        if self.s.lib_path is not None and (stamp := self.stamp()) is not None:
            self.files_seen, self.seen = (stamp[2] if embeddings else self.files_seen[0], stamp[3]), None


def _segments_seq(conn: sqlite3.Connection) -> int:
    """The last segment id the catalogue gave (ids are never reused: a cut or an import raises it)."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name='segments'").fetchall()
    return int(row[0][0]) if row else 0


def _n(count: int, thing: str) -> str:
    return f"{count} {thing}{'' if count == 1 else 's'}"
