"""Shared state of the app: the open library, the model in use, tables of tracks and segments, embeddings
and maps; signals tell panels what changed. Reads here are short; long work goes through ``JobManager``."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from musicemb_core.audio.decode import load
from musicemb_core.common.config import FeatureConfig
from musicemb_core.common.errors import AudioError, MusicEmbError
from musicemb_core.data import layout
from musicemb_core.data.library import DB_NAME, Library, Track
from musicemb_core.stored_vectors import (
    SIMILARITY_MODEL,
    StaleEmbeddings,
    check_weights,
    load_embeddings,
    model_folder,
    vector_digests,
)
from musicemb_core.workflows.dj import bpm_text, key_text, library_sounds, track_row
from musicemb_core.workflows.models import active_model, set_active_model

if TYPE_CHECKING:  # models run in jobs: torch is imported there, not at the app's start
    from musicemb_core.inference import Embedder
from musicemb_gui.change_watch import ChangeWatch
from musicemb_gui.edits import EditLog, finding_is, read_state
from musicemb_gui.workers import Job, JobManager, wait_for

BUSY_S = 1.0  # a change made in the window waits this long for another process's write, not the core's 2 min


def _connect(path: Path, created_at: str | None, **kwargs) -> Library:
    """The library open in the window, at ``path``: a one-line :class:`MusicEmbError` when it is not there any more
    (moved, deleted, its drive unmounted: the mount point left empty) or another library took its place (another
    drive mounted there: its ids name other tracks)."""
    if not (path / DB_NAME).is_file():
        raise MusicEmbError(f"{path}: the open library is not there any more (moved, deleted or on a drive "
                            "unplugged); File ▸ Open library… opens it again")
    lib = Library(path, **kwargs)
    if created_at is not None and lib.get_meta("created_at") != created_at:
        lib.close()
        raise MusicEmbError(f"{path}: another library is there now, not the one open in the window (its drive or "
                            "folder was replaced); File ▸ Open library… opens it")
    return lib


class SegmentRows(Mapping):
    """Segment id -> its row in the segment table (sorted by id), found by bisection: a dictionary of 1.6M
    segments took 0.8 s to build at every refresh of a 20,000-track library."""

    def __init__(self, ids: np.ndarray):
        self._ids = ids

    def rows(self, seg_ids) -> np.ndarray:
        """The rows of these segment ids, vectorised; KeyError naming the first that is not in the table."""
        ids = np.asarray(seg_ids, dtype=np.int64)
        if not len(ids):
            return np.zeros(0, np.int64)
        rows = np.minimum(np.searchsorted(self._ids, ids), len(self._ids) - 1)
        missing = np.flatnonzero(self._ids[rows] != ids) if len(self._ids) else [0]
        if len(missing):
            raise KeyError(int(ids[missing[0]]))
        return rows

    def __getitem__(self, seg_id) -> int:
        try:
            return int(self.rows([int(seg_id)])[0])
        except (TypeError, ValueError, OverflowError):
            raise KeyError(seg_id) from None

    def __contains__(self, seg_id) -> bool:
        try:
            self[seg_id]
        except KeyError:
            return False
        return True

    def __iter__(self) -> Iterator[int]:
        return iter(self._ids.tolist())

    def __len__(self) -> int:
        return len(self._ids)


class Session(QObject):
    libraryOpened = Signal()           # another library: everything derived from the old one is void
    libraryChanged = Signal()          # tracks or segments changed (imported, removed, cut again)
    labelsChanged = Signal(object)     # only labels or segment tags changed: {track id: its new label}
    embeddingsChanged = Signal()
    modelChanged = Signal(str)         # the space of the map, evaluation, inspection and "more like this"
    segmentSelected = Signal(int)      # segment id
    trackFilterChanged = Signal(object)  # the track ids the library's filters let through, None: no filter
    message = Signal(str)              # for the status bar
    readOnlyChanged = Signal(str)      # why the open library cannot be written now ("": it can)

    def __init__(self, jobs: JobManager | None = None):
        super().__init__()
        self.jobs = jobs or JobManager()
        self.lib_path: Path | None = None
        self._created_at: str | None = None  # the open library's, to tell another library put in its place
        self.read_only = ""  # why the open library cannot be written, as the OS says it ("": it can)
        self.model = SIMILARITY_MODEL  # the space of the map, neighbours and "more like this"
        self.tracks: dict[int, Track] = {}
        # each track's DJ row (track_row) and the library table's texts of it, made as the track was read
        self.track_rows: dict[int, tuple[Track, dict, tuple]] = {}
        self._reads = 0  # counts the reads of the tables begun: one ending after a later one is dropped
        self.loading = 0  # reads of the tables under way (the tables held meanwhile: those before, or none)
        self.edit_state: tuple | None = None  # the segment tags and the last edit, read with the tables
        self.sounds: dict[int, list[tuple[str, float]]] = {}  # what each track sounds like (the tagger's tags)
        self.failures: list[dict] = []
        self.segments: dict[str, np.ndarray] = {}
        self.seg_row = SegmentRows(np.zeros(0, np.int64))  # segment id -> its row in ``segments``
        self.embedding_ids: np.ndarray | None = None
        self.vectors: np.ndarray | None = None
        self._embedder: Embedder | None = None
        self._embedder_key: tuple | None = None  # its folder and the digests of its weights and settings
        self.generation = 0  # counts library openings: results computed for an older one are dropped
        self.vectors_version = 0  # counts changes of the vectors: a map of vectors read before is dropped
        self._vectors_of: tuple[str, str] | None = None  # (model, stored generation) of the vectors held
        self._rereading = False  # the library is read again for vectors of segments imported by another program
        self.track_filter: frozenset[int] | None = None
        self.edits = EditLog(self)  # labels, segment tags and reviews, with undo
        self.watch = ChangeWatch(self)  # other programs' changes

    def is_current(self, generation: int, model: str | None = None) -> bool:
        """Whether work started at ``generation`` (with ``model`` in use, if given) still belongs to the open
        library (and model)."""
        return generation == self.generation and model in (None, self.model)

    def library_job(self, name: str, work: Callable, *, on_done: Callable | None = None,
                    on_failed: Callable[[str], None] | None = None, writes: bool = False) -> Job:
        """Run ``work(lib, cancel)`` (a core generator) on the open library as a job. ``on_done(result)`` and
        ``on_failed(message)`` run on the GUI thread only while that library is still open: a result of a
        library closed since is dropped. A job that ``writes`` (takes the library's writer lock) waits for the
        writing jobs before it (said in the status bar)."""
        lib_path, created_at, generation = self.lib_path, self._created_at, self.generation

        def factory(token):
            with _connect(lib_path, created_at) as lib:
                return (yield from work(lib, token))
        ahead = self.jobs.writing() if writes else []
        job = self.jobs.submit(name, factory, writes=writes)
        if ahead:
            self.message.emit(f"{name}: starts when {ahead[-1].name} ends (one job writes to the library at a time)")
        if on_done is not None:
            job.finished.connect(lambda r: on_done(r) if self.is_current(generation) else None)
        if on_failed is not None:
            job.failed.connect(lambda msg, _tb: on_failed(msg) if self.is_current(generation) else None)
        return job

    # -- library -------------------------------------------------------------------------------------------
    def open(self, path: str | Path) -> dict | None:
        """Open a library (raises MusicEmbError with a clear message) and load its tables; None when another
        library was opened while they were read (that one stays open)."""
        with Library(path) as lib:
            summary = lib.summary()
            model = active_model(lib)
            created_at = lib.get_meta("created_at")
            read_only = layout.not_writable(lib.root) if lib.read_only else ""  # the OS's words
        self.lib_path, self._created_at = Path(summary["path"]), created_at
        self.read_only = read_only
        self.watch.reset()
        self.generation += 1
        self.model = model
        self._embedder, self._embedder_key = None, None
        self.tracks, self.failures, self.segments, self.track_rows = {}, [], {}, {}
        self.seg_row = SegmentRows(np.zeros(0, np.int64))
        self.embedding_ids, self.vectors = None, None
        self.track_filter = None
        self.libraryOpened.emit()
        self.readOnlyChanged.emit(read_only)  # also when as before: another library's path
        generation = self.generation
        self.refresh()
        return summary if self.is_current(generation) else None

    def library(self) -> Library:
        """A new connection for this thread (close it after use)."""
        if self.lib_path is None:
            raise MusicEmbError("no library is open")
        return _connect(self.lib_path, self._created_at, busy_s=BUSY_S)

    def opener(self) -> Callable[[], Library]:
        """A function opening the library open now, for a worker thread: one opened in the window meanwhile is not
        it, and a library gone or replaced is said as :meth:`library` says it."""
        if self.lib_path is None:
            raise MusicEmbError("no library is open")
        path, created_at = self.lib_path, self._created_at
        return lambda: _connect(path, created_at)

    def changed_elsewhere(self, findings: Mapping[int, tuple | None] | None = None) -> bool:
        """Whether another program changed the library's tracks or segments since they were read here, or removed
        any of ``findings`` (finding id -> what was read of it, see :func:`~musicemb_gui.edits.finding_is`) or gave
        its id to another (an import cut tracks again, ``--prune`` removed some, an inspection replaced the
        findings): ids read before may name nothing, or something else, now."""
        with self.library() as lib:
            count, top = lib.conn.execute("SELECT count(*), coalesce(max(id), 0) FROM segments").fetchone()
            tracks = set(lib.labels())
            gone = not all(finding_is(lib, i, about) for i, about in (findings or {}).items())
        ids = self.segments.get("id", np.zeros(0, np.int64))
        return gone or tracks != set(self.tracks) or (count, top) != (len(ids), int(ids[-1]) if len(ids) else 0)

    def _changed(self) -> bool:
        """:meth:`changed_elsewhere`, False where the library cannot be read (said at the next action)."""
        try:
            return self.changed_elsewhere()
        except MusicEmbError:
            return False

    def check_writable(self) -> None:
        """Look again whether the open library may be written (its drive remounted, its permissions changed):
        ``readOnlyChanged`` when that changed. A catalogue not there (moved, unplugged) changes nothing: the next
        action says so."""
        if self.lib_path is None or not (self.lib_path / DB_NAME).is_file():
            return
        why = "" if layout.writable(self.lib_path) else layout.not_writable(self.lib_path)
        if why != self.read_only:
            self.read_only = why
            self.readOnlyChanged.emit(why)

    def refresh(self) -> None:
        """Re-read tracks, segments and embeddings from disk, then tell the panels. The tables are read on a thread
        of their own (3 s at 20,000 tracks and 1.6M segments), the window's events going on meanwhile: a read
        begun later (another library opened meanwhile) that ended first wins."""
        self._reads += 1
        mine, path, created_at, watch = self._reads, self.lib_path, self._created_at, self.watch
        if path is None:
            raise MusicEmbError("no library is open")

        def read() -> dict:
            with _connect(path, created_at, busy_s=BUSY_S) as lib:
                seq = watch.segments_seq_of(lib.conn)  # before the segments: a cut meanwhile is noticed
                tracks = {t.id: t for t in lib.tracks()}
                got = {"failures": lib.failures(), "segments": lib.segments(), "sounds": library_sounds(lib),
                       "edits": read_state(lib, table=True)}  # 2 s when big edits were undone (a scan of the log)
            return dict(got, tracks=tracks, track_rows={tid: table_row(t, got["sounds"].get(tid))
                                                        for tid, t in tracks.items()}, seq=seq)
        self.loading += 1
        try:
            got = wait_for(read)
        finally:
            self.loading -= 1
        if mine != self._reads or self.jobs.closed:  # a later read ended first; the window closed meanwhile
            return
        self.watch.segments_seq = got["seq"]
        self.tracks, self.failures, self.segments = got["tracks"], got["failures"], got["segments"]
        self.sounds, self.track_rows, self.edit_state = got["sounds"], got["track_rows"], got["edits"]
        self.seg_row = SegmentRows(self.segments["id"])
        self.watch.look_again()
        self.libraryChanged.emit()
        self.reload_embeddings()

    def refresh_labels(self, labels: dict[int, str | None] | None = None) -> None:
        """Re-read the labels after labels or segment tags were edited and tell the panels which tracks' labels
        changed: the segments, the vectors and everything else about the tracks are unchanged (read again, they
        froze the window for seconds at 20,000 tracks). ``labels``: as a job read them after its edit."""
        if labels is None:
            with self.library() as lib:
                labels = lib.labels()
        changed = {t: labels[t] for t, track in self.tracks.items() if t in labels and labels[t] != track.label}
        for t, label in changed.items():
            self.tracks[t] = replace(self.tracks[t], label=label)
        self.watch.look_again()
        self.labelsChanged.emit(changed)

    def reload_embeddings(self) -> None:
        before, source = (self._vectors_of, self.embedding_ids), None
        self.watch.files_read(embeddings=True)  # before reading them: ones published meanwhile are said
        try:
            with self.library() as lib:
                check_weights(lib, self.model)
                emb = load_embeddings(lib, self.model)
            self.embedding_ids, self.vectors = emb.ids, np.asarray(emb.vectors)
            source = (emb.model, emb.generation)
        except StaleEmbeddings as e:  # the model was trained again (or edited) since: they compare with nothing
            self.embedding_ids, self.vectors = None, None
            stale = f"the embeddings of {self.model!r} were {e.why}: Library ▸ Embed brings them up to date"
            QTimer.singleShot(0, lambda: self.message.emit(stale))
        except MusicEmbError:
            self.embedding_ids, self.vectors = None, None
        else:
            keep = np.isin(self.embedding_ids, self.segments["id"])
            if not keep.all() and not self._rereading and self._changed():  # vectors of segments another program
                self._rereading = True  # imported (and embedded) since the window read them: "no longer in the
                try:  # library", new tracks not shown, and every Embed said so again
                    self.refresh()  # the tracks, segments and these vectors read again
                finally:
                    self._rereading = False
                return
            if not keep.all():  # segments cut again since the embed (their file changed and was imported again)
                self.embedding_ids, self.vectors = self.embedding_ids[keep], self.vectors[keep]
                note = (f"{int((~keep).sum())} embedded segments are no longer in the library (their tracks were "
                        "removed, or cut again after a change): Library ▸ Embed brings the embeddings up to date")
                QTimer.singleShot(0, lambda: self.message.emit(note))  # after the summary of a library opened
        # another generation (or none), or fewer of its segments: other vectors (same ones: compared by their
        # source, not read again from disk at every refresh)
        if source != before[0] or not _same(self.embedding_ids, before[1]):
            self.vectors_version += 1
        self._vectors_of = source
        self.embeddingsChanged.emit()

    def set_track_filter(self, track_ids) -> None:
        """The tracks the library panel's filters show (highlighted on the map); None: no filter."""
        track_filter = None if track_ids is None else frozenset(int(t) for t in track_ids)
        if track_filter != self.track_filter:  # the map coloured again: 0.8 s for 1.6M points
            self.track_filter = track_filter
            self.trackFilterChanged.emit(track_filter)

    def set_model(self, name: str) -> None:
        """Show the library with model ``name`` from now on (remembered in its catalogue where it is writable)."""
        with self.library() as lib:
            set_active_model(lib, name)
        self.model = name
        self.modelChanged.emit(name)
        self.reload_embeddings()

    def set_label(self, track_id: int, label: str | None) -> None:
        self.edits.relabel_tracks([track_id], label)

    # -- segments ------------------------------------------------------------------------------------------
    def segment(self, seg_id: int) -> dict:
        """Track, path, start, duration and label of a segment."""
        r = self.seg_row[int(seg_id)]
        t = self.tracks[int(self.segments["track_id"][r])]
        return {"id": int(seg_id), "track_id": t.id, "path": t.path, "label": self.edits.label_of(seg_id, t.label),
                "start_s": float(self.segments["start_s"][r]), "duration_s": float(self.segments["duration_s"][r])}

    def segment_tracks(self, seg_ids) -> np.ndarray:
        """The track id of each of these segments (KeyError naming one that is not in the library), vectorised:
        a dictionary lookup per segment took seconds for a map of a million points."""
        return self.segments["track_id"][self.seg_row.rows(seg_ids)] if len(seg_ids) else np.zeros(0, np.int64)

    def track_name(self, track_id: int) -> str:
        """How the app names a track: "artist – title" from its tags (the title alone without an artist), else
        its file name."""
        t = self.tracks.get(int(track_id))
        return f"track {track_id}" if t is None else name_of(t)

    def tooltip(self, seg_id: int) -> str:
        s = self.segment(seg_id)
        r = track_row(self.tracks[s["track_id"]], self.sounds.get(s["track_id"]))
        dj = "   ".join(x for x in (bpm_text(r) and f"BPM {bpm_text(r)}", key_text(r)) if x)
        sounds = f"sounds like: {r['sounds_like']}\n" if r["sounds_like"] else ""
        return (f"{self.track_name(s['track_id'])}\n{s['start_s']:.1f}-{s['start_s'] + s['duration_s']:.1f} s\n"
                f"{s['label'] or 'no label'}\n" + (f"{dj}\n" if dj else "") + sounds + s["path"])

    def _segment_still_there(self, seg_id: int) -> dict:
        """``segment`` for a worker: the library may have been read again since the segment was asked for (its track
        removed meanwhile raised KeyError, shown as "cannot play: KeyError: 7")."""
        try:
            return self.segment(seg_id)
        except KeyError:
            raise MusicEmbError(segment_gone(seg_id)) from None

    def segment_audio(self, seg_id: int) -> tuple[np.ndarray, int]:
        """Decoded mono audio of a segment at the file's rate (safe to call from a worker thread); AudioError if
        the file now ends before it (replaced since the import: it played nothing, silently)."""
        s = self._segment_still_there(seg_id)
        y, sr = load(s["path"], offset=s["start_s"], duration=s["duration_s"])
        if not len(y):
            raise AudioError(s["path"], f"no audio at {s['start_s']:.1f} s: the file is shorter than when it was "
                                        "imported (changed since?); importing it again brings the library up to date")
        return y, sr

    def embedder(self) -> Embedder:
        """The model in use, loaded again when another model is chosen, its weights change (trained again) or its
        settings do."""
        with self.library() as lib:
            folder = model_folder(lib, self.model)
        key = (folder, *vector_digests(folder).values())
        if self._embedder_key != key:
            from musicemb_core.inference import Embedder

            self._embedder, self._embedder_key = Embedder(folder), key
        return self._embedder

    def segment_logmel(self, seg_id: int) -> tuple[np.ndarray, FeatureConfig]:
        """The log-mel the model sees for this segment (n_mels, frames), and the model's feature config."""
        emb = self.embedder()
        s = self._segment_still_there(seg_id)
        y, _ = load(s["path"], sr=emb.sr, offset=s["start_s"], duration=emb.window_s)
        y = np.pad(y, (0, max(0, int(round(emb.window_s * emb.sr)) - len(y))))
        import torch

        with torch.inference_mode():
            return emb.logmel(torch.from_numpy(y)).numpy(), emb.info.features


def name_of(t: Track) -> str:
    """:meth:`Session.track_name` of a track."""
    tags = t.tags or {}
    title = tags.get("title") or os.path.basename(t.path)
    return f"{tags['artist']} – {title}" if tags.get("artist") else title


def table_row(t: Track, sounds: list | None) -> tuple[Track, dict, tuple]:
    """A track, its DJ row and the library table's texts of it (BPM, key, name, sounds like)."""
    r = track_row(t, sounds)
    return t, r, (bpm_text(r), key_text(r), name_of(t), r["sounds_like"])


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    return a is b or (a is not None and b is not None and np.array_equal(a, b))


def segment_gone(seg_id: int) -> str:
    """What is said of a segment asked for after its track was removed from the library."""
    return f"segment {seg_id} is no longer in the library (its track was removed)"
