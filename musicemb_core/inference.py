"""``iter_embed``: segments -> vectors with a saved model, reading the feature config from the checkpoint so
training and querying cannot drift. Incremental (only segments without a vector are computed), cancellable
(what was computed is kept), stored atomically under ``embeddings/<model>/`` as ``vectors.npy`` + ``ids.npy``.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from musicemb_core.analysis.tag_words import likeliest_tags, stored_likeliest_tags
from musicemb_core.analysis.track_vectors import (
    aggregate,
    library_tracks,
    relative_to_library,
    tag_clip_rows,
    tag_statistics,
    tagged_track_vectors,
)
from musicemb_core.audio.decode import load
from musicemb_core.audio.segment import cut
from musicemb_core.common.errors import AudioError, Cancelled, ConfigError, LibraryError
from musicemb_core.common.names import model_key
from musicemb_core.common.progress import CancelToken, EtaClock, JobGen, Progress
from musicemb_core.data import layout
from musicemb_core.data.library import Library
from musicemb_core.features.logmel import LogMel
from musicemb_core.models import checkpoint as ckpt
from musicemb_core.models.device import pick_device
from musicemb_core.models.library_stats import library_statistics
from musicemb_core.models.musicnn import MSD_TAGS, load_tagger, tag_probabilities
from musicemb_core.models.similarity import TAG_DIM
from musicemb_core.resources import builtin_model_dir
from musicemb_core.stored_vectors import (
    SIMILARITY_MODEL,
    DamagedEmbeddings,
    builtin_models,
    check_weights,
    load_embeddings,
    model_folder,
    nonfinite_reason,
    read_arrays,
    read_embeddings_meta,
    stale_reason,
    tracks_of,
    vector_digests,
)

TICK_S = 1.0
"""While a track is decoded (a long file: many seconds), ``iter_embed`` yields progress this often."""


@dataclass
class EmbedReport:
    model: str
    computed: int
    kept: int
    dropped: int
    failed: list[tuple[str, str]]
    cancelled: bool = False


def tag_prior(emb: Embedder) -> tuple[np.ndarray, np.ndarray]:
    """The tagger's (mean, std) on the training music, kept in the similarity encoder."""
    return emb.encoder.tag_mean.cpu().numpy(), emb.encoder.tag_std.cpu().numpy()


def sounds_like(lib: Library, model: str = SIMILARITY_MODEL, *, top: int = 3,
                min_p: float = 0.1) -> dict[int, list[tuple[str, float]]]:
    """{track id: its ``top`` most likely tags (of the tagger's 50 Million Song Dataset tags: genre, era, mood,
    instruments) with their probability, at least ``min_p``}, from the tagger values ``embed`` stored (the mean of
    each track's clips); {} for a model without a tagger or a library not embedded with it yet. The probabilities
    ``embed`` keeps are read without the model (:mod:`~musicemb_core.analysis.tag_words`); a library embedded
    before they were kept has them computed from the raw values."""
    kept = stored_likeliest_tags(lib, model, top=top, min_p=min_p)
    if kept is not None:
        return kept
    info = ckpt.read_info(model_folder(lib, model))
    tagger = info.train.get("tagger") if isinstance(info.train, dict) else None
    stored = read_arrays(lib, model, "tag_tracks", "tag_raw") if tagger else None
    if stored is None or not len(stored[0]):
        return {}
    tracks, raw = stored
    return likeliest_tags(tracks, tag_probabilities(raw, builtin_model_dir(tagger["model"])), MSD_TAGS, top=top,
                          min_p=min_p)


def _write(folder: Path, ids: np.ndarray, vectors: np.ndarray, meta: dict,
           extra: dict[str, np.ndarray] | None = None) -> None:
    """Publish a new generation of the embeddings kept in ``folder`` (``LIB/embeddings/<model key>``): readers
    see the old vectors or the new ones, never a mix. ``extra`` arrays are saved beside as ``<key>.npy``.
    The caller holds the library's writer lock."""
    with layout.embeddings(folder.parent.parent, folder.name).publish() as gen:
        np.save(gen / "vectors.npy", vectors.astype(np.float32, copy=False))
        np.save(gen / "ids.npy", ids.astype(np.int64, copy=False))
        for key, arr in (extra or {}).items():
            np.save(gen / f"{key}.npy", arr)
        (gen / "meta.json").write_text(json.dumps(meta))


