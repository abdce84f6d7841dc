"""The index of a library's embeddings for one model: built from ``embeddings/<model>``, kept in
``index/<model>.faiss``, rebuilt when the embeddings change."""

from __future__ import annotations

import json

from musicemb_core.common.names import model_key
from musicemb_core.common.progress import JobGen, Progress
from musicemb_core.data.library import Library
from musicemb_core.index import EmbeddingIndex
from musicemb_core.index.faiss_index import choose_kind
from musicemb_core.index.ondisk import iter_build_ondisk
from musicemb_core.inference import DEFAULT_MODEL, load_embeddings


def index_path(lib: Library, model: str):
    return lib.folder("index") / f"{model_key(model)}.faiss"


def _fingerprint(lib: Library, model: str) -> str:
    meta = lib.root / "embeddings" / model_key(model) / "meta.json"
    ids = lib.root / "embeddings" / model_key(model) / "ids.npy"
    fp = json.loads(meta.read_text()).get("fingerprint", "") if meta.exists() else ""
    return f"{fp}:{ids.stat().st_mtime_ns if ids.exists() else 0}"


def iter_build_index(lib: Library, *, model: str = DEFAULT_MODEL, kind: str = "auto") -> JobGen[EmbeddingIndex]:
    """Build (or rebuild) and save the index of ``model``'s embeddings. IVF-PQ is built on disk in chunks and
    re-ranks its candidates with the stored vectors (memory-mapped), so neither needs to fit in RAM."""
    emb = load_embeddings(lib, model)
    meta = {"model": model, "source": _fingerprint(lib, model), "dim": int(emb.vectors.shape[1])}
    if (choose_kind(len(emb.ids)) if kind == "auto" else kind) == "ivfpq":
        index = yield from iter_build_ondisk(emb.vectors, emb.ids, index_path(lib, model), meta=meta)
        return index.refine_with(emb.vectors, emb.ids)
    yield Progress("index", 0, 1, f"indexing {len(emb.ids)} vectors of {model!r} ({kind})")
    index = EmbeddingIndex(kind).fit(emb.vectors, emb.ids)
    index.save(index_path(lib, model), meta=meta)
    yield Progress("index", 1, 1, f"{index.kind_} index of {index.ntotal} vectors")
    return index


def open_index(lib: Library, model: str = DEFAULT_MODEL) -> EmbeddingIndex:
    """The saved index if it matches the current embeddings, else a freshly built and saved one."""
    path = index_path(lib, model)
    index = None
    if path.exists():
        try:
            index = EmbeddingIndex.load(path)
        except (RuntimeError, ValueError, KeyError, OSError):  # truncated or damaged: derived data, rebuilt
            index = None
    if index is not None:
        if index.meta_.get("source") == _fingerprint(lib, model):
            if index.ondisk:
                emb = load_embeddings(lib, model)
                index.refine_with(emb.vectors, emb.ids)
            return index
        kind = index.meta_.get("kind", "auto")
    else:
        kind = "auto"
    gen = iter_build_index(lib, model=model, kind=kind)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value
