"""Track-level "more like this" in the similarity space: each track is one vector aggregated from its segments
(stored by ``embed``); a query is a track of the library (id or path), or any audio file, or several of them
together (their centroid: "tracks like these"). The query's own tracks are left out of the answer.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from musicemb_core.analysis.checks import check_count
from musicemb_core.analysis.track_vectors import aggregate, relative_to_library, tagged_track_vectors
from musicemb_core.audio.decode import info, load
from musicemb_core.audio.resample import mono_at
from musicemb_core.audio.segment import cut, window_starts
from musicemb_core.audio.validate import check_not_silent
from musicemb_core.common.config import MAX_QUERY_S, SegmentConfig
from musicemb_core.common.errors import AudioError, ConfigError, LibraryError, MusicEmbError
from musicemb_core.common.paths import user_path
from musicemb_core.data.library import Library, track_title
from musicemb_core.features.camelot import Key, compatible, parse_key_or_none
from musicemb_core.features.tempo_key import analyse, key_camelot, tag_bpm
from musicemb_core.index import EmbeddingIndex
from musicemb_core.stored_vectors import (
    SIMILARITY_MODEL,
    load_track_vectors,
    tag_statistics_of,
    track_statistics,
)

# versions and fingerprints are imported where used: their landmarks import scipy.ndimage (0.2-0.5 s)
if TYPE_CHECKING:
    from musicemb_core.inference import Embedder
    from musicemb_core.search.versions import VersionFinder

SILENCE_DBFS = -60.0
"""A query's segments at or below this RMS level are left out of its vector where it has louder ones."""


