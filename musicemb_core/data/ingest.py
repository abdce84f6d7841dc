"""Import: scan folders, decode and check every file in parallel processes, write tracks and segments.

Incremental (unchanged files are skipped by size and mtime, then by content hash; a file whose decoded audio is
unchanged keeps its track and segments; moved files are re-linked), cancellable (within a block of the file being
read: nothing of it is stored), and crash-safe (each file is one transaction).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import math
import multiprocessing
import os
import signal
import stat
import threading
import time
import unicodedata
from collections import deque
from collections.abc import Collection, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from musicemb_core.audio.resample import downmix
from musicemb_core.audio.segment import window_starts
from musicemb_core.audio.validate import AudioScan, looks_like_audio, scan
from musicemb_core.common.config import SegmentConfig
from musicemb_core.common.errors import AudioError, Cancelled, ConfigError, MusicEmbError
from musicemb_core.common.names import clean_label
from musicemb_core.common.paths import user_path
from musicemb_core.common.pools import die_with_parent, result_unless_cancelled, stop_workers
from musicemb_core.common.progress import CancelToken, EtaClock, JobGen, Progress, drive
from musicemb_core.common.tables import cell_text
from musicemb_core.data import layout
from musicemb_core.data.library import Library, Track

AUDIO_EXTENSIONS = frozenset(
    [".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".m4b", ".mp4", ".aac", ".wma", ".aif", ".aiff", ".aifc", ".au", ".snd", ".caf", ".webm", ".mka", ".wv", ".ape", ".ac3", ".amr", ".3gp", ".w64", ".rf64"])
TAG_KEYS = ("title", "artist", "album", "genre", "date", "tracknumber", "bpm", "initialkey", "key")
ANALYSIS_VERSION = 2
TAGS_VERSION = 2
"""Version of :func:`read_tags` (2: the ID3 chunk of WAV and AIFF files, MP4 freeform keys, several values of a
name). The first import that checks every known track's file with a newer one reads their tags again (no decode)
and records it in the library's meta."""
"""Version of the tempo and key estimates (:mod:`musicemb_core.features.tempo_key`), stored with each track's
analysis; an import analyses again the tracks an older one analysed. 2: the comb's tempo prior centred on 140 BPM,
1.75 octaves wide, nothing above 200 BPM. Kept here, not there: importing the estimators in an app's job thread
would hold the interpreter for a moment (the GUI stalled 130 ms)."""
TICK_S = 0.2
"""The scan's progress (folders searched, files checked): at most one event this often."""


@dataclass
class FileProbe:
    """What a worker learned about one file: its identity and either a scan or an error."""

    path: str
    size: int
    mtime: float
    content_hash: str = ""
    audio_hash: str = ""  # see AudioDigest
    scan: AudioScan | None = None
    tags: dict = field(default_factory=dict)
    error: str = ""
    analysis: dict | None = None  # TempoKey.to_dict() when analysed
    tapped: Any = None  # the tap's result (see Tap)


class TapRun(Protocol):
    def __call__(self, mono: np.ndarray) -> None: ...

    def result(self, starts: np.ndarray) -> Any: ...


class Tap(Protocol):
    """More work on each file's audio within the import's one decode, in the worker process (picklable):
    ``start(sr)`` gives a :class:`TapRun` fed every decoded block downmixed to mono float32 at ``sr``; its
    ``result(starts)`` (the track's segment start times, seconds) is kept in :attr:`IngestReport.tapped` when
    the import saves the track. A run with a ``begin(frames, cancel)`` method is first given the header's length
    (frames at ``sr``, an estimate for compressed formats) and the import's cancel token (None in a worker process:
    a cancel ends the worker); its :class:`Cancelled` stops the file as a cancel does. A tap that fails otherwise
    costs the file its result, not its import."""

    def start(self, sr: int) -> TapRun: ...