class Embedder:
    """A loaded encoder with its log-mel front end: audio segments in, vectors out.

    An encoder that is finished per library (the similarity model: ``finish``) gives its raw vectors here; use
    :func:`library_embedder` for vectors comparable with a library's stored ones.
    """

    def __init__(self, folder: Path, *, device: str = "cpu"):
        self.post = None  # raw encoder output -> the library's vectors (set by library_embedder)
        self.device = pick_device(device)
        self.encoder, self.info = ckpt.load_encoder(folder)
        self.encoder.to(self.device)
        self.net = _inference_net(self.encoder)
        self.logmel = LogMel(self.info.features).to(self.device)
        self.sr = self.info.features.sr
        self.window_s = self.info.window_s
        tag = self.info.train.get("tagger") if isinstance(self.info.train, dict) else None
        self.has_tagger = tag is not None  # the tagger itself is loaded by the first :meth:`tag`
        self._tagger, self._tagger_name = None, tag["model"] if tag else ""
        self.tag_clips, self.tag_weight = (int(tag["clips"]), float(tag["weight"])) if tag else (0, 0.0)

    @torch.inference_mode()
    def __call__(self, audio: np.ndarray) -> np.ndarray:
        """(batch, samples) at ``self.sr`` -> (batch, dim) float32."""
        x = self.logmel(torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)).to(self.device))
        x = x.unsqueeze(1).contiguous(memory_format=torch.channels_last)
        out = self.net(x).float().cpu().numpy()
        return out if self.post is None else self.post(out)

    @torch.inference_mode()
    def tag(self, clips: np.ndarray) -> np.ndarray:
        """The tagger's raw values ``(n, TAG_DIM)`` of at most ``tag_clips`` of a track's ``clips`` (its 3 s
        segments at ``self.sr``, in order), spread over the track; ``(0, TAG_DIM)`` for a model without a tagger."""
        if not self.has_tagger or not len(clips):
            return np.zeros((0, TAG_DIM), np.float32)
        if self._tagger is None:
            self._tagger = load_tagger(builtin_model_dir(self._tagger_name)).to(self.device)
        x = torch.from_numpy(np.ascontiguousarray(clips[tag_clip_rows(len(clips), self.tag_clips)], dtype=np.float32))
        return self._tagger(x.to(self.device)).float().cpu().numpy()

    def tag_probs(self, raw: np.ndarray) -> np.ndarray:
        """The probabilities of the tagger's :data:`MSD_TAGS` ``(n, 50)`` float32 from its raw values ``raw``."""
        return tag_probabilities(raw, builtin_model_dir(self._tagger_name)).astype(np.float32)


def _inference_net(encoder: torch.nn.Module) -> torch.nn.Module:
    """``encoder`` for inference: a copy with its batch norms folded into the convolutions before them
    (:func:`_fold_batch_norms`), in channels-last memory (the ResNet: 1.6x faster on CPU, vectors within 3e-6);
    ``encoder`` itself when it has no batch norm."""
    if not any(isinstance(m, torch.nn.BatchNorm2d) for m in encoder.modules()):
        return encoder
    net = copy.deepcopy(encoder).eval()
    _fold_batch_norms(net)
    return net.to(memory_format=torch.channels_last)


