"""On-disk IVF-PQ: recall against exact search, memory while searching (a subprocess's RSS), rebuilds and
cancels that keep a usable index, and the library path (`musicemb index --kind ivfpq`)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from musicemb_core.cli import main
from musicemb_core.common.errors import ConfigError
from musicemb_core.common.progress import CancelToken, drive
from musicemb_core.data.library import Library
from musicemb_core.index import EmbeddingIndex
from musicemb_core.index.ondisk import iter_build_ondisk
from musicemb_core.search.library_index import index_path, open_index

N, DIM = 300_000, 128


def clustered(n: int, *, seed: int = 0) -> np.ndarray:
    """Vectors like embeddings: 200 clusters in a 16-d latent space, lifted to 128-d, plus noise."""
    rng = np.random.default_rng(seed)
    lift = rng.standard_normal((16, DIM)).astype(np.float32)
    centres = 2 * rng.standard_normal((200, 16)).astype(np.float32)
    z = centres[rng.integers(0, 200, n)] + rng.standard_normal((n, 16)).astype(np.float32)
    return z @ lift + 0.5 * rng.standard_normal((n, DIM)).astype(np.float32)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """FAISS k-means on small samples is faster on 1 OpenMP thread (barriers dominate), much so on busy cores."""
    import faiss

    prev = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(prev)


@pytest.fixture(scope="module")
def built(tmp_path_factory, one_thread):
    folder = tmp_path_factory.mktemp("ondisk")
    X = clustered(N)
    np.save(folder / "X.npy", X)
    ids = np.arange(N, dtype=np.int64) * 3 + 5  # sparse ids, as segment ids are
    index = drive(iter_build_ondisk(np.load(folder / "X.npy", mmap_mode="r"), ids, folder / "m.faiss",
                                    nlist=256, train_size=10_000, chunk=100_000))
    return folder, X, ids, index


def _recall(got: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(g) & set(t)) / truth.shape[1] for g, t in zip(got, truth, strict=True)]))


def test_recall_against_exact_search(built):
    folder, X, ids, index = built
    assert index.ondisk and index.ntotal == N and index.kind_ == "ivfpq"
    assert [p.suffix for p in sorted(folder.glob("m.faiss*"))] == [".faiss", ".ivfdata", ".json"]
    rng = np.random.default_rng(1)
    Q = X[rng.choice(N, 200, replace=False)] + 0.05 * rng.standard_normal((200, DIM)).astype(np.float32)
    _, truth = EmbeddingIndex("flat").fit(X, ids).search(Q, 10)
    _, approx = index.search(Q, 10)
    index.refine_with(np.load(folder / "X.npy", mmap_mode="r"), ids)
    scores, refined = index.search(Q, 10)
    index.refine_ = None
    r_pq, r_refined = _recall(approx, truth), _recall(refined, truth)
    assert r_refined >= 0.95 and r_refined > r_pq + 0.1, (r_pq, r_refined)
    assert np.all(np.diff(scores, axis=1) <= 1e-6) and np.all(np.isin(refined, ids))  # best first, real ids
    with pytest.raises(ConfigError, match="on-disk"):
        index.add(X[:5], np.arange(5))


MEASURE = """
import json, sys, numpy as np
from musicemb_core.index import EmbeddingIndex
def rss():
    return {l.split(':')[0]: int(l.split()[1]) * 1024 for l in open('/proc/self/status') if l.startswith('Rss')}
