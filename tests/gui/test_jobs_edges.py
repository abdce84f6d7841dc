"""Jobs panel at its edges: progress without a total, failures whose message has several lines."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("PySide6")

from musicemb_core.common.progress import Progress  # noqa: E402


def test_progress_without_a_total_shows_a_busy_bar_and_its_message(qtbot, jobs):
    """An inspection's second stage has no total: the bar stayed at "100%" of the first, as if done, and a busy
    bar (a total of 0 or None) showed no message at all."""
    go, step = threading.Event(), threading.Semaphore(0)

    def inspect(token):
        yield Progress("inspect", 5, 5, "signal faults")
        step.acquire()
        yield Progress("inspect", 0, None, "label issues, outliers and duplicates")
        go.wait(10)

    def nothing(token):
        yield Progress("z", 0, 0, "0 files to read")
        go.wait(10)
    job = jobs.submit("inspect", inspect)
    row = jobs.panel.rows[job.id]
    qtbot.waitUntil(lambda: row.bar.maximum() == 5, timeout=5000)
    assert row.bar.value() == 5 and "signal faults" in row.bar.text()
    step.release()
    qtbot.waitUntil(lambda: row.bar.maximum() == 0, timeout=5000)  # busy again
    assert row.eta.text() == "label issues, outliers and duplicates"
    zero = jobs.submit("nothing", nothing)
    zero_row = jobs.panel.rows[zero.id]
    qtbot.waitUntil(lambda: zero_row.eta.text() == "0 files to read", timeout=5000)
    assert zero_row.bar.maximum() == 0
    go.set()


def test_a_failure_of_several_lines_is_one_line_in_the_history(qtbot, jobs):
    def broken(token):
        yield Progress("x", 1, 3, "a")
        raise RuntimeError("could not read\n  File 'x.wav'\nthird line")
    job = jobs.submit("broken job", broken)
    qtbot.waitUntil(lambda: job not in jobs.jobs, timeout=5000)
    detail = jobs.panel.history.item(0, 3)
    assert detail.text() == "RuntimeError: could not read File 'x.wav' third line"
    assert detail.toolTip() == "RuntimeError: could not read\n  File 'x.wav'\nthird line"
    assert jobs.panel.history.item(0, 1).text() == "⚠ failed" and not jobs.panel.rows
    assert not jobs.panel.empty.isHidden()
