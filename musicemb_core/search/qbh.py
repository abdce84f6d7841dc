"""Query by humming over a library: a hum -> ranked tracks.

Index time (:func:`iter_build_qbh_index`): every track's melody chromagram is extracted once (the model's
melody extractor on the mix) and kept (top pitch classes per frame, 12.5 frames/s) in
``index/qbh/<model>/`` (``melody.npz``), with the mix's top voice (:mod:`musicemb_core.search.top_voice`: the
tune of a hymn or chorale, where the extractor may follow an inner voice) as a second line; every library
segment gets a song-side embedding of the window starting at that segment, kept in a FAISS index beside it.

Query time (:class:`HumSearcher`): the hum's f0 contour (swift-f0) is cut into windows, each embedded by the hum
encoder and searched; tracks are ranked by their best window/segment match. ``rerank`` (the default) then scores
``candidates`` tracks by melody alignment (:mod:`musicemb_core.search.melody_align`) of the whole hum against the
stored melody or top voice, whichever fits better: the best of a coarse alignment pass over every track (or,
past :data:`COARSE_BUDGET`, over the embedding's best tracks) plus the embedding's own best, with the
embedding's score as a small bonus.
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

from musicemb_core.analysis.checks import check_count
from musicemb_core.audio.decode import load
from musicemb_core.audio.devices import trim_silence
from musicemb_core.audio.resample import check_rate, mono_samples, resample
from musicemb_core.audio.validate import check_not_silent
from musicemb_core.common.errors import AudioError, ConfigError, LibraryError
from musicemb_core.common.names import is_path_like, model_key
from musicemb_core.common.progress import CancelToken, EtaClock, JobGen, Progress, drive
from musicemb_core.data import layout
from musicemb_core.data.library import Library
from musicemb_core.features.pitch import CHUNK_S, pitch_contour
from musicemb_core.index import EmbeddingIndex
from musicemb_core.index.faiss_index import HNSW_BELOW
from musicemb_core.models import checkpoint as ckpt
from musicemb_core.models.qbh import N_CHROMA, QBHModel, contour_chromagram
from musicemb_core.resources import resources_dir
from musicemb_core.search.melody_align import CoarseMelodies, align, prepare_query
from musicemb_core.search.top_voice import top_voice_chroma

DEFAULT_QBH_MODEL = "qbh-default"
METHODS = ("rerank", "embedding", "melody")
TOP_BINS = 3
HUM_WINDOW_FACTOR = 1.4  # hum windows span this many song windows (hums are often slower than the song)
# The index keeps each track's top voice (musicemb_core.search.top_voice) beside the extractor's melody; a hum's
# alignment score is the better of the two. Chosen on the tune split with 40 four-part songs
# (bench/qbh_tune.py --fourpart 40): those 0.250 -> 0.350 top-1 (top-10 0.338 -> 0.537), the folk songs 0.890 ->
# 0.895; a penalty of 0.03 or 0.06 on the top voice's score kept less of the four-part gain.
COARSE_BUDGET = 2_500_000  # half-rate melody frames the coarse pass scans per query (~0.5 s on 2 cores; 10,000 x 40 s)

#: Calibrated confidence of each ranked track, per method: ``sigmoid(intercept + coef . features)`` with the
#: features of :func:`confidence_features`; a query's answer is confident when its best track reaches
#: ``threshold``. Fitted by ``bench/qbh_confidence.py`` on the *tune* split (hums of training-collection melodies
#: the model never trained on, half of them of tunes not in the library) for ``qbh-default``; a model folder's
#: ``confidence.json`` (the same layout) overrides it. ``melody`` uses ``rerank``'s (the same alignment scores).
#: ``rerank`` keeps the weights of the previous model's fit with its threshold picked again for this model's
#: scores (at most 5 % of the tune split's out-of-library hums confident): refitted on the 80-song tune library its
#: margin weight fell from 9.9 to 2.7, and in a six-song library (where the margin is what stands out) only 2 of 6
#: hummed songs were confident.
CONFIDENCE: dict[str, dict] = {
    "rerank": {"coef": [1.9914, 9.8684, 0.0], "intercept": -8.1508, "threshold": 0.71},
    "embedding": {"coef": [0.186, 13.8354, 0.0], "intercept": -2.596, "threshold": 0.38},
}
MIN_SPREAD = 0.02  # floor of the other tracks' score spread in the z-score (a handful of near-equal scores)


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


def top_voice_melody(y: np.ndarray, cfg, n_frames: int, *, chunk_s: float = CHUNK_S) -> tuple[np.ndarray, np.ndarray]:
    """A track's top voice (at the model's rate ``cfg.sr``) in the sparse layout of :func:`sparse_melody` with one
    pitch class per frame (the lower-numbered of two at a note change): (frames, 1) pitch classes and (frames, 1)
    probabilities (255 voiced, 0 silent)."""
    T = top_voice_chroma(y, cfg.sr, hop_length=cfg.hop_length, pool=cfg.pool, n_frames=n_frames, chunk_s=chunk_s)
    return (np.argmax(T, axis=1)[:, None].astype(np.uint8),
            np.round(T.max(axis=1)[:, None] * 255).astype(np.uint8))


def dense_melody(bins: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Inverse of :func:`sparse_melody` (frames, 12) float64; pitch classes not kept get probability 0."""
    out = np.zeros((len(bins), N_CHROMA))
    np.put_along_axis(out, bins.astype(np.int64), probs / 255.0, axis=1)
    return out


