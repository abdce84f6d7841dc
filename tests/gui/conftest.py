"""Fixtures of the app's tests."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
from PySide6.QtCore import QThreadPool  # noqa: E402

from musicemb_gui.panels.jobs_panel import JobsPanel  # noqa: E402
from musicemb_gui.workers import JobManager  # noqa: E402


@pytest.fixture
def jobs(qtbot):
    """A job manager of two threads with its jobs panel (``.panel``); its jobs cancelled and waited for after."""
    pool = QThreadPool()
    pool.setMaxThreadCount(2)
    manager = JobManager(pool)
    manager.panel = JobsPanel(manager)
    qtbot.addWidget(manager.panel)
    yield manager
    manager.cancel_all()
    manager.wait(10000)