@dataclass
class IngestReport:
    """Outcome of an import; ``failed`` lists (path, reason) of this run's failures."""

    added: int = 0
    updated: int = 0
    moved: int = 0
    unchanged: int = 0
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    still_failed: int = 0
    relabelled: int = 0
    reanalysed: int = 0  # unchanged tracks whose tempo and key an older release had estimated
    retagged: int = 0  # unchanged tracks whose tags a newer read_tags reads otherwise
    recut: int = 0  # known tracks cut again: the import's segmenting (``segments``) differs from the library's
    segments: SegmentConfig | None = None  # the segmenting of this import
    warnings: list[tuple[str, str]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # tracks under the imported folders whose files are gone
    removed: int = 0  # of those, removed from the library (``prune``)
    cancelled: bool = False
    tapped: dict[int, Any] = field(default_factory=dict, repr=False)  # track id -> the tap's result

    def to_dict(self) -> dict:
        return {"added": self.added, "updated": self.updated, "moved": self.moved, "unchanged": self.unchanged,
                "duplicates": [{"path": p, "of": o} for p, o in self.duplicates],
                "failed": [{"path": p, "error": e} for p, e in self.failed],
                "warnings": [{"path": p, "warning": w} for p, w in self.warnings],
                "still_failed": self.still_failed, "relabelled": self.relabelled, "reanalysed": self.reanalysed,
                "retagged": self.retagged,
                "recut": self.recut, "window_s": getattr(self.segments, "window_s", None),
                "hop_s": getattr(self.segments, "hop_s", None),
                "missing": self.missing, "removed": self.removed, "cancelled": self.cancelled}


def content_hash(path: str | Path, *, chunk: int = 1 << 20, cancel: CancelToken | None = None) -> str:
    """BLAKE2b-128 of the file's bytes; ``cancel`` is checked between chunks (raises :class:`Cancelled`)."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            if cancel is not None:
                cancel.check()
            h.update(block)
    return h.hexdigest()


class AudioDigest:
    """SHA-256 (128 bits kept) of a file's decoded samples (fed block by block, as decoded), sample rate and
    channels: the same for files that differ only in their tags (or container), unlike :func:`content_hash`."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()  # faster than BLAKE2 where the CPU has SHA instructions (most do)

    def __call__(self, block: np.ndarray) -> None:
        self._h.update(np.ascontiguousarray(block, dtype=np.float32).data)

    def hexdigest(self, scan: AudioScan) -> str:
        h = self._h.copy()
        h.update(f"{scan.info.sample_rate} Hz, {scan.info.channels} channels".encode())
        return h.hexdigest()[:32]


_ID3_FRAMES = {"title": "TIT2", "artist": "TPE1", "album": "TALB", "genre": "TCON", "date": "TDRC",
               "tracknumber": "TRCK", "bpm": "TBPM", "initialkey": "TKEY"}
_JOINED = ("title", "artist", "album", "genre")
"""Tags whose several values are all kept, joined by "; " (two artists); the others keep their first value."""


def read_tags(path: str | Path) -> dict:
    """Common tags (title, artist, album, genre, date, tracknumber, and a DJ tool's bpm and initialkey/key) read
    with mutagen, from any of its formats: ID3 in MP3, WAV and AIFF, Vorbis comments, MP4 atoms (a DJ tool's key
    as ``----:com.apple.iTunes:initialkey``); {} when there are none."""
    try:
        import mutagen
        from mutagen.easyid3 import EasyID3
        from mutagen.easymp4 import EasyMP4Tags
        from mutagen.id3 import ID3

        if "initialkey" not in EasyID3.valid_keys:
            EasyID3.RegisterTextKey("initialkey", "TKEY")
        if "initialkey" not in EasyMP4Tags.Get:
            EasyMP4Tags.RegisterFreeformKey("initialkey", "initialkey")

        f = mutagen.File(str(path), easy=True)
    except Exception:  # mutagen raises many kinds on odd files; tags are optional
        return {}
    if f is None or not f.tags:
        return {}
    tags = f.tags
    if isinstance(tags, ID3):  # WAV and AIFF: mutagen gives their ID3 chunk without the easy names
        tags = {k: [str(v) for fr in tags.getall(fid) for v in (fr.genres if fid == "TCON" else fr.text)]
                for k, fid in _ID3_FRAMES.items()}
    out = {}
    for k in TAG_KEYS:
        values = [t for v in tags.get(k) or [] if (t := _tag_text(v))]
        if values:
            out[k] = "; ".join(dict.fromkeys(values)) if k in _JOINED else values[0]
    return out


def _tag_text(value: object, limit: int = 500) -> str:
    """A tag value on one line: control characters (newlines, tabs, NULs of a multi-value tag) become single
    spaces, so every list, table and playlist shows one row per track; at most ``limit`` characters."""
    text = "".join(" " if unicodedata.category(c) == "Cc" else c for c in str(value))
    return " ".join(text.split())[:limit]


def probe_file(path: str, max_duration_s: float | None, analyse: bool = True, tap: Tap | None = None,
               segments: SegmentConfig = SegmentConfig(), known_hash: str = "",
               copies: Collection[str] = (), cancel: CancelToken | None = None) -> FileProbe:
    """Hash, decode (digesting the audio: :class:`AudioDigest`) and check one file (runs in a worker process); with
    ``analyse``, tempo and key from the same decode, and ``tap``'s work on it (its result given the starts of
    ``segments``). A file whose bytes hash to ``known_hash`` (its track's) or to one of ``copies`` (of the tracks a
    new file may copy) is not decoded: its probe has no scan.
    Never raises for bad audio, nor for a file that vanished since the scan; a file changed while it was read
    fails (it is read again by the next import). ``cancel`` (read in this process) is checked before each block
    decoded or hashed: raises :class:`Cancelled` (a 2-hour file went on for tens of seconds)."""
    try:
        st = os.stat(path)
    except OSError as e:
        return FileProbe(path, 0, 0.0, error="file not found (removed during the import)"
                         if isinstance(e, FileNotFoundError) else f"cannot read: {e.strerror or e}")
    probe = FileProbe(path, st.st_size, st.st_mtime)
    try:
        hashed = content_hash(path, cancel=cancel) if (known_hash or copies) and stat.S_ISREG(st.st_mode) else ""
        if hashed and (hashed == known_hash or hashed in copies):
            probe.content_hash = hashed
            return probe
        analyser = run = None
        if analyse or tap is not None:
            from musicemb_core.audio.decode import info
            from musicemb_core.features.tempo_key import Analyser

            head = info(path)
            sr = head.sample_rate
            analyser = Analyser(sr) if analyse else None
            run = tap.start(sr) if tap is not None else None
            if hasattr(run, "begin"):
                run.begin(head.frames, cancel)
        feeds = [f for f in (analyser, run) if f is not None]
        digest = AudioDigest()

        def on_block(block: np.ndarray) -> None:
            if cancel is not None:
                cancel.check()
            digest(block)
            if feeds:
                mono = downmix(block)
                for feed in feeds:
                    feed(mono)

        # a too-long file fails first
        probe.scan = scan(path, max_duration_s=max_duration_s, on_block=on_block)
        probe.audio_hash = digest.hexdigest(probe.scan)
        if analyser is not None:
            try:
                probe.analysis = {**analyser.result().to_dict(), "version": ANALYSIS_VERSION}
            except Exception as e:  # an estimator's failure costs the file its tempo/key, not its import
                why = f"analysis failed: {type(e).__name__}: {e}"[:200]
                probe.analysis = {"bpm_reason": why, "key_reason": why, "version": ANALYSIS_VERSION}
        if run is not None:
            try:
                probe.tapped = run.result(window_starts(probe.scan.duration_s, segments))
            except Cancelled:
                raise
            except Exception:  # noqa: BLE001 - no result: what the tap computes is computed later without it
                probe.tapped = None
        # hashed before the decode: the stat below tells a change
        probe.content_hash = hashed or content_hash(path, cancel=cancel)
        probe.tags = read_tags(path)
        now = os.stat(path)
        if (now.st_size, now.st_mtime) != (st.st_size, st.st_mtime):  # what was decoded may not be what was hashed
            probe.error = "changed while it was read (still being written or copied?); import it again"
    except AudioError as e:
        probe.error = e.reason
    except OSError as e:
        probe.error = f"cannot read: {e.strerror or e}"
    except Cancelled:
        raise
    except Exception as e:  # noqa: BLE001 - a decoder's unforeseen failure costs its file, not every import's end
        probe.error = " ".join(f"cannot decode: {type(e).__name__}: {e}".split())[:200]
    return probe


def find_audio(paths: list[str | Path], *, unreadable: list[tuple[str, str]] | None = None) -> list[Path]:
    """Audio files under ``paths``: folders are searched recursively by extension (hidden entries skipped; linked
    folders followed, each real folder once, so a link looping back ends there); files named directly are always
    taken. Folders that cannot be listed go to ``unreadable`` as (path, reason). Raises :class:`MusicEmbError`
    for a path that does not exist."""
    return drive(iter_find_audio(paths, unreadable=unreadable))


def iter_find_audio(paths: list[str | Path], *, unreadable: list[tuple[str, str]] | None = None,
                    cancel: CancelToken | None = None) -> JobGen[list[Path]]:
    """:func:`find_audio` as a job: yields ``Progress("scan", files found, None)`` at most every :data:`TICK_S`;
    once ``cancel`` is set, stops at the next folder, returning what it found so far."""
    cancel = cancel or CancelToken()
    found: list[Path] = []
    seen: set[tuple[int, int]] = set()
    last = time.monotonic()
    for given in paths:
        try:
            p = user_path(given).resolve()
        except (RuntimeError, OSError) as e:  # a link looping on itself (RuntimeError before Python 3.13)
            raise MusicEmbError(f"{given}: no such file or folder ({e})") from e
        if p.is_dir():
            for _ in _walk(p, seen, unreadable, found):
                if cancel.cancelled:
                    return found
                if (now := time.monotonic()) - last >= TICK_S:
                    last = now
                    yield Progress("scan", len(found), None, f"{len(found)} audio files in {len(seen)} folders")
        elif p.exists():
            found.append(p)
        else:
            raise MusicEmbError(f"{p}: no such file or folder")
    return list(dict.fromkeys(found))


def _walk(top: Path, seen: set[tuple[int, int]], unreadable: list[tuple[str, str]] | None,
          found: list[Path]) -> Iterator[None]:
    """Adds the audio files under the folder ``top`` (by extension; by their first bytes when they have none) to
    ``found`` in name order, folders (real ones, by device and
    inode) not in ``seen`` only, yielding after each folder; without recursion, so a tree deeper than Python's
    recursion limit is searched too."""
    stack = [str(top)]
    while stack:
        folder = stack.pop()
        yield
        try:
            st = os.stat(folder)
            if (st.st_dev, st.st_ino) in seen:  # a link to a folder already searched (or looping back)
                continue
            seen.add((st.st_dev, st.st_ino))
            with os.scandir(folder) as it:
                entries = sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
        except OSError as e:
            if unreadable is not None:
                unreadable.append((str(e.filename or folder), e.strerror or str(e)))
            continue
        subfolders = []
        for e in entries:
            try:
                is_dir = e.is_dir()  # a link to a folder too
            except OSError:
                is_dir = False
            if is_dir:
                subfolders.append(e.path)
            elif (ext := os.path.splitext(e.name)[1].lower()) in AUDIO_EXTENSIONS or not ext and looks_like_audio(e.path):
                found.append(Path(e.path))
        stack += reversed(subfolders)


_PATH_HEADERS = ("path", "file", "filename")


def _delimiter(sample: str) -> str:
    """The one of "," ";" and tab (preferred in that order) that splits the most rows of ``sample`` in two or more
    (a spreadsheet set to a European locale saves "path;label"); quoted as spreadsheets quote, which
    :class:`csv.Sniffer` misses ("'Til dawn'" is no quoted field; "a;b" quoted not a row of two)."""
    def rows_split(delimiter: str) -> int:
        n = 0
        with contextlib.suppress(csv.Error):  # the sample's last row may be cut in a quoted field
            for row in csv.reader(sample.splitlines(), delimiter=delimiter):
                n += len(row) > 1
        return n
    return max(",;\t", key=rows_split)


def _labels_text(path: str | Path) -> str:
    """The text of a labels CSV, read once: a pipe too (``--labels <(...)``, ``/dev/stdin``); a named pipe that no
    program writes to reads as empty instead of waiting for one (Ctrl-C could not stop that wait); a file holding
    NUL bytes (``/dev/zero``, a disk image) is refused from its first block, not read whole into memory."""
    nonblocking = getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, os.O_RDONLY | nonblocking)
    if nonblocking:
        os.set_blocking(fd, True)  # reads wait for a writer's data, as a pipe's reader does
    with open(fd, newline="", encoding="utf-8-sig") as f:  # a byte-order mark (Excel) is skipped
        head = f.read(1 << 16)
        if "\x00" in head:
            raise ConfigError(f"{path}: not a CSV: it holds NUL bytes")
        return head + f.read()


