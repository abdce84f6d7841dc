"""Jobs panel: every running job with its progress bar, ETA and a cancel button."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from musicemb_gui.workers import Job, JobManager


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    m, s = divmod(int(seconds), 60)
    return f"{m}:{s:02d} left" if m < 60 else f"{m // 60} h {m % 60:02d} min left"


class JobRow(QWidget):
    def __init__(self, job: Job):
        super().__init__()
        self.job = job
        self.label = QLabel(job.name)
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

    def _cancel(self) -> None:
        self.job.cancel()
        self.cancel.setEnabled(False)
        self.cancel.setText("Cancelling…")

    def update_progress(self, ev) -> None:
        if ev.total:
            self.bar.setRange(0, ev.total)
            self.bar.setValue(min(ev.done, ev.total))
        self.bar.setFormat(f"%p%  {ev.message[-60:]}" if ev.message else "%p%")
        self.eta.setText(_eta(ev.eta_s))


class JobsPanel(QWidget):
    def __init__(self, jobs: JobManager):
        super().__init__()
        self.rows: dict[int, JobRow] = {}
        self.layout_ = QVBoxLayout(self)
        self.empty = QLabel("No jobs running.")
        self.layout_.addWidget(self.empty)
        self.layout_.addStretch(1)
        jobs.jobAdded.connect(self.add)
        jobs.jobEnded.connect(self.remove)

    def add(self, job: Job) -> None:
        row = JobRow(job)
        self.rows[job.id] = row
        self.layout_.insertWidget(self.layout_.count() - 1, row)
        self.empty.hide()

    def remove(self, job: Job) -> None:
        row = self.rows.pop(job.id, None)
        if row is not None:
            row.setParent(None)
            row.deleteLater()
        self.empty.setVisible(not self.rows)