def _fold_batch_norms(net: torch.nn.Module) -> None:
    """Fold, in place, each eval-mode batch norm into the convolution whose output it takes: adjacent in a
    ``Sequential``, or a block's ``convN`` and ``bnN`` (the ResNet's basic block); the norm becomes an identity.
    Not torch.fx's ``fuse``: its tracing swaps ``nn.Module.__call__`` for the whole process, and a model run in
    another thread meanwhile (the app's hum spectrogram, an evaluation) failed."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for module in net.modules():
        pairs = []
        if isinstance(module, torch.nn.Sequential):
            pairs = [(str(i), str(i + 1)) for i in range(len(module) - 1)]
        pairs += [(n, "bn" + n[4:]) for n, _ in module.named_children() if n.startswith("conv") and n[4:].isdigit()]
        for conv_name, bn_name in pairs:
            conv, bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
            if isinstance(conv, torch.nn.Conv2d) and isinstance(bn, torch.nn.BatchNorm2d) and bn.track_running_stats:
                setattr(module, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(module, bn_name, torch.nn.Identity())


def _kept_arrays(lib: Library, model: str, *names: str) -> tuple[np.ndarray, ...] | None:
    """:func:`read_arrays` for ``embed``: those of a damaged generation (a file missing or cut short) count as
    missing, so they are computed again and publishing replaces the generation (``embed`` stopped on them, saying
    to run ``embed``)."""
    try:
        return read_arrays(lib, model, *names)
    except LibraryError:
        return None


def _unlisted(lib: Library, plan: _Plan) -> bool:
    """Whether the stored generation of ``plan``'s model lacks the tag probabilities the listings read (an earlier
    release's): looked for, not read (30 MB at 20,000 tracks)."""
    if not plan.emb.has_tagger:
        return False
    try:
        return not layout.embeddings(lib, model_key(plan.name)).read(lambda gen: (gen / "tag_probs.npy").is_file(),
                                                                     verify=False)
    except LibraryError:  # a damaged pointer: published again
        return True


def _finishes(emb: Embedder) -> bool:
    return hasattr(emb.encoder, "finish")


def library_embedder(lib: Library, model: str, *, device: str = "cpu") -> Embedder:
    """An :class:`Embedder` whose vectors compare with ``lib``'s stored vectors of ``model``: for a model finished
    per library, its output is standardised with the library's statistics stored by ``embed``. Stored vectors made
    by other weights (the model was trained again since) are a :class:`StaleEmbeddings` error."""
    check_weights(lib, model)
    emb = Embedder(model_folder(lib, model), device=device)
    if _finishes(emb):
        stats = read_arrays(lib, model, "library_mean", "library_std")
        mean, std = stats if stats is not None else library_statistics(np.zeros((0, emb.encoder.dim)))
        emb.post = lambda Z: emb.encoder.finish(Z, mean, std)
    return emb


@dataclass
class _Plan:
    """What ``iter_embed`` does for one model: the stored vectors it keeps and the segments it computes."""

    name: str
    emb: Embedder
    folder: Path
    old_ids: np.ndarray
    old_vecs: np.ndarray
    keep: np.ndarray
    todo: np.ndarray
    new_ids: list
    new_vecs: list
    old_tags: tuple[np.ndarray, np.ndarray]  # the tagger's (track ids, raw values) of tracks embedded before
    new_tags: list  # (track ids, raw values) computed in this job

    def tags(self, seg: dict) -> tuple[np.ndarray, np.ndarray]:
        """(track ids, raw tagger values) of the library's tracks: this job's, else those stored before."""
        new_t = np.concatenate([np.zeros(0, np.int64), *(t for t, _ in self.new_tags)]).astype(np.int64)
        old_t, old_raw = self.old_tags
        keep = np.isin(old_t, seg["track_id"]) & ~np.isin(old_t, new_t)
        raw = np.concatenate([old_raw[keep], *(r for _, r in self.new_tags)]).astype(np.float32)
        return np.concatenate([old_t[keep], new_t]), raw