def read_label_csv(path: str | Path) -> dict[str, str | None]:
    """``path,label`` rows (header optional), or the ``path`` and ``label`` columns of a table with that header
    (a CSV export of tracks) -> {path or file name: label, None where it is empty}; a CSV without one is a
    :class:`ConfigError`."""
    labels: dict[str, str | None] = {}
    try:
        text = _labels_text(path)
        cols, table, sep, end = (0, 1), False, _delimiter(text[:1 << 16]), 0
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
        for row in reader:
            line, end = end + 1, reader.line_num  # the row's first line (a quoted field may hold line breaks)
            names = [c.strip().lower() for c in row]
            if line == 1 and "label" in names and any(h in names for h in _PATH_HEADERS):
                cols = (next(names.index(h) for h in _PATH_HEADERS if h in names), names.index("label"))
                table = len(row) > 2  # other columns are the table's own
                continue
            if not table:
                _check_pair(path, line, row, sep)
            if len(row) <= max(cols) or names[cols[0]] in _PATH_HEADERS:
                continue
            key = os.path.normpath(cell_text(row[cols[0]]).strip())  # ./a.wav, x/../a.wav: a.wav
            label = clean_label(cell_text(row[cols[1]]))
            if labels.get(key, label) != label:
                raise ConfigError(f"{path}: line {line} labels {key} {label!r}, an earlier line "
                                  f"{labels[key]!r}; keep one")
            labels[key] = label
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: the labels CSV is not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset "
                          f"{e.start}); save it as UTF-8") from e
    except csv.Error as e:
        raise ConfigError(f"{path}: not a readable CSV ({e})") from e
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the labels CSV: {e.strerror or e}") from e
    if not labels:
        raise ConfigError(f"{path}: no labels in the CSV (one line per file: path,label)")
    return labels


