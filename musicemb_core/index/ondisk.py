"""IVF-PQ with on-disk inverted lists, for indexes larger than RAM.

Trained on a sample, filled chunk by chunk (each chunk becomes a block file), the blocks merged into one
``.ivfdata`` file (FAISS ``OnDiskInvertedLists``, memory-mapped when searched). Only the coarse centroids and the
PQ codebooks live in RAM; the codes (``pq_m`` bytes + an 8-byte id per vector) stay on disk and the page cache
keeps what queries touch. Files: ``NAME`` (the index header), ``NAME.<token>.ivfdata`` (codes and ids) and
``NAME.json`` (kind, count, parameters), read back with :meth:`EmbeddingIndex.load`.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np

from musicemb_core.common.errors import ConfigError
from musicemb_core.common.paths import atomic_write_text
from musicemb_core.common.progress import CancelToken, JobGen, Progress
from musicemb_core.index.faiss_index import (
    BUILD_TURN,
    EmbeddingIndex,
    normalise,
    pq_subquantisers,
    stdout_to_stderr,
    write_index,
    writing,
)


def default_nlist(n: int) -> int:
    """Inverted lists for ``n`` vectors: about ``4 sqrt(n)``, between 16 and 65536."""
    return int(max(16, min(65536, 4 * np.sqrt(n))))


def iter_build_ondisk(X: np.ndarray, ids: np.ndarray, path: str | Path, *, nlist: int | None = None,
                      pq_m: int = 16, nprobe: int = 32, train_size: int | None = None, chunk: int = 250_000,
                      random_state: int = 0, threads: int | None = None, meta: dict | None = None,
                      cancel: CancelToken | None = None) -> JobGen[EmbeddingIndex]:
    """Build an on-disk IVF-PQ index of ``X`` (n, dim), which may be a memory map: only the training sample
    and one chunk at a time are read into memory. Cosine similarity (rows are normalised).

    ``train_size``: training vectors (default ``max(40 * nlist, 10_000)``, at most ``n``). ``threads``: OpenMP
    threads (default: FAISS's; on busy shared cores 1 is faster: k-means on 160k vectors took 54 s with 1 thread
    and 84 s with 2 on two busy cores). Returns the index opened from disk. A cancelled or failed build leaves
    any previous index at ``path`` in place. One build at a time (:data:`BUILD_TURN`): a second waits.
    """
    cancel = cancel or CancelToken()
    path = Path(path)
    n, dim = X.shape
    nlist = nlist or default_nlist(n)
    pq_m = pq_subquantisers(dim, pq_m)
    if len(ids) != n:
        raise ConfigError(f"{n} vectors but {len(ids)} ids")
    n_train = min(n, train_size or max(40 * nlist, 10_000))
    if n_train < max(nlist, 256):
        raise ConfigError(f"ivfpq needs at least {max(nlist, 256)} vectors to train (nlist={nlist}), got {n}; "
                          "use --kind flat (exact) or hnsw for so few")
    yield from BUILD_TURN.wait(cancel)
    try:
        return (yield from _build_ondisk(X, ids, path, nlist, pq_m, nprobe, n_train, chunk, random_state, threads,
                                         meta, cancel))
    finally:
        BUILD_TURN.release()


def _build_ondisk(X, ids, path: Path, nlist: int, pq_m: int, nprobe: int, n_train: int, chunk: int,
                  random_state: int, threads: int | None, meta: dict | None,
                  cancel: CancelToken) -> JobGen[EmbeddingIndex]:
    """:func:`iter_build_ondisk`'s work, on its build turn."""
    import faiss
    from faiss.contrib.ondisk import merge_ondisk

    n, dim = X.shape
    work = path.with_name(f".{path.name}.build")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    blocks = list(range(0, n, chunk))
    data, swapped = None, False
    prev = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads or prev)
    try:
        yield Progress("index", 0, len(blocks) + 2, f"training IVF{nlist},PQ{pq_m} on {n_train} of {n} vectors")
        rows = np.sort(np.random.default_rng(random_state).choice(n, n_train, replace=False))
        sample = normalise(np.concatenate([X[rows[a:a + chunk]] for a in range(0, n_train, chunk)]))
        index = faiss.IndexIVFPQ(faiss.IndexFlatIP(dim), dim, nlist, pq_m, 8, faiss.METRIC_INNER_PRODUCT)
        index.cp.niter = 10  # coarse k-means: 10 iterations are enough for a sample this size
        index.train(sample)
        del sample
        trained = str(work / "trained.index")
        write_index(index, trained, shown=path)
        yield Progress("index", 1, len(blocks) + 2, "trained")
        names = []
        for i, a in enumerate(blocks):
            cancel.check()
            block = faiss.read_index(trained)
            block.add_with_ids(normalise(X[a:a + chunk]), np.asarray(ids[a:a + chunk], dtype=np.int64))
            names.append(str(work / f"block{i}.index"))
            write_index(block, names[-1], shown=path)
            del block
            yield Progress("index", 2 + i, len(blocks) + 2, f"filled {min(n, a + chunk)} of {n} vectors")
        cancel.check()
        old = sorted(path.parent.glob(f"{path.name}.*.ivfdata"))
        data = path.parent / f"{path.name}.{uuid.uuid4().hex[:8]}.ivfdata"  # new name: the old one stays valid
        index = faiss.read_index(trained)
        with stdout_to_stderr(), writing(path):  # FAISS prints progress with printf
            merge_ondisk(index, names, str(data))
        write_index(index, work / path.name, shown=path)
        del index
        os.replace(work / path.name, path)  # the header names its data file: readers see old or new
        swapped = True
        for f in old:
            f.unlink()
        atomic_write_text(path.with_suffix(path.suffix + ".json"), json.dumps(
            {"kind": "ivfpq", "ondisk": True, "ntotal": int(n), "nlist": nlist, "pq_m": pq_m, "nprobe": nprobe,
             "bytes_per_vector": pq_m + 8, "data": data.name, **(meta or {})}))
        yield Progress("index", len(blocks) + 2, len(blocks) + 2, f"on-disk IVF-PQ of {n} vectors")
    finally:
        faiss.omp_set_num_threads(prev)
        shutil.rmtree(work, ignore_errors=True)
        if data is not None and not swapped and data.exists():
            data.unlink()  # a build that failed or was cancelled before its header was swapped in
    return EmbeddingIndex.load(path)
