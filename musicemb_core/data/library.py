"""The library: a folder with ``library.sqlite`` (tracks, segments, models, runs, findings) and the files
models, embeddings, indexes and maps are kept in. Every catalogue change is one SQLite transaction (WAL), so a
crash or kill at any moment leaves the library consistent.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicemb_core.common.config import SegmentConfig
from musicemb_core.common.errors import LibraryError
from musicemb_core.common.names import clean_label
from musicemb_core.common.paths import DERIVED, user_path
from musicemb_core.common.store import kill_point
from musicemb_core.data import layout

DB_NAME = layout.CATALOGUE
BUSY_TIMEOUT_S = 5.0  # SQLite's own wait for a lock, per attempt
BUSY_RETRY_S = 120.0  # then retried this long in all before "library busy"


#: (catalogue path, its created_at) -> ((segment count, largest id), (4, n) float64 columns) of the library whose
#: segments this process read last (see :meth:`Library.segments`).
_SEGMENTS: dict[tuple[str, str | None], tuple[tuple[int, int], np.ndarray]] = {}
_SEGMENTS_LOCK = threading.Lock()


SEGMENTS_SNAPSHOT = "cache/segments.npz"
"""The columns of :meth:`Library.segments` as a process last read them, so that the next process (the app opening a
20,000-track library) reads from the catalogue only the segments added since; a cache, rewritten when a tenth of
the rows (or 100,000) had to be read from the catalogue."""


def _segment_rows(conn: sqlite3.Connection, after_id: int, count: int = -1) -> np.ndarray:
    """(4, n): id, track_id, start_s, duration_s of the segments whose id is above ``after_id``, by id (``count``:
    how many there are, when known; without a list of row tuples: 1.2x faster)."""
    rows = conn.execute("SELECT id, track_id, start_s, duration_s FROM segments WHERE id > ? ORDER BY id",
                        (after_id,))
    values = np.fromiter(itertools.chain.from_iterable(rows), np.float64, count=4 * count if count >= 0 else -1)
    return values.reshape(-1, 4).T.copy()


def _retry_busy(step, *, what, retry_s: float | None = None):
    """``step()``, retried while SQLite says the database is locked or busy; a one-line error after ``retry_s``
    (default :data:`BUSY_RETRY_S`)."""
    retry_s = BUSY_RETRY_S if retry_s is None else retry_s
    deadline = time.monotonic() + retry_s
    while True:
        try:
            return step()
        except sqlite3.OperationalError as e:
            msg = str(e).lower()
            if "locked" not in msg and "busy" not in msg:
                if "readonly" in msg or "read-only" in msg:
                    raise LibraryError(f"{what}: the catalogue is read-only here ({e})") from e
                if "disk" in msg and "full" in msg or "disk i/o" in msg:
                    raise LibraryError(f"{what}: cannot write the catalogue ({e})") from e
                raise
            if time.monotonic() >= deadline:
                raise LibraryError(f"{what}: library busy: another process has held the catalogue locked for "
                                   f"{retry_s:.0f} s") from e
            time.sleep(0.2)

# Migration i (1-based) brings the schema from version i-1 to i. Append only; never edit a shipped one.
# Track and segment ids are AUTOINCREMENT: an id is never reused, so embeddings keyed by id cannot go stale.
MIGRATIONS = [
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE tracks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        path TEXT NOT NULL UNIQUE,
        content_hash TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime REAL NOT NULL,
        duration_s REAL NOT NULL,
        sample_rate INTEGER NOT NULL,
        channels INTEGER NOT NULL,
        format TEXT NOT NULL,
        label TEXT,
        tags TEXT NOT NULL DEFAULT '{}',
        warning TEXT NOT NULL DEFAULT '',
        added_at REAL NOT NULL
    );
    CREATE INDEX tracks_hash ON tracks(content_hash);
    CREATE TABLE segments (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        track_id INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
        start_s REAL NOT NULL,
        duration_s REAL NOT NULL
    );
    CREATE INDEX segments_track ON segments(track_id);
    CREATE TABLE failures (
        path TEXT PRIMARY KEY, error TEXT NOT NULL, size INTEGER, mtime REAL, at REAL NOT NULL
    );
    CREATE TABLE models (
        name TEXT PRIMARY KEY, arch TEXT, strategy TEXT, dim INTEGER, created_at REAL NOT NULL,
        config TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY, model TEXT, strategy TEXT, status TEXT NOT NULL, started_at REAL NOT NULL,
        finished_at REAL, config TEXT NOT NULL DEFAULT '{}', history TEXT NOT NULL DEFAULT '[]'
    );
    CREATE TABLE findings (
        id INTEGER PRIMARY KEY, kind TEXT NOT NULL,
        segment_id INTEGER REFERENCES segments(id) ON DELETE CASCADE,
        track_id INTEGER REFERENCES tracks(id) ON DELETE CASCADE,
        start_s REAL, end_s REAL, score REAL, reason TEXT, details TEXT NOT NULL DEFAULT '{}',
        status TEXT NOT NULL DEFAULT 'open'
    );
    CREATE INDEX findings_kind ON findings(kind);
    """,
    # 2: tempo and key estimated at import (NULL with a reason in ``analysis`` when there is none; ``analysis``
    # '{}' means never analysed, so a re-import analyses tracks imported before this version).
    """
    ALTER TABLE tracks ADD COLUMN bpm REAL;
    ALTER TABLE tracks ADD COLUMN bpm_confidence REAL;
    ALTER TABLE tracks ADD COLUMN musical_key TEXT;
    ALTER TABLE tracks ADD COLUMN key_confidence REAL;
    ALTER TABLE tracks ADD COLUMN analysis TEXT NOT NULL DEFAULT '{}';
    """,
    # 3: segment tags (a segment's own label, shown over its track's) and the edit log behind undo
    # (see :mod:`musicemb_core.data.edits`).
    """
    CREATE TABLE segment_labels (
        segment_id INTEGER PRIMARY KEY REFERENCES segments(id) ON DELETE CASCADE, label TEXT NOT NULL
    );
    CREATE TABLE edits (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, description TEXT NOT NULL, changes TEXT NOT NULL,
        undone_at REAL
    );
    """,
    # 4: a digest of each track's decoded audio, so that a file changed only in its tags keeps its segments ('' for
    # tracks imported before: told apart by their bytes until an import decodes them again); an empty label, which
    # a labels CSV used to store, is no label.
    """
    ALTER TABLE tracks ADD COLUMN audio_hash TEXT NOT NULL DEFAULT '';
    CREATE INDEX tracks_audio_hash ON tracks(audio_hash);
    UPDATE tracks SET label = NULL WHERE label = '';
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


def _overlap(a: float, b: float, c: float, d: float) -> float:
    """How much spans [a, b] and [c, d] overlap, as a fraction of the shorter one (identical points: 1)."""
    shorter = min(b - a, d - c)
    if shorter <= 0:
        return 1.0 if (a, b) == (c, d) else 0.0
    return max(0.0, min(b, d) - max(a, c)) / shorter


def _retagged(c: sqlite3.Connection, tags: list[tuple]) -> list[tuple[int, str]]:
    """(new segment id, label) for segment tags (track_id, start_s, end_s, label) of segments cut again: each tag
    goes to the new segment of its track it overlaps most (a new segment overlapped by several keeps the tag
    that covers it most)."""
    best: dict[int, tuple[float, str]] = {}
    for tid, a, b, label in tags:
        rows = c.execute("SELECT id, start_s, start_s + duration_s FROM segments WHERE track_id=? AND start_s < ? "
                         "AND start_s + duration_s > ?", (tid, b, a)).fetchall()
        if not rows:
            continue
        sid, share = max(((i, _overlap(a, b, x, y)) for i, x, y in rows), key=lambda r: r[1])
        if share > best.get(sid, (-1.0, ""))[0]:
            best[sid] = (share, label)
    return [(sid, label) for sid, (_, label) in best.items()]


def _unlinked(details: dict, *, segment_level: bool) -> dict:
    """A finding's details without the segment ids they name (segments cut again)."""
    out = {k: v for k, v in details.items() if k not in ("example_segment_id", "segments")}
    return {**out, "segment_level": True} if segment_level else out