folder, data = sys.argv[1], sys.argv[2]
EmbeddingIndex('flat').fit(np.eye(8, 128, dtype='f4'), np.arange(8)).search(np.ones(128, 'f4'), 3)  # warm code
X = np.load(folder + '/X.npy', mmap_mode='r')
ids, Q = np.arange(len(X)) * 3 + 5, np.asarray(X[:: len(X) // 10][:10]) + 0.01
base = rss()
index = EmbeddingIndex.load(folder + '/m.faiss').refine_with(X, ids)
for q in Q:
    index.search(q, 10)
after = rss()
whole = np.fromfile(data, dtype=np.uint8)  # control: the same bytes read into memory
print(json.dumps({"search": after['RssAnon'] - base['RssAnon'], "read_all": rss()['RssAnon'] - after['RssAnon'],
                  "size": whole.size}))
"""


def test_searching_maps_the_lists_instead_of_loading_them(built):
    """The process's own memory (RssAnon) stays far below the index; the lists it maps are page cache, which
    the kernel fills with read-ahead (8 MiB here) and drops under memory pressure."""
    folder = built[0]
    data = next(folder.glob("m.faiss.*.ivfdata"))
    out = subprocess.run([sys.executable, "-c", MEASURE, str(folder), str(data)], capture_output=True, text=True,
                         check=True, timeout=120)
    m = json.loads(out.stdout.strip().splitlines()[-1])
    assert m["size"] == N * 24  # 16 PQ bytes + an 8-byte id per vector
    assert m["read_all"] > 0.9 * m["size"]  # the meter sees a full read...
    assert m["search"] < 0.25 * m["size"], m  # ...and opening + 10 queries allocated a small part of it


def test_rebuild_replaces_and_cancel_keeps_the_index(built, tmp_path):
    X, ids = built[1][:8_000], built[2][:8_000]
    path = tmp_path / "m.faiss"
    drive(iter_build_ondisk(X, ids, path, nlist=32, chunk=3_000, train_size=1_000))
    first = list(tmp_path.glob("m.faiss.*.ivfdata"))
    token = CancelToken()
    job = iter_build_ondisk(X[:6_000], ids[:6_000], path, nlist=32, chunk=2_000, train_size=1_000, cancel=token)
    with pytest.raises(Exception, match="cancelled"):
        drive(job, lambda ev: ev.done == 2 and token.cancel())
    assert list(tmp_path.glob("m.faiss.*.ivfdata")) == first and EmbeddingIndex.load(path).ntotal == 8_000
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["m.faiss", "m.faiss.json", first[0].name])
    again = drive(iter_build_ondisk(X[:6_000], ids[:6_000], path, nlist=32, chunk=2_000, train_size=1_000))
    assert again.ntotal == 6_000 and len(list(tmp_path.glob("m.faiss.*.ivfdata"))) == 1
    assert ids[7] in again.search(X[7], 10)[1][0]


def _library_with(tmp_path, X, ids) -> Library:
    """A new library holding ``X`` as the default model's embeddings of segments ``ids``."""
    lib = Library(tmp_path / "lib", create=True)
    folder = lib.root / "embeddings" / "default"
    folder.mkdir(parents=True)
    np.save(folder / "vectors.npy", X)
    np.save(folder / "ids.npy", ids)
    return lib


def test_library_index_kind_ivfpq_is_on_disk_and_reranked(built, tmp_path, capsys):
    X, ids = built[1][:3_000], built[2][:3_000]
    lib = _library_with(tmp_path, X, ids)
    (lib.root / "embeddings" / "default" / "meta.json").write_text(json.dumps({"model": "default", "fingerprint": "x", "dim": DIM}))
    assert main(["index", str(lib.root), "--kind", "ivfpq", "--no-landmarks", "-q"]) == 0
    assert "ivfpq index of 3000 vectors" in capsys.readouterr().out
    index = open_index(lib)
    assert index.ondisk and index.refine_ is not None and index_path(lib, "default").exists()
    _, truth = EmbeddingIndex("flat").fit(X, ids).search(X[:100] + 0.05, 10)
    assert _recall(index.search(X[:100] + 0.05, 10)[1], truth) >= 0.95
    lib.close()


def test_map_of_a_large_library_fits_a_sample_and_places_the_rest(built, tmp_path):
    from musicemb_core.analysis.projection import Projector
    from musicemb_core.workflows.maps import iter_map

    X, ids = built[1][:900], built[2][:900]
    lib = _library_with(tmp_path, X, ids)
    events = []
    rows = drive(iter_map(lib, method="pca", max_fit=300, chunk=250), events.append)
    assert np.array_equal(rows[:, 0].astype(np.int64), ids) and [(e.done, e.total) for e in events] == [(i, 4) for i in range(5)]
    fit = np.sort(np.random.default_rng(0).choice(900, 300, replace=False))
    proj = Projector("pca").fit(X[fit])
    rest = np.setdiff1d(np.arange(900), fit)
    assert np.allclose(rows[fit, 1:], proj.embedding_, atol=1e-4)
    assert np.allclose(rows[rest, 1:], proj.transform(X[rest]), atol=1e-4)
    lib.close()


def test_map_in_a_child_process_equals_the_in_process_map_and_cancels(built, tmp_path):
    from musicemb_core.common.errors import Cancelled
    from musicemb_core.common.progress import CancelToken
    from musicemb_core.workflows.maps import iter_map, map_path

    X, ids = built[1][:600], built[2][:600]
    lib = _library_with(tmp_path, X, ids)
    here = drive(iter_map(lib, method="pca", max_fit=300, chunk=200))
    map_path(lib, "default", "pca").unlink()
    events = []
    child = drive(iter_map(lib, method="pca", max_fit=300, chunk=200, isolate=True), events.append)
    np.testing.assert_allclose(child, here, atol=1e-5)
    assert events[-1].done == events[-1].total == 1
    map_path(lib, "default", "pca").unlink()
    token = CancelToken()
    gen = iter_map(lib, method="umap", isolate=True, cancel=token)
    next(gen)  # the child is working
    token.cancel()
    with pytest.raises(Cancelled):
        for _ in gen:
            pass
    assert not map_path(lib, "default", "umap").exists()
    lib.close()


def test_map_is_drawn_again_when_the_vectors_change_but_not_their_ids(tmp_path):
    """Embedding again with retrained weights keeps the segment ids: the cached map, checked by ids alone, was
    shown for vectors that are no more."""
    from musicemb_core.analysis.projection import Projector
    from musicemb_core.data import layout
    from musicemb_core.workflows.maps import iter_map

    ids = np.arange(300, dtype=np.int64) * 2 + 1
    with Library(tmp_path / "lib", create=True) as lib:
        for seed in (0, 1):
            X = clustered(300, seed=seed)
            with layout.embeddings(lib, "default").publish() as gen:
                np.save(gen / "vectors.npy", X)
                np.save(gen / "ids.npy", ids)
                (gen / "meta.json").write_text(json.dumps({"model": "default", "weights_digest": f"w{seed}"}))
            rows = drive(iter_map(lib, method="pca"))
            assert np.allclose(rows[:, 1:], Projector("pca").fit(X).embedding_, atol=1e-4)


def _publish_embeddings(lib: Library, X: np.ndarray, ids: np.ndarray) -> None:
    from musicemb_core.data import layout

    with layout.embeddings(lib, "default").publish() as gen:
        np.save(gen / "vectors.npy", X)
        np.save(gen / "ids.npy", ids)
        (gen / "meta.json").write_text(json.dumps({"model": "default", "weights_digest": "w"}))


def test_a_map_of_the_old_layout_or_overwritten_in_place_is_drawn_again(tmp_path):
    """A map of the old layout records no embeddings (it was trusted whenever its ids matched), and one whose bytes
    were overwritten in place keeps its size (only the sizes were checked): both were shown as they were."""
    from musicemb_core.analysis.projection import Projector
    from musicemb_core.data import layout
    from musicemb_core.workflows.maps import iter_map, load_map, map_path

    ids = np.arange(50, dtype=np.int64) + 1
    X = clustered(50)
    truth = Projector("pca").fit(X).embedding_
    with Library(tmp_path / "lib", create=True) as lib:
        _publish_embeddings(lib, X, ids)
        old = lib.folder("maps") / "default-pca.npy"
        np.save(old, np.column_stack([ids, np.zeros((50, 2))]))  # same ids, other vectors
        assert load_map(lib, "default", "pca") is None
        assert np.allclose(drive(iter_map(lib, method="pca"))[:, 1:], truth, atol=1e-4)
        assert not old.exists() and layout.map_artefact(lib, "default", "pca").exists()
        f = map_path(lib, "default", "pca")
        data = bytearray(f.read_bytes())
        data[-16 * 8:] = bytes(16 * 8)  # the last rows' coordinates zeroed, the size kept
        f.write_bytes(bytes(data))
        assert load_map(lib, "default", "pca") is None
        assert np.allclose(drive(iter_map(lib, method="pca"))[:, 1:], truth, atol=1e-4)


def test_an_index_overwritten_in_place_is_rebuilt_not_searched(tmp_path):
    """Bytes of ``index.faiss`` overwritten in place keep its size, which was all that was checked: the garbage
    vectors were searched (wrong neighbours, no error)."""
    from musicemb_core.search.library_index import iter_build_index

    ids = np.arange(60, dtype=np.int64) * 2 + 1
    X = clustered(60)
    with Library(tmp_path / "lib", create=True) as lib:
        _publish_embeddings(lib, X, ids)
        drive(iter_build_index(lib, kind="flat"))
        f = index_path(lib, "default")
        data = bytearray(f.read_bytes())
        end = -8 * 61  # the vectors end where the ids (a count, then 60 int64) begin
        data[end - 40 * 4 * DIM:end] = bytes(40 * 4 * DIM)  # the last 40 vectors zeroed
        f.write_bytes(bytes(data))
        index = open_index(lib, "default")
        assert index_path(lib, "default") != f  # rebuilt and published
        assert index.search(X[-40:], 1)[1][:, 0].tolist() == ids[-40:].tolist()


def test_an_auto_index_rebuilt_for_new_vectors_chooses_its_kind_again(tmp_path, monkeypatch):
    """The index rebuilt when the embeddings change kept the kind ``auto`` had chosen for the library as it was
    then: a library grown past 50k (2M) vectors stayed flat, in memory."""
    from musicemb_core.index import faiss_index
    from musicemb_core.search.library_index import iter_build_index

    with Library(tmp_path / "lib", create=True) as lib:
        _publish_embeddings(lib, clustered(40), np.arange(40))
        assert drive(iter_build_index(lib)).kind_ == "flat"
        monkeypatch.setattr(faiss_index, "FLAT_BELOW", 50)  # as if the next 40 vectors took it past 50k
        _publish_embeddings(lib, clustered(80), np.arange(80))
        assert open_index(lib, "default").kind_ == "hnsw"
        drive(iter_build_index(lib, kind="flat"))  # a kind asked for is kept
        _publish_embeddings(lib, clustered(90), np.arange(90))
        assert open_index(lib, "default").kind_ == "flat"
