"""Argument checks and error reporting of the ``musicemb`` command, in one place.

Argument checks are argparse ``type=`` functions: a bad value is a one-line usage error (exit status 2) naming
the argument and the allowed range. Errors at run time are one line too (exit status 1): a :class:`MusicEmbError`
says what is wrong with which file; anything else is logged with its traceback (:func:`log_file`) and named in one
line pointing at the log; ``--debug`` prints the traceback instead.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import errno
import math
import os
import re
import sqlite3
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from musicemb_core.common.config import MAX_HUM_S, MAX_QUERY_S  # noqa: F401 (used as ca.MAX_QUERY_S)
from musicemb_core.common.errors import Cancelled, ConfigError, MusicEmbError
from musicemb_core.common.names import check_model_name, model_key
from musicemb_core.common.paths import data_home

#: Segment windows: at most 10 min; hops at least 50 ms (a 4 h file then gives at most 288,000 segments).
MAX_WINDOW_S, MIN_WINDOW_S, MIN_HOP_S = 600.0, 0.1, 0.05
MAX_K = 10_000


class UsageParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line: ``musicemb train: error: argument --epochs: ...``."""

    def error(self, message: str):
        message = " ".join(str(message).split())
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


class UsageError(MusicEmbError):
    """Arguments that argparse cannot check together (``hum`` with neither files nor ``--record``): reported as a
    usage error, exit status 2."""


def usage_error(command: str, error: UsageError) -> NoReturn:
    """Say ``error`` as ``command``'s parser says its own errors, and exit with status 2."""
    UsageParser(prog=f"musicemb {command}").error(str(error))


class IntermixedParser(UsageParser):
    """A subcommand's parser: options may stand anywhere among the positionals (``musicemb hum LIB --json a.wav
    b.wav``), as :meth:`argparse.ArgumentParser.parse_intermixed_args` parses them; errors stay one line.

    The subparsers action calls ``parse_known_args`` of the subcommand's parser, so that is where intermixed parsing
    is switched on (``parse_known_intermixed_args`` calls ``parse_known_args`` itself: the flag stops the recursion).
    An argument it does not know is its error, naming its own help (``musicemb hum: error: unrecognized arguments:
    --bogus (see `musicemb hum --help`)``), not the top-level parser's.

    ``--`` ends the options: every word after it is a positional (``musicemb identify LIB -- -a.wav``). The
    options pass (the first of ``parse_known_intermixed_args``) sees only the words before it; the words after it
    join the positionals that pass leaves, behind a ``--``, for the positionals pass.
    """

    _intermixing = False
    _after_marker: list[str] = []  # the words after ``--``, until the options pass hands them on

    def parse_known_args(self, args=None, namespace=None):
        if self._intermixing:
            return self._parse_pass(args, namespace)
        words = list(sys.argv[1:] if args is None else args)
        marker = words.index("--") if "--" in words else len(words)
        self._intermixing, self._after_marker = True, words[marker + 1:]
        try:
            namespace, extras = self.parse_known_intermixed_args(words[:marker], namespace)
        finally:
            self._intermixing, self._after_marker = False, []
        if "--" in extras:
            extras.remove("--")  # the end-of-options marker, not an argument
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace, extras

    def _parse_pass(self, args, namespace):
        """One pass of intermixed parsing; the options pass hands the words after ``--`` on to the next."""
        namespace, rest = super().parse_known_args(args, namespace)
        if self._after_marker:
            rest = [*rest, "--", *self._after_marker]
        self._after_marker = []
        return namespace, rest


def take_debug(argv: list[str]) -> tuple[bool, list[str]]:
    """Whether ``--debug`` stands among the options of ``argv`` (anywhere before a ``--``), and ``argv`` without it:
    after ``--`` it is a file name."""
    end = argv.index("--") if "--" in argv else len(argv)
    return "--debug" in argv[:end], [w for w in argv[:end] if w != "--debug"] + argv[end:]


def _number(text: str, kind: type) -> float | int:
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{'an integer' if kind is int else 'a number'} is needed, "
                                         f"got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"a finite number is needed, got {text!r}")
    return value


def integer(lo: int, hi: int | None = None, *, unit: str = "") -> Callable[[str], int]:
    """``type=`` for an integer in ``[lo, hi]``."""

    def check(text: str) -> int:
        value = _number(text, int)
        if value < lo or (hi is not None and value > hi):
            span = f"at least {lo}" if hi is None else f"from {lo} to {hi}"
            raise argparse.ArgumentTypeError(f"must be {span}{unit}, got {text}")
        return value

    check.__name__ = "integer"
    return check


