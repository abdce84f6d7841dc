"""Labels, segment tags and finding reviews changed through an edit log, so that the last change can be undone,
also after a restart.

Every change is one transaction that writes the new values and one row of the catalogue's ``edits`` table
holding each value before and after. :func:`undo_last` puts the ``before`` values back (where the value is still
the ``after`` one: a later change made outside the log is kept) and marks the edit undone. A segment tag is a
segment's own label, shown over its track's label.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicemb_core.common.errors import LibraryError
from musicemb_core.common.names import clean_label
from musicemb_core.data.library import Library

# kind of change -> (table, column, key column, what the key names)
FIELDS = {"track_label": ("tracks", "label", "id", "track"),
          "segment_tag": ("segment_labels", "label", "segment_id", "segment"),
          "finding_status": ("findings", "status", "id", "finding")}
_GONE = object()  # the row changed no longer exists (a re-import re-cut its segments, an inspection replaced it)


@dataclass(frozen=True)
class Edit:
    """One logged change: ``changes`` are dicts of kind, id, before, after (and for a finding, what it is about:
    kind, track id, start and end)."""

    id: int
    at: float
    description: str
    changes: list[dict]


@dataclass(frozen=True)
class UndoResult:
    edit: Edit
    restored: int  # values put back
    skipped: int   # values changed since, or rows gone


@dataclass(frozen=True)
class LabelPreview:
    """What labelling a selection of segments touches."""

    segments: int        # selected segments
    tracks: int          # tracks they belong to
    partial_tracks: int  # tracks of which only some segments are selected
    track_segments: int  # all segments of those tracks (what a whole-track label covers)

    def describe(self) -> str:
        """What is selected ("4 segments of 2 tracks selected; ..."): whether the tracks or the segments get the
        label is the dialog's choice."""
        text = (f"{self.segments:,} segment{'s' * (self.segments != 1)} of {self.tracks:,} "
                f"track{'s' * (self.tracks != 1)} selected")
        return text + (f"; {self.partial_tracks:,} track{'s' * (self.partial_tracks != 1)} only partly selected"
                       if self.partial_tracks else "")


def label_preview(segments: dict[str, np.ndarray], segment_ids) -> LabelPreview:
    """Counts for labelling ``segment_ids``; ``segments``: the columns of :meth:`Library.segments`."""
    picked = np.isin(segments["id"], np.asarray(segment_ids, dtype=np.int64))
    tracks, picked_n = np.unique(segments["track_id"][picked], return_counts=True)
    all_tracks, all_n = np.unique(segments["track_id"], return_counts=True)
    total = all_n[np.searchsorted(all_tracks, tracks)] if len(tracks) else np.zeros(0, np.int64)
    return LabelPreview(int(picked.sum()), len(tracks), int((picked_n < total).sum()), int(total.sum()))


_IN_LIST = 500
"""Keys per ``IN (...)`` list, at most (SQLite caps a statement at 999 or 32,766 values, by version)."""