def _inherited_reviews(rows: list[dict], reviewed: list[tuple]) -> list[str]:
    """The status each new finding inherits from the reviewed ones (kind, track_id, segment_id, start_s, end_s,
    details, status), keyed by track and time span, not by segment id: the same kind on the same track; a
    whole-track finding from a whole-track one; a segment finding from the segment finding it and which overlap
    each other most (each the other's best match, by at least half of the shorter span), so a re-cut with other
    windows keeps the review and a neighbouring segment does not take it. ``open`` when none."""
    out = ["open"] * len(rows)
    spans = []  # (row index, reviewed index, overlap) of segment findings
    for j, (kind, track_id, segment_id, start, end, details, st) in enumerate(reviewed):
        was_seg = segment_id is not None or bool(json.loads(details or "{}").get("segment_level"))
        for i, r in enumerate(rows):
            if r["kind"] != kind or r["track_id"] != track_id or (r.get("segment_id") is not None) != was_seg:
                continue
            if not was_seg:
                out[i] = st
            elif start is not None and r.get("start_s") is not None:
                a = float(r["start_s"])
                b = float(r["end_s"]) if r.get("end_s") is not None else a
                o = _overlap(a, b, float(start), float(end) if end is not None else float(start))
                if o >= 0.5:
                    spans.append((i, j, o))
    best_row: dict[int, float] = {}
    best_rev: dict[int, float] = {}
    for i, j, o in spans:
        best_row[i] = max(best_row.get(i, 0.0), o)
        best_rev[j] = max(best_rev.get(j, 0.0), o)
    for i, j, o in spans:
        if o == best_row[i] == best_rev[j] and out[i] == "open":
            out[i] = reviewed[j][6]
    return out


