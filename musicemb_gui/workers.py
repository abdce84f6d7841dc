"""Background jobs: core generators run in a QThreadPool; their progress events reach the GUI as queued signals.

A job's factory receives a :class:`CancelToken` and returns the generator; it must open its own library
connection (SQLite connections are not shared between threads). Worker code never touches a widget.
"""

from __future__ import annotations

import itertools
import threading
import time
import traceback
from collections.abc import Callable, Generator

from PySide6.QtCore import QEventLoop, QObject, QRunnable, Qt, QThreadPool, QTimer, Signal
from shiboken6 import isValid

from musicemb_core.common.errors import Cancelled, MusicEmbError
from musicemb_core.common.progress import CancelToken, Progress
from musicemb_gui.app_words import in_app_words

JobFactory = Callable[[CancelToken], Generator]


class Job(QObject):
    """One background job. Signals are emitted from the worker thread and delivered queued on the GUI thread."""

    progress = Signal(object)          # Progress
    finished = Signal(object)          # the generator's return value
    failed = Signal(str, str)          # message, traceback ("" for user errors such as a bad file)
    cancelled = Signal()
    ended = Signal(object)             # self, after any of the three above
    _skipped = Signal()                # cancelled before it started: ends on the GUI thread's next turn

    _ids = itertools.count(1)

    def __init__(self, name: str, factory: JobFactory, *, writes: bool = False):
        super().__init__()
        self.id = next(self._ids)
        self.name = name
        self.factory = factory
        self.writes = writes  # takes the library's writer lock: runs after the writing jobs before it
        self.token = CancelToken()
        self.last: Progress | None = None
        self.state = "queued"
        self.started = False  # set by run; a job cancelled while queued ends "cancelled" and never starts
        self._lock = threading.Lock()  # a cancel and the worker taking the job up are one after the other
        self._skipped.connect(self._end_skipped, Qt.ConnectionType.QueuedConnection)

    def cancel(self) -> None:
        """Ask the job to stop; one still waiting its turn (or its start) ends at once, cancelled, and never
        runs. Its signals come from the event loop as a running job's do, never from within this call."""
        self.token.cancel()
        with self._lock:
            if self.state != "queued":
                return
            self.state = "cancelled"
        self._skipped.emit()

    def _end_skipped(self) -> None:
        self.cancelled.emit()
        self.ended.emit(self)

    def run(self) -> None:
        """Drive the generator to its end (worker thread); nothing if it was cancelled before."""
        with self._lock:
            if self.state != "queued":
                return
            self.state, self.started = "running", True
        try:
            gen = self.factory(self.token)
            while True:
                try:
                    event = next(gen)
                except StopIteration as stop:
                    result = stop.value
                    break
                self.last = event
                self.progress.emit(event)
        except Cancelled:
            self.state = "cancelled"
            self.cancelled.emit()
        except MusicEmbError as e:
            self.state = "failed"
            self.failed.emit(in_app_words(str(e)), "")
        except Exception as e:  # a bug: show the traceback, keep the app running
            self.state = "failed"
            self.failed.emit(f"{type(e).__name__}: {e}", traceback.format_exc())
        else:
            # a job that honours cancel by returning early (import, embed) still hands back its partial result; one
            # cancelled after its work was done (its report says it was not cut short) is done
            self.state = "cancelled" if getattr(result, "cancelled", self.token.cancelled) else "done"
            self.finished.emit(result)
        self.ended.emit(self)


class _Runner(QRunnable):
    def __init__(self, job: Job):
        super().__init__()
        self.job = job
        self.setAutoDelete(True)

    def run(self) -> None:
        self.job.run()