def _plan(lib: Library, name: str, seg: np.ndarray, device: str,
          precomputed: tuple[np.ndarray, ...] | None = None) -> _Plan:
    folder = model_folder(lib, name)
    emb = Embedder(folder, device=device)
    old_ids, old_vecs = np.zeros(0, np.int64), np.zeros((0, emb.encoder.dim), np.float32)
    old_tags = (np.zeros(0, np.int64), np.zeros((0, TAG_DIM), np.float32))
    try:
        meta = read_embeddings_meta(lib, name)
    except LibraryError:  # a damaged pointer: everything is recomputed, and publishing replaces it
        meta = None
    if meta is not None and stale_reason(meta, folder) is None:
        with contextlib.suppress(DamagedEmbeddings):  # damaged vectors are recomputed
            stored = load_embeddings(lib, name, deep=True)  # read whole and kept: never damaged ones
            old_ids, old_vecs = stored.ids, np.asarray(stored.vectors)
        if _finishes(emb):  # keep the raw vectors, which the library's statistics finish again
            raw = _kept_arrays(lib, name, "raw_vectors")
            ok = raw is not None and raw[0].shape == old_vecs.shape
            old_ids, old_vecs = (old_ids, raw[0]) if ok else (old_ids[:0], old_vecs[:0])
        tags = _kept_arrays(lib, name, "tag_tracks", "tag_raw") if emb.has_tagger else None
        if tags is not None and tags[0].ndim == 1 and tags[1].shape == (len(tags[0]), TAG_DIM):
            old_tags = (tags[0].astype(np.int64), tags[1].astype(np.float32))
    keep, todo = np.isin(old_ids, seg["id"]), ~np.isin(seg["id"], old_ids)
    if emb.has_tagger:  # a track the tagger has not read is embedded again
        tagged = np.isin(seg["track_id"], old_tags[0])
        keep &= np.isin(old_ids, seg["id"][tagged])
        todo |= ~tagged
    plan = _Plan(name, emb, folder, old_ids, old_vecs, keep, todo, [], [], old_tags, [])
    if precomputed is not None:  # vectors computed elsewhere in this job (an import's one pass) for missing segments
        ids, vecs, *tags = precomputed
        use = np.isin(ids, seg["id"][plan.todo])
        plan.new_ids.append(ids[use])
        plan.new_vecs.append(np.asarray(vecs, np.float32)[use])
        plan.todo &= ~np.isin(seg["id"], ids[use])
        if tags and emb.has_tagger:  # the tagger's values of the tracks those segments belong to
            used = np.isin(tags[0], seg["track_id"][np.isin(seg["id"], ids[use])])
            plan.new_tags.append((tags[0][used].astype(np.int64), np.asarray(tags[1], np.float32)[used]))
    return plan


def _finish(plan: _Plan, seg: np.ndarray, ids: np.ndarray, vecs: np.ndarray) -> tuple[np.ndarray, dict]:
    """The vectors to store for ``plan``'s model and the arrays stored beside them: for a model finished per
    library, the raw vectors and the library's statistics; for a model whose config names an aggregation,
    one vector per track (with a tagger, its view of each track beside: :func:`~musicemb_core.analysis.
    track_vectors.tagged_track_vectors`, its raw values and statistics stored too)."""
    extra = {}
    if _finishes(plan.emb):
        mean, std = library_statistics(vecs)
        extra = {"raw_vectors": np.asarray(vecs, np.float32), "library_mean": mean, "library_std": std}
        vecs = plan.emb.encoder.finish(vecs, mean, std)
    method = plan.emb.info.train.get("aggregation") if isinstance(plan.emb.info.train, dict) else None
    if method and len(ids):
        tids, V = aggregate(vecs, tracks_of(seg, ids)[1], method=method)
        if _finishes(plan.emb):  # relative to the library's tracks too
            t_mean, t_spread = library_tracks(V)
            V = relative_to_library(V, t_mean, t_spread)
            extra |= {"track_mean": t_mean, "track_spread": t_spread}
        if plan.emb.has_tagger:
            tag_tracks, tag_raw = plan.tags(seg)
            stats = tag_statistics(tag_raw, tag_tracks, tag_prior(plan.emb))
            V = tagged_track_vectors(V, tids, tag_raw, tag_tracks, stats, plan.emb.tag_weight)
            extra |= {"tag_tracks": tag_tracks, "tag_raw": tag_raw, **stats,  # and the tags' probabilities,
                      "tag_probs": plan.emb.tag_probs(tag_raw), "tag_names": np.array(MSD_TAGS)}  # for listings
        extra |= {"track_ids": tids.astype(np.int64), "track_vectors": V}
    return vecs, extra


