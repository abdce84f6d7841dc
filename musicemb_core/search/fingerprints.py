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
        for step in range(1, OFFSET_SLACK + 1):  # offsets of one track are consecutive keys
            for other in (keys - step, keys + step):
                j = np.minimum(np.searchsorted(keys, other), len(keys) - 1)
                near += np.where(keys[j] == other, counts[j], 0)
        counts = near
        best: dict[int, int] = {}
        for k, c in zip((keys >> 26).tolist(), counts.tolist(), strict=True):
            if c > best.get(k, 0):
                best[k] = c
        return best

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
    parts = []
    if old is not None and current:
        keep = np.isin(old.tracks, list(current))
        parts.append((np.asarray(old.hashes)[keep], np.asarray(old.tracks)[keep], np.asarray(old.times)[keep]))
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
    cat = [np.concatenate(p) if p else np.zeros(0, dt) for p, dt in
           zip(zip(*parts, strict=True) if parts else ([], [], []), (np.uint32, np.int32, np.int32), strict=True)]
    index = LandmarkIndex(*cat)
    with layout.landmarks(lib).publish() as gen:
        index.save(gen, {"tracks": {str(t): tracks[t].content_hash for t in current}, "count": len(index)})
    if stopped is not None:
        raise stopped
    return index
