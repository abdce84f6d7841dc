"""A map drawn in a child process whose child dies (killed for want of memory, a broken install): before, the
``multiprocessing.Pool`` started another worker and the job said "umap of N segments (… s)" for ever."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest

from musicemb_core.common.errors import LibraryError
from musicemb_core.common.progress import drive
from musicemb_core.data import layout
from musicemb_core.data.library import Library
from musicemb_core.workflows import maps
from tests.conftest import descendants, orphans_left

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads the process tree from /proc")

OLD = np.array([[1.0, 0.5, 0.25], [2.0, 0.125, 1.5], [3.0, 2.0, 4.0]])  # a map drawn before
EVENTS_AT_MOST = 400  # the job says how far it is every 0.25 s: a job still going after this many has hung


def _library(root: Path, n: int) -> Library:
    """A library holding ``n`` random vectors as the default model's embeddings, and an older UMAP map."""
    lib = Library(root, create=True)
    with layout.embeddings(lib, "default").publish() as gen:
        np.save(gen / "vectors.npy", np.random.default_rng(0).standard_normal((n, 16)).astype(np.float32))
        np.save(gen / "ids.npy", np.arange(1, n + 1, dtype=np.int64))
    assert maps._publish_map(lib, "default", "umap", OLD, "drawn from other embeddings")
    return lib



def _map_children(before: set[int]) -> set[int]:
    """The spawned processes this process started since ``before`` was read."""
    def spawned(pid: int) -> bool:
        try:
            return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False

    return {p for p in descendants(os.getpid()) - before if spawned(p)}


def _run_to_the_end(gen, on_event=lambda ev: None) -> None:
    """Drive ``gen``; fail if it is still going after :data:`EVENTS_AT_MOST` events."""
    for n, ev in enumerate(gen):
        on_event(ev)
        assert n < EVENTS_AT_MOST, f"the map job is still going: {ev.message}"


def test_a_map_child_killed_mid_job_fails_the_job_and_keeps_the_old_map(tmp_path):
    lib = _library(tmp_path / "lib", 2_000)
    before = descendants(os.getpid())
    killed: set[int] = set()

    def kill_once_fitting(ev) -> None:
        if not killed and ev.done == 0 and ev.total == 1:  # the child's own "umap of 2000 segments": fitting
            killed.update(_map_children(before))
            for pid in killed:
                os.kill(pid, signal.SIGKILL)

    gen = maps.iter_map(lib, model="default", method="umap", isolate=True)
    try:
        with pytest.raises(LibraryError) as err:
            _run_to_the_end(gen, kill_once_fitting)
    finally:
        gen.close()
    assert len(killed) == 1
    assert str(err.value) == (f"{lib.root}: the map's worker process died (killed by SIGKILL: out of memory?) before "
                              "it was done; nothing was kept, draw it again")
    assert np.array_equal(np.load(maps.map_path(lib, "default", "umap")), OLD)
    assert not orphans_left(_map_children(before))
    lib.close()


def test_a_map_child_that_cannot_start_fails_the_job(tmp_path, monkeypatch):
    """A child that dies at its start (here: its ``musicemb_core`` cannot be imported, as in a broken install)."""
    broken = tmp_path / "broken" / "musicemb_core"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('a broken install')\n")
    lib = _library(tmp_path / "lib", 50)
    before = descendants(os.getpid())
    monkeypatch.syspath_prepend(str(broken.parent))  # read by the spawned child only: this process has its own
    gen = maps.iter_map(lib, model="default", method="umap", isolate=True)
    try:
        with pytest.raises(LibraryError, match=r"the map's worker process died \(exit code 1\) before it was done"):
            _run_to_the_end(gen)
    finally:
        gen.close()
    assert np.array_equal(np.load(maps.map_path(lib, "default", "umap")), OLD)
    assert not orphans_left(_map_children(before))
    lib.close()


def test_a_map_child_that_finished_ends_by_itself(tmp_path, monkeypatch):
    """The child was terminated as soon as its map came back, often before it had ended: the semaphores it made
    were never released and Python printed "resource_tracker: There appear to be 1 leaked semaphore objects" at
    exit (`musicemb map`, 2 runs of 3)."""
    import multiprocessing.process

    terminated = []
    real = multiprocessing.process.BaseProcess.terminate
    monkeypatch.setattr(multiprocessing.process.BaseProcess, "terminate",
                        lambda self: terminated.append(self.name) or real(self))
    lib = _library(tmp_path / "lib", 300)
    for _ in range(2):
        shutil.rmtree(tmp_path / "lib" / "maps")
        rows = drive(maps.iter_map(lib, method="umap", isolate=True))
        assert rows.shape == (300, 3)
    assert terminated == []
