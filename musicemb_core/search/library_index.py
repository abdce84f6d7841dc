"""The index of a library's embeddings for one model: built from ``embeddings/<model>``, kept as a generation
of ``index/knn/<model>`` (``index.faiss`` + ``index.faiss.json``, published together), rebuilt when the
embeddings change or the stored index is damaged."""

from __future__ import annotations

from pathlib import Path

from musicemb_core.common.errors import LibraryError
from musicemb_core.common.names import model_key
from musicemb_core.common.progress import CancelToken, JobGen, Progress, drive
from musicemb_core.data import layout
from musicemb_core.data.library import Library
from musicemb_core.index import EmbeddingIndex
from musicemb_core.index.faiss_index import choose_kind
from musicemb_core.index.ondisk import iter_build_ondisk
from musicemb_core.stored_vectors import DEFAULT_MODEL, load_embeddings

#: The files of an index read whole when it is opened: their checksums are checked (a file overwritten in place
#: keeps its size); an on-disk index's inverted lists are memory-mapped, not checked.
READ_WHOLE = (layout.INDEX_FILE, f"{layout.INDEX_FILE}.json")


def index_path(lib: Library, model: str) -> Path:
    """The current index file of ``model`` (where the next one goes when there is none yet)."""
    key = model_key(model)
    gen = layout.knn_index(lib, key).current()
    if gen is not None:
        return gen / layout.INDEX_FILE
    legacy = layout.legacy_index_file(lib, key)
    return legacy if legacy.exists() else layout.knn_index(lib, key).folder


def _source(lib: Library, model: str) -> str:
    return layout.embedding_source_key(lib, model_key(model))


@layout.writes_library("index")
def iter_build_index(lib: Library, *, model: str = DEFAULT_MODEL, kind: str = "auto",
                     cancel: CancelToken | None = None) -> JobGen[EmbeddingIndex]:
    """Build (or rebuild) and publish the index of ``model``'s embeddings. IVF-PQ is built on disk in chunks
    and re-ranks its candidates with the stored vectors (memory-mapped), so neither needs to fit in RAM. A cancel
    raises :class:`Cancelled` and keeps the index there was."""
    emb = load_embeddings(lib, model)
    meta = {"model": model, "source": _source(lib, model), "dim": int(emb.vectors.shape[1]), "asked": kind}
    with layout.knn_index(lib, model_key(model)).publish() as gen:
        path = gen / layout.INDEX_FILE
        if (choose_kind(len(emb.ids)) if kind == "auto" else kind) == "ivfpq":
            index = yield from iter_build_ondisk(emb.vectors, emb.ids, path, meta=meta, cancel=cancel)
            index.refine_with(emb.vectors, emb.ids)
        else:
            index = yield from _iter_fit(kind, emb, model, cancel)
            index.save(path, meta=meta)
    return index


def _iter_fit(kind: str, emb, model: str, cancel: CancelToken | None) -> JobGen[EmbeddingIndex]:
    """An in-memory index of the embeddings ``emb``, its progress said as indexing ``model``."""
    n = len(emb.ids)
    yield Progress("index", 0, n, f"indexing {n} vectors of {model!r} ({kind})")
    index = yield from EmbeddingIndex(kind).iter_fit(emb.vectors, emb.ids, cancel=cancel)
    yield Progress("index", n, n, f"{index.kind_} index of {index.ntotal} vectors")
    return index


def _stored(lib: Library, model: str) -> EmbeddingIndex | None:
    """The published index (or one of the old layout), None when there is none or it is damaged."""
    key = model_key(model)
    art = layout.knn_index(lib, key)
    try:
        if art.pointer() is not None:
            return art.read(lambda gen: EmbeddingIndex.load(gen / layout.INDEX_FILE), deep=READ_WHOLE)
        legacy = layout.legacy_index_file(lib, key)
        return EmbeddingIndex.load(legacy) if legacy.exists() else None
    except (LibraryError, RuntimeError, ValueError, KeyError, OSError):  # damaged: derived data, rebuilt
        return None


def current_index(lib: Library, model: str, kind: str = "auto") -> EmbeddingIndex | None:
    """The published index of ``model`` when it indexes the current embeddings and was asked for as ``kind``
    (``index`` then has nothing to build: 2 minutes for 245,000 vectors); else None."""
    index = _stored(lib, model)
    if index is None or index.meta_.get("source") != _source(lib, model):
        return None
    return index if index.meta_.get("asked", index.meta_.get("kind")) == kind else None


def open_index(lib: Library, model: str = DEFAULT_MODEL) -> EmbeddingIndex:
    """The saved index if it matches the current embeddings, else a fresh one (:func:`iter_open_index`)."""
    return drive(iter_open_index(lib, model))


def iter_open_index(lib: Library, model: str = DEFAULT_MODEL, *,
                    cancel: CancelToken | None = None) -> JobGen[EmbeddingIndex]:
    """The saved index if it matches the current embeddings, else a fresh one (its building yields progress; a
    cancel raises :class:`Cancelled`): published when this process can take the writer lock at once, else
    (another process is writing, or the library is read-only) kept in memory only. Readers never wait."""
    index = _stored(lib, model)
    if index is not None and index.meta_.get("source") == _source(lib, model):
        if index.ondisk:
            emb = load_embeddings(lib, model)
            index.refine_with(emb.vectors, emb.ids)
        return index
    kind = index.meta_.get("asked", index.meta_.get("kind", "auto")) if index is not None else "auto"  # auto: chosen again
    if layout.writable(lib):
        with layout.try_write_lock(lib, "index") as locked:
            if locked:
                return (yield from iter_build_index(lib, model=model, kind=kind, cancel=cancel))
    emb = load_embeddings(lib, model)
    if (choose_kind(len(emb.ids)) if kind == "auto" else kind) == "ivfpq":
        kind = "hnsw"  # an on-disk index needs a place to live; in memory, HNSW
    return (yield from _iter_fit(kind, emb, model, cancel))