def _rows_for(c, sql: str, keys: list[int]):
    """Rows of ``sql`` for ``keys``: its ``{}`` is filled with ``BETWEEN ? AND ?`` over their span when they fill at
    least a quarter of it (one range scan, where a query per key took 6 s for a million segments), else with
    ``IN`` lists of :data:`_IN_LIST` keys (5,000 segments spread over a 1.6M-segment library were read by scanning
    all of it: 0.9 s of the window's time)."""
    if not keys:
        return iter(())
    lo, hi = min(keys), max(keys)
    if 4 * len(keys) >= hi - lo + 1:
        return c.execute(sql.format("BETWEEN ? AND ?"), (lo, hi))
    keys, size = sorted(set(keys)), min(_IN_LIST, c.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
    return itertools.chain.from_iterable(
        c.execute(sql.format(f"IN ({','.join('?' * len(part))})"), part)
        for part in (keys[a:a + size] for a in range(0, len(keys), size)))


def _read_many(c, kind: str, keys: list[int]) -> list:
    """The values of ``keys``' rows of ``kind``, in order: None for an untagged segment, ``_GONE`` where there is
    no such row."""
    table, col, idcol, _ = FIELDS[kind]
    now = dict(_rows_for(c, f"SELECT {idcol}, {col} FROM {table} WHERE {idcol} {{}}", keys))
    if kind != "segment_tag":
        return [now.get(k, _GONE) for k in keys]
    ids = np.array([r[0] for r in _rows_for(c, "SELECT id FROM segments WHERE id {}", keys)], np.int64)
    exists = np.isin(np.asarray(keys, np.int64), ids).tolist()
    return [now.get(k, None if e else _GONE) for k, e in zip(keys, exists, strict=True)]


def _write_many(c, kind: str, pairs: list[tuple[int, object]]) -> None:
    """Set each (key, value) of ``kind``; a segment tag of None is removed."""
    table, col, idcol, _ = FIELDS[kind]
    if kind != "segment_tag":
        c.executemany(f"UPDATE {table} SET {col}=? WHERE {idcol}=?", [(v, k) for k, v in pairs])
        return
    c.executemany("DELETE FROM segment_labels WHERE segment_id=?", [(k,) for k, v in pairs if v is None])
    c.executemany("INSERT OR REPLACE INTO segment_labels VALUES (?, ?)", [(k, v) for k, v in pairs if v is not None])


def _findings_about(c, keys: list[int]) -> dict[int, list]:
    """What findings are about (kind, track, start, end), by id: an inspection replacing the findings gives their
    ids to others."""
    wanted = set(keys)
    return {r[0]: list(r[1:]) for r in _rows_for(c, "SELECT id, kind, track_id, start_s, end_s FROM findings "
                                                    "WHERE id {}", keys) if r[0] in wanted}


def _check_findings(lib: Library, c, expected: Mapping[int, tuple | None]) -> None:
    """Raise a :class:`LibraryError` if a finding id read as about something (kind, track id, start, end) names
    nothing or something else now (None: not read, not checked)."""
    about = _findings_about(c, [int(i) for i, read in expected.items() if read is not None])
    for fid, read in expected.items():
        now = about.get(int(fid))
        if read is not None and (now is None or tuple(now) != tuple(read)):
            raise LibraryError(f"{lib.root}: the {read[0]} finding on {_track_name(lib, read[1])} is not in the "
                               "library any more")


def _keys_now(c, changes: list[dict]) -> list[int | None]:
    """The id of each logged change's row now: a finding's is that of the finding about the same thing (found
    again by an inspection since; its own id first), None when there is none."""
    if not any("finding" in ch for ch in changes):
        return [ch["id"] for ch in changes]
    ids_of: dict[tuple, list[int]] = {}
    for fid, *about in c.execute("SELECT id, kind, track_id, start_s, end_s FROM findings ORDER BY id"):
        ids_of.setdefault(tuple(about), []).append(fid)
    out = []
    for ch in changes:
        ids = ids_of.get(tuple(ch["finding"]), []) if "finding" in ch else [ch["id"]]
        out.append(ch["id"] if ch["id"] in ids else ids[0] if ids else None)
    return out


_CHUNK = 10_000
"""Changes per JSON call: a call holds the GIL for its whole text, and the app's window waits (one call for 1.6M
tagged segments held it for 2-5 s)."""


def _encode(changes: list[dict]) -> str:
    """``changes`` as one JSON array (what older versions read), encoded :data:`_CHUNK` at a time with a line
    break between the chunks (``json.dumps`` writes none of its own)."""
    return "[" + ",\n".join(json.dumps(changes[a:a + _CHUNK])[1:-1] for a in range(0, len(changes), _CHUNK)) + "]"


def _decode(text: str) -> list[dict]:
    """:func:`_encode`'s text (or an older version's single ``json.dumps``) back, a chunk at a time."""
    if "\n" not in text:
        return json.loads(text)
    changes = []
    for part in text[1:-1].split(",\n"):
        changes += json.loads("[" + part + "]")
    return changes


def apply_edit(lib: Library, description: str, changes: list[tuple[str, int, str | None]]
               | Callable[[], list[tuple[str, int, str | None]]], *,
               findings: Mapping[int, tuple | None] | None = None) -> Edit | None:
    """Set each (kind, id, value) and log the values that changed as one edit; None when nothing changed.
    An id that does not exist is a :class:`LibraryError` and nothing is changed. ``changes`` may be a function
    that lists them inside the edit's transaction (what it reads cannot change before they are made). An id given
    twice for one kind is set to its last value. ``findings``: finding id -> what the caller read it to be about
    (kind, track id, start, end), checked inside the transaction (an inspection gives finding ids to other
    findings): one about something else now is a :class:`LibraryError` and nothing is changed."""
    with lib.transaction() as c:
        _check_findings(lib, c, findings or {})
        wanted: dict[str, dict[int, object]] = {}
        for kind, key, after in (changes() if callable(changes) else changes):
            wanted.setdefault(kind, {})[int(key)] = after
        done = []
        for kind, values in wanted.items():
            keys = list(values)
            before = _read_many(c, kind, keys)
            gone = [k for k, b in zip(keys, before, strict=True) if b is _GONE]
            if gone:
                raise LibraryError(f"{lib.root}: no {FIELDS[kind][3]} with id {gone[0]}")
            changed = [(k, b, values[k]) for k, b in zip(keys, before, strict=True) if b != values[k]]
            _write_many(c, kind, [(k, a) for k, _, a in changed])
            about = _findings_about(c, [k for k, _, _ in changed]) if kind == "finding_status" else {}
            done += [{"kind": kind, "id": k, "before": b, "after": a} | ({"finding": about[k]} if about else {})
                     for k, b, a in changed]
        if not done:
            return None
        at = time.time()
        cur = c.execute("INSERT INTO edits (at, description, changes) VALUES (?, ?, ?)",
                        (at, description, _encode(done)))
    return Edit(cur.lastrowid, at, description, done)


def _label(label: str | None) -> str | None:
    return clean_label(label)


def _track_name(lib: Library, track_id: int) -> str:
    row = lib.conn.execute("SELECT path FROM tracks WHERE id=?", (track_id,)).fetchone()
    return Path(row[0]).name if row else f"track {track_id}"


def _tags_of_tracks(lib: Library, track_ids: list[int]) -> list[int]:
    """The tagged segments of ``track_ids`` (a whole-track label removes their tags); filtered here, not in an
    ``IN (...)`` list, which SQLite caps at 999 or 32,766 values (a selection of 40,000 tracks failed)."""
    wanted = set(track_ids)
    return [g for g, t in lib.conn.execute("SELECT g.segment_id, s.track_id FROM segment_labels g "
                                           "JOIN segments s ON s.id = g.segment_id") if t in wanted]


def relabel_tracks(lib: Library, track_ids, label: str | None) -> Edit | None:
    """Label whole tracks (None: no label); their segments' tags go, so every segment shows the new label."""
    label, track_ids = _label(label), sorted({int(t) for t in track_ids})
    what = f"{len(track_ids)} tracks" if len(track_ids) != 1 else _track_name(lib, track_ids[0])
    return apply_edit(lib, f"label {what} {label!r}" if label else f"clear the label of {what}",
                      lambda: [("track_label", t, label) for t in track_ids] +  # the tags as they are in the
                      [("segment_tag", s, None) for s in _tags_of_tracks(lib, track_ids)])  # transaction


def relabel_finding(lib: Library, finding_id: int, label: str | None, *, about: tuple | None = None
                    ) -> Edit | None:
    """Relabel what a finding is about and accept it, as one edit (one undo): its track, or for a label finding
    on one segment of a mixed track, that segment (as a tag). ``about``: what the caller read the finding to be
    about (kind, track id, start, end); refused if it is about something else now."""
    query = "SELECT kind, track_id, segment_id, start_s, end_s FROM findings WHERE id=?"
    row = lib.conn.execute(query, (int(finding_id),)).fetchone()
    if row is None:
        raise LibraryError(f"{lib.root}: no finding with id {int(finding_id)}")
    kind, track_id, segment_id = row[:3]
    about = about or (kind, track_id, *row[3:])  # what is changed is what was described, whatever happens between
    label = _label(label)
    if kind == "label" and segment_id is not None and \
            lib.conn.execute("SELECT 1 FROM segments WHERE id=?", (segment_id,)).fetchone():
        what = f"segment {segment_id}"

        def changes() -> list:
            return [("segment_tag", segment_id, label)]
    else:
        what = _track_name(lib, track_id)

        def changes() -> list:  # the track's tags as they are in the edit's transaction
            return [("track_label", track_id, label), *(("segment_tag", s, None) for s in _tags_of_tracks(lib, [track_id]))]
    return apply_edit(lib, f"relabel {what} {label!r} (finding accepted)",
                      lambda: [*changes(), ("finding_status", int(finding_id), "accepted")],
                      findings={int(finding_id): about})


def tag_segments(lib: Library, segment_ids, label: str | None) -> Edit | None:
    """Give segments their own label (None: remove their tags, they show their track's label again)."""
    label, segment_ids = _label(label), sorted({int(s) for s in segment_ids})
    what = f"{len(segment_ids)} segments" if len(segment_ids) != 1 else f"segment {segment_ids[0]}"
    return apply_edit(lib, f"tag {what} {label!r}" if label else f"remove the tags of {what}",
                      [("segment_tag", s, label) for s in segment_ids])


def review_findings(lib: Library, finding_ids, status: str, *, about: Mapping[int, tuple] | None = None
                    ) -> Edit | None:
    """Accept, dismiss or reopen findings: one edit (one undo) however many. ``about``: what the caller read
    findings to be about (id -> kind, track id, start, end); refused if one is about something else now."""
    if status not in Library.FINDING_STATUSES:
        raise LibraryError(f"finding status must be one of {', '.join(Library.FINDING_STATUSES)}, got {status!r}")
    ids = list(dict.fromkeys(int(i) for i in finding_ids))
    if not ids:
        return None
    verb = {"accepted": "accept", "dismissed": "dismiss", "open": "reopen"}[status]
    if len(ids) > 1:
        what = f"{len(ids)} findings"
    else:
        row = lib.conn.execute("SELECT f.kind, t.path FROM findings f JOIN tracks t ON t.id = f.track_id "
                               "WHERE f.id=?", (ids[0],)).fetchone()
        what = f"the {row[0]} finding on {Path(row[1]).name}" if row else f"finding {ids[0]}"
    return apply_edit(lib, f"{verb} {what}", [("finding_status", i, status) for i in ids],
                      findings={i: (about or {}).get(i) for i in ids})


def segment_tags(lib: Library) -> dict[int, str]:
    """Segment id -> its own label, for the tagged segments."""
    return dict(lib.conn.execute("SELECT segment_id, label FROM segment_labels"))


def labels_of_segments(lib: Library, segment_ids, track_ids) -> list[str | None]:
    """Each segment's label: its tag, else its track's label (None: unlabelled)."""
    tracks, tags = dict(lib.conn.execute("SELECT id, label FROM tracks")), segment_tags(lib)
    return [tags.get(int(s)) or tracks.get(int(t)) for s, t in zip(segment_ids, track_ids, strict=True)]


def label_names(lib: Library) -> list[str]:
    """Every label in use, on tracks or as segment tags, sorted."""
    rows = lib.conn.execute("SELECT label FROM tracks WHERE label IS NOT NULL UNION SELECT label FROM segment_labels")
    return sorted({r[0] for r in rows if r[0]})


def last_edit(lib: Library) -> Edit | None:
    """The edit :func:`undo_last` would undo."""
    row = lib.conn.execute("SELECT id, at, description, changes FROM edits WHERE undone_at IS NULL "
                           "ORDER BY id DESC LIMIT 1").fetchone()
    return None if row is None else Edit(row[0], row[1], row[2], _decode(row[3]))


def undo_last(lib: Library, edit_id: int | None = None) -> UndoResult | None:
    """Put back the values the last edit changed and mark it undone; None when there is nothing to undo. With
    ``edit_id`` (the edit the caller named), another last edit (made or undone by another process since) is a
    :class:`LibraryError` and nothing is undone."""
    with lib.transaction() as c:
        row = c.execute("SELECT id, at, description, changes FROM edits WHERE undone_at IS NULL "
                        "ORDER BY id DESC LIMIT 1").fetchone()
        if edit_id is not None and (row is None or row[0] != edit_id):
            now = f"Undo now takes back {row[2]!r}" if row else "nothing is left to undo"
            raise LibraryError(f"{lib.root}: nothing undone: another process changed the edits since; {now}")
        if row is None:
            return None
        edit = Edit(row[0], row[1], row[2], _decode(row[3]))
        restored = 0
        by_kind: dict[str, list[tuple[int, dict]]] = {}
        for key, ch in zip(_keys_now(c, edit.changes), edit.changes, strict=True):
            if key is not None:
                by_kind.setdefault(ch["kind"], []).append((key, ch))
        for kind, mine in by_kind.items():
            now = _read_many(c, kind, [key for key, _ in mine])
            back = [(key, ch["before"]) for (key, ch), v in zip(mine, now, strict=True) if v == ch["after"]]
            _write_many(c, kind, back)
            restored += len(back)
        c.execute("UPDATE edits SET undone_at=? WHERE id=?", (time.time(), edit.id))
    return UndoResult(edit, restored, len(edit.changes) - restored)
