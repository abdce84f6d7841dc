"""Other versions of a piece (a remaster, a re-arrangement, a chiptune cover) among a track's candidates, by
its tune: the melodies the library's QBH index keeps (:mod:`musicemb_core.search.qbh`, built by ``embed``).

The similarity space hears how a track sounds; a re-arranged version sounds different but carries the same tune.
A few excerpts of the query's melody (:data:`EXCERPTS` of :data:`EXCERPT_S`, spread over it) are aligned like hums
(:mod:`musicemb_core.search.melody_align`: any key, half to double tempo, anywhere in the track) against each
candidate's melody by the coarse pass, and a candidate whose mean score stands out from the other candidates'
(robust z-score >= :data:`VERSION_Z`) counts as the same tune. Candidates are the query's nearest tracks in the
similarity space, as many as :data:`VERSION_BUDGET` melody frames allow (every track of a library of a few hundred).

Chosen on the tune split (``bench/version_tune.py``: the tune games' 64 tracks and 40 tunes of the training
collections each rendered in two arrangements with two soundfonts): the other arrangement ranked first for 0.04 of
the renderings by the similarity space alone, 0.83 with the same-tune candidates moved first; style 1-NN 0.922 ->
0.906 and precision@5 0.769 unchanged on the games' own tracks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musicemb_core.common.errors import LibraryError
from musicemb_core.common.names import model_key
from musicemb_core.data import layout
from musicemb_core.data.library import Library
from musicemb_core.search.melody_align import CoarseMelodies, prepare_query
from musicemb_core.search.qbh import DEFAULT_QBH_MODEL, MelodyStore, dense_melody

EXCERPTS = 3
EXCERPT_S = 10.0
VOICED = 0.5  # a melody frame whose likeliest pitch class has at least this probability is sung
VERSION_Z = 3.0
VERSION_BUDGET = 1_000_000  # half-rate melody frames aligned per query (~0.2 s on one core)
MIN_CANDIDATES = 20
MIN_SPREAD = 0.02  # floor of the candidates' score spread (a handful of near-equal scores)


def melody_queries(chroma: np.ndarray, frame_rate: float) -> list[np.ndarray]:
    """Prepared alignment queries (:func:`prepare_query`) of :data:`EXCERPTS` excerpts spread over a melody
    chromagram (frames, 12): each frame's likeliest pitch class where it is sung, nothing where it is not."""
    chroma = np.asarray(chroma, dtype=np.float64)
    n = int(round(EXCERPT_S * frame_rate))
    out = []
    for s in np.linspace(0, max(len(chroma) - n, 0), EXCERPTS).astype(int):
        seg = chroma[s:s + n]
        if not len(seg):
            continue
        pitch = seg.argmax(axis=1).astype(np.float64) + 60.0
        pitch[seg.max(axis=1) < VOICED] = np.nan
        q = prepare_query(pitch)
        if q is not None:
            out.append(q)
    return out


def same_tune(scores: np.ndarray) -> np.ndarray:
    """Which of the candidates' mean alignment scores stand out from the rest: robust z-score (median, 1.4826
    MAD, floor :data:`MIN_SPREAD`) of at least :data:`VERSION_Z`."""
    s = np.asarray(scores, dtype=np.float64)
    if len(s) < 3:
        return np.zeros(len(s), dtype=bool)
    med = np.median(s)
    spread = max(1.4826 * float(np.median(np.abs(s - med))), MIN_SPREAD)
    return (s - med) / spread >= VERSION_Z


@dataclass
class VersionFinder:
    """A library's stored melodies, opened to find versions among a query's candidates."""

    store: MelodyStore
    frame_rate: float

    @classmethod
    def open(cls, lib: Library, model: str = DEFAULT_QBH_MODEL) -> VersionFinder | None:
        """The library's melodies (its QBH index, even if a few tracks are missing from it), or None if it has
        none yet (``embed`` builds it)."""
        art = layout.qbh_index(lib, model_key(model))
        try:
            def load(gen):
                meta = layout.read_json(gen / "meta.json") or {}
                path = gen / "melody.npz"
                return cls(MelodyStore.load(path), float(meta["frame_rate"])) if path.exists() else None
            return art.read(load)
        except (LibraryError, KeyError, OSError, ValueError):
            return None

    def has(self, track_id: int) -> bool:
        return int(track_id) in self.store.row

    def track_queries(self, track_id: int) -> list[np.ndarray]:
        return melody_queries(self.store.chroma(track_id), self.frame_rate)

    def candidates(self, ranked: list[int]) -> list[int]:
        """The first of ``ranked`` (track ids, nearest first) that have a melody, within the budget."""
        out, used = [], 0
        for t in ranked:
            i = self.store.row.get(int(t))
            if i is None:
                continue
            frames = (int(self.store.bounds[i + 1] - self.store.bounds[i]) + 1) // 2 * EXCERPTS
            if len(out) >= MIN_CANDIDATES and used + frames > VERSION_BUDGET:
                break
            out.append(int(t))
            used += frames
        return out

    def scores(self, queries: list[np.ndarray], track_ids: list[int]) -> np.ndarray:
        """Mean coarse alignment score of ``queries`` against each track's melody (0 without queries)."""
        if not queries or not track_ids:
            return np.zeros(len(track_ids))
        rows = [self.store.row[int(t)] for t in track_ids]
        b = self.store.bounds
        bounds = np.concatenate([[0], np.cumsum([b[i + 1] - b[i] for i in rows])]).astype(np.int64)
        coarse = CoarseMelodies(np.concatenate([self.store.bins[b[i]:b[i + 1]] for i in rows]),
                                np.concatenate([self.store.probs[b[i]:b[i + 1]] for i in rows]), bounds)
        every = np.arange(len(rows))
        return np.mean([coarse.scores(q, every) for q in queries], axis=0)

    def versions(self, queries: list[np.ndarray], ranked: list[int]) -> dict[int, float]:
        """{track id: mean alignment score} of the candidates of ``ranked`` that carry the queries' tune, best
        first."""
        cands = self.candidates(ranked)
        s = self.scores(queries, cands)
        keep = np.flatnonzero(same_tune(s))
        return {cands[i]: float(s[i]) for i in keep[np.argsort(-s[keep], kind="stable")]}


def audio_melody(y: np.ndarray, sr: int, model: str = DEFAULT_QBH_MODEL) -> tuple[np.ndarray, float]:
    """The melody chromagram (frames, 12) of mono audio ``y`` at ``sr`` by the QBH model, and its frame rate."""
    from musicemb_core.audio.resample import resample
    from musicemb_core.models.qbh import QBHModel
    from musicemb_core.search.qbh import qbh_model_folder, song_features, sparse_melody

    net = QBHModel.load(qbh_model_folder(None, model))
    y = resample(np.asarray(y, dtype=np.float32), sr, net.cfg.sr) if sr != net.cfg.sr else y
    P, _ = song_features(net, y, np.zeros(0))
    return dense_melody(*sparse_melody(P)), net.cfg.frame_rate
