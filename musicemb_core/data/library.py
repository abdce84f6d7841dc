"""The library: a folder with ``library.sqlite`` (tracks, segments, models, runs, findings) and the files
models, embeddings, indexes and maps are kept in. Every catalogue change is one SQLite transaction (WAL), so a
crash or kill at any moment leaves the library consistent.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicemb_core.common.config import SegmentConfig
from musicemb_core.common.errors import LibraryError

DB_NAME = "library.sqlite"

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
]
SCHEMA_VERSION = len(MIGRATIONS)


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


class Library:
    """A library folder. ``Library(root)`` opens an existing one; ``Library(root, create=True)`` makes it if absent."""

    def __init__(self, root: str | Path, *, create: bool = False):
        self.root = Path(root).expanduser().resolve()
        db = self.root / DB_NAME
        if not db.exists():
            if not create:
                raise LibraryError(f"{self.root}: not a musicemb library (no {DB_NAME}); "
                                   "create one with `musicemb ingest LIB PATH...`")
            self.root.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(db, timeout=30.0, isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as e:
            self.conn.close()
            raise LibraryError(f"{db}: cannot open the catalogue: {e}") from e

    def _migrate(self) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise LibraryError(f"{self.root}: catalogue version {version} is newer than this musicemb "
                               f"({SCHEMA_VERSION}); upgrade musicemb")
        for i in range(version, SCHEMA_VERSION):
            with self.transaction() as c:
                for stmt in MIGRATIONS[i].split(";"):
                    if stmt.strip():
                        c.execute(stmt)
                c.execute(f"PRAGMA user_version={i + 1}")
                if i == 0:
                    c.execute("INSERT INTO meta VALUES ('created_at', ?)", (str(time.time()),))

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``; rolled back on any exception."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

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

    def segment_config(self) -> SegmentConfig | None:
        """The segmenting every track of this library uses; None before the first import."""
        raw = self.get_meta("segment_config")
        return None if raw is None else SegmentConfig.from_dict(json.loads(raw))

    def set_segment_config(self, cfg: SegmentConfig, starts_of) -> None:
        """Store ``cfg`` and re-cut every track's segments with ``starts_of(duration_s, cfg)`` in one transaction."""
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO meta VALUES ('segment_config', ?)", (json.dumps(cfg.to_dict()),))
            tracks = c.execute("SELECT id, duration_s FROM tracks").fetchall()
            c.execute("DELETE FROM segments")
            for tid, dur in tracks:
                self._insert_segments(c, tid, dur, cfg, starts_of)

    @staticmethod
    def _insert_segments(c: sqlite3.Connection, track_id: int, duration_s: float, cfg: SegmentConfig,
                         starts_of) -> None:
        starts = starts_of(duration_s, cfg)
        c.executemany("INSERT INTO segments (track_id, start_s, duration_s) VALUES (?, ?, ?)",
                      [(track_id, float(s), float(min(cfg.window_s, duration_s - s))) for s in starts])

    # -- tracks --------------------------------------------------------------------------------------------
    _TRACK_COLS = ("id, path, content_hash, size, mtime, duration_s, sample_rate, channels, format, label, "
                   "tags, warning")

    def _track(self, row) -> Track:
        return Track(*row[:10], json.loads(row[10]), row[11])

    def track(self, track_id: int) -> Track:
        row = self.conn.execute(f"SELECT {self._TRACK_COLS} FROM tracks WHERE id=?", (track_id,)).fetchone()
        if row is None:
            raise LibraryError(f"{self.root}: no track with id {track_id}")
        return self._track(row)

    def track_by_path(self, path: str) -> Track | None:
        row = self.conn.execute(f"SELECT {self._TRACK_COLS} FROM tracks WHERE path=?", (path,)).fetchone()
        return None if row is None else self._track(row)

    def tracks_by_hash(self, content_hash: str) -> list[Track]:
        rows = self.conn.execute(f"SELECT {self._TRACK_COLS} FROM tracks WHERE content_hash=?", (content_hash,))
        return [self._track(r) for r in rows]

    def tracks(self) -> list[Track]:
        return [self._track(r) for r in self.conn.execute(f"SELECT {self._TRACK_COLS} FROM tracks ORDER BY id")]

    def save_track(self, fields: dict, *, cfg: SegmentConfig, starts_of, track_id: int | None = None) -> int:
        """Insert a track (or replace track ``track_id``'s content) with its segments; clears a failure at its path.

        ``fields``: path, content_hash, size, mtime, duration_s, sample_rate, channels, format, label, tags,
        warning. One transaction: the track and all its segments land together or not at all.
        """
        cols = ("path", "content_hash", "size", "mtime", "duration_s", "sample_rate", "channels", "format",
                "label", "tags", "warning")
        values = [json.dumps(fields[k]) if k == "tags" else fields[k] for k in cols]
        with self.transaction() as c:
            if track_id is None:
                cur = c.execute(f"INSERT INTO tracks ({', '.join(cols)}, added_at) VALUES ({', '.join('?' * 12)})",
                                (*values, time.time()))
                track_id = cur.lastrowid
            else:
                c.execute(f"UPDATE tracks SET {', '.join(k + '=?' for k in cols)} WHERE id=?", (*values, track_id))
                c.execute("DELETE FROM segments WHERE track_id=?", (track_id,))
            self._insert_segments(c, track_id, fields["duration_s"], cfg, starts_of)
            c.execute("DELETE FROM failures WHERE path=?", (fields["path"],))
        return track_id

    def relink_track(self, track_id: int, path: str, *, size: int, mtime: float) -> None:
        """Point a track at a new path (the file moved, same content) or refresh its size/mtime."""
        with self.transaction() as c:
            c.execute("UPDATE tracks SET path=?, size=?, mtime=? WHERE id=?", (path, size, mtime, track_id))
            c.execute("DELETE FROM failures WHERE path=?", (path,))

    def record_failure(self, path: str, error: str, *, size: int | None, mtime: float | None) -> None:
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?, ?)", (path, error, size, mtime, time.time()))

    def failure_stat(self, path: str) -> tuple[int, float] | None:
        """(size, mtime) of the file when it last failed, or None if it has not failed."""
        row = self.conn.execute("SELECT size, mtime FROM failures WHERE path=?", (path,)).fetchone()
        return None if row is None else (row[0], row[1])

    def set_label(self, track_id: int, label: str | None) -> None:
        with self.transaction() as c:
            if c.execute("UPDATE tracks SET label=? WHERE id=?", (label, track_id)).rowcount != 1:
                raise LibraryError(f"{self.root}: no track with id {track_id}")

    # -- segments ------------------------------------------------------------------------------------------
    def segments(self) -> dict[str, np.ndarray]:
        """All segments as columns: ``id``, ``track_id``, ``start_s``, ``duration_s`` (sorted by id)."""
        rows = self.conn.execute("SELECT id, track_id, start_s, duration_s FROM segments ORDER BY id").fetchall()
        arr = np.array(rows, dtype=np.float64).reshape(-1, 4)
        return {"id": arr[:, 0].astype(np.int64), "track_id": arr[:, 1].astype(np.int64),
                "start_s": arr[:, 2], "duration_s": arr[:, 3]}

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
        the same segment (or track) again; the rest start open.
        """
        kinds = list(kinds)
        marks = ",".join("?" * len(kinds))
        with self.transaction() as c:
            kept = {(k, s, t): st for k, s, t, st in c.execute(
                f"SELECT kind, segment_id, track_id, status FROM findings WHERE status != 'open' "
                f"AND kind IN ({marks})", kinds)}
            c.execute(f"DELETE FROM findings WHERE kind IN ({marks})", kinds)
            c.executemany(
                "INSERT INTO findings (kind, segment_id, track_id, start_s, end_s, score, reason, details, status) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(r["kind"], r.get("segment_id"), r["track_id"], r["start_s"], r["end_s"], float(r["score"]),
                  r["reason"], json.dumps(r.get("details", {})),
                  kept.get((r["kind"], r.get("segment_id"), r["track_id"]), "open")) for r in rows])

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
        """Models with stored embeddings and how many vectors each has (memory-mapped: nothing is read)."""
        return {ids.parent.name: int(np.load(ids, mmap_mode="r").shape[0])
                for ids in sorted((self.root / "embeddings").glob("*/ids.npy"))}

    # -- summary -------------------------------------------------------------------------------------------
    def summary(self) -> dict:
        """Counts, total duration, labels, failures, models, maps: what ``musicemb info`` prints."""
        c = self.conn
        n_tracks, total = c.execute("SELECT COUNT(*), COALESCE(SUM(duration_s), 0) FROM tracks").fetchone()
        labels = dict(c.execute("SELECT COALESCE(label, ''), COUNT(*) FROM tracks GROUP BY label ORDER BY label"))
        seg = self.segment_config()
        maps_dir = self.root / "maps"
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
            "maps": sorted(p.stem for p in maps_dir.glob("*.npy")) if maps_dir.exists() else [],
        }
