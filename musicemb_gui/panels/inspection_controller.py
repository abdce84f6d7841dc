"""What the inspection panel asks of the core: run ``iter_inspect`` as a job, read and update stored findings,
relabel tracks, compute the selected finding's spectrogram. The panel itself only shows rows and emits
requests."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Signal

from musicemb_gui.app_words import in_app_words
from musicemb_gui.panels.inspection_panel import InspectionPanel
from musicemb_gui.session import Session
from musicemb_gui.workers import alive, run_in_thread, wait_for


class InspectionController(QObject):
    findingsChanged = Signal()

    def __init__(self, session: Session, panel: InspectionPanel):
        super().__init__()
        self.session, self.panel = session, panel
        self.rows: list[dict] = []
        self._shown: int | None = None  # the segment whose spectrogram is shown
        self._job = None  # the inspection job, while it runs
        self._editing = False  # a review or relabel asked here is being stored
        self._stored: dict | None = None  # what it changed once stored: {track id: new label}
        self._reading = False  # the library is read again for findings of tracks the window had not read
        self._loads = 0  # counts the reads of the findings begun: one ending after a later one is dropped
        panel.runRequested.connect(self.run)
        panel.segmentSelected.connect(self.show_spectrogram)
        panel.logFrequencyToggled.connect(lambda _: self._shown is not None and self.show_spectrogram(self._shown))
        panel.statusChanged.connect(self.set_status)
        panel.relabelRequested.connect(self.relabel)
        session.libraryOpened.connect(panel.table.clearSelection)  # the ids of the findings of another library
        session.libraryOpened.connect(panel.forget_heard)
        session.libraryOpened.connect(self._library_opened)
        session.libraryChanged.connect(self.load)
        session.labelsChanged.connect(self._edited)  # findings show labels
        session.edits.findingsChanged.connect(lambda: self._edited({}))

    def load(self) -> None:
        """Show the stored findings of the open library. Findings of tracks or segments the window has not read
        (imported or cut again by another program since: shown as "track 17", selecting one raised KeyError) read
        the library again first."""
        s = self.session
        if s.lib_path is None:
            return
        self._loads += 1
        mine, opener = self._loads, s.opener()

        def read() -> list[dict]:
            with opener() as lib:
                return lib.findings()
        rows = wait_for(read)  # 1 s for 40,000 findings: the window's events go on
        if mine != self._loads or not alive(self.panel):
            return
        segs = np.array([r["segment_id"] for r in rows if r["segment_id"] is not None], np.int64)
        if not self._reading and (any(r["track_id"] not in s.tracks for r in rows)
                                  or not np.isin(segs, s.segments.get("id", segs[:0])).all()):
            self._reading = True
            try:
                s.refresh()  # libraryChanged: loaded again, of the tracks and segments read now
            finally:
                self._reading = False
            return
        names = {t: s.track_name(t) for t in {r["track_id"] for r in rows}}
        self.rows = [dict(r, name=names[r["track_id"]]) for r in rows]
        self.panel.set_findings(self.rows)
        if self.panel.one_selected() is None:  # no finding's spectrogram on show
            self._shown = None
        self.findingsChanged.emit()

    def _edited(self, changed: dict) -> None:
        """Labels or reviews stored: an edit asked here shows in place (``_edit``); another (an Undo, a label
        edited elsewhere) too (``_update``)."""
        if self._editing:
            self._stored = changed
        else:
            self._update(changed)

    def _update(self, labels: dict) -> None:
        """The rows whose finding's status or track's label (``labels``: {track id: label}) changed, updated in
        place: every finding read and the table filled again at each label edit or Undo froze the window for 1-6 s
        at 40,000 findings. Findings replaced meanwhile (ids other than those shown) are all read again."""
        if self.session.lib_path is None:
            return
        with self.session.library() as lib:
            statuses = dict(lib.conn.execute("SELECT id, status FROM findings").fetchall())
        if statuses.keys() != {r["id"] for r in self.rows}:
            self.load()
            return
        changed = []
        for i, r in enumerate(self.rows):
            status, label = statuses[r["id"]], labels.get(r["track_id"], r["label"])
            if status != r["status"] or label != r["label"]:
                self.rows[i] = dict(r, status=status, label=label)
                changed.append(self.rows[i])
        if changed:
            self.panel.update_findings(changed)
            self.findingsChanged.emit()

    def _edit(self, store, finding_ids, status: str) -> None:
        """``store()`` these findings' new ``status`` (and their tracks' labels), then update their rows and those
        of the tracks relabelled in place: every finding read and the table filled again froze the window for
        7 s at 40,000 findings."""
        ids = {int(i) for i in finding_ids}
        self._editing, self._stored = True, None
        try:
            store()
        finally:
            self._editing = False
        labels = self._stored
        if labels is None:  # not stored (the status bar says why): the rows show the findings as they were read
            self.panel.update_findings([r for r in self.rows if r["id"] in ids])
            return
        changed = []
        for i, r in enumerate(self.rows):
            if r["id"] in ids or r["track_id"] in labels:
                self.rows[i] = dict(r, status=status if r["id"] in ids else r["status"],
                                    label=labels.get(r["track_id"], r["label"]))
                changed.append(self.rows[i])
        if changed:
            self.panel.update_findings(changed)
            self.findingsChanged.emit()

    def show_spectrogram(self, seg_id: int) -> None:
        """Compute the segment's spectrogram from 20 Hz at the file's rate in a thread; show it if the library
        is still the one open."""
        from musicemb_core.features.spectrogram import fault_spectrogram

        s, log = self.session, self.panel.log_freq.isChecked()
        self._shown, generation = int(seg_id), s.generation
        info = s.segment(seg_id)
        title = f"{s.track_name(info['track_id'])} @ {info['start_s']:.1f} s"

        def work():
            y, sr = s.segment_audio(seg_id)
            return fault_spectrogram(y, sr, log_freq=log)

        def done(result) -> None:
            if s.is_current(generation) and self._shown == seg_id:
                self.panel.show_spectrogram(*result, title)

        def failed(msg: str) -> None:
            s.message.emit(f"spectrogram: {msg}")
            if s.is_current(generation) and self._shown == seg_id:
                self.panel.clear_spectrogram(f"No spectrogram of {title}: {msg}")

        run_in_thread(work, done, failed)

    def run(self) -> None:
        s = self.session
        if s.lib_path is None:
            s.message.emit("open a library first")
            return
        if self._job is not None:
            s.message.emit(f"{self._job.name} is still running (see Jobs)")
            return
        model = s.model

        def work(lib, token):  # imported in the worker: the window never waits for it
            from musicemb_core.workflows.inspect import iter_inspect

            return (yield from iter_inspect(lib, model=model, cancel=token))
        self._job = s.library_job(f"inspect with {model}", work, on_done=self._done, writes=True)
        self.panel.set_busy(True)
        self._job.ended.connect(self._ended)
        generation = s.generation  # cancelled before it started (its turn or the job ahead): nothing was changed
        self._job.cancelled.connect(lambda: s.is_current(generation) and self._cancelled())

    def _library_opened(self) -> None:
        """Another library: an inspection of the one before goes on (its findings are stored there; Jobs ▸ Cancel
        stops it), and this one's panel is free (it showed "Inspecting…" and refused Run until that one ended)."""
        self._job = None
        self.panel.set_busy(False)

    def _ended(self, job) -> None:
        if job is self._job:  # not one of the library open before
            self._job = None
            self.panel.set_busy(False)

    def _done(self, report) -> None:
        self.load()
        if report.cancelled:  # a cancelled run stores nothing: the last run's findings are still those shown
            self._cancelled()
            return
        note = f" ({len(report.failed)} files could not be read)" if report.failed else ""
        skipped = "".join(f"; skipped {in_app_words(s)}" for s in report.skipped)  # why no label findings
        self.session.message.emit(f"inspection done: {len(report.findings)} findings{note}{skipped}")

    def _cancelled(self) -> None:
        self.session.message.emit(f"inspection cancelled: the {len(self.rows)} findings of the last run are kept")

    def _about(self, finding_ids) -> dict[int, tuple]:
        """What the table shows of these findings (kind, track id, start, end): their ids may name other findings
        once another program's inspection replaced them, which an edit must not change."""
        ids = {int(i) for i in finding_ids}
        return {r["id"]: (r["kind"], r["track_id"], r["start_s"], r["end_s"]) for r in self.rows if r["id"] in ids}

    def set_status(self, finding_ids: list[int], status: str) -> None:
        """Accept, dismiss or reopen findings (one undoable edit)."""
        about = self._about(finding_ids)
        self._edit(lambda: self.session.edits.review_findings(finding_ids, status, about), finding_ids, status)

    def relabel(self, finding_id: int, label: str) -> None:
        """Relabel the finding's track (or, for a mixed track's segment, that segment) and accept it: one undoable
        edit."""
        about = self._about([finding_id]).get(int(finding_id))
        self._edit(lambda: self.session.edits.relabel_finding(finding_id, label or None, about), [finding_id],
                   "accepted")

    def kinds_of(self, ids: np.ndarray, tracks: np.ndarray) -> np.ndarray:
        """The open finding kind of each segment ``ids`` (of the tracks ``tracks``), None where it has none: the
        highest scored of its own findings and its track's whole-track ones. Per track and per finding, not per
        segment (a Python loop over 1.6M segments took a second at every recolouring)."""
        best: dict[tuple[str, int], tuple[float, str]] = {}  # ("track" or "segment", id) -> (score, kind)
        for r in self.rows:
            if r["status"] == "open":
                key = ("track", r["track_id"]) if r["segment_id"] is None else ("segment", r["segment_id"])
                if key not in best or r["score"] > best[key][0]:
                    best[key] = (float(r["score"]), r["kind"])
        score, kind = np.full(len(ids), -np.inf), np.full(len(ids), None, dtype=object)
        owners, per_point = np.unique(np.asarray(tracks, np.int64), return_inverse=True)
        of_owner = [best.get(("track", int(t)), (-np.inf, None)) for t in owners]
        if of_owner:
            score, kind = np.array([b[0] for b in of_owner])[per_point], np.array([b[1] for b in of_owner],
                                                                                  dtype=object)[per_point]
        order = np.argsort(ids, kind="stable")
        for (what, sid), (sc, k) in best.items():
            j = np.searchsorted(ids, sid, sorter=order) if what == "segment" else len(ids)
            if j < len(ids) and ids[order[j]] == sid and sc >= score[order[j]]:
                score[order[j]], kind[order[j]] = sc, k
        return kind