def confidence_features(scores: np.ndarray) -> np.ndarray:
    """Scores of every ranked candidate (any order) -> (n, 3) features of each: its z-score against the other
    candidates' scores, its margin over the best other candidate, and the score itself. A track standing out
    from the rest is likely the tune; a best score among equals is not (the tune may not be in the library), nor
    a lone candidate (a one-track library: nothing to stand out from, z-score and margin 0)."""
    s = np.asarray(scores, dtype=np.float64)
    n = len(s)
    if n < 2:
        return np.column_stack([np.zeros(n), np.zeros(n), s])
    total, sq = s.sum(), (s * s).sum()
    mean = (total - s) / (n - 1)
    var = np.maximum((sq - s * s) / (n - 1) - mean * mean, 0.0)
    z = (s - mean) / np.maximum(np.sqrt(var), MIN_SPREAD)
    order = np.argsort(-s, kind="stable")
    best_other = np.full(n, s[order[0]])
    best_other[order[0]] = s[order[1]]
    return np.column_stack([z, s - best_other, s])


def calibrate(features: np.ndarray, fit: dict) -> np.ndarray:
    """Probabilities from :func:`confidence_features` and a fit (``coef``, ``intercept``)."""
    logit = fit["intercept"] + np.asarray(features, dtype=np.float64) @ np.asarray(fit["coef"], dtype=np.float64)
    return 1.0 / (1.0 + np.exp(-np.clip(logit, -50, 50)))


def confidence_fit(model_folder: Path | None, method: str) -> dict:
    """The calibration of ``method`` for a model: its folder's ``confidence.json``, else :data:`CONFIDENCE`."""
    check_method(method)
    key = "rerank" if method == "melody" else method
    if model_folder is not None and (model_folder / "confidence.json").exists():
        fits = json.loads((model_folder / "confidence.json").read_text())
        if key in fits:
            return fits[key]
    return CONFIDENCE[key]


def check_method(method: str) -> None:
    """A :class:`ConfigError` for what is not one of :data:`METHODS`."""
    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {method!r}")


def is_confident(results: list[dict], threshold: float | None = None, method: str = "rerank") -> bool:
    """Whether a query's ranked results hold a confident match: the best track's ``confidence`` reaches the
    threshold (the method's default when None). No results (nothing pitched heard): False."""
    check_method(method)
    if not results or results[0].get("confidence") is None:
        return False
    return results[0]["confidence"] >= (CONFIDENCE["rerank" if method == "melody" else method]["threshold"]
                                        if threshold is None else threshold)


