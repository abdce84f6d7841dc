"""Jobs panel: every running job with its progress bar, ETA and a cancel button, and a history of the jobs that
ended (done, failed or cancelled), newest first, with how long each took."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from musicemb_gui.widgets.plain_text import tooltip
from musicemb_gui.workers import Job, JobManager

HISTORY_ROWS = 200
OUTCOME = {"done": "✓ done", "failed": "⚠ failed", "cancelled": "✗ cancelled"}


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    m, s = divmod(int(seconds), 60)
    return f"{m}:{s:02d} left" if m < 60 else f"{m // 60} h {m % 60:02d} min left"


def duration_text(seconds: float) -> str:
    """"0.4 s", "12 s", "2:05", "1 h 02 min"."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    m, s = divmod(int(seconds), 60)
    return f"{m}:{s:02d}" if m < 60 else f"{m // 60} h {m % 60:02d} min"


def one_line(message: str) -> str:
    """``message`` on one line: its lines and runs of spaces joined by one space."""
    return " ".join(message.split())


class JobRow(QWidget):
    def __init__(self, job: Job):
        super().__init__()
        self.job = job
        self.started = time.monotonic()
        self.error = ""
        self.label = QLabel(job.name)
        self.label.setTextFormat(Qt.TextFormat.PlainText)  # names models and files
        self.bar = QProgressBar()
        self.bar.setRange(0, 0)  # busy until the first event with a total
        self.eta = QLabel("")
        self.cancel = QPushButton("Cancel")
        self.cancel.clicked.connect(self._cancel)
        row = QHBoxLayout(self)
        row.setContentsMargins(2, 2, 2, 2)
        for w, stretch in ((self.label, 2), (self.bar, 3), (self.eta, 1), (self.cancel, 0)):
            row.addWidget(w, stretch)
        job.progress.connect(self.update_progress)
        job.failed.connect(lambda message, _tb: setattr(self, "error", message))

    def _cancel(self) -> None:
        self.job.cancel()
        self.cancel.setEnabled(False)
        self.cancel.setText("Cancelling…")

    def update_progress(self, ev) -> None:
        """A known total fills the bar; an unknown one (None, 0) makes it busy again, its message beside it (a
        busy bar shows no text)."""
        if ev.total:
            self.bar.setRange(0, ev.total)
            self.bar.setValue(min(ev.done, ev.total))
        else:
            self.bar.setRange(0, 0)
        self.bar.setFormat(f"%p%  {ev.message[-60:]}" if ev.message else "%p%")
        self.eta.setText(_eta(ev.eta_s) if ev.total else ev.message[-40:])
        self.eta.setToolTip(tooltip(ev.message))


class JobsPanel(QWidget):
    def __init__(self, jobs: JobManager):
        super().__init__()
        self.jobs = jobs
        self.rows: dict[int, JobRow] = {}
        self.running = QVBoxLayout()
        self.empty = QLabel("No jobs running.")
        self.running.addWidget(self.empty)
        self.history = QTableWidget(0, 4)
        self.history.setHorizontalHeaderLabels(["ended job", "outcome", "took", "detail"])
        head = self.history.horizontalHeader()
        for col in range(4):
            head.setSectionResizeMode(col, QHeaderView.ResizeMode.Stretch if col == 3 else
                                      QHeaderView.ResizeMode.ResizeToContents)
        self.history.verticalHeader().hide()
        self.history.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.history.setWordWrap(False)
        self.history.setMinimumHeight(48)  # its header and a row: at 1280x720 the library keeps its rows
        layout = QVBoxLayout(self)
        layout.addLayout(self.running)
        layout.addWidget(self.history, 1)
        jobs.jobAdded.connect(self.add)
        jobs.jobEnded.connect(self.remove)

    def add(self, job: Job) -> None:
        row = JobRow(job)
        self.rows[job.id] = row
        self.running.addWidget(row)
        self.empty.hide()
        self._show_turns()

    def remove(self, job: Job) -> None:
        """A job ended: its row leaves the running list and goes on top of the history."""
        row = self.rows.pop(job.id, None)
        if row is not None:
            row.setParent(None)
            row.deleteLater()
            took = time.monotonic() - row.started
            self.history.insertRow(0)
            for col, text in enumerate((job.name, OUTCOME.get(job.state, job.state), duration_text(took),
                                        row.error)):
                item = QTableWidgetItem(one_line(text))  # a message of several lines: one line, whole on hover
                item.setToolTip(tooltip(text))
                self.history.setItem(0, col, item)
            self.history.setRowCount(min(self.history.rowCount(), HISTORY_ROWS))
        self.empty.setVisible(not self.rows)
        self._show_turns()

    def _show_turns(self) -> None:
        """A writing job not started yet says which job it waits for (one job writes to the library at a time)."""
        writing = [j for j in self.jobs.writing() if j.id in self.rows]
        for ahead, job in zip([None, *writing], writing, strict=False):
            if job.last is None:  # no progress shown yet
                self.rows[job.id].eta.setText("" if ahead is None else f"waits for {ahead.name}")
