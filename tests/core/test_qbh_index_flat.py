"""The melody index's song vectors are searched exactly (a flat index) below 2M vectors, whatever ``auto`` would
pick: an HNSW graph of a 20,000-track library's 1.6M song windows took most of an hour to build (200,000: 347 s
here), and was built again at every ``embed`` that added a track."""

from __future__ import annotations

from musicemb_core.common.progress import drive
from musicemb_core.data.ingest import iter_ingest
from musicemb_core.data.library import Library
from musicemb_core.index import faiss_index
from musicemb_core.search import qbh
from tests.conftest import write_tone


def test_melody_index_is_flat_and_exact_where_auto_would_build_a_graph(tmp_path, monkeypatch):
    music = tmp_path / "music"
    music.mkdir()
    paths = [write_tone(music / f"t{i}.wav", f, seconds=8.0, sr=16000) for i, f in enumerate((330, 440, 587))]
    monkeypatch.setattr(faiss_index, "FLAT_BELOW", 4)  # "auto" would give these few vectors an HNSW graph
    assert faiss_index.choose_kind(10) == "hnsw"
    with Library(tmp_path / "lib", create=True) as lib:
        drive(iter_ingest(lib, paths))
        drive(qbh.iter_update_qbh_index(lib))
        searcher = qbh.HumSearcher.open(lib)
        n_windows = len(lib.segments()["id"])
    assert searcher.index.kind_ == "flat" and searcher.index.ntotal == n_windows > 4