def track_title(tags: dict, path: str) -> str:
    """The title tag, else the file name without its extension."""
    return (tags or {}).get("title") or os.path.splitext(os.path.basename(path))[0]  # not pathlib: called per track


@dataclass(frozen=True)
class Track:
    """One catalogue row of ``tracks``."""

    id: int
    path: str
    content_hash: str
    size: int
    mtime: float
    duration_s: float
    sample_rate: int
    channels: int
    format: str
    label: str | None
    tags: dict
    warning: str
    bpm: float | None = None
    bpm_confidence: float | None = None
    key: str | None = None  # "A minor"
    key_confidence: float | None = None
    analysis: dict | None = None  # {"bpm_reason", "key_reason"}; {} or None: not analysed
    audio_hash: str = ""  # digest of the decoded audio; "" if imported before it was kept

    @property
    def analysed(self) -> bool:
        return bool(self.analysis)

    def changed_since_import(self) -> str:
        """Why the track's file is no longer the one imported (its size or modification time differ from the
        catalogue's); "" when it is the same, or cannot be read (decoding says why)."""
        try:
            st = os.stat(self.path)
        except OSError:
            return ""
        if (st.st_size, st.st_mtime) == (self.size, self.mtime):
            return ""
        return "changed since import: import it again"


class Library:
    """A library folder. ``Library(root)`` opens an existing one; ``Library(root, create=True)`` makes it if absent."""

    def __init__(self, root: str | Path, *, create: bool = False, busy_s: float | None = None):
        """``busy_s``: how long a change waits for another process's write transaction before "library busy"
        (default :data:`BUSY_RETRY_S`; an interactive caller, the app's window, waits less)."""
        self.busy_s = busy_s
        try:
            self.root = user_path(root).resolve()
        except (RuntimeError, OSError) as e:  # a symbolic link loop (RuntimeError before Python 3.13)
            raise LibraryError(f"{root}: cannot open the library folder ({e})") from e
        db = self.root / DB_NAME
        if self.root.exists() and not self.root.is_dir():
            raise LibraryError(f"{self.root}: not a folder (a library is a folder)")
        if not db.exists():
            if not create:
                raise LibraryError(f"{self.root}: not a musicemb library (no {DB_NAME}); "
                                   "create one with `musicemb ingest LIB PATH...`")
            try:
                self.root.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise LibraryError(f"{self.root}: cannot create the library folder ({e.strerror or e})") from e
        if db.exists() and db.stat().st_size == 0 and any((self.root / d).exists() for d in DERIVED):
            raise LibraryError(f"{db}: empty (0 bytes) beside the library's models, embeddings or indexes: the "
                               "catalogue was damaged; restore it from a backup (a new one would not match them)")
        # A folder or catalogue this process may not write (a mounted backup, chmod a-w) opens read-only.
        self.read_only = db.exists() and not layout.writable(self.root)
        self.conn = None
        try:
            if self.read_only:
                self.conn = self._connect_read_only(db)
            else:
                self.conn = sqlite3.connect(db, timeout=BUSY_TIMEOUT_S if busy_s is None else min(BUSY_TIMEOUT_S, busy_s),
                                            isolation_level=None, check_same_thread=False)
                self._check_ours(db)
                _retry_busy(lambda: self.conn.execute("PRAGMA journal_mode=WAL"), what=db, retry_s=busy_s)
                self.conn.execute("PRAGMA synchronous=NORMAL")
                self.conn.execute("PRAGMA foreign_keys=ON")
                self._migrate()
        except sqlite3.DatabaseError as e:
            if self.conn is not None:
                self.conn.close()
            raise LibraryError(f"{db}: cannot open the catalogue: {e}") from e
        except BaseException:
            if self.conn is not None:
                self.conn.close()
            raise

    def _connect_read_only(self, db: Path) -> sqlite3.Connection:
        """Queries only. ``mode=ro`` first (sees a live writer's WAL); where even that cannot open (the folder is
        not writable, so SQLite cannot make its shared-memory file), ``immutable=1``, which would not see changes
        still in the ``-wal`` file (a copy made while a program had the library open, without its ``-shm``)."""
        last = None
        for params in ("mode=ro", "immutable=1"):
            wal = db.with_name(f"{db.name}-wal")
            if params == "immutable=1" and wal.exists() and wal.stat().st_size:
                raise LibraryError(f"{self.root}: read-only library whose last changes are in {wal.name}, which "
                                   f"cannot be read here without {db.name}-shm; open it once where it is writable")
            conn = None
            try:
                conn = sqlite3.connect(f"{db.as_uri()}?{params}", uri=True, timeout=BUSY_TIMEOUT_S,
                                       isolation_level=None, check_same_thread=False)
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            except sqlite3.DatabaseError as e:
                last = e
                if conn is not None:
                    conn.close()
                continue
            if version != SCHEMA_VERSION:
                conn.close()
                raise LibraryError(f"{self.root}: read-only library with catalogue version {version}, this musicemb "
                                   f"reads version {SCHEMA_VERSION}; open it once where it is writable")
            return conn
        raise LibraryError(f"{db}: cannot open the read-only catalogue: {last}")

    def _check_ours(self, db: Path) -> None:
        """A :class:`LibraryError` for another program's SQLite file named like a catalogue (tables, but not one
        migration of ours: each sets the version with its tables), before anything is written to it."""
        if self.conn.execute("PRAGMA user_version").fetchone()[0] == 0:
            tables = [r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                                      "ORDER BY name LIMIT 4")]
            if tables:
                raise LibraryError(f"{db}: not a musicemb catalogue (another program's database, with tables "
                                   f"{', '.join(tables)}); left as it is")

    def _migrate(self) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise LibraryError(f"{self.root}: catalogue version {version} is newer than this musicemb "
                               f"({SCHEMA_VERSION}); upgrade musicemb")
        while version < SCHEMA_VERSION:
            with self.transaction() as c:
                # Read again under the write lock: another process creating the library at the same time may
                # have migrated it meanwhile (its tables must not be created twice).
                version = c.execute("PRAGMA user_version").fetchone()[0]
                if version >= SCHEMA_VERSION:
                    break
                for stmt in MIGRATIONS[version].split(";"):
                    if stmt.strip():
                        c.execute(stmt)
                c.execute(f"PRAGMA user_version={version + 1}")
                if version == 0:
                    c.execute("INSERT OR IGNORE INTO meta VALUES ('created_at', ?)", (str(time.time()),))
                version += 1

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``; rolled back on any exception. Waits for another process's write
        transaction (retrying past SQLite's busy timeout), then fails with a one-line :class:`LibraryError`."""
        if self.read_only:
            raise LibraryError(f"{self.root}: the library is read-only here; cannot change it")
        _retry_busy(lambda: self.conn.execute("BEGIN IMMEDIATE"), what=self.root / DB_NAME, retry_s=self.busy_s)
        try:
            yield self.conn
        except BaseException as e:
            with contextlib.suppress(sqlite3.Error):  # SQLite may have rolled back itself (a full disk)
                self.conn.execute("ROLLBACK")
            msg = str(e).lower()
            if isinstance(e, sqlite3.OperationalError) and ("disk" in msg and "full" in msg or "disk i/o" in msg):
                raise LibraryError(f"{self.root / DB_NAME}: cannot write the catalogue ({e})") from e
            raise
        try:
            _retry_busy(lambda: self.conn.execute("COMMIT"), what=self.root / DB_NAME, retry_s=self.busy_s)
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
            raise
        kill_point("commit")

    # -- folders -------------------------------------------------------------------------------------------
    def folder(self, name: str) -> Path:
        """A subfolder (``models``, ``embeddings``, ``index``, ``maps``), created on demand."""
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    # -- meta ----------------------------------------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return default if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def segment_config(self) -> SegmentConfig | None:
        """The segmenting every track of this library uses; None before the first import."""
        raw = self.get_meta("segment_config")
        return None if raw is None else SegmentConfig.from_dict(json.loads(raw))

    def set_segment_config(self, cfg: SegmentConfig, starts_of) -> None:
        """Store ``cfg`` and re-cut every track's segments with ``starts_of(duration_s, cfg)`` in one transaction."""
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO meta VALUES ('segment_config', ?)", (json.dumps(cfg.to_dict()),))
            self._recut(c, cfg, starts_of)

    @classmethod
    def _recut(cls, c: sqlite3.Connection, cfg: SegmentConfig, starts_of, track_id: int | None = None) -> None:
        """Cut track ``track_id`` (default: every track) into new segments (new ids) at its current duration.
        Findings keep their time span and review status, only their links to the old segments go (a whole-track
        finding's example and arguing segments too); each segment tag moves to the new segment it overlaps most."""
        one, args = ("= ?", (track_id,)) if track_id is not None else ("IS NOT NULL", ())
        cut_off = c.execute(f"SELECT id, segment_id, details FROM findings WHERE track_id {one}", args)
        c.executemany("UPDATE findings SET segment_id = NULL, details = ? WHERE id = ?",
                      [(json.dumps(_unlinked(json.loads(d), segment_level=s is not None)), i)
                       for i, s, d in cut_off.fetchall()])
        tags = c.execute("SELECT s.track_id, s.start_s, s.start_s + s.duration_s, g.label FROM segment_labels g "
                         f"JOIN segments s ON s.id = g.segment_id WHERE s.track_id {one}", args).fetchall()
        c.execute(f"DELETE FROM segments WHERE track_id {one}", args)
        for tid, dur in c.execute(f"SELECT id, duration_s FROM tracks WHERE id {one}", args).fetchall():
            cls._insert_segments(c, tid, dur, cfg, starts_of)
        c.executemany("INSERT OR REPLACE INTO segment_labels VALUES (?, ?)", _retagged(c, tags))

    @staticmethod
    def _insert_segments(c: sqlite3.Connection, track_id: int, duration_s: float, cfg: SegmentConfig,
                         starts_of) -> None:
        starts = starts_of(duration_s, cfg)
        c.executemany("INSERT INTO segments (track_id, start_s, duration_s) VALUES (?, ?, ?)",
                      [(track_id, float(s), float(min(cfg.window_s, duration_s - s))) for s in starts])

    # -- tracks --------------------------------------------------------------------------------------------
    _TRACK_COLS = ("id, path, content_hash, size, mtime, duration_s, sample_rate, channels, format, label, "
                   "tags, warning, bpm, bpm_confidence, musical_key, key_confidence, analysis, audio_hash")
    ANALYSIS_COLS = ("bpm", "bpm_confidence", "key", "key_confidence", "analysis")
    _FIELDS = ("path", "content_hash", "audio_hash", "size", "mtime", "duration_s", "sample_rate", "channels",
               "format", "label", "tags", "warning", *ANALYSIS_COLS)

    def _track(self, row) -> Track:
        return Track(*row[:10], json.loads(row[10]), row[11], *row[12:16], json.loads(row[16]), row[17])

    @classmethod
    def _columns(cls, fields: dict) -> tuple[list[str], list]:
        """The catalogue columns and values of the track ``fields`` given (tags and analysis as JSON)."""
        keys = [k for k in cls._FIELDS if k in fields]
        values = [json.dumps(fields[k] or {}) if k in ("tags", "analysis") else fields[k] for k in keys]
        return ["musical_key" if k == "key" else k for k in keys], values

    def track(self, track_id: int) -> Track:
        row = self.conn.execute(f"SELECT {self._TRACK_COLS} FROM tracks WHERE id=?", (track_id,)).fetchone()
        if row is None:
            raise LibraryError(f"{self.root}: no track with id {track_id}")
        return self._track(row)

    def track_by_path(self, path: str) -> Track | None:
        row = self.conn.execute(f"SELECT {self._TRACK_COLS} FROM tracks WHERE path=?", (path,)).fetchone()
        return None if row is None else self._track(row)

    def tracks_by_hash(self, content_hash: str, audio_hash: str = "") -> list[Track]:
        """Tracks of these bytes, or of this decoded audio (if given)."""
        rows = self.conn.execute(f"SELECT {self._TRACK_COLS} FROM tracks WHERE content_hash=? OR "
                                 "(audio_hash != '' AND audio_hash=?) ORDER BY id", (content_hash, audio_hash))
        return [self._track(r) for r in rows]

    def track_sizes(self) -> set[int]:
        """The file sizes of the tracks (a copy of a track's file has its size)."""
        return {size for (size,) in self.conn.execute("SELECT size FROM tracks")}

    def tracks(self) -> list[Track]:
        return [self._track(r) for r in self.conn.execute(f"SELECT {self._TRACK_COLS} FROM tracks ORDER BY id")]

    def save_track(self, fields: dict, *, cfg: SegmentConfig, starts_of, track_id: int | None = None) -> int:
        """Insert a track (or replace track ``track_id``'s audio) with its segments; clears a failure at its path.

        ``fields``: path, content_hash, size, mtime, duration_s, sample_rate, channels, format, label, tags,
        warning, and optionally audio_hash and the analysis (bpm, bpm_confidence, key, key_confidence, analysis: a
        dict of reasons; see :meth:`set_analysis`). A replaced track is cut again as a new window does (see
        :meth:`set_segment_config`): its segment tags and reviewed findings stay where their time spans still are.
        One transaction: the track and all its segments land together or not at all.
        """
        cols, values = self._columns(fields)
        with self.transaction() as c:
            if track_id is None:
                cur = c.execute(f"INSERT INTO tracks ({', '.join(cols)}, added_at) "
                                f"VALUES ({', '.join('?' * (len(cols) + 1))})", (*values, time.time()))
                track_id = cur.lastrowid
                self._insert_segments(c, track_id, fields["duration_s"], cfg, starts_of)
            else:
                c.execute(f"UPDATE tracks SET {', '.join(k + '=?' for k in cols)} WHERE id=?", (*values, track_id))
                self._recut(c, cfg, starts_of, track_id)
            c.execute("DELETE FROM failures WHERE path=?", (fields["path"],))
        return track_id

    def update_track(self, track_id: int, fields: dict) -> None:
        """Change some of a track's ``fields`` (as :meth:`save_track`'s) keeping its segments: the file moved, or
        changed but not its audio (tags); clears a failure at its path."""
        cols, values = self._columns(fields)
        with self.transaction() as c:
            if c.execute(f"UPDATE tracks SET {', '.join(k + '=?' for k in cols)} WHERE id=?",
                         (*values, track_id)).rowcount != 1:
                raise LibraryError(f"{self.root}: no track with id {track_id}")
            c.execute("DELETE FROM failures WHERE path=(SELECT path FROM tracks WHERE id=?)", (track_id,))

    def set_tags(self, tags: list[tuple[int, dict]]) -> None:
        """Store the tags of tracks, (track id, tags) each (one transaction)."""
        if tags:
            with self.transaction() as c:
                c.executemany("UPDATE tracks SET tags=? WHERE id=?", [(json.dumps(t), int(i)) for i, t in tags])

    def remove_tracks(self, track_ids: list[int]) -> None:
        """Remove tracks with their segments, segment tags and findings (one transaction). Their vectors stay in
        the embeddings until the next ``embed`` drops them; readers skip vectors of segments not in the library."""
        with self.transaction() as c:
            c.executemany("DELETE FROM tracks WHERE id=?", [(int(t),) for t in track_ids])

    def set_analysis(self, track_id: int, *, bpm: float | None, bpm_confidence: float | None, key: str | None,
                     key_confidence: float | None, analysis: dict) -> None:
        """Store a track's tempo and key (None with a reason in ``analysis`` where there is none)."""
        with self.transaction() as c:
            if c.execute("UPDATE tracks SET bpm=?, bpm_confidence=?, musical_key=?, key_confidence=?, analysis=? "
                         "WHERE id=?", (bpm, bpm_confidence, key, key_confidence, json.dumps(analysis or {}),
                                        track_id)).rowcount != 1:
                raise LibraryError(f"{self.root}: no track with id {track_id}")

    def record_failure(self, path: str, error: str, *, size: int | None, mtime: float | None) -> None:
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?, ?)", (path, error, size, mtime, time.time()))

    def forget_failures(self, paths: list[str]) -> None:
        """Drop the failures recorded at ``paths`` (their files are gone)."""
        if paths:
            with self.transaction() as c:
                c.executemany("DELETE FROM failures WHERE path=?", [(p,) for p in paths])

    def failure_stat(self, path: str) -> tuple[int, float] | None:
        """(size, mtime) of the file when it last failed, or None if it has not failed."""
        row = self.conn.execute("SELECT size, mtime FROM failures WHERE path=?", (path,)).fetchone()
        return None if row is None else (row[0], row[1])

    def labels(self) -> dict[int, str | None]:
        """Every track's label by track id (a few milliseconds where :meth:`tracks` takes half a second at 20,000)."""
        return dict(self.conn.execute("SELECT id, label FROM tracks"))

    def set_label(self, track_id: int, label: str | None) -> None:
        """Label a track (:func:`~musicemb_core.common.names.clean_label`; None or blank: no label)."""
        with self.transaction() as c:
            if c.execute("UPDATE tracks SET label=? WHERE id=?", (clean_label(label), track_id)).rowcount != 1:
                raise LibraryError(f"{self.root}: no track with id {track_id}")

    # -- segments ------------------------------------------------------------------------------------------
    def segments(self) -> dict[str, np.ndarray]:
        """All segments as columns: ``id``, ``track_id``, ``start_s``, ``duration_s`` (sorted by id).

        The process keeps the last library's columns (:data:`_SEGMENTS`): segments are only ever inserted (with
        ids above every earlier one: AUTOINCREMENT) or deleted, so the count and the largest id say whether they
        changed, and when none was deleted only the new ones are read (1.6M rows take 2 s to read whole)."""
        if self.conn.in_transaction:  # its own writes, not committed yet: not kept
            cols = _segment_rows(self.conn, 0)
        else:
            self.conn.execute("BEGIN")  # one read snapshot for the count and the rows
            try:
                cols = self._segments_kept()
            finally:
                self.conn.execute("COMMIT")
        return {"id": cols[0].astype(np.int64), "track_id": cols[1].astype(np.int64), "start_s": cols[2].copy(),
                "duration_s": cols[3].copy()}

    def _segments_kept(self) -> np.ndarray:
        count, top = self.conn.execute("SELECT count(*), coalesce(max(id), 0) FROM segments").fetchone()
        key = (str(self.root / DB_NAME), self.get_meta("created_at"))
        with _SEGMENTS_LOCK:
            cached = _SEGMENTS.get(key)
        if cached is None and key[1] is not None:
            cached = self._segments_snapshot(key[1])
        if cached is not None and not self._holds_last(cached[1]):  # a catalogue restored, then changed otherwise:
            cached = None  # its ids given again to other segments
        read = 0
        if cached is not None and cached[0] != (count, top):
            known = int(cached[1][0][-1]) if cached[1].shape[1] else 0
            new = _segment_rows(self.conn, known) if top >= known else None  # a lower top: a catalogue restored
            read = 0 if new is None else new.shape[1]
            cached = ((count, top), np.hstack([cached[1], new])) \
                if new is not None and cached[0][0] + new.shape[1] == count else None
        if cached is None:
            cached, read = ((count, top), _segment_rows(self.conn, 0, count)), count
        if key[1] is not None:  # a catalogue older than its created_at: not kept
            with _SEGMENTS_LOCK:
                _SEGMENTS.clear()
                _SEGMENTS[key] = cached
            if read and (read >= 0.1 * count or read >= 100_000) and not self.read_only:
                self._save_segments_snapshot(key[1], cached)
        return cached[1]

    def _holds_last(self, cols: np.ndarray) -> bool:
        """Whether the catalogue still holds the last of the kept segments as it was (ids are never given again,
        unless an older catalogue was restored and added to: then that id names another segment, or none)."""
        if not cols.shape[1]:
            return True
        row = self.conn.execute("SELECT track_id, start_s, duration_s FROM segments WHERE id=?",
                                (int(cols[0][-1]),)).fetchone()
        return row is not None and tuple(map(float, row)) == tuple(cols[1:, -1])

    def _segments_snapshot(self, created_at: str) -> tuple[tuple[int, int], np.ndarray] | None:
        """The :data:`SEGMENTS_SNAPSHOT` of this catalogue, None when there is none (or it is unreadable, or of
        another catalogue)."""
        try:
            with np.load(self.root / SEGMENTS_SNAPSHOT, allow_pickle=False) as z:
                if str(z["created_at"]) != created_at:
                    return None
                count, top = (int(v) for v in z["fingerprint"])
                cols = np.ascontiguousarray(z["cols"], np.float64)
        except Exception:  # noqa: BLE001 - a cache: damaged in any way (zipfile and numpy raise many kinds), not used
            return None
        ok = cols.ndim == 2 and cols.shape == (4, count) and (not count or int(cols[0][-1]) == top)
        return ((count, top), cols) if ok else None

    def _save_segments_snapshot(self, created_at: str, cached: tuple[tuple[int, int], np.ndarray]) -> None:
        """Write :data:`SEGMENTS_SNAPSHOT` (atomically; a cache: a failure to write it is ignored)."""
        path = self.root / SEGMENTS_SNAPSHOT
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            path.parent.mkdir(exist_ok=True)
            with open(tmp, "wb") as f:
                np.savez(f, created_at=np.array(created_at), fingerprint=np.array(cached[0], np.int64),
                         cols=cached[1])
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()

    # -- failures ------------------------------------------------------------------------------------------
    def failures(self) -> list[dict]:
        rows = self.conn.execute("SELECT path, error FROM failures ORDER BY path")
        return [{"path": p, "error": e} for p, e in rows]

    # -- models --------------------------------------------------------------------------------------------
    def models(self) -> list[dict]:
        rows = self.conn.execute("SELECT name, arch, strategy, dim, created_at FROM models ORDER BY created_at")
        return [dict(zip(("name", "arch", "strategy", "dim", "created_at"), r, strict=True)) for r in rows]

    def register_model(self, name: str, arch: str, strategy: str, dim: int, config: dict) -> None:
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO models VALUES (?, ?, ?, ?, ?, ?)",
                      (name, arch, strategy, dim, time.time(), json.dumps(config)))

    # -- runs ----------------------------------------------------------------------------------------------
    def start_run(self, model: str, strategy: str, config: dict) -> int:
        with self.transaction() as c:
            return c.execute("INSERT INTO runs (model, strategy, status, started_at, config) VALUES (?, ?, ?, ?, ?)",
                             (model, strategy, "running", time.time(), json.dumps(config))).lastrowid

    def update_run(self, run_id: int, status: str, history: list[dict], *, finished: bool = False) -> None:
        with self.transaction() as c:
            c.execute("UPDATE runs SET status=?, history=?, finished_at=? WHERE id=?",
                      (status, json.dumps(history), time.time() if finished else None, run_id))

    def runs(self, model: str | None = None) -> list[dict]:
        q = "SELECT id, model, strategy, status, started_at, finished_at, history FROM runs"
        rows = self.conn.execute(q + (" WHERE model=?" if model else "") + " ORDER BY id", (model,) if model else ())
        keys = ("id", "model", "strategy", "status", "started_at", "finished_at", "history")
        return [dict(zip(keys, (*r[:6], json.loads(r[6])), strict=True)) for r in rows]

    # -- findings (``musicemb inspect``) ------------------------------------------------------------------
    FINDING_STATUSES = ("open", "accepted", "dismissed")

    def replace_findings(self, rows: list[dict], *, kinds: list[str] | tuple[str, ...]) -> None:
        """Replace the findings of ``kinds`` with ``rows`` in one transaction.

        ``rows``: dicts with kind, segment_id (None for a whole track), track_id, start_s, end_s, score, reason,
        details (dict). A finding accepted or dismissed before keeps that status when the same kind turns up on
        the same track at the same time span again (by overlap, so a re-cut with other windows keeps it; a
        whole-track finding by track); the rest start open.
        """
        kinds = list(kinds)
        marks = ",".join("?" * len(kinds))
        with self.transaction() as c:
            reviewed = c.execute(f"SELECT kind, track_id, segment_id, start_s, end_s, details, status FROM findings "
                                 f"WHERE status != 'open' AND kind IN ({marks})", kinds).fetchall()
            statuses = _inherited_reviews(rows, reviewed)
            c.execute(f"DELETE FROM findings WHERE kind IN ({marks})", kinds)
            c.executemany(
                "INSERT INTO findings (kind, segment_id, track_id, start_s, end_s, score, reason, details, status) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(r["kind"], r.get("segment_id"), r["track_id"], r["start_s"], r["end_s"], float(r["score"]),
                  r["reason"], json.dumps(r.get("details", {})), st) for r, st in zip(rows, statuses, strict=True)])

    def findings(self, *, kinds: list[str] | None = None, status: str | None = None) -> list[dict]:
        """Stored findings with their track's path and label, most severe first within each kind."""
        where, args = [], []
        if kinds:
            where.append(f"f.kind IN ({','.join('?' * len(kinds))})")
            args += list(kinds)
        if status:
            where.append("f.status = ?")
            args.append(status)
        rows = self.conn.execute(
            "SELECT f.id, f.kind, f.segment_id, f.track_id, t.path, t.label, f.start_s, f.end_s, f.score, "
            "f.reason, f.details, f.status FROM findings f JOIN tracks t ON t.id = f.track_id"
            + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY f.kind, f.score DESC, f.id", args)
        keys = ("id", "kind", "segment_id", "track_id", "path", "label", "start_s", "end_s", "score", "reason",
                "details", "status")
        return [{**dict(zip(keys, r, strict=True)), "details": json.loads(r[10])} for r in rows]

    def set_finding_status(self, finding_id: int, status: str) -> None:
        if status not in self.FINDING_STATUSES:
            raise LibraryError(f"finding status must be one of {', '.join(self.FINDING_STATUSES)}, got {status!r}")
        with self.transaction() as c:
            if c.execute("UPDATE findings SET status=? WHERE id=?", (status, finding_id)).rowcount != 1:
                raise LibraryError(f"{self.root}: no finding with id {finding_id}")

    def _embedding_counts(self) -> dict[str, int]:
        """Models with stored embeddings and how many vectors each has (from the files' headers: nothing is
        read). Damaged ones count -1; leftovers of crashes are never listed."""
        counts = {}
        for name in layout.embedding_models(self):
            try:
                counts[name] = layout.embedding_count(self, name)
            except LibraryError:
                counts[name] = -1
        return counts

    # -- summary -------------------------------------------------------------------------------------------
    def summary(self) -> dict:
        """Counts, total duration, labels, failures, models, maps: what ``musicemb info`` prints."""
        c = self.conn
        n_tracks, total = c.execute("SELECT COUNT(*), COALESCE(SUM(duration_s), 0) FROM tracks").fetchone()
        labels = dict(c.execute("SELECT COALESCE(label, '') AS l, COUNT(*) FROM tracks GROUP BY l ORDER BY l"))
        seg = self.segment_config()
        return {
            "path": str(self.root),
            "tracks": n_tracks,
            "segments": c.execute("SELECT COUNT(*) FROM segments").fetchone()[0],
            "duration_s": round(total, 3),
            "labels": labels,
            "window_s": seg.window_s if seg else None,
            "hop_s": seg.hop_s if seg else None,
            "warnings": [{"path": p, "warning": w} for p, w in
                         c.execute("SELECT path, warning FROM tracks WHERE warning != '' ORDER BY path")],
            "failed": self.failures(),
            "models": self.models(),
            "embeddings": self._embedding_counts(),
            "maps": layout.map_names(self),
        }
