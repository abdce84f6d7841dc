"""A cancel (the app's Cancel, Ctrl-C) while an import reads a long file: it stops within a block, in this
process or in a worker, stores nothing of that file and keeps the files finished before it."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import musicemb_core.audio.validate as validate
from musicemb_core.audio.segment import window_starts
from musicemb_core.common.config import SegmentConfig
from musicemb_core.common.errors import Cancelled
from musicemb_core.common.progress import CancelToken, drive
from musicemb_core.data.ingest import content_hash, iter_ingest
from musicemb_core.data.library import Library
from tests.conftest import no_worker_processes_left, write_tone

LONG_SR = 8000
BLOCKS = 110  # 15 min at 8 kHz in blocks of 65536 frames


def long_file(path: Path) -> Path:
    """15 min of 8 kHz noise (14 MB as 16-bit WAV)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    y = 0.3 * np.random.default_rng(7).standard_normal(15 * 60 * LONG_SR)
    sf.write(path, y.astype(np.float32), LONG_SR, subtype="PCM_16")
    return path


def music(tmp_path: Path) -> tuple[Path, Path]:
    """A folder with two short tones (16 kHz) and, last by name, the long file."""
    d = tmp_path / "m"
    for i in range(2):
        write_tone(d / f"a{i}.wav", 300 + 50 * i, seconds=4.0, sr=16000, seed=i)
    return d, long_file(d / "z_long.wav")


def consistent(lib: Library) -> None:
    assert lib.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert lib.conn.execute("PRAGMA foreign_key_check").fetchall() == []
    cfg = lib.segment_config() or SegmentConfig()
    for t in lib.tracks():
        n = lib.conn.execute("SELECT COUNT(*) FROM segments WHERE track_id=?", (t.id,)).fetchone()[0]
        assert n == len(window_starts(t.duration_s, cfg)), t.path


def assert_kept_all_but(lib: Library, long: Path) -> None:
    assert sorted(Path(t.path).name for t in lib.tracks()) == ["a0.wav", "a1.wav"]
    assert lib.track_by_path(str(long)) is None and lib.failures() == []
    consistent(lib)


@pytest.mark.parametrize("analyse", [True, False])
def test_a_cancel_in_a_long_file_read_here_stops_within_a_block(tmp_path, analyse):
    """jobs=1 reads in this process: a cancel was only seen after the whole file (a 2-hour file went on for tens
    of seconds, then was stored and the import said it was complete)."""
    d, long = music(tmp_path)
    token = CancelToken()
    seen: dict[int, int] = {}

    class Run:  # counts a file's blocks; cancels at the long file's 5th
        def __init__(self, sr):
            self.sr = sr
            seen[sr] = 0

        def __call__(self, mono):
            seen[self.sr] += 1
            if self.sr == LONG_SR and seen[self.sr] == 5:
                token.cancel()

        def result(self, starts):
            return None

    class Tap:
        start = Run

    with Library(tmp_path / "lib", create=True) as lib:
        report = drive(iter_ingest(lib, [d], jobs=1, analyse=analyse, tap=Tap(), cancel=token))
        assert report.cancelled and report.added == 2
        assert seen[LONG_SR] == 5  # not one block more (110 without the check)
        assert_kept_all_but(lib, long)

        again = drive(iter_ingest(lib, [d], jobs=1, analyse=analyse))
        assert (again.added, again.unchanged, again.cancelled) == (1, 2, False)
        assert lib.track_by_path(str(long)).duration_s == 15 * 60
        consistent(lib)


class MarkingTap:
    """In a worker: each block of the long file read is one byte appended to ``marks`` (slowed a little, so that
    the whole file takes seconds); picklable."""

    def __init__(self, marks: str):
        self.marks = marks

    def start(self, sr: int) -> MarkingTap:
        return self if sr == LONG_SR else MarkingTap("")

    def __call__(self, mono: np.ndarray) -> None:
        if self.marks:
            with open(self.marks, "ab") as f:
                f.write(b".")
            time.sleep(0.05)

    def result(self, starts: np.ndarray) -> None:
        return None


@pytest.mark.parametrize("jobs,isolate", [(1, True), (2, False)])
def test_a_cancel_in_a_long_file_read_by_a_worker_ends_it(tmp_path, jobs, isolate):
    """With workers, the import stops at once too: the worker reading the long file is ended, nothing of that file
    is stored and the files finished before it are kept."""
    d, long = music(tmp_path)
    marks = tmp_path / "marks"
    token = CancelToken()
    stored = threading.Event()

    def cancel_once_reading() -> None:  # the short files stored and the worker in the long file's 5th block
        while not (stored.is_set() and marks.exists() and marks.stat().st_size >= 5):
            time.sleep(0.02)
        token.cancel()

    watcher = threading.Thread(target=cancel_once_reading, daemon=True)
    watcher.start()
    with Library(tmp_path / "lib", create=True) as lib:
        gen = iter_ingest(lib, [d], jobs=jobs, isolate=isolate, analyse=False, tap=MarkingTap(str(marks)),
                          cancel=token)
        report = drive(gen, lambda e: e.stage == "ingest" and e.done == 2 and stored.set())
        watcher.join(5)
        assert report.cancelled and report.added == 2
        assert no_worker_processes_left()
        assert marks.stat().st_size < BLOCKS  # ended mid-file: the whole file takes 110 x 50 ms
        assert_kept_all_but(lib, long)


def test_ctrl_c_while_the_only_file_is_read_exits_130_storing_nothing(tmp_path, monkeypatch, capsys):
    """`musicemb ingest LIB one-long-file` (files read in this process with one file): Ctrl-C during the read
    went on to the end of the file, stored it and exited 0, "import done"."""
    from musicemb_core.cli import main

    long = long_file(tmp_path / "only.wav")
    blocks = {"read": 0, "after": 0}
    real_stream = validate.stream

    def stream(path, **kw):  # the import's decode: Ctrl-C at the 5th block
        for block in real_stream(path, **kw):
            blocks["read"] += 1
            if blocks["read"] == 5:
                os.kill(os.getpid(), signal.SIGINT)
            elif blocks["read"] > 5:
                blocks["after"] += 1
            yield block

    monkeypatch.setattr(validate, "stream", stream)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    try:
        status = main(["ingest", str(tmp_path / "lib"), str(long), "-q"])
    finally:
        signal.signal(signal.SIGINT, previous)
    out = capsys.readouterr()
    assert status == 130 and "import cancelled: 0 added" in out.out, out
    assert blocks["after"] <= 1  # 105 without the check
    with Library(tmp_path / "lib") as lib:
        assert lib.tracks() == [] and lib.failures() == []


def test_hashing_a_file_stops_at_a_cancel(tmp_path):
    """A long file's bytes are hashed before (a touched track's file) and after its decode: a cancel there too."""
    token = CancelToken()
    path = long_file(tmp_path / "long.wav")
    assert len(content_hash(path, cancel=token)) == 32
    token.cancel()
    with pytest.raises(Cancelled):
        content_hash(path, cancel=token)