class JobManager(QObject):
    """Starts jobs on a thread pool and keeps the list of running ones for the jobs panel. Jobs that write to the
    library (``writes``) run one at a time, in the order asked: the library has one writer, and a second one
    started beside the first failed after a few seconds with "library busy" naming this very app."""

    jobAdded = Signal(object)
    jobEnded = Signal(object)

    def __init__(self, pool: QThreadPool | None = None):
        super().__init__()
        self.pool = pool or QThreadPool.globalInstance()
        self.writer_pool = QThreadPool(self)
        self.writer_pool.setMaxThreadCount(1)
        self.jobs: list[Job] = []
        self._pending: list[Job] = []  # submitted, started by the event loop's next turn (or by wait)
        self.closed = False  # the window closed: no new job starts (the app is quitting)

    def writing(self) -> list[Job]:
        """The writing jobs not ended yet, the one running first."""
        return [j for j in self.jobs if j.writes]

    def submit(self, name: str, factory: JobFactory, *, writes: bool = False) -> Job:
        job = Job(name, factory, writes=writes)
        if self.closed:  # asked by a result delivered after the window closed: never started
            job.cancel()
            return job
        self.jobs.append(job)
        job.ended.connect(self._ended)  # a bound method of a GUI-thread object: delivered on the GUI thread
        self.jobAdded.emit(job)
        # Started from the event loop, once the caller has connected its slots: a job started here could end
        # before them, and a signal emitted before a slot is connected never reaches it.
        self._pending.append(job)
        QTimer.singleShot(0, self._start_pending)
        return job

    def _start_pending(self) -> None:
        while self._pending:
            job = self._pending.pop(0)
            if job.state == "queued":  # not cancelled meanwhile
                (self.writer_pool if job.writes else self.pool).start(_Runner(job))

    def _ended(self, job: Job) -> None:
        if job in self.jobs:
            self.jobs.remove(job)
            self.jobEnded.emit(job)

    def cancel_all(self) -> None:
        for job in list(self.jobs):
            job.cancel()

    def shutdown(self, msecs: int = 5000) -> bool:
        """Cancel every job, refuse new ones and wait for the running ones to end (the app is quitting: a job
        still running at exit emitted into deleted objects)."""
        self.closed = True
        self.cancel_all()
        return self.wait(msecs)

    def wait(self, msecs: int = 30000) -> bool:
        self._start_pending()  # submitted in this turn of the event loop: they run (or end at once, cancelled)
        deadline = time.monotonic() + msecs / 1000
        return self.writer_pool.waitForDone(msecs) and \
            self.pool.waitForDone(max(0, int(1000 * (deadline - time.monotonic()))))


class _Call(QObject):
    """Carries a short call's result from a worker back to the GUI thread (queued to its own slots)."""

    done = Signal(object)
    error = Signal(str)

    def __init__(self, on_done: Callable[[object], None], on_error: Callable[[str], None] | None):
        super().__init__()
        self.on_done, self.on_error = on_done, on_error
        self.done.connect(self._deliver)
        self.error.connect(self._fail)

    def _deliver(self, result: object) -> None:
        _pending.discard(self)
        self.on_done(result)

    def _fail(self, message: str) -> None:
        _pending.discard(self)
        if self.on_error is not None:
            self.on_error(message)


class _CallRunner(QRunnable):
    def __init__(self, fn: Callable[[], object], call: _Call):
        super().__init__()
        self.fn, self.call = fn, call

    def run(self) -> None:
        try:
            result = self.fn()
        except MusicEmbError as e:  # a user-level problem (a file gone or unreadable): its own one-line message
            self.call.error.emit(in_app_words(str(e)))
        except Exception as e:  # reported to the caller's error slot; the app keeps running
            self.call.error.emit(f"{type(e).__name__}: {e}")
        else:
            self.call.done.emit(result)


def run_in_thread(fn: Callable[[], object], on_done: Callable[[object], None],
                  on_error: Callable[[str], None] | None = None, *, pool: QThreadPool | None = None) -> _Call:
    """Run a short ``fn`` (decode a segment, compute a spectrogram) off the GUI thread; ``on_done(result)`` is
    called on the GUI thread. Not listed as a job: use ``JobManager`` for anything long or cancellable."""
    call = _Call(on_done, on_error)
    _pending.add(call)
    (pool or QThreadPool.globalInstance()).start(_CallRunner(fn, call))
    return call


_pending: set[_Call] = set()  # keeps the carriers alive until they have delivered


def alive(obj: QObject) -> bool:
    """Whether ``obj``'s Qt object still exists (a window closed during :func:`wait_for` is deleted meanwhile)."""
    return isValid(obj)


def wait_for(fn: Callable[[], object]) -> object:
    """``fn()`` (reads of a big library: seconds) run on a thread of its own while the window's events go on, for
    callers that need its result before they go on; its exception is raised here. Meanwhile other slots run (a
    timer, a click, a window closed and deleted): callers keep their state consistent with a later call of their
    own ending first, and check that their widgets are still :func:`alive`. A thread of its own: the pool's may all
    be taken by long jobs (a map, a training)."""
    out: dict = {}
    loop = QEventLoop()
    done = threading.Event()

    def run() -> None:
        try:
            out["result"] = fn()
        except BaseException as e:  # raised again on the GUI thread
            out["error"] = e
        finally:
            done.set()
            QTimer.singleShot(0, loop, loop.quit)  # queued to the loop's (GUI) thread

    threading.Thread(target=run, name="musicemb-read", daemon=True).start()
    while not done.is_set():
        loop.exec()
    if "error" in out:
        raise out["error"]
    return out["result"]
