"""Process pools that a cancelled job leaves at once."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor


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
