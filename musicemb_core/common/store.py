"""Crash-safe files: artefacts published as *generations* behind a pointer file, and a one-writer lock.

An :class:`Artefact` is a folder. Each publish writes a fresh generation folder (``g-<time>-<pid>-<rand>``)
beside the others, then makes it current with one ``os.replace`` of the small pointer file ``CURRENT`` (JSON:
the generation's name and each file's size, shape and checksum). A crash at any moment leaves the old
generation or the new one current, never none and never a mix; what a crash leaves behind (a generation never
made current, a temporary pointer) is removed by the next publish. Readers resolve the pointer and never lock.

:func:`writer_lock` is an exclusive ``flock`` on a lock file that also names its holder (pid, command, start
time, host): the kernel drops it when the holder dies, so a lock can never go stale.

:func:`kill_point` is a test hook: ``MUSICEMB_TEST_KILL_AT="publish:2"`` SIGKILLs the process at its 2nd
``publish`` step (steps: files written; pointer written beside; pointer swapped in).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import TypeVar

from musicemb_core.common.errors import LibraryError

POINTER = "CURRENT"
GEN_PREFIX = "g-"
T = TypeVar("T")

_kill_counts: Counter[str] = Counter()


def kill_point(step: str) -> None:
    """Test hook: SIGKILL this process at the N-th ``step`` when ``$MUSICEMB_TEST_KILL_AT`` is ``step:N``."""
    spec = os.environ.get("MUSICEMB_TEST_KILL_AT")
    if not spec:
        return
    name, _, n = spec.partition(":")
    if name != step:
        return
    _kill_counts[step] += 1
    if _kill_counts[step] == int(n or 1):
        os.kill(os.getpid(), signal.SIGKILL)


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _checksum(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
    return h.hexdigest()


def _npy_shape(path: Path) -> list[int] | None:
    import numpy as np

    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, _ = read(f)
        return list(shape)
    except Exception:  # not an .npy file we can read the header of: no shape recorded
        return None


def file_record(path: Path) -> dict:
    """Size, checksum (BLAKE2b-128) and, for ``.npy``, shape of one published file."""
    rec = {"size": path.stat().st_size, "blake2b": _checksum(path)}
    if path.suffix == ".npy":
        rec["shape"] = _npy_shape(path)
    return rec


def is_generation(name: str) -> bool:
    return name.startswith(GEN_PREFIX)


def _file_records(files) -> bool:
    """Whether a pointer's ``files`` have the form :meth:`Artefact.publish` writes (name -> :func:`file_record`)."""
    return isinstance(files, dict) and all(isinstance(rec, dict) and isinstance(rec.get("size"), int)
                                           and isinstance(rec.get("blake2b"), str) for rec in files.values())


