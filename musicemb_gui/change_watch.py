"""Noticing what other programs change in the open library (a cron import, inspect, map or train): cheap file stats
every few seconds, one read-only snapshot compared with what the window holds when they moved."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from musicemb_core.common.names import model_key
from musicemb_core.common.store import POINTER
from musicemb_core.data import layout
from musicemb_core.data.library import DB_NAME

if TYPE_CHECKING:
    from musicemb_core.data.library import Track
    from musicemb_gui.session import Session

# what a track shows that another program may change: its label, its file (imported again), tempo and key (with
# the reasons there are none) and its file's tags
TRACKS = ("SELECT id, label, content_hash, mtime, bpm, bpm_confidence, musical_key, key_confidence, analysis, tags "
          "FROM tracks")


class _Snapshot(NamedTuple):
    created: str | None  # the catalogue's created_at: another library put in the open one's place
    tracks: list[tuple]  # rows of TRACKS
    seq: int  # the last segment id given
    tags: dict[int, str]  # segment id -> its tag
    findings: dict[int, str]  # finding id -> its status
    failures: set[tuple[str, str]]  # (path, error) of the files that failed to import
    models: set[tuple[str, float]]  # (name, when) of the models the picker lists


BIG_LOOK = (2_000, 100_000)  # tracks, segment tags above which a look runs on a thread (1-3 s at 20,000 tracks
# and 1.6M tags)


class ChangeWatch:
    """What other programs changed in a :class:`~musicemb_gui.session.Session`'s library since it read it."""

    def __init__(self, session: Session):
        self.s = session
        self.seen: tuple | None = None  # the library's files at the last comparison; None: compare again
        self.segments_seq = 0  # the catalogue's last segment id ever given when the segments were read
        self.files_seen: tuple = (None, None)  # the pointers of the embeddings read and the maps read or drawn here
        self.models_seen: set | None = None  # the models the picker listed last (see models_read); None: none yet
        self._same: dict[int, tuple] = {}  # track id -> (the track held, its row of TRACKS found to show the same)
        self.reads = 0  # counts the window's reads (and its own changes): a look begun before one is void
        session.jobs.jobEnded.connect(self.files_read)  # maps drawn by the app's own jobs

    def reset(self) -> None:
        """Another library opened: nothing of it seen yet."""
        self.seen, self.files_seen, self.models_seen, self._same = None, (None, None), None, {}
        self.reads += 1

    def look_again(self) -> None:
        """The window read the library again: compare at the next look."""
        self.seen = None
        self.reads += 1

    @staticmethod
    def segments_seq_of(conn: sqlite3.Connection) -> int:
        """The catalogue's last segment id given, read (on any thread) before the window reads the segments: kept
        as ``segments_seq`` once that read is used."""
        return _segments_seq(conn)

    def models_read(self, conn: sqlite3.Connection) -> None:
        """The window lists the library's models now (``conn``: its connection): compare at the next look."""
        self.models_seen, self.seen = _models(conn), None
        self.reads += 1

    def big(self) -> bool:
        """Whether a look at the open library takes long enough to be made on a thread."""
        return len(self.s.tracks) > BIG_LOOK[0] or len(self.s.edits.tags) > BIG_LOOK[1]

    def changes(self, findings: Mapping[int, str] | None = None) -> list[str] | None:
        """What other programs changed in the open library that the window does not show ("2 tracks added",
        "labels of 1 track changed", "1 model trained"...; [] when nothing), compared with what it read: the app's
        own edits and jobs read again what they change, so they count only until then. None when the catalogue,
        its WAL and the pointers of the embeddings and maps in use are as at the last look (a few stats; no file is
        held open, which would keep a drive from being unplugged), or the library cannot be read now (gone,
        replaced, locked: the next action says so). Never waits for a lock. ``findings``: finding id -> status, as
        shown."""
        if self.s.lib_path is None:
            return None
        stamp = self.stamp()
        if stamp is None or stamp == self.seen:
            return None
        snap = self._snapshot(stamp)
        if snap is None or snap.created != self.s._created_at:  # None: another library put in its place
            return None
        said = self._tracks_said(snap)
        retagged = sum(snap.tags.get(s) != self.s.edits.tags.get(s) for s in snap.tags.keys() | self.s.edits.tags.keys())
        said.append(f"tags of {_n(retagged, 'segment')} changed" if retagged else "")
        if findings is not None and snap.findings.keys() != findings.keys():
            said.append("findings of another inspection")
        elif findings is not None:
            reviewed = sum(snap.findings[i] != status for i, status in findings.items())
            said.append(f"{_n(reviewed, 'finding')} reviewed" if reviewed else "")
        trained = len(snap.models - self.models_seen) if self.models_seen is not None else 0
        said += [f"{_n(trained, 'model')} trained" if trained else "",
                 "new embeddings" if stamp[2] != self.files_seen[0] else "",
                 "new map" if stamp[3] != self.files_seen[1] else ""]
        return [s for s in said if s]

    def _snapshot(self, stamp: tuple) -> _Snapshot | None:
        """What the comparison needs of the catalogue, in one read-only snapshot; None when it cannot be read now
        (locked: tried again at the next look) or here at all (not tried again until the stats move)."""
        db = self.s.lib_path / DB_NAME
        try:
            conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=0, isolation_level=None)
        except sqlite3.Error:
            self.seen = stamp  # not to be read here (a read-only folder without the WAL's index): not tried again
            return None
        try:
            conn.execute("BEGIN")  # one snapshot
            created = conn.execute("SELECT value FROM meta WHERE key='created_at'").fetchall()
            snap = _Snapshot(created[0][0] if created else None, conn.execute(TRACKS).fetchall(), _segments_seq(conn),
                             dict(conn.execute("SELECT segment_id, label FROM segment_labels").fetchall()),
                             dict(conn.execute("SELECT id, status FROM findings").fetchall()),
                             set(conn.execute("SELECT path, error FROM failures").fetchall()), _models(conn))
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            if "locked" not in str(e) and "busy" not in str(e):  # locked: tried again at the next look
                self.seen = stamp
            return None
        finally:
            conn.close()
        self.seen = stamp
        return snap

    def _tracks_said(self, snap: _Snapshot) -> list[str]:
        """What changed in the tracks (and the segments, and the import's failures) since the window read them."""
        held, labels, again, tempo, tagged, same = self.s.tracks, 0, 0, 0, 0, {}
        for row in snap.tracks:
            t, last = held.get(row[0]), self._same.get(row[0])
            if t is None:
                continue
            if last is not None and last[0] is t and last[1] == row:  # the row that showed the same at the last look:
                same[row[0]] = last  # a look takes some 50 ms at 20,000 tracks, the first after a read 130 ms
                continue  # (parsing every track's tags and tempo/key reasons)
            relabelled, changed, retimed, retagged = _differences(t, row)
            labels, again, tempo, tagged = labels + relabelled, again + changed, tempo + retimed, tagged + retagged
            if not (relabelled or changed or retimed or retagged):
                same[row[0]] = (t, row)
        self._same = same
        now = {t[0] for t in snap.tracks}
        added, removed = len(now - held.keys()), len(held.keys() - now)
        failed = len(snap.failures - {(f["path"], f["error"]) for f in self.s.failures})
        return [f"{_n(added, 'track')} added" if added else "", f"{_n(removed, 'track')} removed" if removed else "",
                f"{_n(again, 'track')} imported again" if again else "",
                f"{_n(failed, 'file')} failed to import" if failed else "",
                "segments cut again" if snap.seq != self.segments_seq and not (added or again) else "",
                f"labels of {_n(labels, 'track')} changed" if labels else "",
                f"tempo/key of {_n(tempo, 'track')} changed" if tempo else "",
                f"file tags of {_n(tagged, 'track')} changed" if tagged else ""]

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
            self.reads += 1


