"""Crash consistency with real processes and real files: a `musicemb` writer SIGKILLed at each publish step in
turn (``$MUSICEMB_TEST_KILL_AT``, see :func:`musicemb_core.common.store.kill_point`) leaves a library that
opens, answers queries with the old or the new data, lists no junk, and that a re-run finishes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from musicemb_core.common.store import POINTER, is_generation
from musicemb_core.data import layout
from musicemb_core.data.library import Library
from tests.conftest import descendants, orphans_left, write_tone

MUSICEMB = Path(sys.executable).with_name("musicemb")
SR = 8000
MAX_STEPS = 40  # more kill points than any of these commands has: the loop must end by a finished run


def tone(path: Path, freq: float, seconds: float = 5.0, seed: int = 0) -> Path:
    return write_tone(path, freq, seconds=seconds, sr=SR, seed=seed)


def musicemb(*args, kill_at: str | None = None, timeout: float = 180, **env) -> subprocess.CompletedProcess:
    cmd = [str(MUSICEMB)] if MUSICEMB.exists() else [sys.executable, "-m", "musicemb_core.cli"]
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
    full_env.pop("MUSICEMB_TEST_KILL_AT", None)
    if kill_at:
        full_env["MUSICEMB_TEST_KILL_AT"] = kill_at
    return subprocess.run([*cmd, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=full_env)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A library with 4 tracks of 5 s, embedded (default model) and indexed; plus 2 more tracks not imported."""
    root = tmp_path_factory.mktemp("crash")
    for i, f in enumerate((220, 330, 440, 550)):
        tone(root / "music" / "ab"[i % 2] / f"t{i}.wav", f, seed=i)
    for i, f in enumerate((660, 770)):
        tone(root / "more" / f"n{i}.wav", f, seed=10 + i)
    lib = root / "lib"
    for args in (("ingest", lib, root / "music", "--labels-from-folders"), ("embed", lib, "--model", "default"),
                 ("index", lib, "--model", "default")):
        r = musicemb(*args, "-q")
        assert r.returncode == 0, r.stderr
    return root


def _copy(base: Path, tmp_path: Path) -> Path:
    lib = tmp_path / "lib"
    shutil.copytree(base / "lib", lib)
    return lib


def _junk(lib: Path) -> list[str]:
    """Leftovers a crash may leave on disk that must never be *listed*; returned to check they are cleaned."""
    out = []
    for p in lib.rglob("*"):
        if p.name.endswith((".tmp", ".old")) or p.name.startswith(f".{POINTER}."):
            out.append(str(p.relative_to(lib)))
    return out


def _check_listing(lib: Path, models: set[str]) -> dict:
    with Library(lib) as L:
        s = L.summary()
    assert set(s["embeddings"]) <= models, s["embeddings"]
    assert all(not n.endswith((".old", ".tmp")) and not is_generation(n) for n in s["embeddings"])
    assert all(not n.endswith((".old", ".tmp")) and not n.startswith(".") for n in s["maps"])
    return s


def _embedded_ids(lib: Path) -> set[int]:
    from musicemb_core.stored_vectors import load_embeddings

    with Library(lib) as L:
        return set(load_embeddings(L, "default").ids.tolist())


def _identify(lib: Path, query: Path) -> list[dict]:
    """identify in this process (the index is opened, checked, rebuilt in memory or published if stale)."""
    from musicemb_core.search.knn import Searcher

    with Library(lib) as L:
        s = Searcher(L, model="default")
        return s.identify(s.embed_file(query), k=5, top=3)


def _kill_each_step(lib: Path, args: tuple, step: str, check, *, fresh=None) -> int:
    """Run ``musicemb *args`` killed at ``step:1``, ``step:2``... until a run finishes; ``check(lib)`` after
    each kill. ``fresh()`` (when given) restores the library before each run, so each kill point is reached
    with the same work to do; otherwise each run continues what the killed one left. After the last kill, a
    plain re-run must finish. Returns the number of kill points seen."""
    for n in range(1, MAX_STEPS):
        if fresh is not None:
            fresh()
        r = musicemb(*args, "-q", kill_at=f"{step}:{n}")
        assert "Traceback" not in r.stderr, r.stderr
        if r.returncode == 0:
            if n > 1 and fresh is not None:  # a re-run after the last kill finishes
                fresh()
                killed = musicemb(*args, "-q", kill_at=f"{step}:{n - 1}")
                assert killed.returncode == -signal.SIGKILL
                again = musicemb(*args, "-q")
                assert again.returncode == 0 and "Traceback" not in again.stderr, again.stderr
            return n - 1
        assert r.returncode == -signal.SIGKILL, (n, r.returncode, r.stderr)
        check(lib)
    raise AssertionError(f"`musicemb {args[0]}` never finished")


