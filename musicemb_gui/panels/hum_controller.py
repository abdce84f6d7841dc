"""What the hum panel asks of the core: the library's QBH index (built as a job when absent or stale), the
opened searcher (kept between queries), a hummed query ranked off the GUI thread, a file decoded off it."""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, Signal

from musicemb_gui.panels.hum_panel import NO_CONFIDENT_MATCH, HumPanel, query_spectrogram
from musicemb_gui.session import Session
from musicemb_gui.workers import run_in_thread


class HumController(QObject):
    resultsShown = Signal(object, float)  # rows, seconds from the end of recording to results on screen

    def __init__(self, session: Session, panel: HumPanel, *, k: int = 10):
        super().__init__()
        self.session, self.panel, self.k = session, panel, k
        self._searcher = None
        self._job = None  # the job opening the searcher, while it runs
        self._pending: tuple | None = None
        self._asked = 0  # numbers the queries and file loads: only the latest one's answer is shown
        panel.queryReady.connect(self.search)
        panel.fileChosen.connect(self.search_file)
        panel.recordingStarted.connect(self.prepare)
        session.libraryOpened.connect(self._library_opened)
        session.libraryChanged.connect(self._forget)
        session.labelsChanged.connect(self._relabel)

    def _library_opened(self) -> None:
        """Another library: a hum waiting for the old one's melody index is dropped, and that index's job
        cancelled (the new library's writing jobs would wait behind it)."""
        if self._job is not None:
            self._job.cancel()
        self._asked += 1
        self._searcher, self._job, self._pending = None, None, None

    def _relabel(self, changed: dict[int, str | None]) -> None:
        """Labels edited: the open searcher answers with them (its melody index does not depend on them)."""
        if self._searcher is not None:
            self._searcher.relabel(changed)

    def _forget(self) -> None:
        """Tracks changed (an import ended): the open searcher is of the library as it was. A melody index job
        (and the hum waiting for it) is kept: writing jobs run one at a time, so it opens the library after that
        import (dropped and asked again, the index was built twice, one job waiting behind the other)."""
        self._searcher = None

    def prepare(self) -> None:
        """A recording starts: answers to earlier queries are dropped (a file still decoding would replace the live
        spectrogram); the searcher is opened (and warmed up) while the user hums, so results follow the stop."""
        self._asked += 1
        self._pending = None
        if self.session.lib_path is not None and self._searcher is None and self._job is None:
            self._open_searcher()

    def search(self, y, sr: int, what: str) -> None:
        """Rank the library's tracks for a hum; builds the QBH index first if the library has none yet."""
        s = self.session
        if s.lib_path is None:
            self.panel.set_results([], "Open a library first.")
            return
        recorded = what == "recording"
        t0 = self.panel.stopped_at if recorded else time.perf_counter()
        if self._searcher is None:
            self._asked += 1  # an answer to an earlier query still on its way is not shown over this one
            self._pending = (y, sr, t0, recorded)
            if self._job is None:
                self._open_searcher()
            return
        self._query(y, sr, t0, recorded)

    def _latest(self):
        """A guard for one new query or file load: ``guard(fn)`` runs ``fn`` only if no other was asked since and
        the same library is still open."""
        self._asked += 1
        asked, generation = self._asked, self.session.generation
        return lambda fn: lambda *a: fn(*a) if asked == self._asked and self.session.is_current(generation) else None

    def _query(self, y, sr: int, t0: float, recorded: bool) -> None:
        searcher, guard = self._searcher, self._latest()
        run_in_thread(lambda: searcher.query(y, sr, k=self.k),
                      guard(lambda rows: self._show(rows, t0, searcher, recorded=recorded)),
                      guard(lambda msg: self.panel.set_results([], f"⚠ search failed: {msg}")))

    def search_file(self, path: str) -> None:
        """Decode a hum file (at most ``MAX_HUM_S``, as ``musicemb hum``) and its spectrogram off the GUI thread,
        then search it."""
        from musicemb_core.audio.decode import load
        from musicemb_core.audio.validate import check_query_length
        from musicemb_core.common.config import MAX_HUM_S

        self.panel.stop_note = ""  # a file: not the recording that stopped by itself

        def read():
            check_query_length(path, MAX_HUM_S, "hums")
            y, sr = load(path)
            return y, sr, query_spectrogram(y, sr)

        def shown(result):
            y, sr, S = result
            self.panel.show_query(S, path.rsplit("/", 1)[-1])
            self.search(y, sr, path)
        guard = self._latest()
        run_in_thread(read, guard(shown), guard(lambda msg: self.panel.set_results([], f"⚠ {msg}")))

    def _open_searcher(self) -> None:
        def work(lib, token):
            from musicemb_core.search.qbh import HumSearcher

            searcher = yield from HumSearcher.iter_open(lib, cancel=token)
            return searcher.warm_up()
        if self._pending is not None:
            self.panel.state.setText("Preparing the melody index of this library (once; see Jobs)…")
        # a writing job: it may build the index (the writer lock), so it waits for the writing jobs before it
        # (an import builds the index at its end) and the ones asked meanwhile wait for it
        job = self._job = self.session.library_job("melody index for humming", work, writes=True)
        job.finished.connect(lambda searcher: self._opened(job, searcher))
        job.failed.connect(lambda msg, _tb: self._failed(job, msg))
        job.cancelled.connect(lambda: self._failed(job, "the melody index was cancelled"))

    def _failed(self, job, msg: str) -> None:
        if job is not self._job:  # a job of a library closed since
            return
        self._job, self._pending = None, None
        if self.panel.recorder is not None:  # still recording: said beside it; tried again when it stops
            self.panel.state.setText(f"{self.panel.state.text()}\n⚠ cannot search by humming yet: {msg} (tried again "
                                     "when you stop)")
        else:
            self.panel.set_results([], f"⚠ cannot search by humming: {msg}")

    def _opened(self, job, searcher) -> None:
        if job is not self._job:
            return
        self._searcher, self._job = searcher, None
        if self._pending is not None:
            query, self._pending = self._pending, None
            self._query(*query)

    def _show(self, rows: list[dict], t0: float, searcher, *, recorded: bool = True) -> None:
        """Show the answer and how long it took: from the stop of a recording, from the search of a file (it was
        never recorded nor stopped)."""
        confident = searcher.is_confident(rows)  # the searcher that answered: the open one may be gone since
        rows = [dict(r, name=self.session.track_name(r["track_id"])) for r in rows]
        self.panel.set_results(rows, confident=confident)
        latency = time.perf_counter() - t0
        took = f"{latency:.2f} s after you stopped" if recorded else f"searched in {latency:.2f} s"
        if rows and confident:
            self.panel.state.setText(f"{self.panel.stop_note}{len(rows)} songs, best first ({took}).")
        elif rows:
            self.panel.state.setText(f"{self.panel.stop_note}{NO_CONFIDENT_MATCH} ({took})")
        self.resultsShown.emit(rows, latency)