def _check_pair(path: str | Path, line: int, row: list[str], sep: str) -> None:
    """A ``path,label`` row must be one: more fields than two (empty trailing ones aside) were read as the first
    two, so "a.wav,Drum, Bass" was labelled "Drum" and "my,song.wav,rock" labelled nothing, and a quote left open
    took the rest of the file as one path."""
    if len(row) == 1 and "\n" in row[0]:
        raise ConfigError(f"{path}: line {line}: a quote is opened and never closed ({row[0][:40]!r}...)")
    if len(row) > 2 and any(c.strip() for c in row[2:]):
        raise ConfigError(f"{path}: line {line} has {len(row)} fields, not path{sep}label "
                          f"({sep.join(row)[:80]!r}); put a path or label holding {sep!r} in double quotes")


def _utf8(text: str) -> bool:
    """Whether ``text`` encodes as UTF-8 (a file name of other bytes decodes to lone surrogates, which do not)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _label_for(path: Path, roots: list[Path], labels: str | dict[str, str | None] | None) -> str | None:
    if labels is None:
        return None
    if labels == "folders":
        return clean_label(path.parent.name)
    # the most specific row first: "a/x.wav" labels a/x.wav even where a row "x.wav" names every other x.wav
    for key in (str(path), *(str(path.relative_to(r)) for r in roots if path.is_relative_to(r)), path.name):
        if key in labels:
            return clean_label(labels[key])
    return None


_COPIES: frozenset[str] = frozenset()
"""In an import's worker: the content hashes of the tracks a new file may copy (:func:`probe_file`'s ``copies``)."""


def _probe_copy(path: str, *probe_args: Any) -> FileProbe:
    """:func:`probe_file` in a worker for a new file of a track's size: not decoded if it copies a track."""
    return probe_file(path, *probe_args, "", _COPIES)


