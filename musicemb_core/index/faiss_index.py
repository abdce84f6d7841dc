"""``EmbeddingIndex``: cosine nearest neighbours over FAISS, ids mapped to segments.

Kinds: ``flat`` (exact), ``hnsw`` (HNSW32 graph), ``ivfpq`` (inverted lists + product quantisation, trained on
a sample) and ``auto`` (flat below 50k vectors, HNSW below 2M, IVF-PQ above). Vectors are L2-normalised so the
inner product is the cosine similarity; scores returned are cosines (higher is nearer).
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import re
import shutil
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np

from musicemb_core.common.errors import ConfigError, LibraryError
from musicemb_core.common.paths import atomic_path, atomic_write_text
from musicemb_core.common.progress import CancelToken, JobGen, Progress, drive

KINDS = ("auto", "flat", "hnsw", "ivfpq")
FLAT_BELOW, HNSW_BELOW = 50_000, 2_000_000
T = TypeVar("T")
POLL_S = 0.5  # how often a build on a worker thread says how far it is and looks for a cancel
ARM_S = 0.25  # how often a build being stopped arms FAISS's interrupt again


def choose_kind(n: int) -> str:
    """The kind ``auto`` picks for ``n`` vectors."""
    return "flat" if n < FLAT_BELOW else "hnsw" if n < HNSW_BELOW else "ivfpq"


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send what C code prints on stdout (FAISS on-disk lists do) to stderr, keeping stdout for JSON."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def pq_subquantisers(dim: int, pq_m: int) -> int:
    """PQ sub-quantisers for ``dim``-d vectors: ``pq_m``, else the largest divisor of ``dim`` below it (the 182-d
    similarity space gets 14)."""
    return max(m for m in range(1, min(pq_m, dim) + 1) if dim % m == 0)


def normalise(X: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), float32 C-contiguous."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.maximum(norms, 1e-12)


class EmbeddingIndex:
    """Estimator-like: parameters in ``__init__``, ``fit(X, ids)`` builds, ``add`` appends, ``search`` queries.

    Parameters
    ----------
    kind : one of ``auto``, ``flat``, ``hnsw``, ``ivfpq``.
    hnsw_m, ef_construction, ef_search : HNSW graph degree and build/search breadth.
    nlist, pq_m, nprobe : IVF-PQ lists, sub-quantisers (bytes per vector) and lists probed per query.
    """

    def __init__(self, kind: str = "auto", *, hnsw_m: int = 32, ef_construction: int = 200, ef_search: int = 128,
                 nlist: int | None = None, pq_m: int = 16, nprobe: int = 32):
        if kind not in KINDS:
            raise ConfigError(f"index kind must be one of {', '.join(KINDS)}, got {kind!r}")
        self.kind, self.hnsw_m, self.ef_construction, self.ef_search = kind, hnsw_m, ef_construction, ef_search
        self.nlist, self.pq_m, self.nprobe = nlist, pq_m, nprobe
        self.index_ = None
        self.kind_ = None
        self.refine_ = None

    @property
    def ntotal(self) -> int:
        return 0 if self.index_ is None else int(self.index_.ntotal)

    def _build(self, kind: str, dim: int, n: int, sample: np.ndarray):
        import faiss

        if kind == "flat":
            base = faiss.IndexFlatIP(dim)
        elif kind == "hnsw":
            base = faiss.IndexHNSWFlat(dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            base.hnsw.efConstruction = self.ef_construction
            base.hnsw.efSearch = self.ef_search
        else:
            nlist = self.nlist or int(max(16, min(65536, 4 * np.sqrt(n))))
            if len(sample) < nlist:
                raise ConfigError(f"ivfpq needs at least nlist={nlist} vectors to train, got {len(sample)}; "
                                  "use --kind flat (exact) or hnsw for so few")
            m = pq_subquantisers(dim, self.pq_m)
            base = faiss.IndexIVFPQ(faiss.IndexFlatIP(dim), dim, nlist, m, 8, faiss.METRIC_INNER_PRODUCT)
            base.train(sample)
            base.nprobe = self.nprobe
        self.kind_ = kind
        return faiss.IndexIDMap2(base)

    def fit(self, X: np.ndarray, ids: np.ndarray) -> EmbeddingIndex:
        """Build the index from vectors ``X`` (n, dim) with segment ``ids`` (n,)."""
        return drive(self.iter_fit(X, ids))

    def iter_fit(self, X: np.ndarray, ids: np.ndarray, *, cancel: CancelToken | None = None) -> JobGen[EmbeddingIndex]:
        """:meth:`fit` as a job: yields the vectors placed (an HNSW graph takes minutes for 250k vectors) every
        :data:`POLL_S`; a cancel stops FAISS within a second or so and raises :class:`Cancelled`."""
        X = normalise(X)
        if len(X) != len(ids):
            raise ConfigError(f"{len(X)} vectors but {len(ids)} ids")
        cancel = cancel or CancelToken()
        kind = choose_kind(len(X)) if self.kind == "auto" else self.kind
        rng = np.random.default_rng(0)
        sample = X[rng.choice(len(X), min(len(X), 100_000), replace=False)] if len(X) else X
        yield from BUILD_TURN.wait(cancel, kind=kind)
        try:
            self.index_ = self._build(kind, X.shape[1], len(X), sample)
            yield from _add_on_worker(self.index_, X, np.asarray(ids, dtype=np.int64), cancel,
                                      interrupt=BUILD_TURN.needed(kind))
        finally:
            BUILD_TURN.release(kind=kind)
        return self

    @property
    def ondisk(self) -> bool:
        """Whether the inverted lists live on disk (built by :func:`musicemb_core.index.ondisk.iter_build_ondisk`)."""
        return bool(getattr(self, "meta_", {}).get("ondisk"))

    def _not_ondisk(self, what: str) -> None:
        if self.ondisk:
            raise ConfigError(f"an on-disk IVF-PQ index cannot {what}; rebuild it with `musicemb index`")

    def add(self, X: np.ndarray, ids: np.ndarray) -> EmbeddingIndex:
        """Append vectors (an incremental import); the index must have been fitted or loaded."""
        if self.index_ is None:
            return self.fit(X, ids)
        self._not_ondisk("add vectors")
        drive(BUILD_TURN.wait(CancelToken(), kind=self.kind_))
        try:
            self.index_.add_with_ids(normalise(X), np.asarray(ids, dtype=np.int64))
        finally:
            BUILD_TURN.release(kind=self.kind_)
        return self

    def remove(self, ids: np.ndarray) -> int:
        """Remove vectors by id (flat and ivfpq; HNSW graphs cannot delete); returns how many were removed."""
        import faiss

        if self.kind_ == "hnsw":
            raise ConfigError("an HNSW index cannot delete vectors; rebuild it with `musicemb index`")
        self._not_ondisk("delete vectors")
        return int(self.index_.remove_ids(faiss.IDSelectorBatch(np.asarray(ids, dtype=np.int64))))

    def search(self, Q: np.ndarray, k: int = 10, *, threads: int | None = None,
               exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Cosine similarities (nq, k) and ids (nq, k), best first; id -1 where fewer than k exist.

        ``threads``: OpenMP threads for this call (default 1 for up to 16 queries, where more threads only add
        overhead, else all). ``exclude``: ids passed over (flat and HNSW indexes only), e.g. a query's own track.
        """
        import faiss

        if self.index_ is None:
            raise LibraryError("the index is empty; build it with `musicemb index`")
        Q = normalise(np.atleast_2d(Q))
        params = None if exclude is None else self._excluding(exclude, int(k))
        prev = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(threads or (1 if len(Q) <= 16 else prev))
        n = int(k) * (self.refine_[2] if self.refine_ else 1)
        try:
            scores, ids = uninterrupted(lambda: self.index_.search(Q, n, params=params and params[0]))
        finally:
            faiss.omp_set_num_threads(prev)
        return self._rerank(Q, ids, int(k)) if self.refine_ else (scores, ids)

    def _excluding(self, ids: np.ndarray, k: int) -> tuple:
        """FAISS search parameters passing over ``ids`` (with the selectors they point to: kept alive by the caller)."""
        import faiss

        if self.kind_ not in ("flat", "hnsw") or self.refine_:
            raise ConfigError(f"a {self.kind_} index cannot pass over ids in a search")
        batch = faiss.IDSelectorBatch(np.ascontiguousarray(ids, dtype=np.int64))
        params = faiss.SearchParametersHNSW() if self.kind_ == "hnsw" else faiss.SearchParameters()
        if self.kind_ == "hnsw":  # a breadth past the ids passed over: the search must be able to leave them
            params.efSearch = max(self.ef_search, k + len(ids))  # (a query's own long track) to find the others
        sel = faiss.IDSelectorNot(batch)  # the Python objects own the C++ ones params points to
        params.sel = sel
        return params, sel, batch

    def refine_with(self, vectors: np.ndarray, ids: np.ndarray, *, factor: int = 16) -> EmbeddingIndex:
        """Re-rank approximate candidates (``factor * k`` per query) by their exact cosine, reading their rows
        from ``vectors`` (n, dim), e.g. a memory map of the stored embeddings, rows in the order of sorted
        ``ids``. Only the candidates' rows are read (a memory map is advised random access: no read-ahead)."""
        mm = getattr(vectors, "_mmap", None) or getattr(getattr(vectors, "base", None), "_mmap", None)
        if mm is not None and hasattr(mm, "madvise"):
            mm.madvise(mmap.MADV_RANDOM)
        self.refine_ = (vectors, np.asarray(ids, dtype=np.int64), int(factor))
        return self

    def _rerank(self, Q: np.ndarray, cand: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        vectors, known, _ = self.refine_
        pos = np.minimum(np.searchsorted(known, cand), len(known) - 1)
        valid = (cand >= 0) & (known[pos] == cand)
        rows, inv = np.unique(pos[valid], return_inverse=True)  # sorted reads, each row once
        V = normalise(np.asarray(vectors[rows]))
        sims = np.full(cand.shape, -np.inf, dtype=np.float32)
        sims[valid] = np.einsum("ij,ij->i", np.repeat(Q, valid.sum(1), axis=0), V[inv])
        order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        best = np.take_along_axis(sims, order, 1)
        return best, np.where(np.isfinite(best), np.take_along_axis(cand, order, 1), -1)

    def save(self, path: str | Path, *, meta: dict | None = None) -> None:
        """Write ``path`` (FAISS) and ``path.json`` (kind, count, ``meta``), each atomically."""

        self._not_ondisk("be copied by save(); it is written where it is built")
        path = Path(path)
        with atomic_path(path) as tmp:
            write_index(self.index_, tmp, shown=path)
        atomic_write_text(path.with_suffix(path.suffix + ".json"),
                          json.dumps({"kind": self.kind_, "ntotal": self.ntotal, **(meta or {})}))

    @classmethod
    def load(cls, path: str | Path, *, mmap: bool = False) -> EmbeddingIndex:
        """Read an index saved by :meth:`save` or built on disk; ``mmap`` maps it from disk instead of reading
        it into memory (an on-disk index always maps its inverted lists, found beside ``path``)."""
        import faiss

        path = Path(path)
        if not path.exists():
            raise LibraryError(f"{path}: no index; build it with `musicemb index`")
        meta = _read_meta(path.with_suffix(path.suffix + ".json"))
        flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if mmap else 0
        self = cls(meta["kind"], nprobe=meta.get("nprobe", 32))
        try:
            with stdout_to_stderr():
                self.index_ = faiss.read_index(str(path), flags | faiss.IO_FLAG_ONDISK_SAME_DIR)
        except RuntimeError as e:
            raise LibraryError(f"{path}: damaged index ({faiss_reason(e)})") from e
        self.kind_ = meta["kind"]
        base = faiss.downcast_index(self.index_.index if hasattr(self.index_, "id_map") else self.index_)
        if self.kind_ == "ivfpq":
            base.nprobe = self.nprobe
        elif self.kind_ == "hnsw":
            base.hnsw.efSearch = self.ef_search
        self.meta_ = meta
        return self


class _BuildTurn:
    """One HNSW or IVF-PQ build at a time runs FAISS in this process. FAISS's interrupt is one for the whole
    process: a cancel stopping one build's add (:func:`_interrupt`) would stop whichever FAISS computation asks
    first, and a build's add or training cannot simply be run again as a search is (:func:`uninterrupted`). A
    second build waits for its turn (two builds on the same cores are no faster together). Flat indexes (made on
    the fly by ``similar`` and the melody search) ask the interrupt nothing and take no turn."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    @staticmethod
    def needed(kind: str) -> bool:
        """Whether a build of ``kind`` takes a turn: a flat add asks FAISS's interrupt nothing."""
        return kind != "flat"

    def wait(self, cancel: CancelToken, *, kind: str = "") -> JobGen[None]:
        """Until the turn of this build (of ``kind``: a flat one at once), saying so every :data:`POLL_S` and
        looking for a cancel; the caller then runs its FAISS work and gives the turn back with :meth:`release`
        (in a ``finally``)."""
        if not self.needed(kind):
            return
        cancel.check()
        while not self._lock.acquire(timeout=POLL_S):
            yield Progress("index", 0, None, "waiting for another index build in this process to finish")
            cancel.check()

    def release(self, *, kind: str = "") -> None:
        if self.needed(kind):
            self._lock.release()


BUILD_TURN = _BuildTurn()


def _add_on_worker(index, X: np.ndarray, ids: np.ndarray, cancel: CancelToken, *,
                   interrupt: bool = True) -> JobGen[None]:
    """``index.add_with_ids(X, ids)`` on a worker thread, as one FAISS call (the index a direct call builds: HNSW
    inserts a call's vectors in an order of its own, so adding them in parts would build another graph), with
    Progress every :data:`POLL_S`. A cancel, or the job closed or interrupted, stops FAISS at its next interrupt
    check (``interrupt``; a flat add, which never checks, is waited for: it copies the vectors, under a second)."""
    import faiss

    failed: list[BaseException] = []
    done = threading.Event()  # not Thread.join: a Ctrl-C in join() marks a running thread stopped (Python 3.11)
    threads = faiss.omp_get_max_threads()  # the caller's setting (a new thread starts with OpenMP's default)

    def add() -> None:
        try:
            faiss.omp_set_num_threads(threads)
            index.add_with_ids(X, ids)
        except BaseException as e:  # noqa: BLE001 - raised again on the job's thread
            failed.append(e)
        finally:
            done.set()

    cancel.check()
    placed = _Placed(index, len(X))
    threading.Thread(target=add, name="faiss-add", daemon=True).start()
    try:
        while not done.wait(POLL_S):
            yield Progress("index", placed(), len(X), placed.what)
            cancel.check()
    finally:
        if not done.is_set():
            _interrupt(done, arm=interrupt)
    if failed:
        raise failed[0]


def _interrupt(done: threading.Event, *, arm: bool = True) -> None:
    """Stop the FAISS call running on a worker thread and wait until it has (``done``; under a second): FAISS asks
    its interrupt callback every few hundred vectors, from its own threads, where Python's (a Ctrl-C) never
    answers; an expired timeout does, once (armed again every :data:`ARM_S` should another FAISS call have taken
    it; not ``arm``: only waited for). FAISS's own callback is put back after. A Ctrl-C meanwhile is raised once
    the call has stopped: a process that ends under a running FAISS call aborts."""
    interrupted = None
    with _SHARED.interrupting() if arm else contextlib.nullcontext():
        while not done.is_set():
            try:
                if arm:
                    _SHARED.arm()
                done.wait(ARM_S)
            except KeyboardInterrupt as e:
                interrupted = e
    if interrupted is not None:
        raise interrupted


class _SharedInterrupt:
    """FAISS's interrupt callback, one for the whole process, shared by the cancels of builds (:func:`_interrupt`)
    and the searches of this module (:func:`uninterrupted`; FAISS's HNSW, IVF and batched flat searches ask it
    too): a cancel arms it only while no such search runs, and a search that took it (begun after it was armed)
    is run again (an armed interrupt fires once, and none is armed while it runs): one job's cancel
    never fails another's search."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._searching = self._arming = self._interrupting = 0

    @contextlib.contextmanager
    def interrupting(self) -> Iterator[None]:
        """While a build is being stopped; FAISS's own callback is put back when the last one ends."""
        import faiss

        with self._cond:
            self._interrupting += 1
        try:
            yield
        finally:
            with self._cond:
                self._interrupting -= 1
                if not self._interrupting:
                    faiss.PythonInterruptCallback.reset()
                self._cond.notify_all()

    def arm(self) -> None:
        """Have the next FAISS call that asks be interrupted, once the searches running have ended (searches that
        begin meanwhile wait for it; searches take milliseconds, a long one delays a cancel by what is left of it)."""
        import faiss

        with self._cond:
            self._arming += 1
            try:
                self._cond.wait_for(lambda: not self._searching)
                faiss.TimeoutCallback.reset(1e-9)
            finally:
                self._arming -= 1
                self._cond.notify_all()

    def search(self, call: Callable[[], T]) -> T:
        """``call()``, run again when a build's cancel interrupted it (see the class)."""
        with self._cond:
            self._cond.wait_for(lambda: not self._arming)
            self._searching += 1
        try:
            while True:
                with self._cond:
                    stopping = self._interrupting > 0
                try:
                    return call()
                except RuntimeError as e:
                    if not stopping or "computation interrupted" not in str(e):
                        raise
        finally:
            with self._cond:
                self._searching -= 1
                self._cond.notify_all()


_SHARED = _SharedInterrupt()


def uninterrupted(call: Callable[[], T]) -> T:
    """``call()``, a FAISS search, shielded from the cancel of an index build on another thread (which interrupts
    whatever FAISS call asks first): every FAISS search that may run beside a build goes through here."""
    return _SHARED.search(call)


class _Placed:
    """How many of the ``n`` vectors being added to ``index`` are placed: HNSW nodes with a neighbour at level 0
    (read in place from the graph FAISS is writing, once it is sized: FAISS does not reallocate it afterwards in
    the same call); other kinds count when done."""

    def __init__(self, index, n: int):
        import faiss

        base = faiss.downcast_index(index.index if hasattr(index, "id_map") else index)
        self.hnsw = base.hnsw if hasattr(base, "hnsw") else None
        self.index, self.n, self.n0 = index, n, int(index.ntotal)
        self.what = f"{'linking' if self.hnsw is not None else 'adding'} {n} vectors"
        self.neighbours = self.slots = None

    def __call__(self) -> int:
        if self.hnsw is None:
            return self.n if self.index.ntotal >= self.n0 + self.n else 0
        if self.slots is None and not self._sized():
            return 0
        return int((self.neighbours[self.slots] != -1).sum())

    def _sized(self) -> bool:
        import faiss

        h, end = self.hnsw, self.n0 + self.n
        if h.levels.size() != end or h.offsets.size() != end + 1 or h.neighbors.size() != h.offsets.at(end):
            return False
        self.slots = faiss.rev_swig_ptr(h.offsets.data(), end + 1)[self.n0:end].astype(np.int64)
        self.neighbours = faiss.rev_swig_ptr(h.neighbors.data(), h.neighbors.size())
        return True


def faiss_reason(e: RuntimeError) -> str:
    """A FAISS error's own words, without the C++ function and source line it names first."""
    return re.sub(r"^Error in .* at \S+:\d+: (Error: )?", "", str(e).strip().splitlines()[0])[:200]


@contextlib.contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """FAISS writing ``path``: a failure (a full disk, a folder that cannot be written) is a :class:`LibraryError`
    naming the file, saying when the disk is full."""
    try:
        yield
    except (RuntimeError, OSError) as e:
        reason = faiss_reason(e) if isinstance(e, RuntimeError) else e.strerror or str(e)
        with contextlib.suppress(OSError):
            if isinstance(e, RuntimeError) and shutil.disk_usage(Path(path).parent).free < 64 << 20:
                reason = "the disk is full"
        raise LibraryError(f"{path}: cannot write the index ({reason}); what was there is kept") from e


def write_index(index, path: str | Path, *, shown: str | Path | None = None) -> None:
    """``faiss.write_index`` through a Python file (FAISS's own reports a failure at close, such as a full disk,
    on stderr only: the file was left short), in :func:`writing`; ``shown``: the path to name when ``path`` is a
    temporary one."""
    import faiss

    with writing(shown or path), open(path, "wb") as f:
        writer = faiss.PyCallbackIOWriter(f.write)
        faiss.write_index(index, writer)
        del writer  # its last block is written before the file closes


def _read_meta(path: Path) -> dict:
    """An index's ``.json`` (kind, count, parameters); :class:`LibraryError` naming it when missing or damaged."""
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise LibraryError(f"{path}: missing beside its index") from None
    except (OSError, ValueError) as e:
        raise LibraryError(f"{path}: damaged ({e})") from e
    if not isinstance(meta, dict) or meta.get("kind") not in KINDS[1:]:
        raise LibraryError(f"{path}: damaged (no index kind)")
    return meta
