"""Progress events yielded by long jobs, a cancel flag, and a driver that runs a job generator."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from musicemb_core.common.errors import Cancelled

R = TypeVar("R")


@dataclass
class Progress:
    """One step of a long job: ``done`` of ``total`` units in ``stage``; ``info`` carries extras (loss, file...)."""

    stage: str
    done: int
    total: int | None = None
    message: str = ""
    eta_s: float | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def fraction(self) -> float | None:
        return None if not self.total else min(1.0, self.done / self.total)


class CancelToken:
    """Thread-safe cancel flag checked by jobs between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if the flag is set."""
        if self._event.is_set():
            raise Cancelled("cancelled")


class EtaClock:
    """Estimates the remaining time of a job from the rate of units done so far."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def eta(self, done: float, total: float | None) -> float | None:
        if not total or done <= 0:
            return None
        elapsed = time.monotonic() - self.t0
        return max(0.0, elapsed / done * (total - done))


JobGen = Generator[Progress, None, R]


def drive(job: JobGen[R], on_event: Callable[[Progress], None] | None = None) -> R:
    """Run a job generator to the end, passing each event to ``on_event``; return the job's result."""
    while True:
        try:
            event = next(job)
        except StopIteration as stop:
            return stop.value
        if on_event is not None:
            on_event(event)