def _worker_init(parent: int | None = None, pdeathsig: bool = False, copies: frozenset[str] = frozenset()) -> None:
    """Workers die with the parent, leave Ctrl-C to it, and the C decoders' chatter on stderr is dropped
    (reasons are kept); ``copies``: :data:`_COPIES`."""
    global _COPIES
    _COPIES = copies
    if parent is not None:
        die_with_parent(parent, pdeathsig)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)


class _Workers:
    """The import's worker processes. A file whose worker dies (killed for memory, a decoder's crash) is read again
    alone by new workers, and fails with a reason if that one dies too; the files queued with it are read again."""

    def __init__(self, jobs: int, probe_args: tuple, known: dict[Path, str], maybe_copies: set[Path],
                 copies: frozenset[str]):
        self.jobs, self.probe_args, self.known = jobs, probe_args, known
        self.maybe_copies, self.copies = maybe_copies, copies
        self.pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.jobs, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_worker_init,
                                   initargs=(os.getpid(), threading.current_thread() is threading.main_thread(),
                                             self.copies))

    def submit(self, path: Path) -> Future:
        """``path``'s probe, to come (a pool whose worker died fails it: :meth:`result` reads it again)."""
        try:
            if path in self.maybe_copies:  # ``copies``, too many to send with each file, are the worker's
                return self.pool.submit(_probe_copy, str(path), *self.probe_args)
            return self.pool.submit(probe_file, str(path), *self.probe_args, self.known.get(path, ""))
        except BrokenProcessPool as e:
            future = Future()
            future.set_exception(e)
            return future

    def result(self, path: Path, future: Future, pending: deque[tuple[Path, Future | None]],
               cancel: CancelToken) -> FileProbe | None:
        """``path``'s probe from ``future`` (None once cancelled); after a worker's death, the ``pending`` files'
        jobs lost with it are given to the new workers."""
        try:
            return result_unless_cancelled(future, cancel)
        except BrokenProcessPool:
            self._restart()
        try:
            probe = result_unless_cancelled(self.submit(path), cancel)
        except BrokenProcessPool:
            self._restart()
            probe = FileProbe(str(path), 0, 0.0, error="its worker process died reading it, twice (out of memory, "
                                                       "or a decoder crash)")
        for i, (p, f) in enumerate(pending):
            if not (f.done() and f.exception() is None):
                pending[i] = (p, self.submit(p))
        return probe

    def _restart(self) -> None:
        stop_workers(self.pool)
        self.pool = self._start()

    def close(self, *, wait: bool) -> None:
        """Wait for the workers to end, or (``wait`` false) end them, dropping their work."""
        if wait:
            self.pool.shutdown(wait=True, cancel_futures=True)
        else:
            stop_workers(self.pool)


