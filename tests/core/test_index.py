"""EmbeddingIndex: exact search equals brute force, HNSW recall, IVF-PQ, save/load, incremental add, ids."""

from __future__ import annotations

import os

import numpy as np
import pytest

from musicemb_core.common.errors import ConfigError, LibraryError
from musicemb_core.index import EmbeddingIndex, choose_kind


def _clustered(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """Vectors around 50 centres on an 8-d manifold: structured like real embeddings (uniform random data in
    64-d has no meaningful neighbours, and no approximate index finds them)."""
    rng = np.random.default_rng(seed)
    lift = np.random.default_rng(99).standard_normal((8, dim))
    centres = np.random.default_rng(98).standard_normal((50, 8)) * 2
    latent = centres[rng.integers(50, size=n)] + 0.5 * rng.standard_normal((n, 8))
    return (latent @ lift + 0.05 * rng.standard_normal((n, dim))).astype(np.float32)


def _brute(X, Q, k):
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    Qn = Q / np.linalg.norm(Q, axis=1, keepdims=True)
    sims = Qn @ Xn.T
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, order, axis=1), order


def test_flat_equals_brute_force_numpy():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((3000, 48)).astype(np.float32)
    Q = rng.standard_normal((50, 48)).astype(np.float32)
    ids = np.arange(3000) * 7 + 100
    index = EmbeddingIndex("flat").fit(X, ids)
    scores, got = index.search(Q, 10)
    ref_s, ref_i = _brute(X, Q, 10)
    assert np.array_equal(got, ids[ref_i])
    assert np.allclose(scores, ref_s, atol=1e-5)


def test_hnsw_recall_at_10():
    X = _clustered(20000, 64)
    Q = _clustered(200, 64, seed=5)
    index = EmbeddingIndex("hnsw").fit(X, np.arange(len(X)))
    assert index.kind_ == "hnsw"
    _, got = index.search(Q, 10)
    _, ref = _brute(X, Q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, ref, strict=True)])
    assert recall >= 0.95


def test_ivfpq_finds_near_duplicates():
    X = _clustered(6000, 64)
    index = EmbeddingIndex("ivfpq", nlist=64, pq_m=16).fit(X, np.arange(len(X)))
    _, got = index.search(X[:100] + 0.01, 10)
    # PQ codes are lossy (16 bytes per vector): the item must be among the candidates, not always first
    assert np.mean([i in row for i, row in enumerate(got)]) > 0.9


def test_save_load_round_trip_and_incremental_add(tmp_path):
    X = _clustered(1000, 32)
    index = EmbeddingIndex("flat").fit(X[:800], np.arange(800))
    index.add(X[800:], np.arange(800, 1000))
    assert index.ntotal == 1000
    index.save(tmp_path / "m.faiss", meta={"model": "m"})
    loaded = EmbeddingIndex.load(tmp_path / "m.faiss")
    assert loaded.kind_ == "flat" and loaded.meta_["model"] == "m" and loaded.ntotal == 1000
    a, b = index.search(X[::50], 5), loaded.search(X[::50], 5)
    assert np.array_equal(a[1], b[1]) and np.allclose(a[0], b[0])
    assert loaded.search(X[950], 1)[1][0, 0] == 950
    assert loaded.remove(np.arange(900, 1000)) == 100 and loaded.ntotal == 900


def test_fewer_vectors_than_k_and_errors(tmp_path):
    index = EmbeddingIndex().fit(np.eye(3, dtype=np.float32), np.array([5, 6, 7]))
    scores, ids = index.search(np.eye(3, dtype=np.float32)[:1], 5)
    assert ids[0, 0] == 5 and list(ids[0, 3:]) == [-1, -1]
    with pytest.raises(ConfigError, match="kind"):
        EmbeddingIndex("annoy")
    with pytest.raises(LibraryError, match="no index"):
        EmbeddingIndex.load(tmp_path / "none.faiss")
    assert (choose_kind(10), choose_kind(100_000), choose_kind(5_000_000)) == ("flat", "hnsw", "ivfpq")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="a device whose writes fail as on a full disk")
def test_an_index_that_cannot_be_written_is_a_one_line_error_naming_it(tmp_path):
    """A full disk: FAISS's own writer said so on stderr and left the file short (a small index) or raised a
    RuntimeError naming its C++ function (`musicemb index` printed "unexpected RuntimeError")."""
    from musicemb_core.index.faiss_index import write_index

    ix = EmbeddingIndex("flat").fit(np.random.default_rng(0).standard_normal((10, 4)).astype(np.float32),
                                    np.arange(10))
    for rows in (10, 50_000):  # FAISS's writer fails at close, or while writing
        if rows > 10:
            ix = EmbeddingIndex("flat").fit(np.random.default_rng(0).standard_normal((rows, 64)).astype(np.float32),
                                            np.arange(rows))
        with pytest.raises(LibraryError, match=r"^/lib/x\.faiss: cannot write the index \(No space left on device\); "
                                               "what was there is kept$"):
            write_index(ix.index_, "/dev/full", shown="/lib/x.faiss")
    ix.save(tmp_path / "x.faiss")
    assert EmbeddingIndex.load(tmp_path / "x.faiss").ntotal == 50_000
