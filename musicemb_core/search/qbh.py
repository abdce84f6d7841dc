"""Query by humming over a library: a hum -> ranked tracks.

Index time (:func:`iter_build_qbh_index`): every track's melody chromagram is extracted once (the model's
melody extractor on the mix) and kept (top pitch classes per frame, 12.5 frames/s) in
``index/qbh/<model>/`` (``melody.npz``); every library segment gets a song-side embedding of the window starting at
that segment, kept in a FAISS index beside it.

Query time (:class:`HumSearcher`): the hum's f0 contour (swift-f0) is cut into windows, each embedded by the hum
encoder and searched; tracks are ranked by their best window/segment match. ``rerank`` (the default) then scores
``candidates`` tracks by melody alignment (:mod:`musicemb_core.search.melody_align`) of the whole hum against the
stored melody: the best of a coarse alignment pass over every track (or, past :data:`COARSE_BUDGET`, over the
embedding's best tracks) plus the embedding's own best, with the embedding's score as a small bonus.
``embedding`` skips the alignment; ``melody`` aligns exactly against every track (slow on big libraries).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from musicemb_core.audio.decode import load
from musicemb_core.audio.devices import trim_silence
from musicemb_core.audio.resample import resample
from musicemb_core.common.errors import AudioError, ConfigError, LibraryError
from musicemb_core.common.names import is_path_like, model_key
from musicemb_core.common.progress import CancelToken, EtaClock, JobGen, Progress, drive
from musicemb_core.data import layout
from musicemb_core.data.library import Library
from musicemb_core.features.pitch import pitch_contour
from musicemb_core.index import EmbeddingIndex
from musicemb_core.models.qbh import N_CHROMA, QBHModel, contour_chromagram
from musicemb_core.resources import resources_dir
from musicemb_core.search.melody_align import CoarseMelodies, align, prepare_query

DEFAULT_QBH_MODEL = "qbh-default"
METHODS = ("rerank", "embedding", "melody")
TOP_BINS = 3
HUM_WINDOW_FACTOR = 1.4  # hum windows span this many song windows (hums are often slower than the song)
COARSE_BUDGET = 2_500_000  # half-rate melody frames the coarse pass scans per query (~0.5 s on 2 cores; 10,000 x 40 s)


def qbh_model_folder(lib: Library | None, name: str = DEFAULT_QBH_MODEL) -> Path:
    """A QBH model: the library's ``models/<name>``, a folder path (read-only), or the built-in ``qbh-default``."""
    model_key(name)  # a valid name, or a path to a model folder
    candidates = ([lib.root / "models" / name] if lib is not None and not is_path_like(name) else []) + [Path(name)]
    if name == DEFAULT_QBH_MODEL:
        candidates.append(resources_dir() / "models" / DEFAULT_QBH_MODEL)
    for folder in candidates:
        if (folder / "config.json").exists():
            return folder
    raise ConfigError(f"no query-by-humming model {name!r} (looked in {', '.join(map(str, candidates))}); "
                      "train one with `musicemb train LIB --strategy qbh`")


def sparse_melody(P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Chromagram (13, frames) -> its ``TOP_BINS`` most likely pitch classes per frame and their probabilities
    (frames, TOP_BINS), both uint8 (probabilities in 1/255)."""
    top = np.argsort(-P[:N_CHROMA], axis=0)[:TOP_BINS].T
    prob = np.take_along_axis(P[:N_CHROMA].T, top, axis=1)
    return top.astype(np.uint8), np.round(prob * 255).astype(np.uint8)


def dense_melody(bins: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Inverse of :func:`sparse_melody` (frames, 12) float64; pitch classes not kept get probability 0."""
    out = np.zeros((len(bins), N_CHROMA))
    np.put_along_axis(out, bins.astype(np.int64), probs / 255.0, axis=1)
    return out


def index_folder(lib: Library, model: str) -> Path:
    """The current QBH index of ``model`` (a generation of ``index/qbh/<model>``, or the old layout's
    ``index/qbh-<model>``); the artefact folder when there is none yet."""
    art = layout.qbh_index(lib, model_key(model))
    return art.current() or art.folder


def _source_key(lib: Library, model_folder: Path) -> str:
    seg = lib.segments()
    h = hashlib.blake2b(digest_size=12)
    h.update((model_folder / "model.safetensors").read_bytes())
    h.update(np.ascontiguousarray(seg["id"]).tobytes())
    for t in lib.tracks():
        h.update(f"{t.id}:{t.content_hash};".encode())
    return h.hexdigest()


@torch.inference_mode()
def song_features(model: QBHModel, y: np.ndarray, starts_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A track at the model's rate -> (melody chromagram (13, frames), song embeddings of windows at ``starts_s``)."""
    cfg = model.cfg
    S = cfg.salience()(torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32)))
    P = model.extractor.chromagram(S[None])[0]
    W = int(round(cfg.window_s * cfg.frame_rate))
    wins = torch.zeros((len(starts_s), N_CHROMA + 1, W))
    wins[:, N_CHROMA] = 1.0
    for r, s in enumerate(starts_s):
        a = int(round(s * cfg.frame_rate))
        seg = P[:, a:a + W]
        wins[r, :, :seg.shape[1]] = seg
    Z = torch.cat([model.song(wins[i:i + 64]) for i in range(0, len(wins), 64)]) if len(wins) else torch.zeros(
        (0, cfg.dim))
    return P.numpy(), Z.numpy()