@layout.writes_library("ingest")
def iter_ingest(lib: Library, paths: list[str | Path], *, labels: str | dict[str, str | None] | None = None,
                segments: SegmentConfig | None = None, max_duration_s: float | None = 4 * 3600.0,
                jobs: int | None = None, analyse: bool = True, tap: Tap | None = None,
                cancel: CancelToken | None = None, isolate: bool = False, prune: bool = False) -> JobGen[IngestReport]:
    """Import audio files into ``lib``, yielding :class:`Progress` per file; returns an :class:`IngestReport`.
    Before the files are read, the folders are searched ("scan") and each file found is checked against the
    library ("check"), with progress at most every :data:`TICK_S`; a cancel then stores nothing.

    ``jobs``: worker processes (default: one per core); with one, files are read in this process unless
    ``isolate`` (a GUI's job thread: decoders, Essentia and the encoders hold the interpreter's lock for up to a
    few hundred ms at a time, which would freeze the window).

    ``analyse``: estimate tempo and key in the same decode (tracks imported without it, or analysed by an older
    :data:`ANALYSIS_VERSION`, are analysed again by the next import that has it).
    ``paths``: files and folders (or one alone).
    ``labels``: None, ``"folders"`` (the parent folder's name) or a {path or file name: label} mapping (a path
    relative to an imported folder or the current one is more specific than a file name).
    ``segments``: the segmenting to use; changing it from the library's re-cuts existing tracks too.
    ``tap``: more work in the same decode (see :class:`Tap`; the one-pass import + embed).
    ``prune``: remove the tracks under the imported folders whose files are gone (deleted, or moved out of them),
    with their segments, segment tags and findings; without it they are only listed (``missing``).
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]  # one file or folder alone (a string is not its letters)
    if max_duration_s is not None and (isinstance(max_duration_s, bool) or not isinstance(max_duration_s, int | float)
                                       or not 0 < max_duration_s < math.inf):  # -1 failed every file
        raise ConfigError(f"max_duration_s must be a number of seconds > 0 (or None), got {max_duration_s!r}")
    if isinstance(labels, str) and labels != "folders":
        raise ConfigError(f"labels must be None, \"folders\" or a {{path or file name: label}} mapping, got {labels!r}")
    cancel = cancel or CancelToken()
    current = lib.segment_config()
    cfg = segments or current or SegmentConfig()
    report = IngestReport(segments=cfg)
    roots = [user_path(p).resolve() for p in paths if user_path(p).is_dir()]
    label_roots = [*roots, Path.cwd()]  # a relative path in a labels CSV: under an imported folder or the current one
    unreadable: list[tuple[str, str]] = []
    files = yield from iter_find_audio(paths, unreadable=unreadable, cancel=cancel)
    if cancel.cancelled:
        return IngestReport(segments=cfg, cancelled=True)
    report.warnings += [(where, f"folder not searched: {why}") for where, why in unreadable]
    if not files:
        report.warnings.append((", ".join(map(str, paths)), "no audio files found"))
    given = sum(v is not None for v in labels.values()) if isinstance(labels, dict) else 0
    if isinstance(labels, dict) and files and not given:  # (they said the paths named none of the files)
        report.warnings.append(("--labels", "every label in the CSV is empty; nothing is labelled"))
    elif given and files and all(_label_for(p, label_roots, labels) is None for p in files):
        report.warnings.append(("--labels", f"none of the {given} labelled paths in the CSV names one of the "
                                            f"{len(files)} files found; nothing is labelled"))
    todo: list[Path] = []
    known_hashes: dict[Path, str] = {}  # a track's file, its size kept: not decoded if its bytes are the track's
    stale = 0
    tracks = lib.tracks()
    by_path = {t.path: t for t in tracks}
    kept = [t for t in tracks if not _needs_analysis(t, analyse)]
    copies, copy_sizes = frozenset(t.content_hash for t in kept), {t.size for t in kept}
    maybe_copies: set[Path] = set()  # new files of one of these tracks' size: not decoded if their bytes are its
    broken: list[tuple[str, str]] = []  # failures and labels written once all is checked: a cancel stores nothing
    relabels: list[tuple[int, str]] = []
    retag = lib.get_meta("tags_version", "1") != str(TAGS_VERSION)
    retags: list[tuple[int, dict]] = []  # unchanged tracks' tags as this release reads them, where they differ
    clock, last = EtaClock(), time.monotonic()
    for i, path in enumerate(files):
        if cancel.cancelled:
            return IngestReport(segments=cfg, cancelled=True)
        if (now := time.monotonic()) - last >= TICK_S:
            last = now
            yield Progress("check", i, len(files), "checking which files are new or changed", clock.eta(i, len(files)))
        if not _utf8(str(path)):  # the catalogue keeps UTF-8 text: this file only, and not recorded there
            report.failed.append((str(path), "its name is not valid UTF-8 (a legacy encoding?); rename the file"))
            continue
        try:
            st = path.stat()
        except OSError as e:  # a dangling or looping link, a file removed since the scan: this file only
            reason = f"cannot read: {e.strerror or e}" + (" (a broken or looping link)" if path.is_symlink() else "")
            broken.append((str(path), reason))
            report.failed.append((str(path), reason))
            continue
        known = by_path.get(str(path))
        same = known is not None and known.size == st.st_size and known.mtime == st.st_mtime
        if same and analyse and _analysed_before(known):
            todo.append(path)  # analysed by an older release: its tempo and key are estimated again
            stale += 1
        elif same and (known.analysed or not analyse):
            report.unchanged += 1
            if retag and (tags := read_tags(path)) != known.tags:
                retags.append((known.id, tags))
            label = _label_for(path, label_roots, labels)
            if label is not None and label != known.label:  # labels given again apply to known tracks too
                relabels.append((known.id, label))
                report.relabelled += 1
        elif lib.failure_stat(str(path)) == (st.st_size, st.st_mtime):  # a track's file that went bad too
            report.still_failed += 1
        else:
            if known is not None and known.size == st.st_size and not _needs_analysis(known, analyse):
                known_hashes[path] = known.content_hash  # touched only? its bytes say, without a decode
            elif known is None and st.st_size in copy_sizes:
                maybe_copies.add(path)  # a copy? its worker's hash says, without a decode
            todo.append(path)
    if cancel.cancelled:  # during the last file's check event: still nothing stored
        return IngestReport(segments=cfg, cancelled=True)
    if cfg != current:
        report.recut = len(tracks)  # every track of the library, not only those imported here
        lib.set_segment_config(cfg, window_starts)
    for where, reason in broken:
        lib.record_failure(where, reason, size=None, mtime=None)
    for track_id, label in relabels:
        lib.set_label(track_id, label)
    if retag:
        lib.set_tags(retags)
        report.retagged = len(retags)
        if by_path.keys() <= {str(p) for p in files}:  # every known track's file checked: none left to read again
            lib.set_meta("tags_version", str(TAGS_VERSION))
    again = f" ({stale} known, to analyse again: tempo and key estimates changed)" if stale else ""
    yield Progress("ingest", 0, len(todo), f"{len(files)} files found, {len(todo)} to import{again}")
    clock = EtaClock()
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(todo)))
    probe_args = (max_duration_s, analyse, tap, cfg)
    workers = (_Workers(jobs, probe_args, known_hashes, maybe_copies, copies) if jobs > 1 or (isolate and todo)
               else None)
    pending: deque[tuple[Path, Future | None]] = deque()
    queue = deque(todo)
    changed: list[tuple[FileProbe, str | None]] = []  # new audio at a known track's path: stored last
    try:
        for done in range(1, len(todo) + 1):
            if cancel.cancelled:  # checked before each file: a cancel during any event stops before the next
                report.cancelled = True
                break
            while queue and len(pending) < 2 * jobs:
                p = queue.popleft()
                pending.append((p, workers.submit(p) if workers else None))
            path, future = pending.popleft()
            try:
                probe = (workers.result(path, future, pending, cancel) if workers
                         else probe_file(str(path), *probe_args, known_hashes.get(path, ""),
                                         copies if path in maybe_copies else (), cancel))
                if probe is not None and probe.scan is None and not probe.error and not lib.tracks_by_hash(
                        probe.content_hash):
                    probe = probe_file(str(path), *probe_args, "", (), cancel)  # its bytes' track changed: decoded here
            except Cancelled:
                probe = None
            if probe is None or cancel.cancelled:  # cancelled while the file was read: nothing of it is stored
                report.cancelled = True
                break
            _store(lib, probe, label=_label_for(Path(probe.path), label_roots, labels), cfg=cfg, report=report,
                   later=changed)
            yield Progress("ingest", done, len(todo), probe.path, clock.eta(done, len(todo)))
        for probe, label in changed if not report.cancelled else ():
            _store(lib, probe, label=label, cfg=cfg, report=report)
        if not report.cancelled:  # after the moves: what is still not found is gone from these folders
            lib.forget_failures([f["path"] for f in lib.failures() if _under(f["path"], roots)
                                 and file_gone(f["path"], follow=False)])
            gone = _missing_under(lib, roots)
            report.missing = [t.path for t in gone]
            if prune:
                gone = _unless_emptied(gone, roots, files, report)
                lib.remove_tracks([t.id for t in gone])
                report.removed = len(gone)
    finally:
        if workers is not None:  # cancelled: the files the workers are reading are thrown away, not waited for
            workers.close(wait=not cancel.cancelled)
    return report


def _store(lib: Library, probe: FileProbe, *, label: str | None, cfg: SegmentConfig, report: IngestReport,
           later: list[tuple[FileProbe, str | None]] | None = None) -> None:
    """Write one probed file into the catalogue (one transaction) and count it in ``report``. New audio at a known
    track's path goes to ``later`` if given: that track's audio may turn up under another name in this import
    (a rename), which moves the track there whatever the order of the files."""
    if probe.error:
        # A file refused only for its length is looked at again next run (the limit may have been raised).
        retry = probe.error.startswith("too long")
        lib.record_failure(probe.path, probe.error, size=None if retry else probe.size,
                           mtime=None if retry else probe.mtime)
        report.failed.append((probe.path, probe.error))
        return
    at_path = lib.track_by_path(probe.path)
    if probe.scan is None:  # not decoded: the bytes of the track at its path (a file touched) or of another track
        twins = lib.tracks_by_hash(probe.content_hash)
        copied = next((t for t in twins if _holds(t)), None) if at_path is None else None
        if copied is not None:
            report.duplicates.append((probe.path, copied.path))
        else:  # touched, or moved (its track's file gone or changed)
            _keep(lib, at_path or twins[0], probe, label=label, report=report)
        return
    if at_path is not None and _same_audio(at_path, probe):
        _keep(lib, at_path, probe, label=label, report=report)
        return
    if at_path is not None and later is not None:
        later.append((probe, label))
        return
    if at_path is None:
        known = lib.tracks_by_hash(probe.content_hash, probe.audio_hash)
        gone = next((t for t in known if not _holds(t)), None)
        if gone is not None:
            _keep(lib, gone, probe, label=label, report=report)
            return
        if known:
            report.duplicates.append((probe.path, known[0].path))
            return
    s = probe.scan
    fields = {"path": probe.path, "content_hash": probe.content_hash, "audio_hash": probe.audio_hash,
              "size": probe.size, "mtime": probe.mtime, "duration_s": s.duration_s, "sample_rate": s.info.sample_rate,
              "channels": s.info.channels, "format": s.info.format,
              "label": label if label is not None else (at_path and at_path.label), "tags": probe.tags,
              "warning": s.warning}
    if probe.analysis is not None:
        fields.update(_analysis_fields(probe.analysis))
    track_id = lib.save_track(fields, cfg=cfg, starts_of=window_starts, track_id=at_path.id if at_path else None)
    if probe.tapped is not None:
        report.tapped[track_id] = probe.tapped
    if s.warning:
        report.warnings.append((probe.path, s.warning))
    if at_path is None:
        report.added += 1
    else:
        report.updated += 1


def _missing_under(lib: Library, roots: list[Path]) -> list[Track]:
    """The library's tracks under the folders ``roots`` whose files are not there."""
    return [t for t in lib.tracks() if _under(t.path, roots) and file_gone(t.path)]


