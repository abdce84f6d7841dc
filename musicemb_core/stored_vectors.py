"""A library's stored embeddings read back and checked against the model that made them (no torch: listings,
maps, evaluation and inspection start without it; :mod:`musicemb_core.inference` computes them)."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicemb_core.analysis.track_vectors import aggregate
from musicemb_core.common.errors import ConfigError, LibraryError
from musicemb_core.common.names import model_key
from musicemb_core.data import layout
from musicemb_core.data.library import Library
from musicemb_core.models import checkpoint as ckpt

DEFAULT_MODEL = "default"
"""The built-in fingerprint model: which recording a segment is (``identify``)."""
SIMILARITY_MODEL = "similarity"
"""The built-in similarity model: what a segment sounds like (neighbours, maps, ``similar``)."""


@dataclass
class Embeddings:
    """Vectors of segments: ``vectors`` (n, dim) float32, row i belongs to segment ``ids[i]``; ``generation``: the
    stored generation they were read from (another one holds other vectors)."""

    model: str
    ids: np.ndarray
    vectors: np.ndarray
    generation: str = ""


class DamagedEmbeddings(LibraryError):
    """Stored vectors that cannot be read back (truncated, not ``.npy``, ids and vectors of different lengths):
    derived data, recomputed by the next ``embed``."""


class StaleEmbeddings(LibraryError):
    """Stored vectors made by other weights or settings of their model (trained again, or its ``config.json``
    edited, since): they compare with nothing. ``why`` says which, in a phrase ("made by other weights of the
    model (trained again since?)")."""

    def __init__(self, message: str, why: str = "") -> None:
        super().__init__(message)
        self.why = why


class NonFiniteEmbeddings(LibraryError):
    """Stored vectors holding NaN or infinity (a model whose output overflowed): no distance to them means
    anything."""


def nonfinite_reason(model: str) -> str:
    """Why a track is failed when ``model`` gives NaN or infinity for it (nothing of it is stored)."""
    return f"{model!r} gives NaN or infinite values for it (its weights are damaged, or it overflowed)"


def check_finite(lib: Library, model: str, ids: np.ndarray, X: np.ndarray) -> None:
    """Raise :class:`NonFiniteEmbeddings`, naming the first such segment, if a row of ``X`` (the vectors of
    segments ``ids``) holds NaN or infinity."""
    bad = np.flatnonzero(~np.isfinite(X).all(axis=1))
    if len(bad):
        raise NonFiniteEmbeddings(f"{lib.root}: {len(bad)} of {len(X)} vectors of {model!r} hold NaN or infinity "
                                  f"(segment {int(ids[bad[0]])} first): the model failed on them; embed with another model "
                                  "or retrain this one")


def model_folder(lib: Library, name: str = DEFAULT_MODEL) -> Path:
    """The folder of model ``name``: the library's own, else a built-in one; or, for a path (``/``, ``.``, ``~``),
    that model folder, used read-only: outputs go under the library as :func:`model_key` ``(name)``."""
    return ckpt.find_model(lib.root / "models", name, builtin_models())


def weights_digest(folder: Path) -> str:
    """A digest of a model's weights: stored vectors made with other weights are recomputed. Read once per weights
    file (path, size and modification time): the app asks on every refresh."""
    return ckpt.file_digest(ckpt.weights_path(folder), _file_digest, "model weights")


@functools.lru_cache(maxsize=64)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    return hashlib.blake2b(Path(path).read_bytes(), digest_size=12).hexdigest()


def vector_digests(folder: Path) -> dict[str, str]:
    """What stored vectors record of the model that made them (``meta.json``): its weights' and settings' digests."""
    return {"weights_digest": weights_digest(folder), "settings_digest": ckpt.settings_digest(folder)}


def stale_reason(meta: dict, folder: Path) -> str | None:
    """Why vectors stored with ``meta`` are not ``folder``'s model's as it is now, in a phrase; None if they are.
    Vectors stored before settings were recorded are judged by their weights alone."""
    if layout.stored_digest(meta) != weights_digest(folder):
        return "made by other weights of the model (trained again since?)"
    if meta.get("settings_digest", ckpt.settings_digest(folder)) != ckpt.settings_digest(folder):
        return "made with other settings of the model (its config.json was edited since)"
    return None


def load_embeddings(lib: Library, model: str = DEFAULT_MODEL, *, deep: bool = False) -> Embeddings:
    """Stored vectors of ``model`` (its current generation, checked against the sizes recorded when it was
    published, and the checksum of its ids, read whole; ``deep``: of the vectors too, for a caller that reads
    them all); raises :class:`LibraryError` if there are none yet, :class:`DamagedEmbeddings` if damaged."""
    art = layout.embeddings(lib, model_key(model))

    def read(gen: Path) -> Embeddings:
        try:
            ids = np.load(gen / "ids.npy")
            vectors = np.load(gen / "vectors.npy", mmap_mode="r")
        except FileNotFoundError:
            raise
        except (OSError, ValueError, EOFError) as e:  # truncated or not .npy
            raise DamagedEmbeddings(f"{gen}: damaged embeddings ({e}); run `musicemb embed` to recompute them") from e
        if ids.ndim != 1 or vectors.ndim != 2 or len(ids) != len(vectors):
            raise DamagedEmbeddings(f"{gen}: damaged embeddings ({len(ids)} ids for {len(vectors)} vectors); "
                                    "run `musicemb embed` to recompute them")
        return Embeddings(model, ids, vectors, str(gen))

    try:
        emb = art.read(read, deep=deep or ("ids.npy",))
    except DamagedEmbeddings:
        raise
    except LibraryError as e:  # a file missing or of the wrong size
        raise DamagedEmbeddings(f"{e}") from e
    if emb is None:
        try:
            model_folder(lib, model)
        except ConfigError as e:  # embedding would not help: say why
            raise LibraryError(f"{lib.root}: no embeddings for model {model!r}: {e}") from None
        raise LibraryError(f"{lib.root}: no embeddings for model {model!r}; run `musicemb embed`")
    return emb


def check_weights(lib: Library, model: str) -> None:
    """Raise :class:`StaleEmbeddings` if ``lib``'s stored vectors of ``model`` were made by other weights or
    settings of it (a :class:`ConfigError` naming the file if its weights are damaged: embedding again would not
    help)."""
    meta = read_embeddings_meta(lib, model) or {}
    folder = model_folder(lib, model)
    why = stale_reason(meta, folder) if layout.stored_digest(meta) else None
    if why:
        ckpt.read_tensors(folder)
        raise StaleEmbeddings(f"{lib.root}: the embeddings of {model!r} were {why}; "
                              f"run `musicemb embed --model {model}`", why)


def read_embeddings_meta(lib: Library, model: str = DEFAULT_MODEL) -> dict | None:
    """``meta.json`` of ``model``'s current embeddings (model, fingerprint, dim, source); None when none."""
    return layout.read_embeddings_meta(lib, model_key(model))


def load_track_vectors(lib: Library, model: str = SIMILARITY_MODEL) -> tuple[np.ndarray, np.ndarray]:
    """(track ids, unit track vectors) of ``model``: those ``embed`` stored with the segment vectors (for the
    similarity model, relative to the library's tracks), else (a model without an aggregation, an older library)
    aggregated now from the segment vectors (``mean+std``)."""
    stored = read_arrays(lib, model, "track_ids", "track_vectors")
    if stored is not None and stored[0].ndim == 1 and stored[1].ndim == 2 and len(stored[0]) == len(stored[1]):
        return stored
    emb = load_embeddings(lib, model)
    known, groups = tracks_of(lib.segments(), emb.ids)
    return aggregate(np.asarray(emb.vectors)[known], groups, method="mean+std")


def tag_statistics_of(lib: Library, model: str = SIMILARITY_MODEL) -> dict[str, np.ndarray] | None:
    """The tagger statistics ``embed`` stored for ``model``'s track vectors (a query's track vector is made the
    same way); None when it has none (no tagger, an older library)."""
    keys = ("tag_mean", "tag_std", "tag_track_mean", "tag_track_spread")
    arrays = read_arrays(lib, model, *keys)
    return None if arrays is None else dict(zip(keys, arrays, strict=True))


def track_statistics(lib: Library, model: str = SIMILARITY_MODEL) -> tuple[np.ndarray, np.ndarray] | None:
    """(mean, spread) of the library's track vectors that ``embed`` took away from ``model``'s track vectors
    (:func:`~musicemb_core.analysis.track_vectors.relative_to_library`); None for models that keep them as they
    are. A query's track vector takes the same away."""
    return read_arrays(lib, model, "track_mean", "track_spread")


def tracks_of(seg: dict, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which of the segment ``ids`` the catalogue ``seg`` knows (mask), and their tracks."""
    at = np.minimum(np.searchsorted(seg["id"], ids), max(len(seg["id"]) - 1, 0))  # seg["id"] is sorted
    known = seg["id"][at] == ids if len(seg["id"]) else np.zeros(len(ids), bool)
    return known, seg["track_id"][at[known]].astype(np.int64)


def read_arrays(lib: Library, model: str, *names: str) -> tuple[np.ndarray, ...] | None:
    """Arrays stored beside ``model``'s current embeddings (one generation), None when any is missing."""
    return layout.read_embedding_arrays(lib, model_key(model), *names)


def builtin_models() -> tuple[str, ...]:
    """The models ``embed`` computes when none is named: the fingerprint space (``default``, for ``identify``)
    and the similarity space (``similarity``, for neighbours, maps, ``similar``, ``search``, ``classify``)."""
    return ckpt.BUILTIN_ENCODERS