def embed_clips(emb: Embedder, y: np.ndarray, sr: int, starts: np.ndarray, batch_size: int,
                cancel: CancelToken | None = None, step: Callable[[int], Progress] | None = None
                ) -> JobGen[tuple[list[np.ndarray], np.ndarray | None]]:
    """``emb``'s vectors (one array per batch) of the clips of mono ``y`` at ``starts`` (seconds), and its tagger's
    raw values (None without a tagger). Clips are cut a batch at a time: a long file's clips are never all held
    (a 1-hour track: 0.23 GB at 16 kHz). ``step(clips done)``, if given, is yielded after each batch but the last.
    ``cancel`` is checked before each batch (after its step: a cancel asked there runs no batch more) and before
    the tagger (a cancel asked during the last batch does not run it)."""
    cancel = cancel or CancelToken()
    vecs = []
    for a in range(0, len(starts), batch_size):
        if a and step is not None:
            yield step(a)
        cancel.check()
        vecs.append(emb(cut(y, sr, starts[a:a + batch_size], window_s=emb.window_s)))
    if not emb.has_tagger:
        return vecs, None
    cancel.check()
    return vecs, emb.tag(cut(y, sr, starts[tag_clip_rows(len(starts), emb.tag_clips)], window_s=emb.window_s))


def _embed_track(plans: list[_Plan], seg: dict, tid: int, y: np.ndarray, sr: int, batch_size: int,
                 cancel: CancelToken, step: Callable[[int, int], Progress]) -> JobGen[str]:
    """Add track ``tid``'s vectors (decoded audio ``y``) to each plan, yielding ``step(segments done, segments)``
    between batches (a long track's progress); a cancel between batches raises :class:`Cancelled` with nothing of
    this track added. A model giving NaN or infinity for it adds nothing of it either: the reason is returned ("" when
    added)."""
    in_track = seg["track_id"] == tid
    todo = [(p, np.flatnonzero(p.todo & in_track)) for p in plans]
    total, first = sum(len(rows) for _, rows in todo), 0
    out = []
    for p, rows in todo:
        if not len(rows):
            continue
        vecs, tags = yield from embed_clips(p.emb, y, sr, seg["start_s"][rows], batch_size, cancel,
                                            lambda k, first=first: step(first + k, total))
        first += len(rows)
        if not all(np.isfinite(v).all() for v in vecs) or (tags is not None and not np.isfinite(tags).all()):
            return nonfinite_reason(p.name)
        out.append((p, seg["id"][rows], vecs, tags))
    for p, ids, vecs, tags in out:
        p.new_vecs.extend(vecs)
        p.new_ids.append(ids)
        if tags is not None:
            p.new_tags.append((np.full(len(tags), tid, np.int64), tags))
    return ""