class SimilarTracks:
    """A library opened for track-level similarity with ``model`` (by default the built-in similarity model)."""

    def __init__(self, lib: Library, *, model: str = SIMILARITY_MODEL):
        from musicemb_core.search.fingerprints import landmark_folder  # not at the top: see above

        self.lib = lib
        self.model = model
        self.tracks = {t.id: t for t in lib.tracks()}
        ids, vectors = load_track_vectors(lib, model)
        known = np.isin(ids, list(self.tracks))  # not tracks removed since the embed
        self.track_ids, self.vectors = ids[known], vectors[known]
        self._relative = track_statistics(lib, model)
        self._tags = tag_statistics_of(lib, model)
        self.row = {int(t): i for i, t in enumerate(self.track_ids)}
        self.index = EmbeddingIndex("flat").fit(self.vectors, self.track_ids)
        self._by_path = {str(Path(t.path)): t.id for t in self.tracks.values()}
        self._by_real: dict[str, int] | None = None  # the same by the files' real paths, made when first needed
        self._embedder: Embedder | None = None
        self._versions: VersionFinder | None | bool = False  # opened on first use; None: no landmarks
        self._landmarks = landmark_folder(lib)
        self._query_mix: dict[str, tuple[float | None, Key | None, str, str]] = {}  # bpm, key and why not

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from musicemb_core.inference import library_embedder  # with torch: only a query file needs it

            self._embedder = library_embedder(self.lib, self.model)
        return self._embedder

    @property
    def version_finder(self) -> VersionFinder | None:
        """Versions sharing a query's audio, from the library's landmarks (None when it has none: ``embed`` and
        ``index`` build them). Tracks whose audio changed since take no part."""
        if self._versions is False:
            from musicemb_core.search.versions import VersionFinder

            self._versions = VersionFinder.open(self._landmarks, {t.id: t.content_hash for t in self.tracks.values()})
        return self._versions

    def _method(self) -> str:
        train = self.embedder.info.train
        return (train.get("aggregation") if isinstance(train, dict) else None) or "mean+std"

    def audio_vector(self, y: np.ndarray, *, sr: int | None = None, path: str = "") -> np.ndarray:
        """The track vector of mono float audio ``y`` (checked by :func:`mono_samples`) at ``sr`` Hz (None: the
        model's rate), from its segments above :data:`SILENCE_DBFS`, else (a quiet field recording) from all of
        them, as ``embed`` made its track's; a query silent by the
        import's rule (peak at or below :data:`~musicemb_core.audio.validate.SILENCE_DBFS`) is an
        :class:`AudioError`."""
        y = mono_at(y, sr, self.embedder.sr)
        sr, w = self.embedder.sr, self.embedder.window_s
        check_not_silent(y, path or "query")
        starts = window_starts(len(y) / sr, SegmentConfig(w, w))
        clips = cut(y, sr, starts, window_s=w)
        loud = 20 * np.log10(np.maximum(np.sqrt((clips**2).mean(axis=1)), 1e-12)) > SILENCE_DBFS
        clips = clips[loud] if loud.any() else clips
        X = np.concatenate([self.embedder(clips[a:a + 64]) for a in range(0, len(clips), 64)])
        V = aggregate(X, np.zeros(len(X), np.int64), method=self._method())[1]
        V = V if self._relative is None else relative_to_library(V, *self._relative)
        if self._tags is not None and self.embedder.has_tagger:  # as embed made the library's tracks
            raw = self.embedder.tag(clips)
            V = tagged_track_vectors(V, np.zeros(1, np.int64), raw, np.zeros(len(raw), np.int64), self._tags,
                                     self.embedder.tag_weight)
        return V[0]

    def resolve(self, query: str | int) -> tuple[np.ndarray, list[int]]:
        """(vector, own track ids) of a query: a track id, the path of a library track, or an audio file."""
        text = str(query).strip()
        path = user_path(text)
        tid = self._track_of_file(path) if path.exists() else None
        if tid is not None and tid in self.row:  # a library track's path
            return self.vectors[self.row[tid]], [tid]
        # an id, also where a file of that name is in the current folder (as export and set read it); not
        # isdigit: int("²") fails
        if text.isdecimal() and (int(text) in self.tracks or not path.exists()):
            tid = int(text)
            if tid not in self.row:
                why = ("" if tid not in self.tracks else " embedded yet; run `musicemb embed`"
                       if Path(self.tracks[tid].path).exists() else f" embedded: its file {self.tracks[tid].path} "
                       "is gone (moved? import its new place)")
                raise LibraryError(f"{self.lib.root}: no track with id {tid}{why}")
            return self.vectors[self.row[tid]], [tid]
        if not path.exists():
            raise AudioError(text, "no such file, and not a track id of this library")
        if info(path).duration_s > MAX_QUERY_S:
            raise AudioError(text, f"longer than {MAX_QUERY_S / 60:.0f} min: import it and query it by track id")
        y, _ = load(path, sr=self.embedder.sr)
        tk = analyse(y, self.embedder.sr)
        self._query_mix[text] = (tk.bpm, parse_key_or_none(tk.key), tk.bpm_reason, tk.key_reason)
        return self.audio_vector(y, path=text), []

    def _track_of_file(self, path: Path) -> int | None:
        """The library track whose file ``path`` is: by the path catalogued (which may run through a linked
        folder), else by the real file both paths lead to."""
        tid = self._by_path.get(str(path.absolute()))  # not abspath: "link/.." is not "."
        if tid is None:
            if self._by_real is None:
                self._by_real = {os.path.realpath(p): t for p, t in self._by_path.items()}
            tid = self._by_real.get(os.path.realpath(path))
        return tid

    def _mix(self, tid: int) -> tuple[float | None, Key | None]:
        """A library track's tempo and key: our estimate, else its tags'."""
        t = self.tracks[tid]
        bpm = t.bpm if t.bpm is not None else tag_bpm(t.tags or {})  # as `tracks` lists it ("nan" is no tempo)
        return bpm, parse_key_or_none(t.key or (t.tags or {}).get("initialkey") or (t.tags or {}).get("key"))

    def result(self, tid: int, score: float, *, version: bool = False) -> dict:
        t = self.tracks[tid]
        return {"track_id": tid, "path": t.path, "title": track_title(t.tags, t.path),
                "artist": (t.tags or {}).get("artist", ""), "label": t.label, "score": round(float(score), 4),
                "version": version, "bpm": t.bpm, "key": t.key, "camelot": key_camelot(t.key)}

    def similar_to(self, vector: np.ndarray, *, k: int = 10, exclude: list[int] | tuple = (),
                   mixable=None, versions: dict[int, float] | None = None) -> list[dict]:
        """The ``k`` tracks nearest ``vector`` (cosine), best first, ``exclude`` left out; with ``mixable``
        (track id -> bool) only those it keeps, from a ranking of every track (filters apply after ranking).
        ``versions`` (track id -> shared audio, :mod:`musicemb_core.search.versions`) come first, marked
        ``"version": True``. ``vector``: one finite track vector of this space."""
        from musicemb_core.search.versions import versions_first  # not at the top: see above

        k, vector = check_count(k, least=0), self._check_vector(vector)
        skip = set(exclude)
        found = {t: v for t, v in (versions or {}).items()
                 if t in self.row and t not in skip and (mixable is None or mixable(t))}
        n = min(len(self.track_ids), len(self.track_ids) if mixable else k + len(skip))
        if n == 0:
            return []
        scores, ids = self.index.search(vector[None, :], n)
        ranked = {int(t): float(s) for s, t in zip(scores[0], ids[0], strict=True)
                  if t >= 0 and int(t) not in skip and (mixable is None or mixable(int(t)))}
        for t in found:  # a version further away than the k nearest
            ranked.setdefault(t, float(self.vectors[self.row[t]] @ vector))
        order = versions_first(list(ranked), found)[:k]
        return [self.result(t, ranked[t], version=t in found) for t in order]

    def _check_vector(self, vector) -> np.ndarray:
        """``vector`` as float32, a :class:`ConfigError` unless it is a finite track vector of this space."""
        v = np.asarray(vector, np.float32)
        if v.shape != self.vectors.shape[1:] or not np.isfinite(v).all():
            raise ConfigError(f"vector: a track vector of {self.model!r} is {self.vectors.shape[1:]} finite values, "
                              f"got shape {v.shape}{'' if np.isfinite(v).all() else ' with NaN/Inf'}")
        return v

    def versions_of(self, query: str, own: list[int]) -> dict[int, float]:
        """Tracks sharing audio with a query (a library track's file, or any audio file), its own left out; {}
        without landmarks."""
        finder = self.version_finder
        if finder is None:
            return {}
        path = self.tracks[own[0]].path if own else str(user_path(str(query).strip()))
        return finder.of_file(path, exclude=set(own))

    def _mixable(self, queries: list[tuple[str, list[int]]], *, bpm_range: float | None, key_compatible: bool):
        """A track-id predicate: within ``bpm_range`` % of a query's tempo (half/double time allowed) and/or
        harmonically compatible with its key; with several queries (``together``), with any of them. None when
        neither filter is asked for. A query without a tempo/key is a one-line error naming it and why."""
        if bpm_range is None and not key_compatible:
            return None
        from musicemb_core.analysis.set_order import bpm_gap_percent  # numba (0.3 s): only for this filter

        refs = []
        for q, own in queries:
            if own:
                bpm, key = self._mix(own[0])
                said = self.tracks[own[0]].analysis or {}
                why_bpm, why_key = (said.get(k) or "not analysed" for k in ("bpm_reason", "key_reason"))
            else:
                bpm, key, *reasons = self._query_mix.get(str(q).strip(), (None, None, None, None))
                why_bpm, why_key = (r or "not analysed" for r in reasons)
            if bpm_range is not None and bpm is None:
                raise MusicEmbError(f"{q}: no tempo to filter by ({why_bpm}); leave out --bpm-range")
            if key_compatible and key is None:
                raise MusicEmbError(f"{q}: no key to filter by ({why_key}); leave out --key-compatible")
            refs.append((bpm, key))

        def ok(tid: int) -> bool:
            bpm, key = self._mix(tid)
            for qb, qk in refs:
                if bpm_range is not None and (bpm is None or bpm_gap_percent(qb, bpm) > bpm_range):
                    continue
                if key_compatible and (key is None or not compatible(qk, key)):
                    continue
                return True
            return False

        return ok

    def query(self, queries: list[str], *, k: int = 10, together: bool = False, versions: bool = True,
              bpm_range: float | None = None, key_compatible: bool = False) -> list[dict]:
        """``[{"query", "results"}]`` per query, or one entry for all of them with ``together``. With
        ``versions`` the tracks sharing a query's audio come first (:meth:`versions_of`).

        ``bpm_range`` (percent) and ``key_compatible`` keep only tracks mixable with the query (see
        :meth:`_mixable`), applied after ranking. One query may be given alone, not in a list."""
        if isinstance(queries, str | int | np.integer | os.PathLike):
            queries = [queries]
        if bpm_range is not None and (isinstance(bpm_range, bool) or not isinstance(bpm_range, int | float)
                                      or not 0 <= bpm_range < math.inf):
            raise ConfigError(f"bpm_range is a percentage >= 0 (or None), got {bpm_range!r}")
        if together and not queries:
            raise ConfigError("together needs at least one query")
        resolved = [(q, *self.resolve(q)) for q in queries]
        if together:
            centre = np.mean([v for _, v, _ in resolved], axis=0)
            centre /= max(float(np.linalg.norm(centre)), 1e-12)
            own = [t for _, _, ts in resolved for t in ts]
            mix = self._mixable([(q, ts) for q, _, ts in resolved], bpm_range=bpm_range, key_compatible=key_compatible)
            return [{"query": " + ".join(str(q) for q in queries),
                     "results": self.similar_to(centre, k=k, exclude=own, mixable=mix)}]
        return [{"query": str(q), "results": self.similar_to(
                    v, k=k, exclude=own, mixable=self._mixable([(q, own)], bpm_range=bpm_range,
                                                               key_compatible=key_compatible),
                    versions=self.versions_of(q, own) if versions else None)}
                for q, v, own in resolved]
