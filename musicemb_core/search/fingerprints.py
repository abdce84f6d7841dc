"""The library's landmark index: every track's peak-pair hashes, sorted for lookup, kept in ``fingerprints/`` (one
generation at a time, see :mod:`musicemb_core.data.layout`).

Used by identification beside the embeddings: landmarks confirm an exact recording (robust to noise, codecs,
EQ, gain, reverb) while the embedding carries what landmarks cannot (speed changes, covers of the same material).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from musicemb_core.audio.decode import load
from musicemb_core.common.errors import AudioError, Cancelled, LibraryError
from musicemb_core.common.progress import CancelToken, EtaClock, JobGen, Progress
from musicemb_core.data import layout
from musicemb_core.data.library import Library
from musicemb_core.features import landmarks as lm

MAX_HITS_PER_HASH = 2000  # a hash this common carries no information
OFFSET_SLACK = 1  # matches one frame (32 ms) off the best offset count too: a snippet's start falls between frames,
# so its peaks land a frame early or late (tune games, bench/reid_fusion.py --mix noisy at the shipped speed grid:
# landmarks alone 0.983 -> 0.986, decisive for 93 -> 96 % of pink-noise queries; a slack of 2 was no better)


class LandmarkIndex:
    """Sorted arrays: ``hashes`` (n,) uint32, ``tracks`` (n,) int32, ``times`` (n,) int32 (anchor frames)."""

    def __init__(self, hashes: np.ndarray, tracks: np.ndarray, times: np.ndarray):
        order = np.argsort(hashes, kind="stable")
        self.hashes, self.tracks, self.times = hashes[order], tracks[order], times[order]
        self.meta: dict = {}  # ``meta.json`` of a loaded index

    def __len__(self) -> int:
        return len(self.hashes)

    def match(self, hashes: np.ndarray, times: np.ndarray) -> dict[int, int]:
        """For each track, the largest number of query hashes found at one consistent time offset, give or take
        one frame (:data:`OFFSET_SLACK`)."""
        order = np.argsort(hashes, kind="stable")  # sorted keys: each binary search starts from the last one's
        hashes, times = np.asarray(hashes)[order], np.asarray(times)[order]  # place, rows are read in file order
        lo = np.searchsorted(self.hashes, hashes, "left")
        hi = np.searchsorted(self.hashes, hashes, "right")
        n = np.minimum(hi - lo, MAX_HITS_PER_HASH)
        if n.sum() == 0:
            return {}
        q = np.repeat(np.arange(len(hashes)), n)
        starts = np.repeat(lo - np.concatenate([[0], np.cumsum(n)[:-1]]), n)
        rows = starts + np.arange(n.sum())
        tr = self.tracks[rows].astype(np.int64)
        dt = self.times[rows].astype(np.int64) - times[q].astype(np.int64) + (1 << 24)
        keys, counts = np.unique(tr << 26 | dt, return_counts=True)
        near = counts.copy()
        for m in range(1, OFFSET_SLACK + 1):  # offsets of one track are consecutive keys, unique and sorted:
            close = keys[m:] - keys[:-m] <= OFFSET_SLACK  # those up to the slack away are up to that many places away
            near[m:] += np.where(close, counts[:-m], 0)
            near[:-m] += np.where(close, counts[m:], 0)
        tracks = keys >> 26  # sorted: each track's offsets are one run of keys
        starts = np.flatnonzero(np.r_[True, tracks[1:] != tracks[:-1]])
        return dict(zip(tracks[starts].tolist(), np.maximum.reduceat(near, starts).tolist(), strict=True))

    @classmethod
    def merged(cls, base: tuple[np.ndarray, np.ndarray, np.ndarray], parts: list[tuple]) -> LandmarkIndex:
        """The index of ``base`` (hashes, tracks, times already sorted by hash: a previous index's) and ``parts``
        (each hashes, tracks, times): the arrays the constructor makes of them all, without sorting ``base`` again
        (a large library's hundred million landmarks)."""
        new = cls(*(np.concatenate(p) for p in zip(*parts, strict=True))) if parts else None
        self = cls.__new__(cls)
        self.meta = {}
        if new is None:
            self.hashes, self.tracks, self.times = base
            return self
        at = np.searchsorted(base[0], new.hashes, "right")  # after equal hashes of ``base``, as a stable sort puts them
        self.hashes, self.tracks, self.times = (np.insert(b, at, x) for b, x in
                                                zip(base, (new.hashes, new.tracks, new.times), strict=True))
        return self

    def current_tracks(self, content_hashes: dict[int, str]) -> set[int]:
        """The tracks (of ``content_hashes``: id -> the catalogue's content hash) whose landmarks here were made
        from their present audio."""
        kept = self.meta.get("tracks", {})
        return {t for t, h in content_hashes.items() if kept.get(str(t)) == h}

    def save(self, folder: Path, meta: dict) -> None:
        """Write the arrays and ``meta.json`` into ``folder`` (a new generation, see :func:`iter_fingerprint`)."""
        for name in ("hashes", "tracks", "times"):
            np.save(folder / f"{name}.npy", getattr(self, name))
        (folder / "meta.json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, folder: Path) -> LandmarkIndex | None:
        """The landmarks kept in ``folder`` (a library's :func:`landmark_folder`: its current generation, or
        files of the old layout); None when there are none or they are damaged (they are recomputed)."""
        art = layout.landmarks(folder.parent) if folder.name == "fingerprints" else None

        def read(gen: Path) -> LandmarkIndex:
            self = cls.__new__(cls)
            for name in ("hashes", "tracks", "times"):
                setattr(self, name, layout.load_npy(gen / f"{name}.npy", mmap=True))
            self.meta = layout.read_json(gen / "meta.json")
            if not len(self.hashes) == len(self.tracks) == len(self.times):
                raise LibraryError(f"{gen}: damaged landmarks (arrays of different lengths)")
            return self

        try:
            if art is not None:
                return art.read(read)
            return read(folder) if (folder / "meta.json").exists() else None
        except (LibraryError, FileNotFoundError):
            return None


def _kept(old: LandmarkIndex | None, keep: set[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The landmarks of ``old`` (sorted by hash) of the tracks ``keep``, still sorted."""
    if old is None or not keep:
        return np.zeros(0, np.uint32), np.zeros(0, np.int32), np.zeros(0, np.int32)
    if keep >= {int(t) for t in old.meta.get("tracks", {})}:  # all of them (tracks were only added)
        return old.hashes, old.tracks, old.times
    rows = np.isin(old.tracks, list(keep))
    return np.asarray(old.hashes)[rows], np.asarray(old.tracks)[rows], np.asarray(old.times)[rows]


def landmark_folder(lib: Library) -> Path:
    return layout.landmarks(lib).folder


@layout.writes_library("index")
def iter_fingerprint(lib: Library, *, cancel: CancelToken | None = None) -> JobGen[LandmarkIndex]:
    """Landmarks of every track (only tracks not fingerprinted yet, by id and content hash, are decoded; nothing
    is written when no track's landmarks were added or dropped). A track whose file changed since it was imported
    is left out until it is imported again. A cancel stops at the next track and keeps the tracks finished (the
    next run does the rest), then raises :class:`Cancelled`."""
    cancel = cancel or CancelToken()
    folder = landmark_folder(lib)
    old = LandmarkIndex.load(folder)
    tracks = {t.id: t for t in lib.tracks()}
    done = {int(k) for k in old.meta.get("tracks", {})} if old is not None else set()
    current = old.current_tracks({t: tr.content_hash for t, tr in tracks.items()}) if old is not None else set()
    kept = set(current)  # their landmarks are kept as they are
    parts = []  # the landmarks of the tracks done now
    todo = [tid for tid in tracks if tid not in current]
    if old is not None and not todo and done == current:  # nothing added, changed or removed
        return old

    def compute(tid: int):
        if tracks[tid].changed_since_import():  # its landmarks would not match its catalogue entry
            return tid, None
        try:
            y, sr = load(tracks[tid].path, sr=lm.SR)
            return tid, lm.landmarks(y, sr)
        except AudioError:
            return tid, None

    clock, stopped = EtaClock(), None
    yield Progress("landmarks", 0, len(todo), f"{len(todo)} tracks to fingerprint")
    with ThreadPoolExecutor(2) as pool:
        results = pool.map(compute, todo)
        try:
            for i, (tid, res) in enumerate(results, 1):
                if res is not None:
                    h, t = res
                    parts.append((h, np.full(len(h), tid, np.int32), t))
                    current.add(tid)
                yield Progress("landmarks", i, len(todo), tracks[tid].path, clock.eta(i, len(todo)))
                cancel.check()
        except Cancelled as e:  # the finished tracks are kept (hours of them in a large library)
            stopped = e
        finally:
            results.close()  # the tracks not started are not decoded
    if stopped is not None and current == done:  # cancelled before any track was added
        raise stopped
    if old is not None and current == done:  # the tracks to do could not be read: nothing added or removed
        return old
    yield Progress("landmarks", len(todo), len(todo), f"merging the landmarks of {len(current)} tracks")
    index = LandmarkIndex.merged(_kept(old, kept), parts)
    yield Progress("landmarks", len(todo), len(todo), f"saving {len(index)} landmarks")
    with layout.landmarks(lib).publish() as gen:
        index.save(gen, {"tracks": {str(t): tracks[t].content_hash for t in current}, "count": len(index)})
    if stopped is not None:
        raise stopped
    return index
