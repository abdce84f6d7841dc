"""Ctrl-C (SIGINT) in a real `musicemb embed` / `ingest --embed` stops it like a cancel: exit 130, the vectors of the
tracks finished so far are stored, and the next embed computes only the rest."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from musicemb_core.common.progress import drive
from musicemb_core.data.ingest import iter_ingest
from musicemb_core.data.library import Library
from musicemb_core.inference import iter_embed
from musicemb_core.stored_vectors import builtin_models, load_embeddings

MUSICEMB = Path(sys.executable).with_name("musicemb")
SR = 16000
TRACKS = 24


@pytest.fixture(scope="module")
def music(tmp_path_factory) -> Path:
    """24 tracks of 9 s (3 segments each)."""
    folder = tmp_path_factory.mktemp("interrupt") / "music"
    folder.mkdir()
    rng = np.random.default_rng(0)
    t = np.arange(9 * SR) / SR
    for i in range(TRACKS):
        y = 0.3 * np.sin(2 * np.pi * (150 + 40 * i) * t) + 0.05 * rng.standard_normal(len(t))
        sf.write(folder / f"t{i:02d}.wav", y.astype(np.float32), SR)
    return folder


def _musicemb(*args) -> list[str]:
    cmd = [str(MUSICEMB)] if MUSICEMB.exists() else [sys.executable, "-m", "musicemb_core.cli"]
    return [*cmd, *map(str, args)]


def _default_sigint():  # a test run in the background of a shell (or under nohup) would pass them ignored
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def _interrupt(args: tuple, stage: str, err: Path, sig: int = signal.SIGINT) -> subprocess.CompletedProcess:
    """Run ``musicemb *args``, send ``sig`` once its ``stage`` progress shows a unit done, wait for it to end."""
    done = re.compile(rf"{stage}:.*\b[1-9]\d*/{TRACKS}\b")
    with err.open("w") as stderr:
        proc = subprocess.Popen(_musicemb(*args), stdout=subprocess.PIPE, stderr=stderr, text=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"}, preexec_fn=_default_sigint)
        try:
            deadline = time.monotonic() + 60
            while not done.search(err.read_text()) and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert proc.poll() is None, f"ended before it could be interrupted: {err.read_text()}"
            proc.send_signal(sig)
            out, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err.read_text())


def _stored(lib: Path) -> dict[str, set[int]]:
    """{model: its stored segment ids}; every model stores the same whole tracks."""
    with Library(lib) as L:
        ids = {m: set(load_embeddings(L, m).ids.tolist()) for m in builtin_models()}
        seg = L.segments()
    tracks = seg["track_id"][np.isin(seg["id"], list(ids[builtin_models()[0]]))]
    whole = set(seg["id"][np.isin(seg["track_id"], tracks)].tolist())
    assert all(s == whole for s in ids.values()), "partial tracks or models that differ"
    return ids


def test_ctrl_c_during_embed_keeps_the_finished_tracks(music, tmp_path):
    lib = tmp_path / "lib"
    with Library(lib, create=True) as L:
        drive(iter_ingest(L, [music], jobs=1, analyse=False))
    r = _interrupt(("embed", lib, "--batch-size", "1"), "embed", tmp_path / "embed.err")
    assert r.returncode == 130, r.stderr
    kept = sum(len(ids) for ids in _stored(lib).values())
    assert 0 < kept < 2 * 3 * TRACKS
    assert "embed cancelled" in r.stdout and "Traceback" not in r.stderr

    with Library(lib) as L:
        again = drive(iter_embed(L))
    assert again.kept == kept and again.computed == 2 * 3 * TRACKS - kept and not again.cancelled


def test_ctrl_c_during_ingest_embed_keeps_the_vectors_of_the_files_imported(music, tmp_path):
    lib = tmp_path / "lib"
    r = _interrupt(("ingest", lib, music, "--embed", "-j", "1", "--no-analysis"), "ingest", tmp_path / "ingest.err")
    assert r.returncode == 130, r.stderr
    with Library(lib) as L:
        imported = set(L.segments()["id"].tolist())
    assert 0 < len(imported) < 3 * TRACKS
    assert all(ids == imported for ids in _stored(lib).values())
    assert "import cancelled" in r.stdout and "Traceback" not in r.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_kill_or_a_closed_terminal_stops_embed_as_ctrl_c_does(music, tmp_path, sig):
    """``kill`` (a shutdown, ``timeout``) and a closed terminal ended the process at once, without a word and
    without the vectors it had finished; they now stop it as Ctrl-C does."""
    lib = tmp_path / "lib"
    with Library(lib, create=True) as L:
        drive(iter_ingest(L, [music], jobs=1, analyse=False))
    r = _interrupt(("embed", lib, "--batch-size", "1"), "embed", tmp_path / "embed.err", sig)
    assert r.returncode == 130, r.stderr
    assert "musicemb: stopping; what is finished is kept" in r.stderr and "Traceback" not in r.stderr
    kept = sum(len(ids) for ids in _stored(lib).values())
    assert 0 < kept < 2 * 3 * TRACKS and "embed cancelled" in r.stdout
