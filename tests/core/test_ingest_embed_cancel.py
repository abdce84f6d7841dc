"""A cancel (the app's Cancel, Ctrl-C) while ``ingest --embed`` embeds a long file's clips: it stops within a batch
storing nothing of that file, in this process or in a worker; the file's audio is held once while it is embedded."""

from __future__ import annotations

import os
import signal
import threading
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

from musicemb_core import inference
from musicemb_core.audio.resample import resample
from musicemb_core.common.config import SegmentConfig
from musicemb_core.common.progress import CancelToken, drive
from musicemb_core.data.library import Library
from musicemb_core.stored_vectors import builtin_models, load_embeddings
from musicemb_core.workflows import ingest_embed
from musicemb_core.workflows.ingest_embed import EmbedTap, iter_ingest_embed
from tests.conftest import no_worker_processes_left, write_tone

SEG = SegmentConfig(window_s=3.0, hop_s=1.0)
LONG_S = 240.0  # 238 clips of SEG: 4 batches of 64 per model


def music(tmp_path: Path) -> tuple[Path, Path]:
    """A short tone (4 clips) and, last by name, the long file (16 kHz)."""
    d = tmp_path / "m"
    write_tone(d / "a.wav", 330, seconds=6.0, sr=16000)
    return d, write_tone(d / "z_long.wav", 220, seconds=LONG_S, sr=16000, seed=1)


class Batches:
    """``call`` in place of the models' ``Embedder.__call__``: the short file's 4 clips are embedded, each batch of
    the long file's is counted in ``n`` and given zeros; ``on_batch(n)`` is called after the n-th."""

    def __init__(self, on_batch):
        real, self.n = inference.Embedder.__call__, 0

        def call(emb, clips):
            if len(clips) <= 4:
                return real(emb, clips)
            self.n += 1
            on_batch(self.n)
            return np.zeros((len(clips), emb.encoder.dim), np.float32)

        self.call = call


def assert_long_file_not_stored(lib: Library, long: Path) -> None:
    assert [Path(t.path).name for t in lib.tracks()] == ["a.wav"] and lib.failures() == []
    assert lib.track_by_path(str(long)) is None
    ids = lib.segments()["id"]
    for m in builtin_models():  # the short file's vectors only
        assert sorted(load_embeddings(lib, m).ids.tolist()) == sorted(ids.tolist())


def test_a_cancel_while_a_file_is_embedded_here_stops_within_a_batch(tmp_path, monkeypatch):
    """jobs=1 reads in this process: the file's clips were all embedded (minutes for a 2-hour file) before the
    cancel was seen. Now the embedding stops at the next batch and nothing of the file is stored."""
    d, long = music(tmp_path)
    token = CancelToken()
    batches = Batches(lambda n: n == 2 and token.cancel())
    monkeypatch.setattr(inference.Embedder, "__call__", batches.call)
    with Library(tmp_path / "lib", create=True) as lib:
        r = drive(iter_ingest_embed(lib, [d], segments=SEG, jobs=1, cancel=token))
        assert batches.n == 2  # not one batch more (8 without the check)
        assert r.ingest.cancelled and r.ingest.added == 1 and r.ingest.failed == []
        assert_long_file_not_stored(lib, long)


def test_ctrl_c_while_the_only_file_is_embedded_exits_130_storing_nothing(tmp_path, monkeypatch, capsys):
    """`musicemb ingest LIB one-long-file --embed`: Ctrl-C while its clips were embedded waited for all of them."""
    from musicemb_core.cli import main

    _, long = music(tmp_path)
    batches = Batches(lambda n: n == 2 and os.kill(os.getpid(), signal.SIGINT))
    monkeypatch.setattr(inference.Embedder, "__call__", batches.call)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    try:
        status = main(["ingest", str(tmp_path / "lib"), str(long), "--embed", "--window", "3", "--hop", "1", "-q"])
    finally:
        signal.signal(signal.SIGINT, previous)
    out = capsys.readouterr()
    assert status == 130 and "import cancelled: 0 added" in out.out, out
    assert batches.n == 2
    with Library(tmp_path / "lib") as lib:
        assert lib.tracks() == [] and lib.failures() == []