def new_generation_name() -> str:
    return f"{GEN_PREFIX}{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Artefact:
    """One derived artefact kept as generations in ``folder`` behind the pointer ``folder/CURRENT``.

    ``legacy``: folders of older layouts, tried in order when there is no pointer (a folder counts when it holds
    ``legacy_marker``); ``legacy_junk``: paths of older layouts removed once a generation is published.
    ``what`` names the artefact in messages; ``rebuild`` tells the user how to make it again.
    """

    def __init__(self, folder: Path, *, what: str = "", rebuild: str = "", legacy: tuple[Path, ...] = (),
                 legacy_marker: str = "", legacy_junk: tuple[Path, ...] = ()):
        self.folder = Path(folder)
        self.what = what or self.folder.name
        self.rebuild = rebuild
        self.legacy, self.legacy_marker, self.legacy_junk = legacy, legacy_marker, legacy_junk

    # -- reading ---------------------------------------------------------------------------------------------
    def pointer(self) -> dict | None:
        """The pointer's content, or None when there is none."""
        path = self.folder / POINTER
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        except NotADirectoryError:
            return None
        except OSError as e:
            raise LibraryError(f"{path}: cannot read: {e.strerror or e}") from e
        try:
            ptr = json.loads(text)
            if not isinstance(ptr, dict) or not is_generation(str(ptr.get("generation", ""))):
                raise ValueError("no generation named")
            if not _file_records(ptr.get("files", {})):
                raise ValueError("no file records")
        except ValueError as e:
            raise LibraryError(f"{path}: damaged pointer ({e}){self._hint()}") from e
        return ptr

    def current(self) -> Path | None:
        """The current generation's folder (or an older layout's folder), None when nothing was published."""
        ptr = self.pointer()
        if ptr is not None:
            return self.folder / ptr["generation"]
        for folder in self.legacy:
            if (folder / self.legacy_marker).exists():
                return folder
        return None

    def exists(self) -> bool:
        return self.current() is not None

    def _hint(self) -> str:
        return f"; rebuild it with {self.rebuild}" if self.rebuild else ""

    def verify(self, *, deep: bool | Collection[str] = False) -> Path | None:
        """The current generation after checking every recorded file's size, and the checksum of every file
        (``deep`` True) or of the files ``deep`` names (those read whole: a file overwritten in place keeps its
        size); raises :class:`LibraryError` naming the first damaged file."""
        ptr = self.pointer()
        if ptr is None:
            return self.current()
        gen = self.folder / ptr["generation"]
        for name, rec in ptr.get("files", {}).items():
            path = gen / name
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                raise LibraryError(f"{path}: missing from the {self.what}{self._hint()}") from None
            if size != rec["size"]:
                raise LibraryError(f"{path}: damaged ({size} bytes, {rec['size']} expected){self._hint()}")
            if (deep is True or name in (deep or ())) and _checksum(path) != rec["blake2b"]:
                raise LibraryError(f"{path}: damaged (checksum differs){self._hint()}")
        return gen

    def read(self, fn: Callable[[Path], T], *, verify: bool = True,
             deep: bool | Collection[str] = False) -> T | None:
        """``fn(current generation)`` after :meth:`verify` (unless ``verify`` is False; ``deep`` as there);
        retried when a writer removed the generation between resolving the pointer and opening its files. None
        when nothing was published."""
        for attempt in range(3):
            named = self._named()
            try:
                gen = self.verify(deep=deep) if verify else self.current()
            except LibraryError:  # a publish between reading the pointer and checking its files: read again
                if attempt < 2 and self._named() != named:
                    continue
                raise
            if gen is None:
                return None
            try:
                return fn(gen)
            except FileNotFoundError as e:
                if attempt == 2:
                    raise LibraryError(f"{e.filename}: missing from the {self.what}{self._hint()}") from e
        return None

    def _named(self) -> str | None:
        """The generation the pointer names now (None: none, or a damaged pointer)."""
        try:
            ptr = self.pointer()
        except LibraryError:
            return None
        return ptr["generation"] if ptr else None

    # -- writing (under the library's writer lock) -------------------------------------------------------------
    def sweep(self) -> None:
        """Remove what a killed writer left (generations never made current or no longer current, temporary
        pointers). Only for the holder of the writer lock."""
        try:
            ptr = self.pointer()
        except LibraryError:
            return  # a damaged pointer: left for the next publish, which replaces it
        self._remove_junk({ptr["generation"]} if ptr else set())

    def _remove_junk(self, keep: set[str]) -> None:
        """Generations other than ``keep`` and temporary pointers left by a crash."""
        if not self.folder.is_dir():
            return
        for p in self.folder.iterdir():
            if (is_generation(p.name) and p.name not in keep) or (p.name.startswith(f".{POINTER}.")):
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        p.unlink()

    @contextlib.contextmanager
    def publish(self) -> Iterator[Path]:
        """Yield a fresh, empty generation folder; when the block ends without error, make it current in one
        atomic step and remove the older generations (an error removes the new one instead)."""
        try:
            ptr = self.pointer()
        except LibraryError:  # a damaged pointer: what it named is replaced
            ptr = None
        self.folder.mkdir(parents=True, exist_ok=True)
        self._remove_junk({ptr["generation"]} if ptr else set())
        name = new_generation_name()
        gen = self.folder / name
        gen.mkdir()
        try:
            yield gen
            kill_point("publish")  # files written, not current
            files = {}
            for p in sorted(gen.rglob("*")):
                if p.is_file():
                    with open(p, "rb+") as f:
                        os.fsync(f.fileno())
                    files[str(p.relative_to(gen))] = file_record(p)
            fsync_dir(gen)
            tmp = self.folder / f".{POINTER}.{os.getpid()}.{uuid.uuid4().hex[:6]}.tmp"
            with open(tmp, "w") as f:
                json.dump({"generation": name, "created": time.time(), "files": files}, f)
                f.flush()
                os.fsync(f.fileno())
            kill_point("publish")  # new pointer beside the old one
            os.replace(tmp, self.folder / POINTER)
            fsync_dir(self.folder)
        except BaseException:
            shutil.rmtree(gen, ignore_errors=True)
            raise
        kill_point("publish")  # current, older generations not yet removed
        self._remove_junk({name})
        for p in self.legacy_junk:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            elif p.exists() or p.is_symlink():
                with contextlib.suppress(OSError):
                    p.unlink()

    def remove(self) -> None:
        """Remove the artefact entirely (pointer first: readers then see nothing, not a half-removed one)."""
        with contextlib.suppress(FileNotFoundError):
            (self.folder / POINTER).unlink()
        shutil.rmtree(self.folder, ignore_errors=True)