@layout.writes_library("embed")
def iter_embed(lib: Library, *, model: str | Sequence[str] | None = None, batch_size: int = 64, device: str = "cpu",
               precomputed: dict[str, tuple[np.ndarray, ...]] | None = None,
               cancel: CancelToken | None = None) -> JobGen[EmbedReport]:
    """Embed every segment of ``lib`` that has no vector yet for ``model`` (a name, several, or by default
    :func:`builtin_models`), decoding each track once for all of them; yields progress per track.

    A model with an aggregation in its config (the similarity model) also stores one vector per track.
    ``precomputed``: {model: (segment ids, raw vectors[, tagger's track ids, raw values])} already computed for this
    library's current segments
    (the import's one pass): stored with the rest, not computed again.
    A track whose file changed since it was imported (:meth:`Track.changed_since_import
    <musicemb_core.data.library.Track.changed_since_import>`) fails, the others go on.
    """
    cancel = cancel or CancelToken()
    names = builtin_models() if model is None else (model,) if isinstance(model, str) else tuple(model)
    seg = lib.segments()
    plans = [_plan(lib, n, seg, device, (precomputed or {}).get(n)) for n in names]
    srs = {p.emb.sr for p in plans}
    if len(srs) > 1:
        raise ConfigError(f"models {', '.join(names)} read audio at different rates {sorted(srs)}: embed them one at a time")
    sr = srs.pop()
    any_todo = np.logical_or.reduce([p.todo for p in plans])
    tracks = {t.id: t for t in lib.tracks()}
    todo_tracks = np.unique(seg["track_id"][any_todo])
    failed: list[tuple[str, str]] = []
    report = EmbedReport(", ".join(names), 0, int(sum(p.keep.sum() for p in plans)),
                         int(sum((~p.keep).sum() for p in plans)), failed)

    def decode(tid: int):
        changed = tracks[tid].changed_since_import()
        if changed:
            return tid, None, changed
        try:
            return tid, load(tracks[tid].path, sr=sr, cancel=cancel)[0], ""
        except AudioError as e:
            return tid, None, e.reason

    clock = EtaClock()
    yield Progress("embed", 0, len(todo_tracks),
                   " and ".join(f"{int(p.todo.sum())} segments to embed with {p.name!r}" for p in plans))
    threads = torch.get_num_threads()
    if device == "cpu" and threads > 1:  # a core for the decoding thread (2 cores: 1.7x faster than oversubscribed)
        torch.set_num_threads(threads - 1)
    try:
        with ThreadPoolExecutor(1) as pool:  # decode the next track (one only: memory) while the CNNs run on this one
            ahead = pool.submit(decode, todo_tracks[0]) if len(todo_tracks) else None
            for done in range(1, len(todo_tracks) + 1):
                while not wait([ahead], timeout=TICK_S).done:  # a long file's decode: progress meanwhile
                    yield Progress("embed", done - 1, len(todo_tracks),
                                   f"{tracks[todo_tracks[done - 1]].path}: decoding",
                                   clock.eta(done - 1, len(todo_tracks)))
                tid, y, err = ahead.result()
                cancel.check()
                ahead = pool.submit(decode, todo_tracks[done]) if done < len(todo_tracks) else None
                if y is not None:
                    path = tracks[tid].path
                    err = yield from _embed_track(
                        plans, seg, tid, y, sr, batch_size, cancel,
                        lambda k, n, done=done, path=path: Progress("embed", done - 1, len(todo_tracks),
                                                                    f"{path}: {k} of {n} segments",
                                                                    clock.eta(done - 1 + k / n, len(todo_tracks))))
                if err:
                    failed.append((tracks[tid].path, err))
                yield Progress("embed", done, len(todo_tracks), tracks[tid].path, clock.eta(done, len(todo_tracks)))
    except Cancelled:
        report.cancelled = True
    finally:
        torch.set_num_threads(threads)
    for p in plans:
        computed = int(sum(len(i) for i in p.new_ids))  # precomputed vectors included
        report.computed += computed
        out_dir = lib.root / "embeddings" / model_key(p.name)
        if computed or (~p.keep).any() or not out_dir.exists() or _unlisted(lib, p):
            ids, vecs = _joined(p)
            vecs, extra = _finish(p, seg, ids, vecs)
            _write(out_dir, ids, vecs, {"model": p.name, **vector_digests(p.folder),
                                        "dim": p.emb.encoder.dim, "source": str(p.folder)}, extra=extra)
        p.old_vecs = p.new_vecs = None  # a large library's vectors: gone before the next model's are joined
    return report


def _joined(p: _Plan) -> tuple[np.ndarray, np.ndarray]:
    """The vectors ``p`` keeps and those it computed, sorted by segment id, copied once (a 1.6M-segment library's
    similarity vectors are 1.2 GB): kept rows are taken only when some go, and sorted only when out of order.
    ``p`` lets go of its own arrays."""
    old_ids, old_vecs = (p.old_ids, p.old_vecs) if p.keep.all() else (p.old_ids[p.keep], p.old_vecs[p.keep])
    ids = np.concatenate([old_ids, *p.new_ids])
    vecs = np.concatenate([old_vecs, *p.new_vecs]) if len(ids) else p.old_vecs[:0]
    del old_vecs
    p.old_vecs = p.new_vecs = None
    if len(ids) > 1 and not (ids[1:] > ids[:-1]).all():
        order = np.argsort(ids)
        ids, vecs = ids[order], vecs[order]
    return ids, vecs
