"""``iter_embed_ray``: :func:`musicemb_core.inference.iter_embed` distributed with Ray Data.

The pipeline: the catalogue's segment list (one row per track) -> decode + log-mel in parallel Ray tasks ->
the encoder in a pool of actors that each load the model once (CPU or GPU) -> vectors streamed back to this
process, which writes them as shards under ``embeddings/<model>.shards/<fingerprint>/`` and, when every track is
done, merges them with the vectors kept from before into ``embeddings/<model>/`` in one atomic swap. A failed or
cancelled run leaves the library as it was; its finished shards are reused by the next run. The output (files,
dtypes, id order, ``meta.json``) is the one :func:`iter_embed` writes, so everything downstream is unchanged.

Workers need the audio files at the same paths (a shared filesystem) and musicemb installed; the model's
weights travel with the job, so the library folder itself stays where this process runs.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import shutil
import socket
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from musicemb_core.audio.decode import load
from musicemb_core.audio.segment import cut
from musicemb_core.common.config import FeatureConfig
from musicemb_core.common.errors import AudioError, Cancelled, ConfigError, LibraryError
from musicemb_core.common.names import model_key
from musicemb_core.common.paths import atomic_path
from musicemb_core.common.progress import CancelToken, EtaClock, JobGen, Progress
from musicemb_core.data import layout
from musicemb_core.data.library import Library
from musicemb_core.features.logmel import LogMel
from musicemb_core.inference import EmbedReport
from musicemb_core.models import checkpoint as ckpt
from musicemb_core.stored_vectors import (
    DEFAULT_MODEL,
    DamagedEmbeddings,
    load_embeddings,
    model_folder,
    nonfinite_reason,
    read_embeddings_meta,
    stale_reason,
    vector_digests,
)

SHARD_SEGMENTS = 4096  # vectors per shard file written while the job runs


@dataclass
class RayEmbedReport(EmbedReport):
    """:class:`EmbedReport` plus ``resumed``: segments taken from the shards of an earlier unfinished run."""

    resumed: int = 0
    shards: int = 0


CONNECT_TIMEOUT_S = 5.0  # a Ray cluster's address must answer this fast


def shard_folder(lib: Library, model: str) -> Path:
    """Where unfinished runs of ``model`` keep their shards (one subfolder per model fingerprint)."""
    return lib.root / "embeddings" / f"{model_key(model)}.shards"


def connect(address: str | None = "local", *, num_cpus: int | None = None):
    """The ``ray`` module, connected: ``local`` starts a private local cluster, ``auto`` joins the cluster
    started with ``ray start`` on this machine, ``HOST:PORT`` or ``ray://HOST:PORT`` a remote one. An existing
    connection of this process is reused. Returns ``(ray, started)``; shut it down only if ``started``."""
    try:
        import ray
    except ImportError as e:
        raise ConfigError("`--ray` needs Ray Data: pip install 'musicemb[cluster]'") from e
    if ray.is_initialized():
        return ray, False
    kw = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    try:
        if address in (None, "local"):
            ray.init(address="local", num_cpus=num_cpus, **kw)
        else:
            _check_reachable(address)
            ray.init(address=address, **kw)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise ConfigError(f"--ray {address}: cannot connect to a Ray cluster ({e})") from e
    return ray, True


def _check_reachable(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """A ``HOST:PORT`` (or ``ray://HOST:PORT``) that does not answer within ``timeout_s`` is a ConnectionError
    at once: Ray itself retries for over a minute, printing its own warnings."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto" and the like: Ray resolves them
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise ConnectionError(f"nothing answers at {host}:{port} within {timeout_s:g} s: {e.strerror or e}") from e


@functools.lru_cache(maxsize=4)
def _front_end(features_json: str) -> LogMel:
    return LogMel(FeatureConfig.from_dict(json.loads(features_json)))


def _decode_track(row: dict, *, features: str, window_s: float) -> list[dict]:
    """Ray task: one track -> one row per segment with its log-mel (a failed track -> one row with id -1)."""
    logmel = _front_end(features)
    sr = logmel.cfg.sr
    ids, starts = np.asarray(row["ids"], np.int64), np.asarray(row["starts"], np.float64)
    try:
        y = load(row["path"], sr=sr)[0]
        err = ""
    except AudioError as e:
        y, err = None, e.reason
    clips = cut(y if y is not None else np.zeros(0, np.float32), sr, starts[:1] if err else starts,
                window_s=window_s)
    with torch.inference_mode():
        mel = logmel(torch.from_numpy(clips)).numpy()
    if err:
        return [{"id": -1, "track_id": int(row["track_id"]), "mel": mel[0], "error": err}]
    return [{"id": int(i), "track_id": int(row["track_id"]), "mel": m, "error": ""}
            for i, m in zip(ids, mel, strict=True)]


class _EmbedActor:
    """Ray actor: loads the encoder once from the shipped model files, embeds batches of log-mels."""

    def __init__(self, files: dict[str, bytes], device: str = "cpu"):
        with tempfile.TemporaryDirectory() as tmp:
            for name, data in files.items():
                (Path(tmp) / name).write_bytes(data)
            self.encoder, _ = ckpt.load_encoder(tmp)
        self.device = torch.device(device)
        self.encoder.to(self.device)

    @torch.inference_mode()
    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ok = batch["id"] >= 0
        vectors = np.zeros((len(ok), self.encoder.dim), np.float32)
        if ok.any():
            x = torch.from_numpy(np.ascontiguousarray(batch["mel"][ok], np.float32)).to(self.device)
            vectors[ok] = self.encoder(x.unsqueeze(1)).float().cpu().numpy()
        return {"id": batch["id"], "track_id": batch["track_id"], "vector": vectors, "error": batch["error"]}


def _shard_ids(folder: Path) -> list[tuple[Path, np.ndarray]]:
    """(file, segment ids) of each finished shard; the vectors stay on disk until the merge."""
    out = []
    for f in sorted(folder.glob("shard-*.npz")):
        with np.load(f) as z:
            out.append((f, z["ids"]))
    return out


def _save_shard(folder: Path, ids: list[np.ndarray], vecs: list[np.ndarray]) -> None:
    if ids and sum(map(len, ids)):
        with atomic_path(folder / f"shard-{uuid.uuid4().hex}.npz") as tmp, open(tmp, "wb") as f:
            np.savez(f, ids=np.concatenate(ids), vectors=np.concatenate(vecs))


def _merge(out_dir: Path, parts: list[tuple[np.ndarray, object]], dim: int, meta: dict) -> None:
    """Write ``vectors.npy`` + ``ids.npy`` (rows in id order) + ``meta.json`` and publish them as a new generation: the
    files :func:`iter_embed` writes. ``parts``: (ids, vectors) with vectors an array, a memory map or a
    callable loading them; copied part by part and chunk by chunk into a memory map (bounded memory)."""
    ids = np.concatenate([p[0] for p in parts]).astype(np.int64)
    order = np.argsort(ids, kind="stable")
    pos = np.empty_like(order)
    pos[order] = np.arange(len(order))
    with layout.embeddings(out_dir.parent.parent, out_dir.name).publish() as tmp:
        out = np.lib.format.open_memmap(tmp / "vectors.npy", mode="w+", dtype=np.float32, shape=(len(ids), dim))
        a = 0
        for part_ids, vecs in parts:
            vecs = vecs() if callable(vecs) else vecs
            for c in range(0, len(part_ids), 65536):
                e = min(c + 65536, len(part_ids))
                out[pos[a + c:a + e]] = np.asarray(vecs[c:e], dtype=np.float32)
            a += len(part_ids)
        out.flush()
        del out
        np.save(tmp / "ids.npy", ids[order])
        (tmp / "meta.json").write_text(json.dumps(meta))


def _plan_rows(seg: dict, todo: np.ndarray, tracks: dict):
    """A pyarrow table with one row per track to do: track_id, path, ids (list), starts (list)."""
    import pyarrow as pa

    tid = seg["track_id"][todo]
    order = np.argsort(tid, kind="stable")
    tid, ids, starts = tid[order], seg["id"][todo][order], seg["start_s"][todo][order]
    uniq, first, counts = np.unique(tid, return_index=True, return_counts=True)
    offsets = pa.array(np.append(first, len(tid)).astype(np.int32))
    table = pa.table({"track_id": pa.array(uniq), "path": pa.array([tracks[int(t)].path for t in uniq]),
                      "ids": pa.ListArray.from_arrays(offsets, pa.array(ids)),
                      "starts": pa.ListArray.from_arrays(offsets, pa.array(starts))})
    return table, dict(zip(uniq.tolist(), counts.tolist(), strict=True))


def _split(table, n: int) -> list:
    edges = np.linspace(0, table.num_rows, n + 1).astype(int)
    return [table.slice(a, b - a) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def _dataset(ray, table, *, n_tracks: int, folder: Path, info, batch_size: int, device: str,
             actors: int | None):
    """The Ray Data pipeline: tracks -> (decode + log-mel tasks) -> (encoder actors) -> id, vector rows."""
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    gpu = device.startswith("cuda")
    res = ray.cluster_resources()
    cpus = max(1, int(res.get("CPU", 1)))
    n_act = actors or max(1, int(res.get("GPU", 1)) if gpu else cpus // 2)
    files = {path.name: path.read_bytes() for path in (folder / ckpt.CONFIG, ckpt.weights_path(folder))}
    return (ray.data.from_arrow(_split(table, min(n_tracks, 20 * cpus)))
            .flat_map(_decode_track, fn_kwargs={"features": json.dumps(info.features.to_dict()),
                                                "window_s": info.window_s}, num_cpus=1)
            .map_batches(_EmbedActor, fn_constructor_kwargs={"files": files, "device": device},
                         batch_size=batch_size, batch_format="numpy", num_cpus=1, num_gpus=1 if gpu else 0,
                         compute=ray.data.ActorPoolStrategy(min_size=1, max_size=n_act)))


@layout.writes_library("embed")
def iter_embed_ray(lib: Library, *, model: str = DEFAULT_MODEL, address: str | None = "local",
                   batch_size: int = 64, device: str = "cpu", actors: int | None = None,
                   num_cpus: int | None = None, cancel: CancelToken | None = None) -> JobGen[RayEmbedReport]:
    """Embed every segment of ``lib`` that has no vector for ``model`` yet, on a Ray cluster.

    ``address``: see :func:`connect`; ``actors``: encoder actors (default: one per GPU with a CUDA
    ``device``, else half the cluster's CPUs); ``num_cpus``: CPUs of a ``local`` cluster. Yields progress as
    tracks finish, like :func:`iter_embed`, and returns a :class:`RayEmbedReport`.
    """
    cancel = cancel or CancelToken()
    folder = model_folder(lib, model)
    info = ckpt.read_info(folder)
    if isinstance(info.train, dict) and info.train.get("aggregation"):  # per-track vectors, library statistics
        raise ConfigError(f"{model!r} is finished over the whole library, which --ray does not do: embed it without --ray")
    dim, fp = info.model.dim, "-".join(vector_digests(folder).values())  # shards of other weights/settings: stale
    out_dir, shards = lib.root / "embeddings" / model_key(model), shard_folder(lib, model) / fp
    for stale in shards.parent.glob("*"):  # shards of other weights can never be used
        if stale != shards:
            shutil.rmtree(stale, ignore_errors=True)
    shards.mkdir(parents=True, exist_ok=True)
    seg = lib.segments()
    old_ids, old_vecs = np.zeros(0, np.int64), np.zeros((0, dim), np.float32)
    try:
        meta = read_embeddings_meta(lib, model)
    except LibraryError:  # a damaged pointer: everything is recomputed, and publishing replaces it (as iter_embed)
        meta = None
    if meta is not None and stale_reason(meta, folder) is None:
        with contextlib.suppress(DamagedEmbeddings):  # damaged vectors are recomputed
            stored = load_embeddings(lib, model)
            old_ids, old_vecs = stored.ids, stored.vectors
    keep = np.isin(old_ids, seg["id"])
    missing = seg["id"][~np.isin(seg["id"], old_ids)]
    done_ids = np.concatenate([np.zeros(0, np.int64), *(ids for _, ids in _shard_ids(shards))])
    resumed = int(np.isin(missing, done_ids).sum())
    todo = np.isin(seg["id"], missing) & ~np.isin(seg["id"], done_ids)
    tracks = {t.id: t for t in lib.tracks()}
    changed = {t: why for t in np.unique(seg["track_id"][todo]).tolist() if (why := tracks[t].changed_since_import())}
    todo &= ~np.isin(seg["track_id"], list(changed))  # not embedded under its old segments (as iter_embed)
    failed: list[tuple[str, str]] = [(tracks[t].path, why) for t, why in changed.items()]
    report = RayEmbedReport(model, 0, int(keep.sum()), int((~keep).sum()), failed, resumed=resumed)
    table, expected = _plan_rows(seg, todo, tracks)
    nonfinite: set[int] = set()  # tracks the model gave NaN or infinity for
    yield Progress("embed", 0, len(expected), f"{int(todo.sum())} segments to embed with {model!r} on Ray"
                   + (f", {resumed} done by an earlier run" if resumed else ""))
    if expected:
        ray, started = connect(address, num_cpus=num_cpus)
        buf_ids: list[np.ndarray] = []
        buf_vecs: list[np.ndarray] = []
        try:
            ds = _dataset(ray, table, n_tracks=len(expected), folder=folder, info=info, batch_size=batch_size,
                          device=device, actors=actors)
            got, done, clock = dict.fromkeys(expected, 0), 0, EtaClock()
            for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                ok = batch["id"] >= 0
                finite = ok & np.isfinite(batch["vector"]).all(axis=1)
                buf_ids.append(batch["id"][finite])
                buf_vecs.append(batch["vector"][finite])
                report.computed += int(finite.sum())
                for tid in np.unique(batch["track_id"][ok & ~finite]).tolist():
                    if tid not in nonfinite:  # as iter_embed: the track fails, none of its vectors are stored
                        nonfinite.add(tid)
                        failed.append((tracks[tid].path, nonfinite_reason(model)))
                last = None
                for tid, err in zip(batch["track_id"][~ok], batch["error"][~ok], strict=True):
                    failed.append((tracks[int(tid)].path, str(err)))
                    done, last = done + 1, int(tid)
                for tid, n in zip(*np.unique(batch["track_id"][ok], return_counts=True), strict=True):
                    got[int(tid)] += int(n)
                    if got[int(tid)] == expected[int(tid)]:
                        done, last = done + 1, int(tid)
                if sum(map(len, buf_ids)) >= SHARD_SEGMENTS:
                    _save_shard(shards, buf_ids, buf_vecs)
                    buf_ids, buf_vecs = [], []
                yield Progress("embed", done, len(expected), tracks[last].path if last else "",
                               clock.eta(done, len(expected)))
                cancel.check()
        except Cancelled:
            report.cancelled = True
        finally:
            _save_shard(shards, buf_ids, buf_vecs)  # finished work is kept for the next run
            if started:
                ray.shutdown()
    if report.cancelled:
        return report
    parts = [(old_ids[keep], old_vecs if keep.all() else (lambda: np.asarray(old_vecs)[keep]))]
    listed = _shard_ids(shards)
    report.shards = len(listed)
    seen = seg["id"][np.isin(seg["track_id"], list(nonfinite))]  # their finite vectors are not stored either
    for f, ids in listed:
        use = np.isin(ids, missing) & ~np.isin(ids, seen)  # a segment in two shards counts once
        seen = np.concatenate([seen, ids[use]])
        parts.append((ids[use], lambda f=f, use=use: np.load(f)["vectors"][use]))
    report.computed = int(sum(len(ids) for ids, _ in parts[1:]))
    if report.computed or report.dropped or not out_dir.exists():
        _merge(out_dir, parts, dim, {"model": model, **vector_digests(folder), "dim": dim, "source": str(folder)})
    shutil.rmtree(shards.parent, ignore_errors=True)
    return report
