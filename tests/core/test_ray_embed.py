"""``embed --ray`` on a real local Ray cluster (2 CPUs, one per module): the same vectors as the local path,
a cancelled run leaves the library as it was, a re-run resumes from the finished shards."""

from __future__ import annotations

import json
import shutil
import socket
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from musicemb_core.common.errors import ConfigError
from musicemb_core.common.progress import CancelToken, drive
from musicemb_core.data import layout
from musicemb_core.data.ingest import iter_ingest
from musicemb_core.data.library import Library
from musicemb_core.inference import iter_embed
from musicemb_core.stored_vectors import load_embeddings

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'musicemb[cluster]'")
from musicemb_core.inference_ray import connect, iter_embed_ray, shard_folder  # noqa: E402

SR = 16000


@pytest.fixture(scope="module")
def cluster():
    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20,
             log_to_driver=False)
    yield
    ray.shutdown()


def _library(tmp_path, n=6, seconds=7.0) -> Library:
    (tmp_path / "a").mkdir()
    t = np.arange(int(seconds * SR)) / SR
    for i in range(n):
        noise = 0.02 * np.random.default_rng(i).standard_normal(len(t))
        sf.write(tmp_path / "a" / f"t{i}.wav", (0.3 * np.sin(2 * np.pi * (200 + 150 * i) * t) + noise).astype("f4"),
                 SR)
    lib = Library(tmp_path / "lib", create=True)
    drive(iter_ingest(lib, [tmp_path / "a"], jobs=1))
    return lib


def _files(lib: Library) -> dict[str, bytes]:
    folder = layout.embeddings(lib, "default").current()  # the current generation
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*"))}


