"""Process pools that a cancelled job leaves at once, and workers that end with their parent."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from musicemb_core.common.progress import CancelToken


def result_unless_cancelled(future: Future, cancel: CancelToken, *, poll_s: float = 0.1) -> Any | None:
    """``future``'s result, or None as soon as ``cancel`` is set: the job is thrown away rather than waited for
    (an import worker's first file also loads the decoders and encoders: seconds on a busy machine)."""
    while True:
        try:
            return future.result(timeout=poll_s)
        except FutureTimeout:
            if cancel.cancelled:
                return None


def stop_workers(pool: ProcessPoolExecutor) -> None:
    """Shut ``pool`` down without waiting and end its workers: what they are working on is thrown away (a worker
    stuck in a long file, or a queue of jobs still to run, would otherwise hold the process for minutes)."""
    if hasattr(pool, "terminate_workers"):  # Python 3.14
        pool.terminate_workers()
        return
    procs = list((getattr(pool, "_processes", None) or {}).values())  # no public handle before 3.14
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        proc.terminate()


def die_with_parent(parent: int, pdeathsig: bool) -> None:
    """End this worker when ``parent`` dies, however it dies (``kill -9`` included): a daemon thread that watches
    the parent pid, and on Linux the kernel's parent-death signal when the pool was made by the main thread (the
    signal follows the creating *thread*, which in an app's worker thread may end before the process)."""
    if pdeathsig and sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # died before the signal was asked for
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="musicemb-parent-watch", daemon=True).start()
