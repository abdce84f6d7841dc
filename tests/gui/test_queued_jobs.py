"""Jobs cancelled before their turn: a writing job queued behind another ends at once, cancelled, and never runs
(the jobs panel, the import, the inspection); a cancel racing a job's end; a cancelled running job keeps its
partial report."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

pytest.importorskip("PySide6")
from PySide6.QtCore import Qt  # noqa: E402

from musicemb_core.common.progress import Progress  # noqa: E402
from musicemb_core.data.library import Library  # noqa: E402
from tests.conftest import write_tone  # noqa: E402


def _blocker(release: threading.Event):
    """A job factory holding its turn until ``release`` is set."""
    def factory(token):
        yield Progress("hold", 0, None, "holding the writer's turn")
        release.wait(30)
    return factory


def test_a_queued_job_cancelled_ends_at_once_and_never_runs(qtbot, jobs):
    """Cancel an import waiting behind another writer: its row said "Cancelling…" until the first ended (minutes),
    and then it ran all the same."""
    release, ran = threading.Event(), []

    def second(token):
        ran.append(True)
        yield Progress("import", 0, 1)
    first = jobs.submit("first import", _blocker(release), writes=True)
    queued = jobs.submit("second import", second, writes=True)
    events = []
    queued.cancelled.connect(lambda: events.append("cancelled"))
    queued.finished.connect(lambda _r: events.append("finished"))
    row = jobs.panel.rows[queued.id]
    assert row.eta.text() == "waits for first import"
    qtbot.waitUntil(lambda: first.last is not None, timeout=5000)
    with qtbot.waitSignal(queued.ended, timeout=2000):
        qtbot.mouseClick(row.cancel, Qt.MouseButton.LeftButton)
    assert first.state == "running" and queued.state == "cancelled" and events == ["cancelled"]
    assert queued not in jobs.jobs and queued.id not in jobs.panel.rows
    assert jobs.panel.history.item(0, 0).text() == "second import"
    assert jobs.panel.history.item(0, 1).text() == "✗ cancelled"
    release.set()
    qtbot.waitUntil(lambda: not jobs.jobs, timeout=5000)
    assert jobs.wait(5000) and first.state == "done" and not ran and not queued.started


def test_a_job_cancelled_before_its_first_turn_of_the_event_loop_never_runs(qtbot, jobs):
    ran = []

    def work(token):
        ran.append(True)
        yield Progress("x", 0, 1)
    job = jobs.submit("quick", work)
    with qtbot.waitSignal(job.ended, timeout=2000):
        jobs.cancel_all()
    assert jobs.wait(5000) and not ran and job.state == "cancelled"


def test_a_cancel_that_comes_after_the_work_was_done_leaves_it_done(qtbot, jobs):
    """Cancel pressed as an embed finished (its report complete, not cut short): the history said "✗ cancelled"
    and the demo build, finished, was not opened."""
    asked = threading.Event()

    def work(token):
        yield Progress("embed", 1, 1)
        asked.wait(10)
        return SimpleNamespace(cancelled=False)  # the work had ended before it looked at the token
    job = jobs.submit("embed", work)
    qtbot.waitUntil(lambda: job.last is not None, timeout=5000)
    with qtbot.waitSignal(job.ended, timeout=5000):
        job.cancel()
        asked.set()
    assert job.state == "done" and jobs.panel.history.item(0, 1).text() == "✓ done"


# -- the window's import and inspection --------------------------------------------------------------------------
@pytest.fixture
def window(qtbot, tmp_path):
    from tests.gui.helpers import shown_window, tone_library

    lib = tone_library(tmp_path)
    for win in shown_window(qtbot, tmp_path):
        assert win.open_library(lib)
        win.lib = lib
        yield win


def _row(win, job):
    return win.jobs_panel.rows[job.id]


def test_an_import_cancelled_while_waiting_its_turn_changes_nothing(qtbot, window, tmp_path):
    release = threading.Event()
    write_tone(tmp_path / "more" / "tone880.wav", 880, seconds=3.0, sr=16000)
    blocker = window.jobs.submit("first import", _blocker(release), writes=True)
    window.import_paths([str(tmp_path / "more")])
    queued = window.jobs.jobs[-1]
    assert queued is not blocker and _row(window, queued).eta.text() == "waits for first import"
    with qtbot.waitSignal(queued.ended, timeout=2000):
        qtbot.mouseClick(_row(window, queued).cancel, Qt.MouseButton.LeftButton)
    assert window.statusBar().currentMessage() == "Import cancelled before it started: nothing changed"
    release.set()
    assert window.jobs.wait(10000)
    qtbot.waitUntil(lambda: not window.jobs.jobs, timeout=5000)
    with Library(window.lib) as lib:
        assert len(lib.tracks()) == 2 and not any(t.path.endswith("tone880.wav") for t in lib.tracks())
    assert window.statusBar().currentMessage() == "Import cancelled before it started: nothing changed"


def test_an_inspection_cancelled_while_waiting_its_turn_never_runs(qtbot, window, monkeypatch):
    import musicemb_core.workflows.inspect as inspect

    ran = []
    monkeypatch.setattr(inspect, "iter_inspect", lambda *a, **k: ran.append(True))
    release = threading.Event()
    window.jobs.submit("first import", _blocker(release), writes=True)
    window.inspection.run()
    job = window.inspection._job
    assert not window.inspection_panel.run.isEnabled()
    with qtbot.waitSignal(job.ended, timeout=2000):
        qtbot.mouseClick(_row(window, job).cancel, Qt.MouseButton.LeftButton)
    assert window.statusBar().currentMessage() == "inspection cancelled: the 0 findings of the last run are kept"
    assert window.inspection._job is None and window.inspection_panel.run.isEnabled()
    release.set()
    assert window.jobs.wait(10000) and not ran


def test_an_inspection_cancelled_while_it_runs_keeps_its_partial_report(qtbot, window, monkeypatch):
    import musicemb_core.workflows.inspect as inspect

    def slow(lib, *, model, cancel):
        yield Progress("inspect", 1, 4, "signal faults")
        while not cancel.cancelled:
            cancel._event.wait(0.01)
        return inspect.InspectReport(findings=[], kinds=[], cancelled=True)
    monkeypatch.setattr(inspect, "iter_inspect", slow)
    window.inspection.run()
    job = window.inspection._job
    qtbot.waitUntil(lambda: job.last is not None, timeout=5000)
    with qtbot.waitSignal(job.ended, timeout=5000):
        job.cancel()
    assert job.started and job.state == "cancelled"
    assert window.statusBar().currentMessage() == "inspection cancelled: the 0 findings of the last run are kept"


def test_an_import_cancelled_in_its_last_step_still_shows_what_it_imported(qtbot, window, tmp_path, monkeypatch):
    """Cancel as an import built its search indexes (its tracks stored, its vectors published): the index step's
    Cancelled dropped the import's report, so the table never showed the new tracks and the status bar said
    nothing."""
    import musicemb_gui.main_window as main_window

    def indexes(lib, *, cancel):
        yield Progress("melody index", 0, None, "melody index")
        while not cancel.cancelled:
            cancel._event.wait(0.01)
        cancel.check()
    def ingest_embed(lib, paths, **kw):  # the import's own decode, without the model's (not at issue here)
        report = yield from main_window.iter_ingest(lib, paths, **kw)
        return SimpleNamespace(ingest=report, embed=SimpleNamespace(cancelled=False))
    monkeypatch.setattr(main_window, "iter_ingest_embed", ingest_embed)
    monkeypatch.setattr(main_window, "iter_search_indexes", indexes)
    write_tone(tmp_path / "more" / "tone880.wav", 880, seconds=3.0, sr=16000)
    window.import_paths([str(tmp_path / "more")])
    job = window.jobs.jobs[-1]
    qtbot.waitUntil(lambda: job.last is not None and job.last.stage == "melody index", timeout=20000)
    with qtbot.waitSignal(job.ended, timeout=5000):
        job.cancel()
    assert window.statusBar().currentMessage().startswith("import done: 1 added")
    assert any(t.path.endswith("tone880.wav") for t in window.session.tracks.values())