def cluster_counts(text: str) -> range:
    """``type=`` for k-means' k: ``K`` (that k) or ``A-B`` (the one of A..B with the best silhouette), 2 to 200."""
    lo, sep, hi = text.strip().partition("-")
    try:
        ks = range(int(lo), int(hi if sep else lo) + 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of clusters K or a range A-B (e.g. 8 or 2-20), got {text}") from None
    if not ks or ks.start < 2 or ks.stop - 1 > 200:
        raise argparse.ArgumentTypeError(f"must be from 2 to 200 clusters, the range's start first, got {text}")
    return ks


def number(lo: float, hi: float | None = None, *, lo_open: bool = False, unit: str = "") -> Callable[[str], float]:
    """``type=`` for a finite float in ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``)."""

    def check(text: str) -> float:
        value = _number(text, float)
        low_bad = value <= lo if lo_open else value < lo
        if low_bad or (hi is not None and value > hi):
            low = f"> {lo:g}" if lo_open else f">= {lo:g}"
            span = low if hi is None else f"{low} and <= {hi:g}"
            raise argparse.ArgumentTypeError(f"must be {span}{unit}, got {text}")
        return value

    check.__name__ = "number"
    return check


window_s = number(MIN_WINDOW_S, MAX_WINDOW_S, unit=" s")
hop_s = number(MIN_HOP_S, MAX_WINDOW_S, unit=" s")
k_neighbours = integer(1, MAX_K)
positive = integer(1)
count = integer(0)
record_s = number(0.5, MAX_HUM_S, unit=" s")


def path(text: str) -> str:
    """``type=`` for a file or folder: an empty one (``""``, which would mean the current folder) is refused."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path; give a file or folder (. for the current folder)")
    return text


def model_name(text: str) -> str:
    """``type=`` for a name to store a model under (``--name``): a name, never a path."""
    try:
        return check_model_name(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def model_ref(text: str) -> str:
    """``type=`` for ``--model``/``--from``: a model name, or the path of a model folder (used read-only)."""
    try:
        model_key(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


_DEVICE = re.compile(r"(auto|cpu|mps|cuda(:\d+)?)")


def device(text: str) -> str:
    """``type=`` for ``--device`` of torch: auto, cpu, mps, cuda or cuda:N."""
    if not _DEVICE.fullmatch(text):
        raise argparse.ArgumentTypeError(f"must be auto, cpu, cuda, cuda:N or mps, got {text!r}")
    return text


def bpm_range(text: str) -> tuple[float, float]:
    """``type=`` for ``--bpm LO-HI`` (e.g. ``120-130``; 20 to 400 BPM)."""
    parts = str(text).replace(" ", "").split("-")
    try:
        lo, hi = (float(p) for p in parts) if len(parts) == 2 else (None, None)
    except ValueError:
        lo = hi = None
    if lo is None or not (math.isfinite(lo) and math.isfinite(hi)):
        raise argparse.ArgumentTypeError(f"must be LO-HI in BPM like 120-130, got {text!r}")
    if not 20 <= lo <= hi <= 400:
        raise argparse.ArgumentTypeError(f"must be LO-HI with 20 <= LO <= HI <= 400 BPM, got {text}")
    return lo, hi


def musical_key(text: str) -> tuple[int, str]:
    """``type=`` for a key: a name ("A minor", "F#m"), a Camelot code ("8A") or an Open Key code ("1m")."""
    from musicemb_core.features.camelot import parse_key

    try:
        return parse_key(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


percent = number(0, 100, lo_open=True, unit=" %")


# -- top-level error reporting ---------------------------------------------------------------------------------

LOG_NAME = "musicemb.log"
LOG_MAX_BYTES = 1_000_000


def log_file() -> Path:
    """Where tracebacks of unexpected errors go: ``$MUSICEMB_HOME/logs/musicemb.log`` (or the XDG data folder)."""
    return data_home() / "logs" / LOG_NAME


def write_log(exc: BaseException, argv: list[str]) -> Path | None:
    """Append the traceback of ``exc`` (with the command line and time) to the log; the log's path, or None when
    no log could be written anywhere (the user's data folder, then the temp folder)."""
    text = (f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} pid {os.getpid()} musicemb {' '.join(argv)}\n"
            + "".join(traceback.format_exception(exc)))
    for path in (log_file(), Path(tempfile.gettempdir()) / f"musicemb-{os.getuid() if hasattr(os, 'getuid') else 0}"
                 / LOG_NAME):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists() and path.stat().st_size > LOG_MAX_BYTES:
                os.replace(path, path.with_name(LOG_NAME + ".1"))
            with open(path, "a", encoding="utf-8", errors="backslashreplace") as f:  # file names of any bytes
                f.write(text)
            return path
        except OSError:
            continue
    return None


def one_line(text: object, limit: int = 400) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[:limit - 3] + "..."


def error_line(exc: BaseException) -> str:
    """The line saying a :class:`MusicEmbError` (a file name holding a newline does not split it)."""
    return f"musicemb: error: {one_line(exc, 1000)}"


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def shown(text: str) -> str:
    """``text`` with control characters escaped (``\\n``): a file name holding a newline stays on its line."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def describe(exc: BaseException, *, lib: str | None = None) -> str:
    """One line saying what went wrong, for an exception that is not a :class:`MusicEmbError`."""
    if isinstance(exc, OSError):
        where = exc.filename or lib
        if exc.errno == errno.ENOSPC:
            return f"disk full writing {where}" if where else "disk full"
        if exc.errno == errno.EROFS:
            return f"read-only file system: cannot write {where}" if where else "read-only file system"
        reason = exc.strerror or one_line(exc)
        return f"{where}: {reason}" if where else reason
    if isinstance(exc, sqlite3.Error):
        text = one_line(exc, 200)
        if "full" in text:
            return f"disk full writing the catalogue of {lib or 'the library'}"
        return f"{lib}: catalogue error: {text}" if lib else f"catalogue error: {text}"
    if isinstance(exc, MemoryError):
        return "out of memory" + (f" working on {lib}" if lib else "")
    return f"unexpected {type(exc).__name__}: {one_line(exc, 200) or '(no message)'}"


def report(exc: BaseException, argv: list[str], *, lib: str | None = None, debug: bool = False) -> int:
    """Print one line for ``exc`` on stderr (a traceback too with ``debug``) and return the exit status:
    1 for errors, 130 for an interrupt (or a job's cancel, which a Ctrl-C set, that reached here). Unexpected errors'
    tracebacks are logged, and the log named."""
    if isinstance(exc, (KeyboardInterrupt, Cancelled)):
        print("musicemb: interrupted; work finished so far is kept", file=sys.stderr)
        return 130
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    if isinstance(exc, MusicEmbError):
        print(error_line(exc), file=sys.stderr)
        return 1
    log = None if debug else write_log(exc, argv)
    where = f" (details in {log})" if log else "" if debug else " (no log could be written)"
    print(f"musicemb: error: {describe(exc, lib=lib)}{where}", file=sys.stderr)
    return 1


class OutputError(MusicEmbError):
    """Standard output cannot be written: its reader went away (``pipe``: ``musicemb tracks LIB | head``) or its
    file cannot grow (a full disk under a redirect)."""

    def __init__(self, error: OSError):
        self.pipe = isinstance(error, BrokenPipeError)
        super().__init__(f"cannot write the output ({error.strerror or error})")


class GuardedOutput:
    """Standard output while a command runs: a failed write is an :class:`OutputError`, told apart from the
    library's own I/O errors (which name the library)."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> int:
        try:
            return self.stream.write(text)
        except OSError as e:
            raise OutputError(e) from e

    def flush(self) -> None:
        try:
            self.stream.flush()
        except OSError as e:
            raise OutputError(e) from e

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


class Diagnostics:
    """Standard error while a command runs: progress, warnings and error lines are best effort. One that cannot be
    written (a full disk under ``2>file``, a reader gone) is dropped rather than failing the command and losing
    its results on standard output."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> int:
        try:
            return self.stream.write(text)
        except (OSError, ValueError):
            return len(text)

    def flush(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.stream.flush()

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


#: The encoding error handler of standard output (:func:`_escape_unencodable`).
OUTPUT_ERRORS = "musicemb-output"


def _escape_unencodable(exc: UnicodeError) -> tuple[str | bytes, int]:
    """A character standard output cannot encode: a file name's byte that is not UTF-8 (a surrogate) as that byte,
    as ``surrogateescape`` does; another (``ü`` on an ASCII or Latin-1 terminal, a Windows console) as its escape
    (``\\xfc``), instead of an error that loses every answer."""
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    char = exc.object[exc.start]
    if "\udc80" <= char <= "\udcff":
        return bytes([ord(char) - 0xDC00]), exc.start + 1
    return char.encode("ascii", "backslashreplace").decode("ascii"), exc.start + 1


codecs.register_error(OUTPUT_ERRORS, _escape_unencodable)


def open_closed_streams() -> None:
    """Point a standard output or error that the command was started without (``>&-``, ``2>&-``) at the null
    device: what goes there is dropped, instead of error lines landing on standard output (``print`` to a missing
    stderr writes to stdout) and progress bars failing; a descriptor left closed would also be taken by the next
    file opened, and C code's prints would land in it."""
    for fd, name in ((1, "stdout"), (2, "stderr")):
        if getattr(sys, name) is not None:
            continue
        stream = open(os.devnull, "w")  # noqa: SIM115 (open until exit)
        try:
            os.fstat(fd)
        except OSError:
            os.dup2(stream.fileno(), fd)
        setattr(sys, name, stream)


def drop_output(stream) -> None:
    """Point ``stream``'s file at the null device, so that what is left in its buffer goes nowhere quietly."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
