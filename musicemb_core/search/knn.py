"""Queries against a library: nearest segments, song re-identification and label votes (kNN).

A query is cut into sub-tracks (windows of the model's length every ``hop_s``); a query shorter than a window is
zero-padded, not rejected. Sub-tracks quieter than ``SILENCE_DBFS`` carry no evidence, so silent passages score
nothing; a query file silent by import's rule is refused, and in a quiet one with no sub-track above it (a field
recording's ambience) every sub-track counts.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from musicemb_core.analysis.checks import check_count
from musicemb_core.audio.decode import load
from musicemb_core.audio.resample import mono_at
from musicemb_core.audio.segment import cut
from musicemb_core.audio.validate import check_not_silent, is_silent
from musicemb_core.common.errors import ConfigError, LibraryError
from musicemb_core.data.library import Library
from musicemb_core.index import EmbeddingIndex
from musicemb_core.search.library_index import open_index
from musicemb_core.stored_vectors import DEFAULT_MODEL, load_embeddings, tracks_of

if TYPE_CHECKING:
    from musicemb_core.inference import Embedder
    from musicemb_core.search.fingerprints import LandmarkIndex

SILENCE_DBFS = -60.0
# Aligned landmark matches -> confidence: chance alignments of a few seconds of audio give up to ~LANDMARK_FLOOR.
LANDMARK_FLOOR, LANDMARK_SPAN = 5, 20
# Landmarks decide alone when one track has this many aligned matches and this many times the runner-up's (noisy
# 3 s queries align up to ~10 by chance on several tracks at once; tune-game queries, bench/reid_fusion.py). A ratio
# of 1.75 rather than 2: 512 noisy tune-game queries 4 -> 3 wrong (a pink-noise snippet with 11 matches against
# 6), 512 of the shared recipe's mix unchanged (1 wrong); 1.5 was no better.
DECISIVE_MATCHES, DECISIVE_RATIO = 6, 1.75
# A query's landmarks are also read as if it played at these speeds (a DJ's pitch range, +-8 %), over its first
# SPEED_SEARCH_S: a speed change moves every peak, so the landmarks of a sped-up copy match only when undone
# (tune-game queries, bench/reid_fusion.py: 3 s snippets 3 % off speed found 0.86 -> 1.00, the others unchanged).
SPEED_FACTORS = tuple(round(1 + k / 100, 2) for k in range(-8, 9) if k)
SPEED_SEARCH_S = 15.0


def landmark_confidence(matches: int) -> float:
    """0 at :data:`LANDMARK_FLOOR` aligned landmark matches (or fewer), rising to 1 at ``LANDMARK_FLOOR +
    LANDMARK_SPAN``."""
    return min(1.0, max(0.0, (matches - LANDMARK_FLOOR) / LANDMARK_SPAN))


def fuse(emb: dict[int, float], marks: dict[int, int]) -> list[tuple[int, float]]:
    """Tracks ranked best first by (embedding vote score + 2 x :func:`landmark_confidence` of the aligned matches
    ``marks``) / 3.

    Decisive landmarks win outright: a track with at least :data:`DECISIVE_MATCHES` aligned matches and
    :data:`DECISIVE_RATIO` times the runner-up's ranks first (full landmark confidence, its score at least the
    others'), whatever the embedding says: noise or a damaged recording can hide a track from the embedding while
    its landmarks still line up, and chance alignments do not come that far ahead of every other track."""
    scores = {t: (emb.get(t, 0.0) + 2 * landmark_confidence(marks.get(t, 0))) / 3 for t in set(emb) | set(marks)}
    counts = sorted(marks.values(), reverse=True) + [0, 0]
    top = max(marks, key=marks.get) if counts[0] >= max(DECISIVE_MATCHES, DECISIVE_RATIO * counts[1]) else None
    if top is not None:
        scores[top] = max((emb.get(top, 0.0) + 2) / 3, *scores.values())
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0] != top, -marks.get(kv[0], 0)))


def _landmark_index(lib: Library) -> LandmarkIndex | None:
    """The library's :class:`~musicemb_core.search.fingerprints.LandmarkIndex`, None without one. Imported here:
    the landmarks' peak picking needs scipy.ndimage (0.2-0.5 s to import), and only :meth:`Searcher.identify`
    reads landmarks."""
    from musicemb_core.search.fingerprints import LandmarkIndex, landmark_folder

    return LandmarkIndex.load(landmark_folder(lib))


@dataclass
class QueryVectors:
    """Sub-track vectors of one query: ``vectors`` (n, dim), their ``starts`` (s) and which are ``active``."""

    path: str
    vectors: np.ndarray
    starts: np.ndarray
    active: np.ndarray
    landmarks: list[tuple[np.ndarray, np.ndarray]] | None = None  # as recorded, then at each of SPEED_FACTORS


class Searcher:
    """A library opened for queries with one model: its embedder, index and segment/track tables. ``embedder``:
    :func:`~musicemb_core.inference.library_embedder` ``(lib, model)`` when the caller loaded it already (it is
    loaded here otherwise); ``use_landmarks``: read the query's landmarks too (only :meth:`identify` uses them)."""

    def __init__(self, lib: Library, *, model: str = DEFAULT_MODEL, index: EmbeddingIndex | None = None,
                 use_landmarks: bool = True, embedder: Embedder | None = None):
        self.lib = lib
        self.model = model
        if embedder is None:
            # with torch, imported here: what only reads the index needs none
            from musicemb_core.inference import library_embedder

            embedder = library_embedder(lib, model)
        self.embedder = embedder
        self.index = index or open_index(lib, model)
        if self.index.ntotal == 0:
            raise LibraryError(f"{lib.root}: no segments embedded with {model!r}; import audio and run `musicemb embed`")
        self.landmarks = _landmark_index(lib) if use_landmarks else None
        seg = lib.segments()
        self.seg_track = dict(zip(seg["id"].tolist(), seg["track_id"].tolist(), strict=True))
        self.seg_start = dict(zip(seg["id"].tolist(), seg["start_s"].tolist(), strict=True))
        self.tracks = {t.id: t for t in lib.tracks()}
        self.marked = (self.landmarks.current_tracks({t: tr.content_hash for t, tr in self.tracks.items()})
                       if self.landmarks is not None else set())  # landmarks of their audio now
        self.seg_ids = seg["id"]  # sorted
        # vectors of segments cut again or removed since the embed: passed over, so searches reach further
        known, embedded_tracks = tracks_of(seg, load_embeddings(lib, model).ids)
        self.stale = int((~known).sum())
        # tracks none of whose segments has a vector of the model (imported, not embedded yet): never found; and,
        # in a library with landmarks (none: `index --no-landmarks`), those without landmarks of their audio now
        # (an `index` or `embed` stopped early): identify finds them by their vectors alone
        cut_tracks = np.unique(seg["track_id"])
        self.unembedded = set(np.setdiff1d(cut_tracks, embedded_tracks).tolist())
        self.unmarked = (set(np.setdiff1d(cut_tracks, np.fromiter(self.marked, np.int64)).tolist())
                         if self.landmarks is not None else set())

    def embed_audio(self, y: np.ndarray, *, sr: int | None = None, hop_s: float = 0.5, path: str = "") -> QueryVectors:
        """Sub-track vectors of mono float audio ``y`` (checked by :func:`mono_samples`) at ``sr`` Hz, resampled
        to the model's rate; None: ``y`` is at the model's rate. Sub-tracks above ``SILENCE_DBFS`` are compared;
        when none is, but the audio is not silent by import's rule (a quiet recording), every one is."""
        y = mono_at(y, sr, self.embedder.sr)
        if not hop_s > 0:
            raise ConfigError(f"hop_s must be > 0 seconds, got {hop_s!r}")
        sr, w = self.embedder.sr, self.embedder.window_s
        dur = len(y) / sr
        starts = np.arange(0.0, max(dur - w, 0.0) + 1e-9, hop_s)
        vectors, active = [], []
        for a in range(0, len(starts), 64):  # 64 windows at a time: an hour's 7,200 would take 1.4 GB at once
            part = starts[a:a + 64]
            clips = cut(y, sr, part, window_s=w)
            valid = np.minimum(clips.shape[1], np.maximum(1, len(y) - np.round(part * sr).astype(int)))
            rms = np.sqrt((clips**2).sum(axis=1) / valid)
            active.append(20 * np.log10(np.maximum(rms, 1e-12)) > SILENCE_DBFS)
            vectors.append(self.embedder(clips))
        vectors, active = np.concatenate(vectors), np.concatenate(active)
        if not active.any() and not is_silent(y):  # a quiet recording (a field recording's ambience): every
            active[:] = True  # sub-track counts, as import took the library's own quiet recordings
        marks = None
        if self.landmarks is not None:
            from musicemb_core.features import landmarks as lm

            head = y[: int(SPEED_SEARCH_S * sr)]
            marks = [lm.landmarks(y, sr)] + [lm.landmarks(head, sr * g) for g in SPEED_FACTORS]
        return QueryVectors(path, vectors, starts, active, marks)

    def landmark_matches(self, q: QueryVectors) -> tuple[dict[int, int], dict[int, float]]:
        """Per track, the most query landmarks aligned at one offset over the speeds the query was read at, and
        the speed the query plays at (1.03: 3 % faster than the library's recording): 1 unless another reading
        aligns twice as many landmarks as the query as it is; then, of the readings within 10 % of the best count,
        the one nearest the recording's own speed (neighbouring readings share many hashes)."""
        counts: dict[int, dict[float, int]] = {}
        if self.landmarks is None or not q.landmarks:
            return {}, {}
        for factor, (hashes, times) in zip((1.0, *SPEED_FACTORS), q.landmarks, strict=False):
            if len(hashes):
                for t, c in self.landmarks.match(hashes, times).items():
                    if t in self.marked:  # not a track removed, or whose audio changed, since the landmarks were built
                        counts.setdefault(t, {})[factor] = c
        best = {t: max(by.values()) for t, by in counts.items()}
        speed = {t: 1.0 if 2 * by.get(1.0, 0) > best[t] else round(1.0 / min(  # read at `factor` x its rate:
            (f for f, c in by.items() if c >= 0.9 * best[t]), key=lambda f: abs(f - 1.0)), 3)  # 1 / factor as fast
                 for t, by in counts.items()}
        return best, speed

    def embed_file(self, path: str | Path, *, hop_s: float = 0.5) -> QueryVectors:
        """The query file's sub-track vectors. A file silent by import's rule is an :class:`AudioError` (it has
        nothing to compare); in a quiet one (a field recording's ambience) without a sub-track above
        ``SILENCE_DBFS``, every sub-track counts, as import took the library's own quiet recordings."""
        y, _ = load(path, sr=self.embedder.sr)
        check_not_silent(y, path)
        return self.embed_audio(y, hop_s=hop_s, path=str(path))

    def _track_result(self, tid: int, score: float) -> dict:
        t = self.tracks[tid]
        return {"track_id": tid, "path": t.path, "label": t.label, "score": round(float(score), 4)}

    def _neighbours(self, vectors: np.ndarray, k: int) -> list[list[tuple[float, int]]]:
        """Per row of ``vectors``: (cosine, segment id) of its ``k`` nearest segments still in the library, best
        first. Stale vectors (:attr:`stale`) are passed over: a row short of ``k`` is searched again, 4 times as
        far, up to ``k + stale``; an index holding no current segment is a :class:`LibraryError`."""
        k = check_count(k)
        n = self.index.ntotal
        if self.stale >= n:
            raise LibraryError(f"{self.lib.root}: none of the segments embedded with {self.model!r} is in the library "
                               "now (cut again or removed since the embed); run `musicemb embed`")
        out: list = [None] * len(vectors)
        todo, reach = np.arange(len(vectors)), k
        while len(todo):
            reach = min(reach, k + self.stale, n)
            scores, ids = self.index.search(vectors[todo], reach)
            pos = np.minimum(np.searchsorted(self.seg_ids, ids), len(self.seg_ids) - 1)
            current = self.seg_ids[pos] == ids  # not -1, nor a stale vector
            short = []
            for r, row_s, row_i, ok in zip(todo, scores, ids, current, strict=True):
                if ok.sum() < k and reach < min(k + self.stale, n):
                    short.append(r)
                else:
                    out[r] = list(zip(row_s[ok][:k].tolist(), row_i[ok][:k].tolist(), strict=True))
            todo, reach = np.array(short, dtype=np.int64), 4 * reach
        return out

    def nearest(self, q: QueryVectors, *, k: int = 10) -> list[dict]:
        """Per sub-track: its k nearest segments with track, path, start and cosine score."""
        return [{"query_start_s": float(start), "neighbours": [
                    {"segment_id": i, "track_id": self.seg_track[i], "path": self.tracks[self.seg_track[i]].path,
                     "start_s": self.seg_start[i], "score": round(s, 4)} for s, i in row]}
                for start, row in zip(q.starts, self._neighbours(q.vectors, k), strict=True)]

    def identify(self, q: QueryVectors, *, k: int = 10, top: int = 10) -> list[dict]:
        """Tracks ranked by a score vote: each sub-track gives every track among its k neighbours its best
        cosine; a track's score is the mean over the query's sub-tracks (silent ones give 0); fused with the
        landmark matches (:func:`fuse`) where the library has landmarks. With 15 or more aligned landmarks a result
        also gives the ``speed`` the query plays at against the library's recording (1.03: 3 % faster). Tracks
        with no evidence (score 0: no embedding vote, chance landmark matches only) are left out."""
        top = check_count(top, "top", least=0)
        votes: dict[int, float] = defaultdict(float)
        for row, act in zip(self._neighbours(q.vectors, k), q.active, strict=True):
            if not act:
                continue
            best: dict[int, float] = {}
            for s, i in row:
                t = self.seg_track[i]
                best[t] = max(best.get(t, -1.0), s)
            for t, s in best.items():
                votes[t] += max(s, 0.0)
        n = max(1, len(q.vectors))
        scores_by_track = {t: v / n for t, v in votes.items()}
        matches, speeds = self.landmark_matches(q)
        ranked = [(t, v) for t, v in (fuse(scores_by_track, matches) if self.landmarks is not None
                                      else sorted(scores_by_track.items(), key=lambda kv: -kv[1])) if v > 0][:top]
        return [self._track_result(t, v) | ({"landmarks": matches.get(t, 0)} if self.landmarks is not None else {})
                | ({"speed": speeds[t]} if matches.get(t, 0) >= LANDMARK_FLOOR + LANDMARK_SPAN // 2 else {})
                for t, v in ranked]

    def classify(self, q: QueryVectors, *, k: int = 10, top: int = 2) -> list[dict]:
        """Labels ranked by a kNN vote: each sub-track spreads weight 1 over its neighbours' labels (weighted by
        cosine); scores are fractions of the query's sub-tracks (silent ones give 0)."""
        top = check_count(top, "top", least=0)
        votes: dict[str, float] = defaultdict(float)
        for row, act in zip(self._neighbours(q.vectors, k), q.active, strict=True):
            if not act:
                continue
            w = {i: max(s, 1e-6) for s, i in row}
            total = sum(w.values())
            for i, wi in w.items():
                label = self.tracks[self.seg_track[i]].label
                if label:
                    votes[label] += wi / total
        n = max(1, len(q.vectors))
        ranked = sorted(votes.items(), key=lambda kv: -kv[1])[:top]
        return [{"label": lab, "score": round(v / n, 4)} for lab, v in ranked]
