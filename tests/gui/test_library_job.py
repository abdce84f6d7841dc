"""Session.library_job: every panel's long work on the open library, its result dropped once another
library is open."""

from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip("PySide6")

from musicemb_core.common.progress import Progress  # noqa: E402
from musicemb_core.data.library import Library  # noqa: E402
from musicemb_gui.session import Session  # noqa: E402
from musicemb_gui.workers import JobManager  # noqa: E402


def _session() -> Session:
    """A session with a thread pool of its own: work left in the global pool by earlier tests (a window's jobs
    still ending) cannot delay these jobs past the waits below (it did once in a full run on a busy machine)."""
    from PySide6.QtCore import QThreadPool

    pool = QThreadPool()
    pool.setMaxThreadCount(4)
    return Session(JobManager(pool))


def _libraries(tmp_path):
    for name in ("a", "b"):
        Library(tmp_path / name, create=True).close()
    return tmp_path / "a", tmp_path / "b"


def test_result_reaches_the_library_that_asked(qtbot, tmp_path):
    a, _ = _libraries(tmp_path)
    s = _session()
    s.open(a)
    got = []

    def work(lib, token):
        yield Progress("count", 1, 1, "tracks")
        return (lib.root, len(lib.tracks()))
    s.library_job("count tracks", work, on_done=got.append)
    qtbot.waitUntil(lambda: bool(got), timeout=10000)
    assert got == [(a.resolve(), 0)]


def test_a_job_that_ends_at_once_still_reaches_slots_connected_after_submit(qtbot, tmp_path):
    """Jobs start from the event loop: one that ended before the caller connected its slots (finished, ended)
    lost those signals, leaving e.g. a Run button disabled for good."""
    a, _ = _libraries(tmp_path)
    s = _session()
    s.open(a)
    done, ended = [], []

    def work(lib, token):
        return 1
        yield
    for _ in range(20):
        job = s.library_job("quick", work, on_done=done.append)
        time.sleep(0.05)  # the caller still busy on the GUI thread: a job started at submit has ended by now
        job.ended.connect(ended.append)
    qtbot.waitUntil(lambda: len(ended) == 20, timeout=20000)
    assert len(done) == 20
    late = s.jobs.submit("submitted and waited for", lambda token: work(None, token))
    assert s.jobs.wait(10000) and late.state == "done"  # wait() starts what was submitted in this turn


def test_result_of_a_closed_library_is_dropped(qtbot, tmp_path):
    a, b = _libraries(tmp_path)
    s = _session()
    s.open(a)
    go = threading.Event()
    done, failed = [], []

    def work(lib, token):
        go.wait(10)
        yield Progress("wait", 1, 1, "")
        return str(lib.root)

    def broken(lib, token):
        go.wait(10)
        raise RuntimeError("boom")
        yield
    ok = s.library_job("slow", work, on_done=done.append)
    bad = s.library_job("slow and broken", broken, on_failed=failed.append)
    ended = []
    for job in (ok, bad):
        job.ended.connect(ended.append)
    s.open(b)  # the user opens another library while both run
    go.set()
    qtbot.waitUntil(lambda: len(ended) == 2, timeout=10000)
    assert done == [] and failed == []  # nothing of A lands in B's panels
    s.library_job("now", work, on_done=done.append)
    qtbot.waitUntil(lambda: bool(done), timeout=10000)
    assert done == [str(b.resolve())]