# -- embed -------------------------------------------------------------------------------------------------------
def test_embed_killed_at_each_publish_step_leaves_old_or_new_vectors(base, tmp_path):
    lib = _copy(base, tmp_path)
    old = _embedded_ids(lib)
    r = musicemb("ingest", lib, base / "more", "-q")
    assert r.returncode == 0, r.stderr
    with Library(lib) as L:
        all_ids = set(L.segments()["id"].tolist())
    assert old < all_ids
    seen = []

    def check(lib):
        ids = _embedded_ids(lib)
        assert ids in (old, all_ids)
        seen.append(ids == all_ids)
        _check_listing(lib, {"default"})
        assert _identify(lib, base / "music" / "a" / "t0.wav")[0]["path"].endswith("t0.wav")

    steps = _kill_each_step(lib, ("embed", lib, "--model", "default"), "publish", check)
    assert steps == 3 and seen == [False, False, True]  # files written; pointer beside; pointer swapped in
    assert _embedded_ids(lib) == all_ids
    art = layout.embeddings(lib, "default")
    assert [p.name for p in art.folder.iterdir() if is_generation(p.name)] == [art.pointer()["generation"]]
    assert _junk(lib) == []


def test_embed_killed_in_the_old_layouts_two_renames_is_read_and_migrated(base, tmp_path):
    """What the old ``atomic_folder`` left when killed between its renames: only ``default.old`` and
    ``default.tmp``. The old vectors are still read and listed as ``default``; the next embed replaces both."""
    from musicemb_core.stored_vectors import load_embeddings

    lib = _copy(base, tmp_path)
    with Library(lib) as L:
        emb = load_embeddings(L, "default")
        ids, X = emb.ids.copy(), np.array(emb.vectors)
    shutil.rmtree(lib / "embeddings")
    for name in ("default.old", "default.tmp"):
        folder = lib / "embeddings" / name
        folder.mkdir(parents=True)
        np.save(folder / "ids.npy", ids)
        np.save(folder / "vectors.npy", X)
        (folder / "meta.json").write_text(json.dumps({"model": "default", "fingerprint": "x", "dim": X.shape[1]}))
    s = _check_listing(lib, {"default"})
    assert s["embeddings"] == {"default": len(ids)}
    assert _embedded_ids(lib) == set(ids.tolist())
    r = musicemb("embed", lib, "--model", "default", "-q")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (lib / "embeddings").iterdir()) == ["default"]
    assert _embedded_ids(lib) == set(ids.tolist())


# -- index -------------------------------------------------------------------------------------------------------
def test_index_killed_at_each_publish_step_answers_queries(base, tmp_path):
    lib = _copy(base, tmp_path)
    shutil.rmtree(lib / "index")
    shutil.rmtree(lib / "fingerprints")
    seen = []

    def check(lib):
        art = layout.knn_index(lib, "default")
        seen.append(art.pointer() is not None)
        assert _identify(lib, base / "music" / "b" / "t1.wav")[0]["path"].endswith("t1.wav")
        _check_listing(lib, {"default"})

    snap = tmp_path / "snap"
    shutil.copytree(lib, snap)

    def fresh():  # from no index each time: a run after the index was published leaves it (current)
        shutil.rmtree(lib)
        shutil.copytree(snap, lib)

    steps = _kill_each_step(lib, ("index", lib, "--model", "default"), "publish", check, fresh=fresh)
    assert steps == 6  # the index, then the landmarks: 3 steps each
    assert layout.knn_index(lib, "default").exists() and layout.landmarks(lib).exists()
    assert _junk(lib) == []