@layout.writes_library("qbh-index")
def iter_build_qbh_index(lib: Library, *, model: str = DEFAULT_QBH_MODEL,
                         cancel: CancelToken | None = None) -> JobGen[Path]:
    """Extract every track's melody and embed every segment with the song encoder, publish them as the
    library's QBH index of ``model``; returns the index folder (its new generation)."""
    art = layout.qbh_index(lib, model_key(model))
    with art.publish() as gen:
        yield from _iter_build_into(lib, gen, model=model, cancel=cancel)
    return art.current()


def _iter_build_into(lib: Library, folder: Path, *, model: str, cancel: CancelToken | None) -> JobGen[Path]:
    """:func:`iter_build_qbh_index`'s work, written into ``folder``."""
    cancel = cancel or CancelToken()
    mfolder = qbh_model_folder(lib, model)
    net = QBHModel.load(mfolder)
    seg = lib.segments()
    tracks = lib.tracks()
    if not len(seg["id"]):
        raise LibraryError(f"{lib.root}: no segments to index; import audio first")
    ids, vecs, mel_tracks, mel_bins, mel_probs, bounds, failed = [], [], [], [], [], [0], []
    clock = EtaClock()
    for k, t in enumerate(tracks, 1):
        cancel.check()
        rows = np.flatnonzero(seg["track_id"] == t.id)
        try:
            y, _ = load(t.path, sr=net.cfg.sr)
        except AudioError as e:
            failed.append((t.path, e.reason))
            continue
        P, Z = song_features(net, y, seg["start_s"][rows])
        b, p = sparse_melody(P)
        ids.append(seg["id"][rows])
        vecs.append(Z)
        mel_tracks.append(t.id)
        mel_bins.append(b)
        mel_probs.append(p)
        bounds.append(bounds[-1] + len(b))
        yield Progress("qbh-index", k, len(tracks), t.path, clock.eta(k, len(tracks)))
    if not vecs:
        raise LibraryError(f"{lib.root}: no track could be decoded for the QBH index ({failed[0][0]}: {failed[0][1]})")
    index = EmbeddingIndex("auto").fit(np.concatenate(vecs), np.concatenate(ids))
    index.save(folder / "vectors.faiss", meta={"model": str(model)})
    with open(folder / "melody.npz", "wb") as f:
        np.savez(f, track_ids=np.array(mel_tracks, np.int64), bounds=np.array(bounds, np.int64),
                 bins=np.concatenate(mel_bins), probs=np.concatenate(mel_probs))
    (folder / "meta.json").write_text(json.dumps({
        "model": str(model), "source": _source_key(lib, mfolder), "frame_rate": net.cfg.frame_rate,
        "failed": failed}))
    return folder


@dataclass
class MelodyStore:
    """Stored melodies: track ids, frame bounds, sparse pitch classes (see :func:`sparse_melody`)."""

    track_ids: np.ndarray
    bounds: np.ndarray
    bins: np.ndarray
    probs: np.ndarray

    def __post_init__(self) -> None:
        self.row = {int(t): i for i, t in enumerate(self.track_ids)}
        self._coarse: CoarseMelodies | None = None

    @property
    def coarse(self) -> CoarseMelodies:
        """The melodies at half rate for the coarse alignment pass (built on first use)."""
        if self._coarse is None:
            self._coarse = CoarseMelodies(self.bins, self.probs, self.bounds)
        return self._coarse

    def chroma(self, track_id: int) -> np.ndarray:
        i = self.row[int(track_id)]
        a, b = self.bounds[i], self.bounds[i + 1]
        return dense_melody(self.bins[a:b], self.probs[a:b])

    @classmethod
    def load(cls, path: Path) -> MelodyStore:
        with np.load(path) as z:
            return cls(z["track_ids"], z["bounds"], z["bins"], z["probs"])