def index_folder(lib: Library, model: str) -> Path:
    """The current QBH index of ``model`` (a generation of ``index/qbh/<model>``, or the old layout's
    ``index/qbh-<model>``); the artefact folder when there is none yet."""
    art = layout.qbh_index(lib, model_key(model))
    return art.current() or art.folder


def _source_key(lib: Library, model_folder: Path) -> str:
    seg = lib.segments()
    h = hashlib.blake2b(digest_size=12)
    h.update(_weights_key(model_folder).encode())
    h.update(np.ascontiguousarray(seg["id"]).tobytes())
    for t in lib.tracks():
        h.update(f"{t.id}:{t.content_hash};".encode())
    return h.hexdigest()


@torch.inference_mode()
def melody_chromagram(model: QBHModel, S: torch.Tensor, *, chunk_s: float = CHUNK_S) -> torch.Tensor:
    """The extractor's chromagram (13, frames // pool) of a track's salience (n_bins, frames), run on
    ``chunk_s`` seconds at a time with the convolutions' context on both sides (the same frames as one run)."""
    ext, p = model.extractor, model.cfg.pool
    reach = sum(m.dilation[1] * (m.kernel_size[1] // 2) for m in ext.modules() if isinstance(m, torch.nn.Conv2d))
    reach = -(-reach // p) * p  # whole pooled frames
    n = S.shape[1] // p
    step = max(1, int(chunk_s * model.cfg.frame_rate))
    P = torch.empty((N_CHROMA + 1, n))
    for a in range(0, n, step):
        b = min(n, a + step)
        lo = max(0, a * p - reach)
        P[:, a:b] = ext.chromagram(S[None, :, lo:b * p + reach])[0, :, a - lo // p:b - lo // p]
    return P


@torch.inference_mode()
def song_features(model: QBHModel, y: np.ndarray, starts_s: np.ndarray, *,
                  chunk_s: float = CHUNK_S) -> tuple[np.ndarray, np.ndarray]:
    """A track at the model's rate -> (melody chromagram (13, frames), song embeddings of windows at ``starts_s``);
    the salience and the chromagram are computed ``chunk_s`` seconds at a time (a long file's whole spectrum is
    never held)."""
    cfg = model.cfg
    P = melody_chromagram(model, cfg.salience().long(y, chunk_s=chunk_s), chunk_s=chunk_s)
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


def track_melody(model: QBHModel, y: np.ndarray, starts_s: np.ndarray, *,
                 chunk_s: float = CHUNK_S) -> tuple[np.ndarray, ...]:
    """What the index keeps of a track at the model's rate: its melody (:func:`sparse_melody`), the song
    embeddings of windows at ``starts_s`` and its top voice (:func:`top_voice_melody`), each computed ``chunk_s``
    seconds at a time."""
    P, Z = song_features(model, y, starts_s, chunk_s=chunk_s)
    b, p = sparse_melody(P)
    return (b, p, Z, *top_voice_melody(y, model.cfg, P.shape[1], chunk_s=chunk_s))


@layout.writes_library("qbh-index")
def iter_build_qbh_index(lib: Library, *, model: str = DEFAULT_QBH_MODEL,
                         cancel: CancelToken | None = None) -> JobGen[Path]:
    """Extract every track's melody and embed every segment with the song encoder, publish them as the
    library's QBH index of ``model``; returns the index folder (its new generation)."""
    art = layout.qbh_index(lib, model_key(model))
    try:
        earlier = art.verify(deep=True)  # the song vectors of unchanged tracks are reused: never damaged ones
    except LibraryError:  # damaged: every track is indexed again, and publishing replaces it
        earlier = None
    mfolder = qbh_model_folder(lib, model)
    previous = _previous_tracks(earlier, _weights_key(mfolder), ckpt.settings_digest(mfolder))
    with art.publish() as gen:
        yield from _iter_build_into(lib, gen, model=model, cancel=cancel, previous=previous)
    return art.current()


def _weights_key(model_folder: Path) -> str:
    """The model's weights and the stored melody's rule (an index built otherwise is not reused); weights that
    cannot be read are a :class:`ConfigError` naming the file."""
    path = ckpt.weights_path(model_folder)
    try:
        h = hashlib.blake2b(path.read_bytes(), digest_size=12)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the query-by-humming model's weights ({e.strerror or e})") from e
    h.update(b"top-voice 1")
    return h.hexdigest()


def _previous_tracks(folder: Path | None, weights: str, settings: str) -> dict[int, tuple]:
    """Track id -> (content hash, segment ids, melody bins, probs, song vectors, top-voice bins, probs) of an earlier
    index built with the same model weights, settings and melody rule, to be reused for tracks whose audio and
    segments did not change (incremental build); empty when there is none, it was built otherwise, or it predates
    the stored vectors (an index built before settings were recorded is judged by its weights)."""
    try:
        meta = layout.read_json(folder / "meta.json") if folder is not None else None
        if not meta or meta.get("weights") != weights or meta.get("settings", settings) != settings:
            return {}
        with np.load(folder / "melody.npz") as z:
            if "vectors" not in z or "top_bins" not in z:
                return {}
            d = {k: z[k] for k in z.files}
    except (OSError, ValueError, KeyError, LibraryError):
        return {}
    out = {}
    for i, t in enumerate(d["track_ids"].tolist()):
        a, b = d["bounds"][i], d["bounds"][i + 1]
        va, vb = d["vector_bounds"][i], d["vector_bounds"][i + 1]
        out[t] = (str(d["hashes"][i]), d["vector_ids"][va:vb], d["bins"][a:b], d["probs"][a:b], d["vectors"][va:vb],
                  d["top_bins"][a:b], d["top_probs"][a:b])
    return out


def _iter_build_into(lib: Library, folder: Path, *, model: str, cancel: CancelToken | None,
                     previous: dict[int, tuple] | None = None) -> JobGen[Path]:
    """:func:`iter_build_qbh_index`'s work, written into ``folder``; tracks in ``previous`` (see
    :func:`_previous_tracks`) with the same audio and segments are taken from it, not decoded again."""
    cancel = cancel or CancelToken()
    previous = previous or {}
    mfolder = qbh_model_folder(lib, model)
    net = QBHModel.load(mfolder)
    seg = lib.segments()
    tracks = lib.tracks()
    if not len(seg["id"]):
        raise LibraryError(f"{lib.root}: no segments to index; import audio first")
    ids, vecs, mel_tracks, mel_bins, mel_probs, bounds, failed = [], [], [], [], [], [0], []
    hashes, reused, top_bins, top_probs = [], 0, [], []
    clock = EtaClock()
    by_track = np.argsort(seg["track_id"], kind="stable")  # each track's rows, in id order, found by bisection
    track_ids = seg["track_id"][by_track]
    for k, t in enumerate(tracks, 1):
        cancel.check()
        rows = by_track[np.searchsorted(track_ids, t.id):np.searchsorted(track_ids, t.id, side="right")]
        old = previous.get(t.id)
        if old is not None and old[0] == str(t.content_hash) and np.array_equal(old[1], seg["id"][rows]):
            _, _, b, p, Z, tb, tp = old
            reused += 1
        else:
            why = t.changed_since_import()  # else a melody of other audio than the catalogue's segments
            if not why:
                try:
                    y, _ = load(t.path, sr=net.cfg.sr)
                except AudioError as e:
                    why = e.reason
            if why:
                failed.append((t.path, why))
                continue
            b, p, Z, tb, tp = track_melody(net, y, seg["start_s"][rows])
        hashes.append(str(t.content_hash))
        ids.append(seg["id"][rows])
        vecs.append(Z)
        mel_tracks.append(t.id)
        mel_bins.append(b)
        mel_probs.append(p)
        top_bins.append(tb)
        top_probs.append(tp)
        bounds.append(bounds[-1] + len(b))
        yield Progress("qbh-index", k, len(tracks), t.path, clock.eta(k, len(tracks)))
    if not vecs:
        raise LibraryError(f"{lib.root}: no track could be decoded for the QBH index ({failed[0][0]}: {failed[0][1]})")
    n = sum(len(v) for v in vecs)  # flat below 2M: built at once and exact; an HNSW graph of a 20,000-track
    # library's 1.6M song windows takes most of an hour, again at every embed, where a flat search costs a hum 0.2-0.6 s
    index = EmbeddingIndex("flat" if n < HNSW_BELOW else "auto").fit(np.concatenate(vecs), np.concatenate(ids))
    index.save(folder / "vectors.faiss", meta={"model": str(model)})
    with open(folder / "melody.npz", "wb") as f:  # the song vectors too, for the next incremental build
        np.savez(f, track_ids=np.array(mel_tracks, np.int64), bounds=np.array(bounds, np.int64),
                 bins=np.concatenate(mel_bins), probs=np.concatenate(mel_probs), hashes=np.array(hashes),
                 vectors=np.concatenate(vecs).astype(np.float32), vector_ids=np.concatenate(ids),
                 vector_bounds=np.concatenate([[0], np.cumsum([len(v) for v in vecs])]).astype(np.int64),
                 top_bins=np.concatenate(top_bins), top_probs=np.concatenate(top_probs))
    (folder / "meta.json").write_text(json.dumps({
        "model": str(model), "source": _source_key(lib, mfolder), "weights": _weights_key(mfolder),
        "settings": ckpt.settings_digest(mfolder), "frame_rate": net.cfg.frame_rate, "failed": failed, "reused_tracks": reused}))
    return folder


@dataclass
class MelodyStore:
    """Stored melodies: track ids, frame bounds, sparse pitch classes (see :func:`sparse_melody`), and the tracks'
    top voices in the same layout (one pitch class a frame; None in an index built without them)."""

    track_ids: np.ndarray
    bounds: np.ndarray
    bins: np.ndarray
    probs: np.ndarray
    top_bins: np.ndarray | None = None
    top_probs: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.row = {int(t): i for i, t in enumerate(self.track_ids)}
        self._coarse: CoarseMelodies | None = None

    @property
    def coarse(self) -> CoarseMelodies:
        """The melodies at half rate for the coarse alignment pass (built on first use)."""
        if self._coarse is None:  # both lines in one: the coarse pass only picks the tracks to align exactly
            bins, probs = self.bins, self.probs
            if self.top_bins is not None:
                bins, probs = np.hstack([bins, self.top_bins]), np.hstack([probs, self.top_probs])
            self._coarse = CoarseMelodies(bins, probs, self.bounds)
        return self._coarse

    def chroma(self, track_id: int) -> np.ndarray:
        i = self.row[int(track_id)]
        a, b = self.bounds[i], self.bounds[i + 1]
        return dense_melody(self.bins[a:b], self.probs[a:b])

    def top_chroma(self, track_id: int) -> np.ndarray | None:
        """The track's top voice (frames, 12), or None when the index has none."""
        if self.top_bins is None:
            return None
        i = self.row[int(track_id)]
        a, b = self.bounds[i], self.bounds[i + 1]
        return dense_melody(self.top_bins[a:b], self.top_probs[a:b])

    @classmethod
    def load(cls, path: Path) -> MelodyStore:
        with np.load(path) as z:
            top = (z["top_bins"], z["top_probs"]) if "top_bins" in z else (None, None)
            return cls(z["track_ids"], z["bounds"], z["bins"], z["probs"], *top)


def qbh_index_current(lib: Library, model: str = DEFAULT_QBH_MODEL) -> bool:
    """Whether the library's QBH index exists and matches its tracks, segments and the model's weights and
    settings (an index built before settings were recorded: its weights)."""
    try:
        meta = layout.qbh_index(lib, model_key(model)).read(lambda gen: layout.read_json(gen / "meta.json"),
                                                             deep=True)  # all read whole when searched
    except LibraryError:  # damaged, even in place (same size): rebuilt
        return False
    mfolder = qbh_model_folder(lib, model)
    return (meta is not None and meta.get("source") == _source_key(lib, mfolder)
            and meta.get("settings", ckpt.settings_digest(mfolder)) == ckpt.settings_digest(mfolder))


def iter_update_qbh_index(lib: Library, *, model: str = DEFAULT_QBH_MODEL,
                          cancel: CancelToken | None = None) -> JobGen[Path | None]:
    """The step of an embed job that keeps the library's melody index current, so that the first hum is fast:
    (re)builds it when absent or out of date (:func:`iter_build_qbh_index`, cancellable, yielding progress);
    returns the index folder, or None when it was already current or the library has no segments."""
    if qbh_index_current(lib, model) or not len(lib.segments()["id"]):
        return None
    return (yield from iter_build_qbh_index(lib, model=model, cancel=cancel))


def open_qbh_index(lib: Library, model: str = DEFAULT_QBH_MODEL) -> Path:
    """The QBH index folder, (re)built (blocking) when absent or out of date; a GUI runs
    :func:`iter_build_qbh_index` in a worker first when :func:`qbh_index_current` is False."""
    if qbh_index_current(lib, model):
        return index_folder(lib, model)
    return drive(iter_build_qbh_index(lib, model=model))


#: The embedding's best tracks aligned exactly beside the coarse pass's (the number the search was tuned with);
#: their lowest embedding score is the one the other candidates get.
EMBEDDING_CANDIDATES = 10

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
                 tracks: dict[int, dict], *, model_folder: Path | None = None):
        self.model, self.index, self.melodies, self.tracks = model, index, melodies, tracks
        self.model_folder = model_folder
        ids, tids, starts = (np.asarray(segments[k]) for k in ("id", "track_id", "start_s"))
        self.seg_track = dict(zip(ids.tolist(), tids.tolist(), strict=True))
        self.seg_start = dict(zip(ids.tolist(), starts.tolist(), strict=True))
        order = np.lexsort((starts, tids))
        cuts = np.flatnonzero(np.diff(tids[order])) + 1
        self.track_segments = {int(tids[g[0]]): (ids[g], starts[g]) for g in np.split(order, cuts) if len(g)}

    @classmethod
    def open(cls, lib: Library, *, model: str = DEFAULT_QBH_MODEL) -> HumSearcher:
        """The library's QBH index for ``model``, built first when absent or stale."""
        return drive(cls.iter_open(lib, model=model))

    @classmethod
    def iter_open(cls, lib: Library, *, model: str = DEFAULT_QBH_MODEL,
                  cancel: CancelToken | None = None) -> JobGen[HumSearcher]:
        """:meth:`open` as a job: a build of the index yields progress and stops at ``cancel``. The index's
        checksums are computed once (a current index is not checked again when read)."""
        def from_folder(folder: Path) -> HumSearcher:  # everything is read into memory
            mfolder = qbh_model_folder(lib, model)
            return cls(QBHModel.load(mfolder), EmbeddingIndex.load(folder / "vectors.faiss"),
                       MelodyStore.load(folder / "melody.npz"), lib.segments(),
                       {t.id: {"path": t.path, "label": t.label} for t in lib.tracks()}, model_folder=mfolder)

        art = layout.qbh_index(lib, model_key(model))
        if qbh_index_current(lib, model):
            return art.read(from_folder)
        if layout.writable(lib):
            with layout.try_write_lock(lib, "qbh-index") as locked:
                if locked:
                    yield from iter_build_qbh_index(lib, model=model, cancel=cancel)
                    return art.read(from_folder)
        with tempfile.TemporaryDirectory(prefix="musicemb-qbh-") as tmp:  # busy or read-only: not kept
            yield from _iter_build_into(lib, Path(tmp), model=model, cancel=cancel)
            return from_folder(Path(tmp))

    def relabel(self, changed: dict[int, str | None]) -> None:
        """Labels edited since the index was opened (track id -> new label): answers carry them (the index does
        not depend on labels)."""
        for tid, label in changed.items():
            if tid in self.tracks:
                self.tracks[tid]["label"] = label

    def hum_contour(self, y: np.ndarray, sr: int) -> np.ndarray:
        """The hum's f0 (fractional MIDI, NaN unvoiced) on the model's chromagram frame grid."""
        y = trim_silence(mono_samples(y), check_rate(sr), threshold_dbfs=-50.0)
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
        """Ranked tracks for a hummed recording ``y`` (mono, any rate); empty when nothing pitched was heard.

        Each result carries a calibrated ``confidence`` (the probability that it is the hummed tune, fitted with
        as many hums of tunes outside the library as inside); :func:`is_confident` tells whether the best one
        is a confident match."""
        ranked = self.ranked(y, sr, k=k, method=method, candidates=candidates)
        if ranked:
            p = calibrate(confidence_features([r["score"] for r in ranked]),
                          confidence_fit(self.model_folder, method))
            for r, c in zip(ranked, p, strict=True):
                r["confidence"] = round(float(c), 3)
        return ranked[:k]

    def is_confident(self, results: list[dict], method: str = "rerank") -> bool:
        """Whether ``results`` of :meth:`query` hold a confident match (the model's threshold for ``method``)."""
        return is_confident(results, confidence_fit(self.model_folder, method)["threshold"], method)

    def ranked(self, y: np.ndarray, sr: int, *, k: int = 10, method: str = "rerank",
               candidates: int = 50) -> list[dict]:
        """Every scored candidate of :meth:`query`, best first (the ``k`` first are its results), without
        confidence."""
        check_method(method)
        k, candidates = check_count(k), check_count(candidates, "candidates")
        midi = self.hum_contour(y, sr)
        query = prepare_query(midi)
        if query is None:
            return []
        if method == "melody":
            emb = {int(t): (0.0, -1) for t in self.melodies.track_ids}
        elif method == "embedding":
            emb = self._by_embedding(self.embed_hum(midi), max(k, EMBEDDING_CANDIDATES))
        else:  # as many embedding candidates whatever k: k says how many results are shown, not how they rank
            emb = self._candidates(query, self.embed_hum(midi), k=max(k, EMBEDDING_CANDIDATES), n=max(k, candidates))
        fr = self.model.cfg.frame_rate
        out = []
        for t, (e_score, seg_id) in emb.items():
            r = {"track_id": t, **self.tracks[t], "embedding_score": round(e_score, 4), "segment_id": seg_id,
                 "start_s": self.seg_start.get(seg_id, 0.0)}
            if method == "embedding":
                r["score"] = r["embedding_score"]
            else:
                a = align(query, self.melodies.chroma(t))
                top = self.melodies.top_chroma(t)
                if top is not None:  # the better of the melody and the top voice (the first on a tie)
                    a = max(a, align(query, top), key=lambda x: x.score)
                r |= {"melody_score": round(a.score, 4), "start_s": round(a.start / fr, 2)}
                r["score"] = round(a.score + (0.25 * e_score if method == "rerank" else 0.0), 4)
                if method == "rerank" or seg_id < 0:
                    r["segment_id"] = self._segment_at(t, a.start / fr, seg_id)
            out.append(r)
        return sorted(out, key=lambda r: -r["score"])

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
        """:meth:`query` of a hum file; one silent by import's rule is an :class:`AudioError`, as for every query."""
        y, sr = load(path)
        check_not_silent(y, path)
        return self.query(y, sr, **kw)


def hum_search(lib_path: str | Path, y: np.ndarray, sr: int, *, k: int = 10, model: str = DEFAULT_QBH_MODEL,
               method: str = "rerank") -> list[dict]:
    """One-call API (the GUI's Hum panel): open the library, (re)build its QBH index if needed, rank tracks."""
    with Library(lib_path) as lib:
        return HumSearcher.open(lib, model=model).query(y, sr, k=k, method=method)
