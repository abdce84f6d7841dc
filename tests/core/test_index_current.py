"""``musicemb index`` builds an index only when there is none for the current embeddings and the kind asked: it
rebuilt a current one (2 minutes for 245,000 vectors)."""

from __future__ import annotations

from musicemb_core import cli
from musicemb_core.data import layout
from musicemb_core.data.library import Library
from tests.conftest import embedded_tones, write_tone


def _generation(lib_dir, model):
    with Library(lib_dir) as lib:
        return layout.knn_index(lib, model).current()


def test_a_current_index_is_not_built_again_and_another_kind_or_new_vectors_are(tmp_path, capsys):
    lib_dir = embedded_tones(tmp_path)
    assert cli.main(["index", str(lib_dir), "--model", "default", "--no-landmarks", "-q"]) == 0
    first = _generation(lib_dir, "default")
    capsys.readouterr()
    assert cli.main(["index", str(lib_dir), "--model", "default", "--no-landmarks", "-q"]) == 0
    assert _generation(lib_dir, "default") == first
    assert "(current: not built again)" in capsys.readouterr().out
    assert cli.main(["index", str(lib_dir), "--model", "default", "--kind", "hnsw", "--no-landmarks", "-q"]) == 0
    hnsw = _generation(lib_dir, "default")
    assert hnsw != first and "hnsw index of" in capsys.readouterr().out
    write = tmp_path / "audio" / "more.wav"
    write_tone(write, 330, seconds=9.0, sr=16000, seed=9)
    assert cli.main(["ingest", str(lib_dir), str(write), "--embed", "-q"]) == 0
    assert cli.main(["index", str(lib_dir), "--model", "default", "--kind", "hnsw", "--no-landmarks", "-q"]) == 0
    assert _generation(lib_dir, "default") != hnsw  # new vectors: built again