def test_cancel_leaves_the_library_then_a_rerun_resumes_with_the_local_vectors(cluster, tmp_path):
    lib = _library(tmp_path)
    (tmp_path / "a" / "t5.wav").unlink()  # gone since the import: both paths report it, neither stores it
    local = drive(iter_embed(lib, model="default"))
    ref = load_embeddings(lib)
    ref_ids, ref_vecs, ref_meta = ref.ids.copy(), np.array(ref.vectors), json.loads(_files(lib)["meta.json"])
    shutil.rmtree(lib.root / "embeddings")
    token = CancelToken()
    drive(iter_embed(lib, model="default", cancel=token), lambda ev: ev.done == 2 and token.cancel())  # 2 of 6 tracks stored
    before = _files(lib)
    assert len(load_embeddings(lib).ids) == 4

    token, events = CancelToken(), []
    first = drive(iter_embed_ray(lib, address=None, batch_size=2, cancel=token),
                  lambda ev: events.append(ev) or (ev.done >= 1 and token.cancel()))
    assert first.cancelled and 2 <= first.computed < 6 and events[0].total == 4
    assert _files(lib) == before  # the library is exactly as it was
    assert list(shard_folder(lib, "default").glob("*/shard-*.npz"))

    events = []
    second = drive(iter_embed_ray(lib, address=None, batch_size=2), events.append)
    assert not second.cancelled and second.kept == 4 and second.computed == 6
    assert second.resumed == first.computed  # the finished shards were reused, not recomputed
    assert events[-1].done == events[-1].total == 4 - (first.computed // 2)
    assert [p for p, _ in second.failed] == [p for p, _ in local.failed] == [str(tmp_path / "a" / "t5.wav")]
    got = load_embeddings(lib)
    assert np.array_equal(got.ids, ref_ids) and got.vectors.dtype == np.float32 and got.ids.dtype == np.int64
    assert np.abs(np.asarray(got.vectors) - ref_vecs).max() < 1e-5
    assert json.loads(_files(lib)["meta.json"]) == ref_meta
    assert sorted(p.name for p in (lib.root / "embeddings").iterdir()) == ["default"]  # no shards left
    assert drive(iter_embed(lib, model="default")).computed == 0  # the local path finds nothing missing
    lib.close()


def test_embed_on_ray_without_a_model_embeds_both_built_in_spaces(cluster, tmp_path, capsys):
    """`musicemb embed LIB --ray ADDRESS` embedded only `default` (the help says: both built-in models), so
    `similar` then said the library had no similarity vectors. The similarity space is finished over the whole
    library, which Ray does not do: it is embedded in this process after the Ray run."""
    from musicemb_core import cli

    lib = _library(tmp_path, n=3)
    assert cli.main(["embed", str(lib.root), "--ray", "local", "-q"]) == 0
    out = capsys.readouterr().out
    assert "embed done with 'default': 6 segments embedded" in out and "embed done with 'similarity'" in out
    assert len(load_embeddings(lib, "default").ids) == len(load_embeddings(lib, "similarity").ids) == 6
    assert cli.main(["similar", str(lib.root), str(tmp_path / "a" / "t0.wav"), "-q"]) == 0
    lib.close()


def test_without_ray_the_flag_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    with pytest.raises(ConfigError, match=r"musicemb\[cluster\]"):
        connect("local")


def test_an_address_that_does_not_answer_is_refused_at_once():
    """`--ray HOST:PORT` with nothing listening there waited over 90 s while Ray retried, printing its warnings."""
    if ray.is_initialized():  # an earlier test's local cluster: connect() would reuse it
        ray.shutdown()
    with socket.socket() as s:  # a port nobody listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        t0 = time.perf_counter()
        with pytest.raises(ConfigError, match=rf"--ray 127.0.0.1:{port}: cannot connect .*nothing answers"):
            connect(f"127.0.0.1:{port}")
        assert time.perf_counter() - t0 < 10


@pytest.mark.slow  # the local path's own test covers it; Ray's is 15-20 s (pytest -m slow)
def test_a_file_changed_since_import_is_not_embedded_on_ray_either(cluster, tmp_path):
    """As ``iter_embed``: a file replaced since its import fails, named, and the other tracks are embedded."""
    lib = _library(tmp_path, n=3)
    replaced = tmp_path / "a" / "t0.wav"
    sf.write(replaced, np.zeros(2 * SR, np.float32) + 0.1, SR)
    report = drive(iter_embed_ray(lib, address=None, batch_size=2))
    assert report.failed == [(str(replaced), "changed since import: import it again")]
    seg = lib.segments()
    stale = set(seg["id"][seg["track_id"] == lib.track_by_path(str(replaced)).id].tolist())
    assert set(load_embeddings(lib).ids.tolist()) == set(seg["id"].tolist()) - stale
    lib.close()


@pytest.mark.slow  # the local path's own test covers it; Ray's is 15-20 s (pytest -m slow)
def test_a_track_the_model_gives_nan_for_fails_and_none_of_its_vectors_are_stored(cluster, tmp_path, monkeypatch):
    """As ``iter_embed``: NaN vectors were stored like any others and broke every later search. Here the model
    overflows on one segment of a track, after its first segment came back finite in an earlier batch."""
    from musicemb_core import inference_ray

    lib = _library(tmp_path, n=3)
    seg, broken = lib.segments(), lib.tracks()[1]
    last = int(seg["id"][seg["track_id"] == broken.id].max())
    real = inference_ray._dataset

    class Overflowing:  # the vectors coming back, with infinity for that segment
        def __init__(self, ds):
            self.ds = ds

        def iter_batches(self, **kw):
            for b in self.ds.iter_batches(**kw):
                yield b | {"vector": np.where((b["id"] == last)[:, None], np.inf, b["vector"]).astype(np.float32)}

    monkeypatch.setattr(inference_ray, "_dataset", lambda *a, **kw: Overflowing(real(*a, **kw)))
    report = drive(iter_embed_ray(lib, address=None, batch_size=1))
    assert report.failed == [(broken.path, "'default' gives NaN or infinite values for it (its weights are damaged, "
                                           "or it overflowed)")]
    got = load_embeddings(lib)
    assert np.isfinite(np.asarray(got.vectors)).all()
    assert got.ids.tolist() == seg["id"][seg["track_id"] != broken.id].tolist() and report.computed == len(got.ids)
    lib.close()


def test_the_similarity_space_is_refused_not_stored_unfinished(tmp_path):
    """Its vectors were stored raw (not standardised with the library's statistics, no track vectors): `similar`
    then compared queries with vectors of another scale. Refused before any cluster is started."""
    lib = _library(tmp_path, n=1)
    with pytest.raises(ConfigError, match=r"'similarity' is finished over the whole library.*embed it without --ray"):
        drive(iter_embed_ray(lib, model="similarity", address=None))
    assert not (lib.root / "embeddings" / "similarity").exists()
    lib.close()


@pytest.mark.slow  # the local path's own test covers it; Ray's is 15-20 s (pytest -m slow)
def test_damaged_vectors_are_recomputed_on_ray_too(cluster, tmp_path):
    """`embed --ray` stopped at damaged stored vectors, telling to run `musicemb embed`, which it is: as the local
    path, it now recomputes them."""
    lib = _library(tmp_path, n=2)
    drive(iter_embed(lib, model="default"))
    vectors = layout.embeddings(lib, "default").current() / "vectors.npy"
    vectors.write_bytes(vectors.read_bytes()[:-100])  # truncated
    report = drive(iter_embed_ray(lib, address=None, batch_size=2))
    assert report.failed == [] and report.computed == len(lib.segments()["id"]) == len(load_embeddings(lib).ids)
    lib.close()