def test_damaged_index_and_embeddings_are_detected_in_one_line(base, tmp_path):
    from musicemb_core.search.library_index import index_path

    lib = _copy(base, tmp_path)
    with Library(lib) as L:
        faiss_file = index_path(L, "default")
    faiss_file.write_bytes(faiss_file.read_bytes()[:100])  # truncated: derived, rebuilt by the next query
    assert _identify(lib, base / "music" / "a" / "t2.wav")[0]["path"].endswith("t2.wav")
    with Library(lib) as L:
        assert index_path(L, "default") != faiss_file  # a new generation was published
    vectors = next(layout.embeddings(lib, "default").current().glob("vectors.npy"))
    vectors.write_bytes(vectors.read_bytes()[:200])
    for args in (("identify", lib, base / "music" / "a" / "t2.wav", "--model", "default"),
                 ("map", lib, "--model", "default", "--method", "pca", "-q")):
        r = musicemb(*args)
        assert r.returncode == 1 and "Traceback" not in r.stderr
        line = r.stderr.strip().splitlines()[-1]
        assert "vectors.npy" in line and "damaged" in line and "musicemb embed" in line, line
    r = musicemb("embed", lib, "--model", "default", "-q")  # recomputed
    assert r.returncode == 0, r.stderr
    assert musicemb("identify", lib, base / "music" / "a" / "t2.wav", "--model", "default").returncode == 0


# -- ingest ------------------------------------------------------------------------------------------------------
def test_ingest_killed_at_each_commit_keeps_a_consistent_catalogue(base, tmp_path):
    lib = _copy(base, tmp_path)
    seen = []

    def check(lib):
        with Library(lib) as L:
            tracks = L.tracks()
            seg = L.segments()
            s = L.summary()
        assert 4 <= len(tracks) <= 6
        assert set(seg["track_id"].tolist()) == {t.id for t in tracks}  # every track has its segments
        assert s["embeddings"] == {"default": 8}
        seen.append(len(tracks))

    def fresh():
        shutil.rmtree(lib)
        shutil.copytree(base / "lib", lib)

    steps = _kill_each_step(lib, ("ingest", lib, base / "more"), "commit", check, fresh=fresh)
    assert steps == 2 and seen == [5, 6]  # killed after each commit: a track lands with its segments or not
    with Library(lib) as L:
        assert len(L.tracks()) == 6