@dataclass(frozen=True)
class StuckEmbedTap(EmbedTap):
    """The embed tap whose long file's second batch never ends (a worker deep in a 2-hour file); each of its batches
    started is a byte appended to ``marks``; picklable for the workers."""

    marks: str = ""

    def start(self, sr: int) -> ingest_embed._EmbedRun:
        return _StuckRun(self, sr)


class _StuckRun(ingest_embed._EmbedRun):
    def result(self, starts: np.ndarray) -> dict[str, np.ndarray]:
        def stuck(n: int) -> None:
            with open(self.tap.marks, "ab") as f:
                f.write(b".")
            if n == 2:
                time.sleep(600)

        with mock.patch.object(inference.Embedder, "__call__", Batches(stuck).call):
            return super().result(starts)


@pytest.mark.parametrize("jobs,isolate", [(1, True), (2, False)])
def test_a_cancel_while_a_worker_embeds_a_file_ends_it(tmp_path, monkeypatch, jobs, isolate):
    """In a worker, the import is not held by the file's embedding: the worker is ended, nothing of the file is
    stored and the file finished before it keeps its vectors."""
    d, long = music(tmp_path)
    marks = tmp_path / "marks"
    token, stored = CancelToken(), threading.Event()

    def cancel_in_second_batch() -> None:  # once the short file is stored
        while not (stored.is_set() and marks.exists() and marks.stat().st_size >= 2):
            time.sleep(0.02)
        token.cancel()

    real_tap = ingest_embed.EmbedTap
    monkeypatch.setattr(ingest_embed, "EmbedTap", lambda *a, **kw: StuckEmbedTap(*a, **kw, marks=str(marks)))
    watcher = threading.Thread(target=cancel_in_second_batch, daemon=True)
    watcher.start()
    with Library(tmp_path / "lib", create=True) as lib:
        r = drive(iter_ingest_embed(lib, [d], segments=SEG, jobs=jobs, isolate=isolate, cancel=token),
                  lambda e: e.stage == "ingest" and e.done == 1 and stored.set())
        watcher.join(5)
        assert issubclass(StuckEmbedTap, real_tap) and marks.read_bytes() == b".."
        assert r.ingest.cancelled and r.ingest.added == 1
        assert no_worker_processes_left()
        assert_long_file_not_stored(lib, long)


def test_a_file_is_held_once_while_it_is_embedded(monkeypatch):
    """The tap joined the file's resampled blocks into a second copy of them (a 2-hour file: 0.46 GB more at
    16 kHz, in each worker). Now they are written into one array sized from the header: the same audio, held once."""
    sr, seconds = 44100, 60
    x = (0.3 * np.sin(2 * np.pi * 440 * np.arange(sr * seconds) / sr)).astype(np.float32)
    held = []

    def embed_clips(emb, y, *args):  # the audio the models are given
        held.append(y)
        return [np.zeros((1, 4), np.float32)], None
        yield

    monkeypatch.setattr(inference, "embed_clips", embed_clips)  # imported where the file is embedded
    monkeypatch.setattr(ingest_embed, "_embedder", lambda tap, folder: None)
    tap = EmbedTap((("m", "unused"),), 16000)
    run = tap.start(sr)
    run.begin(len(x), None)
    tracemalloc.start()
    try:
        for a in range(0, len(x), 65536):
            run(x[a:a + 65536])
        out = run.result(np.zeros(1))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    (y,) = held
    assert np.array_equal(y, resample(x, sr, 16000))  # the same samples as the file resampled whole
    assert out["m"].shape == (1, 4)
    assert peak < 1.3 * y.nbytes  # 2x: the blocks and their join