# -- the writer lock ---------------------------------------------------------------------------------------------
LOCK_WAIT_S = 3.0
_held = threading.local()  # per thread: {lock path: (fd, depth)}


def command_line(command: str) -> str:
    """How a holder is named: ``musicemb embed`` from the CLI, ``<program> (embed)`` from anything else."""
    prog = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    if prog in ("musicemb", "cli.py", "__main__.py", "-m", "-c") or prog.startswith("musicemb.") or not prog:
        return f"musicemb {command}"
    return f"{prog} ({command})"


def read_holder(path: Path) -> dict:
    """What the lock file says about its holder ({} when empty or unreadable)."""
    try:
        info = json.loads(path.read_text() or "{}")
        return info if isinstance(info, dict) else {}
    except (OSError, ValueError):
        return {}


def busy_message(info: dict) -> str:
    if not info.get("pid"):
        return "library busy: another musicemb process is writing to it"
    since = time.strftime("%H:%M:%S", time.localtime(float(info.get("started", 0))))
    host = f" on {info['host']}" if info.get("host") and info["host"] != socket.gethostname() else ""
    return f"library busy: `{info.get('command', 'musicemb')}` (pid {info['pid']}{host}) since {since}"


@contextlib.contextmanager
def writer_lock(path: Path, command: str, *, wait_s: float | None = None,
                on_acquire: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold the exclusive lock ``path`` (re-entrant within a thread). Waits up to ``wait_s`` (default
    ``$MUSICEMB_LOCK_WAIT`` or 3 s) for another holder, then raises :class:`LibraryError` naming it.
    ``on_acquire()`` runs when the lock is taken (not when re-entered), e.g. to clean up after a crash."""
    path = Path(path)
    held = getattr(_held, "locks", None)
    if held is None:
        held = _held.locks = {}
    key = str(path)
    entered = key in held
    if entered:
        fd, depth = held[key]
        held[key] = (fd, depth + 1)
    else:
        held[key] = (_take_lock(path, command, wait_s), 1)
    try:
        if not entered and on_acquire is not None:
            on_acquire()
        yield
    finally:  # the lock goes with the last holder to leave (two jobs stepped in turn may end in either order)
        fd, depth = held[key]
        if depth > 1:
            held[key] = (fd, depth - 1)
        else:
            del held[key]
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)  # releases the flock


def _take_lock(path: Path, command: str, wait_s: float | None) -> int:
    """The open lock file ``path``, flocked and naming this process as its holder."""
    import fcntl

    if wait_s is None:
        wait_s = float(os.environ.get("MUSICEMB_LOCK_WAIT", LOCK_WAIT_S))
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise LibraryError(f"{path.parent}: cannot write to this library ({e.strerror or e})") from e
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = read_holder(path)
                    if not holder.get("pid") and time.monotonic() < deadline + 1.0:
                        time.sleep(0.05)  # the holder is writing its name, or is just letting go
                        continue
                    raise LibraryError(busy_message(holder)) from None
                time.sleep(0.1)
        info = {"pid": os.getpid(), "command": command_line(command), "argv": sys.argv, "started": time.time(),
                "host": socket.gethostname()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def try_writer_lock(path: Path, command: str) -> Iterator[bool]:
    """Like :func:`writer_lock` without waiting: yields whether the lock is held (False: busy or read-only)."""
    try:
        cm = writer_lock(path, command, wait_s=0.0)
        cm.__enter__()
    except LibraryError:
        yield False
        return
    try:
        yield True
    except BaseException:
        if not cm.__exit__(*sys.exc_info()):
            raise
    else:
        cm.__exit__(None, None, None)