def _differences(t: Track, row: tuple) -> tuple[bool, bool, bool, bool]:
    """Whether the catalogue's row of TRACKS differs from the track held in its label, its file (imported again),
    its tempo or key, and (its file the same) its file's tags."""
    _, label, content, mtime, bpm, bpm_confidence, key, key_confidence, analysis, tags = row
    if t.content_hash != content or t.mtime != mtime:
        return t.label != label, True, False, False
    now, then = json.loads(analysis) or {}, t.analysis or {}
    tempo = (bpm, bpm_confidence, key, key_confidence, now.get("bpm_reason"), now.get("key_reason")) != (
        t.bpm, t.bpm_confidence, t.key, t.key_confidence, then.get("bpm_reason"), then.get("key_reason"))
    return t.label != label, False, tempo, json.loads(tags) != t.tags


def _models(conn: sqlite3.Connection) -> set[tuple[str, float]]:
    """The models the catalogue registers (a run that ends registers its model, anew when trained again), as the
    picker lists them: not the query-by-humming ones."""
    return set(conn.execute("SELECT name, created_at FROM models WHERE strategy IS NOT 'qbh'").fetchall())


def _segments_seq(conn: sqlite3.Connection) -> int:
    """The last segment id the catalogue gave (ids are never reused: a cut or an import raises it)."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name='segments'").fetchall()
    return int(row[0][0]) if row else 0


def _n(count: int, thing: str) -> str:
    return f"{count} {thing}{'' if count == 1 else 's'}"
