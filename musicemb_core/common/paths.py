"""Filesystem helpers: atomic writes, user data folders."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from musicemb_core.common.errors import ConfigError, MusicEmbError


def user_path(path: str | os.PathLike) -> Path:
    """``path`` with a leading ``~`` or ``~user`` expanded; a name such as ``~mix.m3u8`` that names no user's home
    is taken as it is (``Path.expanduser`` raises there)."""
    try:
        return Path(path).expanduser()
    except RuntimeError:
        return Path(path)


def _umask() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: read it by setting it (briefly)
    os.umask(mask)
    return mask


def _file_mode(target: Path) -> int:
    """The permission bits a rewritten ``target`` keeps: its own, or a new file's here (0o666 less the umask)."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        return 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success fsync it and rename it over ``target``. A symlink is
    written through (the file it points to is replaced, the link stays), and the file keeps its permissions (a
    new one gets the usual ones, not the temporary file's owner-only mode)."""
    target = Path(target)
    if target.is_symlink():
        target = target.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp" + target.suffix, dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp_path, _file_mode(target))
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


CATALOGUE = "library.sqlite"
"""A library folder's catalogue: the folder holding one is a library."""
DERIVED = ("models", "embeddings", "index", "fingerprints", "maps", "cache")
"""The folders a library keeps beside its catalogue, made from it (its segment ids): meaningless without it."""


def check_not_in_a_library(target: str | os.PathLike, what: str) -> None:
    """Refuse a file the user named (``what``: "table"...) that is, or links to, a file of a library (its
    catalogue and lock, or anything in its :data:`DERIVED` folders): a table written there would replace it. The
    user's own files in a library's folder (an export written there before) are not the library's."""
    try:
        real = Path(target).resolve(strict=True)
    except (OSError, RuntimeError):  # not there yet (or a link loop, refused when written)
        return
    root = next((p for p in real.parents if (p / CATALOGUE).is_file()), None)
    inside = None if root is None else real.relative_to(root).parts
    if inside and real.is_file() and (inside[0] in DERIVED or len(inside) == 1 and inside[0].startswith("library.")):
        which = "catalogue" if real == root / CATALOGUE else f"file {real.relative_to(root)}"
        via = f" (it links to {real})" if real != Path(target).absolute() else ""
        raise ConfigError(f"{target}: is the library {root}'s {which}{via}; write the {what} elsewhere")


def check_output_folder(target: str | os.PathLike, what: str) -> None:
    """Refuse, before the work that fills it, a file the user named (``what``: "table"...) whose nearest existing
    folder above is a file or not writable (missing folders are made when it is written), or that is a library's
    file (:func:`check_not_in_a_library`). Writable is tried by making a file there: permission bits do not stop
    root, a read-only file system does."""
    check_not_in_a_library(target, what)
    above = next(p for p in Path(target).absolute().parents if p.exists())
    if not above.is_dir():
        raise ConfigError(f"{target}: cannot write the {what} there, {above} is a file, not a folder")
    try:
        tempfile.TemporaryFile(dir=above).close()
    except OSError as e:
        raise ConfigError(f"{target}: cannot write the {what} there, {above} is not writable "
                          f"({e.strerror or e})") from e


@contextlib.contextmanager
def output_path(target: str | os.PathLike, what: str) -> Iterator[Path]:
    """:func:`atomic_path` for a file the user named (``what``: "table", "findings"...): a folder there, a library's
    file, or a place that cannot be written, is a one-line :class:`MusicEmbError` naming ``target``, never the
    temporary file."""
    target = Path(target)
    if target.is_dir():
        raise MusicEmbError(f"{target}: is a folder; give the {what} a file name")
    check_not_in_a_library(target, what)
    try:
        with atomic_path(target) as tmp:
            yield tmp
    except OSError as e:
        raise MusicEmbError(f"{target}: cannot write the {what} ({e.strerror or e})") from e


def atomic_write_bytes(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(target: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(target, text.encode("utf-8"))


def data_home() -> Path:
    """Where musicemb keeps user data (demo library...): ``$MUSICEMB_HOME`` or ``~/.local/share/musicemb``."""
    env = os.environ.get("MUSICEMB_HOME")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "musicemb"


@contextlib.contextmanager
def atomic_folder(target: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty folder beside ``target``; on success swap it in for ``target`` by renames, so readers
    see the old folder or the new one, never a half-written one."""
    import shutil

    target = Path(target)
    tmp, old = target.with_name(target.name + ".tmp"), target.with_name(target.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)
