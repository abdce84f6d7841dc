"""Building a library's indexes at scale: the HNSW graph says how far it is and stops on a cancel (or Ctrl-C)
while building the same index as one FAISS call; `index`, `search` and `identify` show that progress and stop
cleanly; incremental landmarks are merged into the sorted arrays a full re-sort gives."""

from __future__ import annotations

import json
import threading
from collections import Counter

import faiss
import numpy as np
import pytest

from musicemb_core import cli
from musicemb_core.common.errors import Cancelled
from musicemb_core.common.progress import CancelToken, drive
from musicemb_core.data import layout
from musicemb_core.data.library import Library
from musicemb_core.index import EmbeddingIndex, faiss_index
from musicemb_core.search.fingerprints import LandmarkIndex, iter_fingerprint
from musicemb_core.search.knn import Searcher
from musicemb_core.search.library_index import iter_build_index
from tests.conftest import embedded_tones, write_tone


def _clustered(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, dim)).astype(np.float32)
    return centres[rng.integers(40, size=n)] + 0.3 * rng.standard_normal((n, dim)).astype(np.float32)


def _one_call_hnsw(X: np.ndarray, ids: np.ndarray):
    """The index ``fit`` built before: one FAISS add of every vector."""
    base = faiss.IndexHNSWFlat(X.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    base.hnsw.efConstruction, base.hnsw.efSearch = 200, 128
    index = faiss.IndexIDMap2(base)
    index.add_with_ids(faiss_index.normalise(X), ids)
    return index


def _faiss_adds_running() -> bool:
    return any(t.name == "faiss-add" and t.is_alive() for t in threading.enumerate())


def test_hnsw_build_reports_progress_and_builds_the_one_call_index(monkeypatch):
    monkeypatch.setattr(faiss_index, "POLL_S", 0.005)
    X, ids = _clustered(6000), np.arange(6000, dtype=np.int64) * 3 + 7
    job = EmbeddingIndex("hnsw").iter_fit(X, ids)
    events = []
    while True:
        try:
            events.append(next(job))
        except StopIteration as stop:
            index = stop.value
            break
    assert events and {e.stage for e in events} == {"index"} and {e.total for e in events} == {6000}
    done = [e.done for e in events]
    assert done == sorted(done) and done[0] >= 0 and done[-1] <= 6000
    assert any(0 < d < 6000 for d in done)  # said midway
    Q = _clustered(300, seed=4)
    got, want = index.search(Q, 10), _one_call_hnsw(X, ids).search(faiss_index.normalise(Q), 10)
    assert np.array_equal(got[1], want[1]) and np.array_equal(got[0], want[0])


def test_cancel_stops_the_hnsw_build_midway_and_faiss_works_after(monkeypatch):
    monkeypatch.setattr(faiss_index, "POLL_S", 0.005)
    X, ids = _clustered(20000), np.arange(20000)
    cancel, index = CancelToken(), EmbeddingIndex("hnsw")
    job = index.iter_fit(X, ids, cancel=cancel)
    next(job)
    cancel.cancel()
    with pytest.raises(Cancelled):
        drive(job)
    assert not _faiss_adds_running()
    hnsw = faiss.downcast_index(index.index_.index).hnsw
    first_slots = faiss.rev_swig_ptr(hnsw.offsets.data(), 20001)[:-1].astype(np.int64)
    linked = (faiss.rev_swig_ptr(hnsw.neighbors.data(), hnsw.neighbors.size())[first_slots] != -1).sum()
    assert linked < 20000  # stopped, not finished
    small = EmbeddingIndex("hnsw").fit(X[:3000], ids[:3000])  # FAISS's own interrupt callback is back
    assert small.search(X[:5], 1)[1][:, 0].tolist() == [0, 1, 2, 3, 4]


class _CancelledToken(CancelToken):
    """A token cancelled from the start, as after a Ctrl-C."""

    def __init__(self) -> None:
        super().__init__()
        self.cancel()


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    return embedded_tones(tmp_path_factory.mktemp("tones"))


def test_index_command_stopped_keeps_the_index_there_was(tones, monkeypatch, capsys):
    with Library(tones) as lib:
        drive(iter_build_index(lib, model="default", kind="flat"))  # another kind than asked below: built again
        before = layout.knn_index(lib, "default").current()
    monkeypatch.setattr(cli, "CancelToken", _CancelledToken)
    assert cli.main(["index", str(tones), "--model", "default", "--no-landmarks"]) == 130
    assert "interrupted" in capsys.readouterr().err
    with Library(tones) as lib:
        assert layout.knn_index(lib, "default").current() == before
        assert [p.name for p in layout.knn_index(lib, "default").folder.iterdir() if p.name.startswith("g-")] \
            == [before.name]


def test_search_builds_the_missing_index_with_progress_and_stops_on_ctrl_c(tones, tmp_path, monkeypatch, capsys):
    query = write_tone(tmp_path / "q.wav", 550, seconds=4.0, sr=16000, seed=1)
    with Library(tones) as lib:
        layout.knn_index(lib, "similarity").remove()
    with monkeypatch.context() as m:
        m.setattr(cli, "CancelToken", _CancelledToken)
        assert cli.main(["search", str(tones), str(query), "-k", "3"]) == 130
    out = capsys.readouterr()
    assert out.out == "" and "interrupted" in out.err
    with Library(tones) as lib:
        assert layout.knn_index(lib, "similarity").current() is None
    assert cli.main(["search", str(tones), str(query), "-k", "3", "--json"]) == 0
    out = capsys.readouterr()
    assert "flat index of 12 vectors" in out.err  # the build said what it did
    with Library(tones) as lib:
        assert layout.knn_index(lib, "similarity").current() is not None
        searcher = Searcher(lib, model="similarity")
        want = searcher.nearest(searcher.embed_file(query), k=3)
    assert json.loads(out.out)["windows"] == json.loads(json.dumps(want))


def test_identify_stopped_while_building_its_index(tones, tmp_path, monkeypatch, capsys):
    query = write_tone(tmp_path / "q.wav", 660, seconds=4.0, sr=16000, seed=2)
    with Library(tones) as lib:
        layout.knn_index(lib, "default").remove()
    monkeypatch.setattr(cli, "CancelToken", _CancelledToken)
    assert cli.main(["identify", str(tones), str(query)]) == 130
    assert capsys.readouterr().out == ""


def _sorted_whole(parts):
    return LandmarkIndex(*(np.concatenate(p) for p in zip(*parts, strict=True)))


def test_merged_landmarks_equal_a_full_sort():
    rng = np.random.default_rng(0)

    def part(track, n):  # few distinct hashes: many equal ones, whose order a stable sort keeps
        return (rng.integers(0, 50, n).astype(np.uint32), np.full(n, track, np.int32),
                rng.integers(0, 1000, n).astype(np.int32))

    old = [part(t, 400) for t in (1, 2, 3)]
    new = [part(t, 300) for t in (4, 5)]
    base = _sorted_whole(old)
    merged = LandmarkIndex.merged((base.hashes, base.tracks, base.times), new)
    whole = _sorted_whole([(base.hashes, base.tracks, base.times), *new])
    for name in ("hashes", "tracks", "times"):
        assert np.array_equal(getattr(merged, name), getattr(whole, name))
        assert getattr(merged, name).dtype == getattr(whole, name).dtype
    alone = LandmarkIndex.merged((base.hashes, base.tracks, base.times), [])
    assert np.array_equal(alone.hashes, base.hashes) and np.array_equal(alone.times, base.times)


def test_landmarks_of_added_tracks_equal_fingerprinting_all_at_once(tmp_path):
    from musicemb_core.data.ingest import iter_ingest

    for i, f in enumerate((440, 550, 660)):
        write_tone(tmp_path / "a" / f"t{f}.wav", f, seconds=6.0, sr=16000, seed=i)
    write_tone(tmp_path / "b" / "t880.wav", 880, seconds=6.0, sr=16000, seed=9)
    with Library(tmp_path / "inc", create=True) as lib:
        drive(iter_ingest(lib, [tmp_path / "a"], jobs=1))
        drive(iter_fingerprint(lib))
        drive(iter_ingest(lib, [tmp_path / "b"], jobs=1))
        inc = drive(iter_fingerprint(lib))
    with Library(tmp_path / "all", create=True) as lib:
        drive(iter_ingest(lib, [tmp_path / "a"], jobs=1))
        drive(iter_ingest(lib, [tmp_path / "b"], jobs=1))
        whole = drive(iter_fingerprint(lib))
    assert len(inc) == len(whole) > 0
    for name in ("hashes", "tracks", "times"):
        assert np.array_equal(np.asarray(getattr(inc, name)), np.asarray(getattr(whole, name)))


def test_landmark_match_keeps_each_tracks_best_offset():
    """Per track, the largest count over its offsets (with a frame's slack), as the loop it replaced gave."""
    rng = np.random.default_rng(1)
    n = 20000
    index = LandmarkIndex(rng.integers(0, 300, n).astype(np.uint32), rng.integers(1, 60, n).astype(np.int32),
                          rng.integers(0, 40, n).astype(np.int32))
    hashes, times = rng.integers(0, 300, 200).astype(np.uint32), rng.integers(0, 40, 200).astype(np.int32)
    want: dict[int, int] = {}
    for t in range(1, 60):
        rows = index.tracks == t
        at = Counter(int(a) - int(b) for h, b in zip(hashes, times, strict=True)
                     for a in index.times[rows][index.hashes[rows] == h])
        if at:
            want[t] = max(at[o - 1] + at[o] + at[o + 1] for o in at)
    found = index.match(hashes, times)
    assert found == want and list(found) == sorted(found)