def _unless_emptied(gone: list[Track], roots: list[Path], files: list[Path], report: IngestReport) -> list[Track]:
    """The tracks of ``gone`` to prune: not those under a folder where nothing was found (a drive not mounted leaves
    its mount point empty), which get a warning, unless a folder above it where files were found was given too."""
    empty = [r for r in roots if not any(f.is_relative_to(r) for f in files)]
    searched = [r for r in roots if r not in empty]
    empty = [r for r in empty if not _under(str(r), searched)]  # a folder above it given too, where files were found
    for root in empty:
        if n := sum(_under(t.path, [root]) for t in gone):
            report.warnings.append((str(root), f"no audio files found: its {n} missing tracks are kept, not pruned "
                                               "(a drive not mounted?); --prune with a folder above it removes them"))
    return [t for t in gone if not _under(t.path, empty)]


def _under(path: str, roots: list[Path]) -> bool:
    return any(Path(path).is_relative_to(r) for r in roots)


def file_gone(path: str, *, follow: bool = True) -> bool:
    """Whether nothing is at ``path`` (``follow``: a link to nothing counts as nothing); a file that cannot be looked
    at (a folder on the way without permission, an I/O error of the drive) is not gone."""
    try:
        os.stat(path, follow_symlinks=follow)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:
        return False
    return False


