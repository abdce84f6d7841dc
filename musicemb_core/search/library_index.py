"""The index of a library's embeddings for one model: built from ``embeddings/<model>``, kept as a generation
of ``index/knn/<model>`` (``index.faiss`` + ``index.faiss.json``, published together), rebuilt when the
embeddings change or the stored index is damaged."""

from __future__ import annotations

from pathlib import Path

from musicemb_core.common.errors import LibraryError
from musicemb_core.common.names import model_key
from musicemb_core.common.progress import JobGen, Progress, drive
from musicemb_core.data import layout
from musicemb_core.data.library import Library
from musicemb_core.index import EmbeddingIndex
from musicemb_core.index.faiss_index import choose_kind
from musicemb_core.index.ondisk import iter_build_ondisk
from musicemb_core.inference import DEFAULT_MODEL, load_embeddings

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
def iter_build_index(lib: Library, *, model: str = DEFAULT_MODEL, kind: str = "auto") -> JobGen[EmbeddingIndex]:
    """Build (or rebuild) and publish the index of ``model``'s embeddings. IVF-PQ is built on disk in chunks
    and re-ranks its candidates with the stored vectors (memory-mapped), so neither needs to fit in RAM."""
    emb = load_embeddings(lib, model)
    meta = {"model": model, "source": _source(lib, model), "dim": int(emb.vectors.shape[1]), "asked": kind}
    with layout.knn_index(lib, model_key(model)).publish() as gen:
        path = gen / layout.INDEX_FILE
        if (choose_kind(len(emb.ids)) if kind == "auto" else kind) == "ivfpq":
            index = yield from iter_build_ondisk(emb.vectors, emb.ids, path, meta=meta)
            index.refine_with(emb.vectors, emb.ids)
        else:
            yield Progress("index", 0, 1, f"indexing {len(emb.ids)} vectors of {model!r} ({kind})")
            index = EmbeddingIndex(kind).fit(emb.vectors, emb.ids)
            index.save(path, meta=meta)
            yield Progress("index", 1, 1, f"{index.kind_} index of {index.ntotal} vectors")
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


def open_index(lib: Library, model: str = DEFAULT_MODEL) -> EmbeddingIndex:
    """The saved index if it matches the current embeddings, else a fresh one: published when this process can
    take the writer lock at once, else (another process is writing, or the library is read-only) kept in
    memory only. Readers never wait."""
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
                return drive(iter_build_index(lib, model=model, kind=kind))
    emb = load_embeddings(lib, model)
    if (choose_kind(len(emb.ids)) if kind == "auto" else kind) == "ivfpq":
        kind = "hnsw"  # an on-disk index needs a place to live; in memory, HNSW
    return EmbeddingIndex(kind).fit(emb.vectors, emb.ids)