def qbh_index_current(lib: Library, model: str = DEFAULT_QBH_MODEL) -> bool:
    """Whether the library's QBH index exists and matches its tracks, segments and the model's weights."""
    try:
        meta = layout.qbh_index(lib, model_key(model)).read(lambda gen: layout.read_json(gen / "meta.json"))
    except LibraryError:  # damaged: rebuilt
        return False
    return meta is not None and meta.get("source") == _source_key(lib, qbh_model_folder(lib, model))


def open_qbh_index(lib: Library, model: str = DEFAULT_QBH_MODEL) -> Path:
    """The QBH index folder, (re)built (blocking) when absent or out of date; a GUI runs
    :func:`iter_build_qbh_index` in a worker first when :func:`qbh_index_current` is False."""
    if qbh_index_current(lib, model):
        return index_folder(lib, model)
    return drive(iter_build_qbh_index(lib, model=model))


class HumSearcher:
    """A QBH index opened for hummed queries (see the module docstring); :meth:`open` opens a library's.

    ``query(y, sr)`` -> ranked ``[{track_id, path, label, score, segment_id, start_s, embedding_score,
    melody_score}]``; ``score`` is the ranking score of the method used.

    Parameters
    ----------
    model : QBHModel
    index : EmbeddingIndex
        Song-side vectors keyed by segment id.
    melodies : MelodyStore
    segments : dict with ``id``, ``track_id``, ``start_s`` arrays (as ``Library.segments()``)
    tracks : dict track id -> {"path", "label"}
    """

    def __init__(self, model: QBHModel, index: EmbeddingIndex, melodies: MelodyStore, segments: dict,
                 tracks: dict[int, dict]):
        self.model, self.index, self.melodies, self.tracks = model, index, melodies, tracks
        ids, tids, starts = (np.asarray(segments[k]) for k in ("id", "track_id", "start_s"))
        self.seg_track = dict(zip(ids.tolist(), tids.tolist(), strict=True))
        self.seg_start = dict(zip(ids.tolist(), starts.tolist(), strict=True))
        order = np.lexsort((starts, tids))
        cuts = np.flatnonzero(np.diff(tids[order])) + 1
        self.track_segments = {int(tids[g[0]]): (ids[g], starts[g]) for g in np.split(order, cuts) if len(g)}

    @classmethod
    def open(cls, lib: Library, *, model: str = DEFAULT_QBH_MODEL) -> HumSearcher:
        """The library's QBH index for ``model``, built first when absent or stale."""
        def from_folder(folder: Path) -> HumSearcher:  # everything is read into memory
            return cls(QBHModel.load(qbh_model_folder(lib, model)), EmbeddingIndex.load(folder / "vectors.faiss"),
                       MelodyStore.load(folder / "melody.npz"), lib.segments(),
                       {t.id: {"path": t.path, "label": t.label} for t in lib.tracks()})

        art = layout.qbh_index(lib, model_key(model))
        if qbh_index_current(lib, model):
            return art.read(from_folder)
        if layout.writable(lib):
            with layout.try_write_lock(lib, "qbh-index") as locked:
                if locked:
                    drive(iter_build_qbh_index(lib, model=model))
                    return art.read(from_folder)
        with tempfile.TemporaryDirectory(prefix="musicemb-qbh-") as tmp:  # busy or read-only: not kept
            drive(_iter_build_into(lib, Path(tmp), model=model, cancel=None))
            return from_folder(Path(tmp))

    def hum_contour(self, y: np.ndarray, sr: int) -> np.ndarray:
        """The hum's f0 (fractional MIDI, NaN unvoiced) on the model's chromagram frame grid."""
        y = trim_silence(np.asarray(y, dtype=np.float32), sr, threshold_dbfs=-50.0)
        if len(y) < 0.5 * sr:
            return np.zeros(0)
        y = resample(y, sr, self.model.cfg.sr)
        return pitch_contour(y, self.model.cfg.sr).frames(self.model.cfg.frame_rate)

    @torch.inference_mode()
    def embed_hum(self, midi: np.ndarray) -> np.ndarray:
        """Hum encoder vectors (windows, dim) of a contour, windows every third of their length."""
        cfg = self.model.cfg
        H = int(round(cfg.window_s * cfg.frame_rate * HUM_WINDOW_FACTOR))
        starts = range(0, max(1, len(midi) - H + H // 3), max(1, H // 3))
        wins = np.zeros((len(starts), N_CHROMA + 1, H), np.float32)
        wins[:, N_CHROMA] = 1.0
        for r, a in enumerate(starts):
            part = midi[a:a + H]
            wins[r, :, :len(part)] = contour_chromagram(part)
        return self.model.hum(torch.from_numpy(wins)).numpy()

    def _by_embedding(self, Q: np.ndarray, n: int) -> dict[int, tuple[float, int]]:
        """Track -> (best cosine over hum windows and segments, its segment id), for the ``n`` best tracks."""
        scores, ids = self.index.search(Q, min(self.index.ntotal, max(4 * n, 50)))
        best: dict[int, tuple[float, int]] = {}
        for row_s, row_i in zip(scores, ids, strict=True):
            for s, i in zip(row_s, row_i, strict=True):
                if i < 0:
                    continue
                t = self.seg_track[int(i)]
                if t not in best or s > best[t][0]:
                    best[t] = (float(s), int(i))
        return dict(sorted(best.items(), key=lambda kv: -kv[1][0])[:n])

    def query(self, y: np.ndarray, sr: int, *, k: int = 10, method: str = "rerank",
              candidates: int = 50) -> list[dict]:
        """Ranked tracks for a hummed recording ``y`` (mono, any rate); empty when nothing pitched was heard."""
        if method not in METHODS:
            raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        midi = self.hum_contour(y, sr)
        query = prepare_query(midi)
        if query is None:
            return []
        if method == "melody":
            emb = {int(t): (0.0, -1) for t in self.melodies.track_ids}
        elif method == "embedding":
            emb = self._by_embedding(self.embed_hum(midi), k)
        else:
            emb = self._candidates(query, self.embed_hum(midi), k=k, n=max(k, candidates))
        fr = self.model.cfg.frame_rate
        out = []
        for t, (e_score, seg_id) in emb.items():
            r = {"track_id": t, **self.tracks[t], "embedding_score": round(e_score, 4), "segment_id": seg_id,
                 "start_s": self.seg_start.get(seg_id, 0.0)}
            if method == "embedding":
                r["score"] = r["embedding_score"]
            else:
                a = align(query, self.melodies.chroma(t))
                r |= {"melody_score": round(a.score, 4), "start_s": round(a.start / fr, 2)}
                r["score"] = round(a.score + (0.25 * e_score if method == "rerank" else 0.0), 4)
                if method == "rerank" or seg_id < 0:
                    r["segment_id"] = self._segment_at(t, a.start / fr, seg_id)
            out.append(r)
        return sorted(out, key=lambda r: -r["score"])[:k]

    def _candidates(self, query: np.ndarray, Q: np.ndarray, *, k: int, n: int) -> dict[int, tuple[float, int]]:
        """Tracks to align exactly: the ``n`` best of the coarse alignment pass plus the embedding's ``k`` best.

        The coarse pass scans every track while the library's melodies fit in :data:`COARSE_BUDGET` frames, else
        the embedding's best tracks, as many as fit. Tracks the embedding did not return get the lowest embedding
        score it did return."""
        coarse = self.melodies.coarse
        frames = coarse.frames
        if frames.sum() <= COARSE_BUDGET:
            emb = self._by_embedding(Q, k)
            rows = np.arange(len(frames))
        else:
            emb = self._by_embedding(Q, max(n, int(COARSE_BUDGET / max(frames.mean(), 1.0))))
            rows = np.array([self.melodies.row[t] for t in emb], dtype=np.int64)
            rows = rows[np.cumsum(frames[rows]) <= COARSE_BUDGET]
        best = rows[np.argsort(-coarse.scores(query, rows))[:n]]
        floor = min((e for e, _ in emb.values()), default=0.0)
        out = {int(t): emb.get(int(t), (floor, -1)) for t in self.melodies.track_ids[best]}
        for t in list(emb)[:k]:
            out.setdefault(t, emb[t])
        return out

    def _segment_at(self, track_id: int, t_s: float, default: int) -> int:
        """The track's segment starting last at or before ``t_s``."""
        if track_id not in self.track_segments:
            return default
        ids, starts = self.track_segments[track_id]
        return int(ids[max(0, np.searchsorted(starts, t_s + 1e-6) - 1)])

    def warm_up(self) -> HumSearcher:
        """Run one query on a short glide so the pitch tracker's session and the encoders are initialised before
        the first real hum (the first query pays about a second for them)."""
        sr = self.model.cfg.sr
        t = np.arange(int(1.5 * sr)) / sr
        self.query((0.3 * np.sin(2 * np.pi * 220.0 * t * (1 + 0.2 * t))).astype(np.float32), sr, k=1)
        return self

    def query_file(self, path: str | Path, **kw) -> list[dict]:
        y, sr = load(path)
        return self.query(y, sr, **kw)


def hum_search(lib_path: str | Path, y: np.ndarray, sr: int, *, k: int = 10, model: str = DEFAULT_QBH_MODEL,
               method: str = "rerank") -> list[dict]:
    """One-call API (the GUI's Hum panel): open the library, (re)build its QBH index if needed, rank tracks."""
    with Library(lib_path) as lib:
        return HumSearcher.open(lib, model=model).query(y, sr, k=k, method=method)