def _same_audio(track: Track, probe: FileProbe) -> bool:
    """Whether the probed file holds the track's audio: the same bytes, or the same decoded audio."""
    return track.content_hash == probe.content_hash or bool(probe.audio_hash) and track.audio_hash == probe.audio_hash


def _holds(track: Track) -> bool:
    """Whether the track's file is still the one imported: the same size and mtime, or else the same bytes."""
    try:
        return os.path.exists(track.path) and (not track.changed_since_import()
                                               or content_hash(track.path) == track.content_hash)
    except OSError:
        return False


def _keep(lib: Library, track: Track, probe: FileProbe, *, label: str | None, report: IngestReport) -> None:
    """The probed file holds ``track``'s audio: the track keeps its segments (and their tags, findings and
    vectors); its path, file details, tags and tempo and key are refreshed and the label given applied."""
    s = probe.scan
    fields = {"path": probe.path, "content_hash": probe.content_hash, "size": probe.size, "mtime": probe.mtime}
    if s is not None:  # decoded (a probe without a scan: the same bytes, only the size and mtime to refresh)
        fields |= {"audio_hash": probe.audio_hash, "format": s.info.format, "tags": probe.tags, "warning": s.warning}
    if probe.analysis is not None:
        report.reanalysed += _analysed_before(track)
        fields.update(_analysis_fields(probe.analysis))
    if label is not None and label != track.label:  # labels given again apply to known tracks too
        fields["label"] = label
        report.relabelled += 1
    lib.update_track(track.id, fields)
    if track.path != probe.path:
        report.moved += 1
    elif track.content_hash != probe.content_hash:
        report.updated += 1
    else:
        report.unchanged += 1


def _needs_analysis(track: Track, analyse: bool) -> bool:
    """Whether an import with ``analyse`` estimates the track's tempo and key (again): its file is decoded."""
    return analyse and (not track.analysed or _analysed_before(track))


def _analysed_before(track: Track) -> bool:
    """Whether a track's tempo and key were estimated by an older :data:`ANALYSIS_VERSION`."""
    return track.analysed and track.analysis.get("version", 1) < ANALYSIS_VERSION


def _analysis_fields(a: dict) -> dict:
    """A :class:`TempoKey` dict -> the catalogue's analysis columns (reasons kept in ``analysis``)."""
    return {"bpm": a.get("bpm"), "bpm_confidence": a.get("bpm_confidence"), "key": a.get("key"),
            "key_confidence": a.get("key_confidence"),
            "analysis": {"bpm_reason": a.get("bpm_reason", ""), "key_reason": a.get("key_reason", ""),
                         "analysed": True, "version": a.get("version", 1)}}