def test_ingest_pool_workers_die_with_a_killed_parent(base, tmp_path):
    """``kill -9`` of ``ingest -j 2``: its pool workers and the resource tracker exit too."""
    many = tmp_path / "many"
    for i in range(40):
        tone(many / f"x{i}.wav", 200 + 10 * i, seconds=5.0, seed=i)
    cmd = [str(MUSICEMB)] if MUSICEMB.exists() else [sys.executable, "-m", "musicemb_core.cli"]
    env = {k: v for k, v in os.environ.items() if k != "MUSICEMB_TEST_KILL_AT"}
    p = subprocess.Popen([*cmd, "ingest", str(tmp_path / "lib"), str(many), "-j", "2", "-q"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    children: set[int] = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(children) < 3 and p.poll() is None:
        children |= descendants(p.pid)
        time.sleep(0.1)
    assert len(children) >= 2, "the pool never started"
    p.send_signal(signal.SIGKILL)
    p.wait()
    alive = orphans_left(children)
    assert not alive, f"orphans left alive: {alive}"



# -- train -------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_train_killed_at_each_step_leaves_a_library_that_opens_and_a_rerun_finishes(base, tmp_path):
    lib = _copy(base, tmp_path)
    args = ("train", lib, "--strategy", "supervised", "--arch", "cnn2", "--dim", "16", "--epochs", "1",
            "--name", "toy", "--replace")  # a kill after the first epoch leaves a model a plain rerun would refuse

    def check(lib):
        with Library(lib) as L:
            s = L.summary()
            runs = L.runs()
        assert s["tracks"] == 4 and all(r["status"] in ("running", "done", "failed", "cancelled", "finished")
                                        for r in runs)
        folder = lib / "models" / "toy"
        if (folder / "config.json").exists():  # the model there is whole: its config and the weights it names
            from musicemb_core.models.checkpoint import load_encoder, weights_path

            load_encoder(folder)
            assert [p.name for p in folder.glob("model-*.safetensors")] == [weights_path(folder).name] or \
                len(list(folder.glob("model-*.safetensors"))) == 2  # killed before the old weights were removed

    for step in ("publish", "commit"):
        _kill_each_step(lib, args, step, check)
    with Library(lib) as L:
        assert [m["name"] for m in L.models()] == ["toy"]
    assert (lib / "models" / "toy" / "config.json").exists()


# -- maps --------------------------------------------------------------------------------------------------------
def test_map_killed_at_each_publish_step(base, tmp_path):
    lib = _copy(base, tmp_path)

    def check(lib):
        s = _check_listing(lib, {"default"})
        assert s["maps"] in ([], ["default-pca"])

    steps = _kill_each_step(lib, ("map", lib, "--model", "default", "--method", "pca"), "publish", check)
    assert steps == 3
    with Library(lib) as L:
        assert L.summary()["maps"] == ["default-pca"]
    assert _junk(lib) == []


# -- the publishing mechanism itself (in-process) ----------------------------------------------------------------
def test_a_reader_overtaken_by_a_publish_reads_the_new_generation(tmp_path, monkeypatch):
    """A publish landing between a reader's look at the pointer and its check of the files (the old generation
    removed) made the reader report the artefact missing ("rebuild it"); it now reads the new generation."""
    from musicemb_core.common.store import Artefact

    art = Artefact(tmp_path / "a", what="thing", rebuild="`musicemb x`")
    with art.publish() as gen:
        np.save(gen / "x.npy", np.arange(3))
    stale = art.pointer()
    real_pointer, calls = Artefact.pointer, []

    def pointer_overtaken(self):
        calls.append(1)
        if len(calls) == 2:  # verify() read the old pointer; a writer publishes and sweeps it meanwhile
            with art.publish() as new:
                np.save(new / "x.npy", np.arange(5))
            return stale
        return real_pointer(self)
    monkeypatch.setattr(Artefact, "pointer", pointer_overtaken)
    assert art.read(lambda g: np.load(g / "x.npy")).tolist() == list(range(5))


def test_artefact_generations_pointer_and_checks(tmp_path):
    from musicemb_core.common.errors import LibraryError
    from musicemb_core.common.store import Artefact

    art = Artefact(tmp_path / "a", what="thing", rebuild="`musicemb x`")
    assert art.current() is None and art.read(lambda g: 1) is None
    with art.publish() as gen:
        np.save(gen / "x.npy", np.arange(10))
    first = art.current()
    assert art.pointer()["files"]["x.npy"]["shape"] == [10]
    with pytest.raises(RuntimeError), art.publish() as gen:  # a failed write leaves the current one
        np.save(gen / "x.npy", np.arange(3))
        raise RuntimeError("boom")
    assert art.current() == first and sorted(p.name for p in art.folder.iterdir()) == [POINTER, first.name]
    junk = art.folder / "g-19700101T000000-1-abcdef"
    junk.mkdir()  # a generation a killed writer never made current
    (art.folder / f".{POINTER}.1.x.tmp").write_text("{}")
    with art.publish() as gen:
        np.save(gen / "x.npy", np.arange(20))
    assert art.read(lambda g: np.load(g / "x.npy")).tolist() == list(range(20))
    assert sorted(p.name for p in art.folder.iterdir()) == [POINTER, art.current().name]
    f = art.current() / "x.npy"
    f.write_bytes(f.read_bytes()[:-8])
    with pytest.raises(LibraryError, match=r"x\.npy: damaged .*`musicemb x`"):
        art.read(lambda g: np.load(g / "x.npy"))
    data = bytearray((art.current() / "x.npy").read_bytes() + b"\0" * 8)
    data[-9] ^= 1
    f.write_bytes(bytes(data))
    assert art.verify() == art.current()  # same size: only the checksum tells
    with pytest.raises(LibraryError, match="checksum"):
        art.verify(deep=True)
    (art.folder / POINTER).write_text("not json")
    with pytest.raises(LibraryError, match="damaged pointer"):
        art.current()
    with art.publish() as gen:  # a writer repairs it
        np.save(gen / "x.npy", np.arange(2))
    assert art.read(lambda g: np.load(g / "x.npy")).tolist() == [0, 1]


def test_a_pointer_of_the_wrong_form_is_a_damaged_pointer_not_a_traceback(tmp_path):
    """A pointer that is JSON naming a generation but whose file records are not records raised AttributeError or
    KeyError out of every reader."""
    from musicemb_core.common.errors import LibraryError
    from musicemb_core.common.store import Artefact

    art = Artefact(tmp_path / "a", what="thing", rebuild="`musicemb x`")
    with art.publish() as gen:
        np.save(gen / "x.npy", np.arange(3))
    ptr = art.pointer()
    for files in ([], {"x.npy": {}}, {"x.npy": None}):
        (art.folder / POINTER).write_text(json.dumps({**ptr, "files": files}))
        with pytest.raises(LibraryError, match="damaged pointer.*`musicemb x`"):
            art.read(lambda g: np.load(g / "x.npy"))
    with art.publish() as gen:  # a writer repairs it
        np.save(gen / "x.npy", np.arange(2))
    assert art.read(lambda g: np.load(g / "x.npy")).tolist() == [0, 1]
