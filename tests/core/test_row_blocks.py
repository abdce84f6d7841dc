"""The similarity space's library-wide steps work a block of rows at a time: the same numbers as on the whole
array, without whole-sized temporaries (a 1.6M-segment library's embed peaked at 10.7 GB, now 3.9 GB)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from musicemb_core.analysis.track_vectors import aggregate
from musicemb_core.common import blocks
from musicemb_core.common.blocks import add_rows, row_blocks
from musicemb_core.models.library_stats import library_statistics
from musicemb_core.models.similarity import N_STATS, SimilarityEncoder
from musicemb_core.stored_vectors import tracks_of


def _unit(X):
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


def _aggregate_whole(X, groups):
    """The earlier whole-array mean+std aggregation."""
    X = _unit(np.asarray(X, np.float64))
    ids, inv, counts = np.unique(groups, return_inverse=True, return_counts=True)
    total, sq = np.zeros((len(ids), X.shape[1])), np.zeros((len(ids), X.shape[1]))
    np.add.at(total, inv, X)
    np.add.at(sq, inv, X * X)
    mean = total / counts[:, None]
    std = np.sqrt(np.maximum(sq / counts[:, None] - mean**2, 0.0))
    return ids, _unit(np.hstack([_unit(mean), 0.5 * std / np.maximum(np.linalg.norm(std, axis=1, keepdims=True),
                                                                     1e-12)])).astype(np.float32)


def test_row_blocks_cover_every_row_once():
    assert [(b.start, b.stop) for b in row_blocks(10, 4)] == [(0, 4), (4, 8), (8, 10)]
    assert list(row_blocks(0, 4)) == []


@pytest.mark.parametrize("order", ["runs", "interleaved", "runs split by a block"])
def test_add_rows_matches_add_at(order):
    rng = np.random.default_rng(0)
    rows = {"runs": np.repeat([0, 3, 1, 2], [5, 1, 7, 3]), "interleaved": rng.integers(0, 4, 16),
            "runs split by a block": np.repeat([2, 0, 2], [4, 6, 6])}[order]
    x = rng.standard_normal((len(rows), 3))
    want, got = np.zeros((4, 3)), np.zeros((4, 3))
    np.add.at(want, rows, x)
    add_rows(got, rows, x)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_blocked_steps_give_the_whole_array_numbers(monkeypatch):
    """Blocks of 7 rows cut through tracks (groups of 1-20 rows, one track's rows in two places)."""
    rng = np.random.default_rng(1)
    groups = np.concatenate([np.repeat(np.arange(30), rng.integers(1, 21, 30)), [4, 4, 4]])
    Z = (rng.standard_normal((len(groups), N_STATS)) * 3 + 1).astype(np.float32)
    whole_ids, whole_V = _aggregate_whole(Z, groups)
    whole_stats = library_statistics(Z)
    enc = SimilarityEncoder()
    mean, std = whole_stats
    z = np.clip((Z - mean) / std, -8, 8) * enc.weight.numpy()
    whole_finish = (z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    monkeypatch.setattr(blocks, "BLOCK_ROWS", 7)
    ids, V = aggregate(Z, groups)
    np.testing.assert_array_equal(ids, whole_ids)
    np.testing.assert_allclose(V, whole_V, rtol=0, atol=2e-7)
    for got, want in zip(library_statistics(Z), whole_stats, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    np.testing.assert_array_equal(enc.finish(Z, mean, std), whole_finish)  # row by row: the very same values


def test_blocked_steps_hold_no_whole_sized_temporary(monkeypatch):
    """Traced numpy allocations while each step runs on 200,000 x 182 float32 rows (146 MB) in blocks of 8,192
    rows: the float64 copies and temporaries of the whole-array steps took 2-5 times the rows' size."""
    monkeypatch.setattr(blocks, "BLOCK_ROWS", 8192)
    Z = np.random.default_rng(2).standard_normal((200_000, N_STATS)).astype(np.float32)
    groups = np.repeat(np.arange(2_000), 100)
    mean, std = library_statistics(Z[:1000])
    enc = SimilarityEncoder()
    steps = {"library_statistics": lambda: library_statistics(Z), "aggregate": lambda: aggregate(Z, groups),
             "finish": lambda: enc.finish(Z, mean, std)}
    extra = {}
    for name, step in steps.items():
        tracemalloc.start()
        try:
            step()
            extra[name] = tracemalloc.get_traced_memory()[1] / Z.nbytes
        finally:
            tracemalloc.stop()
    assert extra["library_statistics"] < 0.5, extra
    assert extra["aggregate"] < 0.5, extra
    assert extra["finish"] < 1.5, extra  # its output is as large as the rows


def test_tracks_of_maps_known_segments_and_skips_others():
    seg = {"id": np.array([2, 5, 9, 11]), "track_id": np.array([1, 1, 3, 4])}
    known, tracks = tracks_of(seg, np.array([11, 3, 2, 12, 9]))
    assert known.tolist() == [True, False, True, False, True]
    assert tracks.tolist() == [4, 1, 3]
    known, tracks = tracks_of({"id": np.zeros(0, np.int64), "track_id": np.zeros(0, np.int64)}, np.array([1]))
    assert known.tolist() == [False] and tracks.tolist() == []
