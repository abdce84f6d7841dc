"""FAISS's interrupt is one for the whole process: before, a cancelled index build armed it for whichever FAISS
call asked first, and the app's HNSW or IVF-PQ search running meanwhile failed ("computation interrupted")."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from musicemb_core.common.errors import Cancelled
from musicemb_core.common.progress import CancelToken, drive
from musicemb_core.index import EmbeddingIndex, faiss_index


def _clustered(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, dim)).astype(np.float32)
    return centres[rng.integers(40, size=n)] + 0.3 * rng.standard_normal((n, dim)).astype(np.float32)


class _Watched(threading.Event):
    """A build's ``done`` that tells when its interrupt waits on it: armed, the build's add not stopped yet (as an
    add between two of its interrupt checks)."""

    def __init__(self) -> None:
        super().__init__()
        self.waited = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        self.waited.set()
        return super().wait(timeout)


@pytest.mark.parametrize("kind, exclude", [("hnsw", None), ("hnsw", np.array([0, 1])), ("ivfpq", None)])
def test_a_search_while_a_build_is_being_stopped_returns_what_it_would_alone(kind, exclude):
    X = _clustered(3000)
    index = EmbeddingIndex(kind).fit(X, np.arange(3000))
    want = index.search(X[:5], 10, exclude=exclude)
    done = _Watched()
    stopper = threading.Thread(target=faiss_index._interrupt, args=(done,))
    stopper.start()
    try:
        assert done.waited.wait(60)
        got = index.search(X[:5], 10, exclude=exclude)
    finally:
        done.set()
        stopper.join()
    assert np.array_equal(got[1], want[1]) and np.array_equal(got[0], want[0])


def test_evaluates_exact_search_while_a_build_is_being_stopped_returns_what_it_would_alone():
    """``evaluate``'s exact kNN (``faiss.knn``, batched like a big flat search) asks the interrupt too."""
    from musicemb_core.analysis.evaluation import _knn

    X = faiss_index.normalise(_clustered(10000))  # FAISS asks between blocks of 4,096 queries
    want = _knn(X, X[:500], 10)
    done = _Watched()
    stopper = threading.Thread(target=faiss_index._interrupt, args=(done,))
    stopper.start()
    try:
        assert done.waited.wait(60)
        got = _knn(X, X[:500], 10)
    finally:
        done.set()
        stopper.join()
    assert np.array_equal(got[1], want[1]) and np.array_equal(got[0], want[0])


def test_searches_beside_a_cancelled_build_all_succeed_and_the_build_stops(monkeypatch):
    """A thread searching back to back while an HNSW build is cancelled: the cancel is not starved by the
    searches (each waits for the interrupt to be armed), and none of them fails."""
    monkeypatch.setattr(faiss_index, "POLL_S", 0.005)
    searched = EmbeddingIndex("hnsw").fit(_clustered(3000, seed=1), np.arange(3000))
    Q = _clustered(5, seed=2)
    want = searched.search(Q, 10)
    results, failed, stop = [], [], threading.Event()

    def search() -> None:
        while not stop.is_set():
            try:
                results.append(searched.search(Q, 10))
            except Exception as e:  # noqa: BLE001 - counted below
                failed.append(e)

    searcher = threading.Thread(target=search)
    searcher.start()
    cancel, built = CancelToken(), EmbeddingIndex("hnsw")
    job = built.iter_fit(_clustered(20000), np.arange(20000), cancel=cancel)
    try:
        next(job)
        cancel.cancel()
        with pytest.raises(Cancelled):
            drive(job)
    finally:
        stop.set()
        searcher.join()
    assert not failed, failed[:3]
    assert results and all(np.array_equal(r[1], want[1]) and np.array_equal(r[0], want[0]) for r in results)


def test_cancelling_one_of_two_builds_leaves_the_other_whole(monkeypatch):
    """Two HNSW builds on two threads (the app's index job and an inspection): cancelling one used to stop
    whichever add asked FAISS's interrupt first. Now the second waits for its turn, then builds in full."""
    monkeypatch.setattr(faiss_index, "POLL_S", 0.02)
    X = _clustered(20000, seed=3)
    cancel, first = CancelToken(), EmbeddingIndex("hnsw")
    job = first.iter_fit(_clustered(20000, seed=4), np.arange(20000), cancel=cancel)
    next(job)  # the first build's add is running
    second, said, failed = EmbeddingIndex("hnsw"), [], []

    def build() -> None:
        try:
            for p in second.iter_fit(X, np.arange(20000)):
                said.append(p)
        except Exception as e:  # noqa: BLE001 - asserted below
            failed.append(e)

    builder = threading.Thread(target=build)
    builder.start()
    try:
        for _ in range(600):
            if said:
                break
            threading.Event().wait(0.01)
        cancel.cancel()
        with pytest.raises(Cancelled):
            drive(job)
    finally:
        builder.join(120)
    assert not failed, failed
    assert any("waiting for another index build" in p.message for p in said)
    assert second.ntotal == 20000
    scores, ids = second.search(X[:50], 1)
    assert (ids[:, 0] == np.arange(50)).mean() >= 0.98  # every vector is its own nearest: the graph is whole


def test_a_flat_index_is_made_at_once_while_a_graph_is_being_built():
    """Flat indexes (``similar``'s tracks, the melody search) are made on the fly beside the app's jobs: they ask
    FAISS's interrupt nothing, so they do not wait for a graph build of minutes to end."""
    cancel = CancelToken()
    job = EmbeddingIndex("hnsw").iter_fit(_clustered(20000, seed=5), np.arange(20000), cancel=cancel)
    next(job)  # the graph's build holds its turn
    made: list[EmbeddingIndex] = []
    maker = threading.Thread(target=lambda: made.append(EmbeddingIndex("flat").fit(_clustered(500), np.arange(500))))
    try:
        maker.start()
        maker.join(30)
        assert made and made[0].ntotal == 500, "the flat index waited for the graph's build"
    finally:
        cancel.cancel()
        with pytest.raises(Cancelled):
            drive(job)
        maker.join()
