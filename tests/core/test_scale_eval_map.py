"""``map`` at scale: UMAP and t-SNE drawn in a child process that says how far it is, is stopped by its parent and
ends with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from musicemb_core import cli
from musicemb_core.common.names import model_key
from musicemb_core.common.progress import drive
from musicemb_core.data import layout
from musicemb_core.data.library import Library
from musicemb_core.workflows import maps
from tests.conftest import descendants, orphans_left


def _library(root: Path, n: int, dim: int = 16) -> Path:
    """A library holding ``n`` random vectors as the default model's embeddings."""
    with Library(root, create=True) as lib:
        folder = lib.root / "embeddings" / "default"
        folder.mkdir(parents=True)
        np.save(folder / "vectors.npy", np.random.default_rng(0).standard_normal((n, dim)).astype(np.float32))
        np.save(folder / "ids.npy", np.arange(1, n + 1, dtype=np.int64))
    return root


def test_map_in_a_child_passes_on_its_steps(tmp_path):
    """Before: the child said nothing until it was done, the parent only "umap of N segments (12 s)" meanwhile;
    now the child's own steps (fitted on a sample, placing the rest) come through, with the seconds spent."""
    with Library(_library(tmp_path / "lib", 600)) as lib:
        events = []
        rows = drive(maps.iter_map(lib, model="default", method="umap", isolate=True, max_fit=300, chunk=100),
                     events.append)
    assert rows.shape == (600, 3)
    said = [e.message for e in events]
    assert any(m.startswith("umap fitted on 300 of 600 segments (") for m in said), said
    assert said[-1] == "done"


@pytest.mark.parametrize("method, isolated", [("umap", True), ("tsne", True), ("pca", False)])
def test_cli_map_draws_umap_and_tsne_in_a_child(tmp_path, monkeypatch, capsys, method, isolated):
    """Before: ``musicemb map`` fitted UMAP in its own process: 278 s without a word on 245,796 segments, and a
    Ctrl-C waited for numba; the child's steps are said, and it is terminated when the command stops."""
    seen = {}

    def fake(lib, **kw):
        seen.update(kw)
        rows = np.array([[1.0, 0.0, 0.0]])
        source = layout.embedding_source_key(lib, model_key(kw["model"]))
        assert maps._publish_map(lib, kw["model"], kw["method"], rows, source)  # kept, as iter_map keeps it
        return rows
        yield

    monkeypatch.setattr(maps, "iter_map", fake)
    assert cli.main(["map", str(_library(tmp_path / "lib", 3)), "--method", method, "-q"]) == 0
    assert seen["isolate"] is isolated and seen["method"] == method
    assert f"{method} map of 1 segments" in capsys.readouterr().out


def _cpu_s(pid: int) -> float:
    """CPU seconds ``pid`` has spent (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")



@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads the process tree from /proc")
def test_map_child_dies_with_a_killed_parent(tmp_path):
    """``kill -9`` of a process drawing a UMAP map: before, its child went on fitting for minutes."""
    root = _library(tmp_path / "lib", 20_000)
    script = ("import sys\nfrom musicemb_core.common.progress import drive\nfrom musicemb_core.data.library import Library\n"
              "from musicemb_core.workflows.maps import iter_map\nwith Library(sys.argv[1]) as lib:\n"
              "    drive(iter_map(lib, model='default', method='umap', isolate=True, max_fit=15_000),"
              " lambda e: print(e.message, flush=True))\n")
    p = subprocess.Popen([sys.executable, "-c", script, str(root)], stdout=subprocess.DEVNULL,
                         env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    children: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and p.poll() is None and max(map(_cpu_s, children), default=0) < 6:
            children |= descendants(p.pid)  # the child is fitting once it has spent 6 s (its imports: about 3)
            time.sleep(0.2)
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    assert children, "the child never started"
    alive = orphans_left(children)
    assert not alive, f"orphans left alive: {alive}"
