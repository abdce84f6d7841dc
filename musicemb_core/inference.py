"""``iter_embed``: segments -> vectors with a saved model, reading the feature config from the checkpoint so
training and querying cannot drift. Incremental (only segments without a vector are computed), cancellable
(what was computed is kept), stored atomically under ``embeddings/<model>/`` as ``vectors.npy`` + ``ids.npy``.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from musicemb_core.audio.decode import load
from musicemb_core.audio.segment import cut
from musicemb_core.common.errors import AudioError, Cancelled, ConfigError, LibraryError
from musicemb_core.common.names import is_path_like, model_key
from musicemb_core.common.paths import atomic_folder
from musicemb_core.common.progress import CancelToken, EtaClock, JobGen, Progress
from musicemb_core.data.library import Library
from musicemb_core.features.logmel import LogMel
from musicemb_core.models import checkpoint as ckpt
from musicemb_core.resources import default_model_dir

DEFAULT_MODEL = "default"


@dataclass
class Embeddings:
    """Vectors of segments: ``vectors`` (n, dim) float32, row i belongs to segment ``ids[i]``."""

    model: str
    ids: np.ndarray
    vectors: np.ndarray


class DamagedEmbeddings(LibraryError):
    """Stored vectors that cannot be read back (truncated, not ``.npy``, ids and vectors of different lengths):
    derived data, recomputed by the next ``embed``."""


@dataclass
class EmbedReport:
    model: str
    computed: int
    kept: int
    dropped: int
    failed: list[tuple[str, str]]
    cancelled: bool = False


def model_folder(lib: Library, name: str = DEFAULT_MODEL) -> Path:
    """The folder of model ``name``: the library's own, else the built-in default; or, for a path (``/``, ``.``,
    ``~``), that model folder, used read-only: outputs go under the library as :func:`model_key` ``(name)``."""
    model_key(name)  # a valid name, or a path to a model folder
    if is_path_like(name):
        return Path(name).expanduser()
    folder = lib.root / "models" / name
    if (folder / ckpt.CONFIG).exists():
        return folder
    if name == DEFAULT_MODEL and (default_model_dir() / ckpt.CONFIG).exists():
        return default_model_dir()
    known = sorted(p.name for p in (lib.root / "models").glob("*") if (p / ckpt.CONFIG).exists())
    raise ConfigError(f"no model {name!r} in {lib.root / 'models'}; known: {', '.join(known) or 'none'}"
                      + ("" if name != DEFAULT_MODEL else f"; the built-in default is missing at {default_model_dir()}"))


def _fingerprint(folder: Path) -> str:
    return hashlib.blake2b((folder / ckpt.WEIGHTS).read_bytes(), digest_size=12).hexdigest()


def load_embeddings(lib: Library, model: str = DEFAULT_MODEL) -> Embeddings:
    """Stored vectors of ``model``; raises :class:`LibraryError` if there are none yet."""
    folder = lib.root / "embeddings" / model_key(model)
    if not (folder / "ids.npy").exists() or not (folder / "vectors.npy").exists():
        raise LibraryError(f"{lib.root}: no embeddings for model {model!r}; run `musicemb embed`")
    try:
        ids = np.load(folder / "ids.npy")
        vectors = np.load(folder / "vectors.npy", mmap_mode="r")
    except (OSError, ValueError, EOFError) as e:  # truncated or not .npy
        raise DamagedEmbeddings(f"{folder}: damaged embeddings ({e}); run `musicemb embed` to recompute them") from e
    if ids.ndim != 1 or vectors.ndim != 2 or len(ids) != len(vectors):
        raise DamagedEmbeddings(f"{folder}: damaged embeddings ({len(ids)} ids for {len(vectors)} vectors); "
                                "run `musicemb embed` to recompute them")
    return Embeddings(model, ids, vectors)


def _write(folder: Path, ids: np.ndarray, vectors: np.ndarray, meta: dict) -> None:
    """Swap in a new embeddings folder atomically."""
    with atomic_folder(folder) as tmp:
        np.save(tmp / "vectors.npy", vectors.astype(np.float32, copy=False))
        np.save(tmp / "ids.npy", ids.astype(np.int64, copy=False))
        (tmp / "meta.json").write_text(json.dumps(meta))


class Embedder:
    """A loaded encoder with its log-mel front end: audio segments in, vectors out."""

    def __init__(self, folder: Path, *, device: str = "cpu"):
        self.encoder, self.info = ckpt.load_encoder(folder)
        self.device = torch.device(device)
        self.encoder.to(self.device)
        self.logmel = LogMel(self.info.features).to(self.device)
        self.sr = self.info.features.sr
        self.window_s = self.info.window_s

    @torch.inference_mode()
    def __call__(self, audio: np.ndarray) -> np.ndarray:
        """(batch, samples) at ``self.sr`` -> (batch, dim) float32."""
        x = self.logmel(torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)).to(self.device))
        return self.encoder(x.unsqueeze(1)).float().cpu().numpy()


def iter_embed(lib: Library, *, model: str = DEFAULT_MODEL, batch_size: int = 64, device: str = "cpu",
               cancel: CancelToken | None = None) -> JobGen[EmbedReport]:
    """Embed every segment of ``lib`` that has no vector for ``model`` yet; yields progress per track."""
    cancel = cancel or CancelToken()
    folder = model_folder(lib, model)
    emb = Embedder(folder, device=device)
    out_dir = lib.root / "embeddings" / model
    fp = _fingerprint(folder)
    seg = lib.segments()
    old_ids, old_vecs = np.zeros(0, np.int64), np.zeros((0, emb.encoder.dim), np.float32)
    meta_path = out_dir / "meta.json"
    if meta_path.exists() and json.loads(meta_path.read_text()).get("fingerprint") == fp:
        stored = load_embeddings(lib, model)
        old_ids, old_vecs = stored.ids, np.asarray(stored.vectors)
    keep = np.isin(old_ids, seg["id"])
    todo = ~np.isin(seg["id"], old_ids)
    tracks = {t.id: t for t in lib.tracks()}
    todo_tracks = np.unique(seg["track_id"][todo])
    new_ids: list[np.ndarray] = []
    new_vecs: list[np.ndarray] = []
    failed: list[tuple[str, str]] = []
    report = EmbedReport(model, 0, int(keep.sum()), int((~keep).sum()), failed)

    def decode(tid: int):
        try:
            return tid, load(tracks[tid].path, sr=emb.sr)[0], ""
        except AudioError as e:
            return tid, None, e.reason

    clock = EtaClock()
    yield Progress("embed", 0, len(todo_tracks), f"{int(todo.sum())} segments to embed with {model!r}")
    try:
        with ThreadPoolExecutor(1) as pool:  # decode the next track while the CNN runs on this one
            for done, (tid, y, err) in enumerate(pool.map(decode, todo_tracks), 1):
                cancel.check()
                rows = np.flatnonzero(todo & (seg["track_id"] == tid))
                if y is None:
                    failed.append((tracks[tid].path, err))
                else:
                    clips = cut(y, emb.sr, seg["start_s"][rows], window_s=emb.window_s)
                    for a in range(0, len(rows), batch_size):
                        new_vecs.append(emb(clips[a:a + batch_size]))
                    new_ids.append(seg["id"][rows])
                yield Progress("embed", done, len(todo_tracks), tracks[tid].path, clock.eta(done, len(todo_tracks)))
    except Cancelled:
        report.cancelled = True
    ids = np.concatenate([old_ids[keep], *new_ids])
    vecs = np.concatenate([old_vecs[keep], *new_vecs]) if len(ids) else old_vecs[:0]
    order = np.argsort(ids)
    report.computed = int(sum(len(i) for i in new_ids))
    if report.computed or report.dropped or not out_dir.exists():
        _write(out_dir, ids[order], vecs[order], {"model": model, "fingerprint": fp, "dim": emb.encoder.dim,
                                                   "source": str(folder)})
    return report
