"""Where a library keeps its derived files, and the rules for writing them. The one owner of the folder's layout.

::

    LIB/library.sqlite                       the catalogue (see :mod:`musicemb_core.data.library`)
    LIB/library.lock                         the writer lock: held by the one process writing, names it
    LIB/models/<name>/                       trained models (weights + config)
    LIB/embeddings/<model>/CURRENT           pointer to the current generation of <model>'s vectors
    LIB/embeddings/<model>/g-.../            vectors.npy (n, dim) float32, ids.npy (n,) int64, meta.json
    LIB/index/knn/<model>/g-.../             index.faiss + index.faiss.json (+ .ivfdata when on disk)
    LIB/index/qbh/<model>/g-.../             query-by-humming index: vectors.faiss(.json), melody.npz, meta.json
    LIB/fingerprints/g-.../                  landmark hashes: hashes.npy, tracks.npy, times.npy, meta.json
    LIB/maps/<model>-<method>/g-.../         map.npy (n, 3): segment id, x, y
    LIB/cache/segments.npz                   the segment columns as last read (a cache; see Library.segments)

Every derived artefact is an :class:`~musicemb_core.common.store.Artefact`: written as a new generation, made
current by replacing its ``CURRENT`` pointer (one atomic step), checked against the sizes the pointer records
when read. Older layouts (files directly in ``embeddings/<model>/``, ``<model>.old`` left by a crash,
``index/<model>.faiss``, ``index/qbh-<model>/``) are still read, and replaced by the new layout the next time that
artefact is written; maps of the old layout (``maps/<model>-<method>.npy``) do not record the embeddings they were
drawn from, so they are drawn again.

Writers hold :func:`write_lock` (decorate a job generator with :func:`writes_library`); readers never lock.
"""

from __future__ import annotations

import errno
import functools
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from musicemb_core.common.errors import LibraryError
from musicemb_core.common.names import RESERVED_SUFFIXES
from musicemb_core.common.paths import CATALOGUE
from musicemb_core.common.store import Artefact, try_writer_lock, writer_lock

LOCK_NAME = "library.lock"


def root_of(lib) -> Path:
    """The library folder of a :class:`~musicemb_core.data.library.Library` or a path."""
    return Path(lib) if isinstance(lib, str | os.PathLike) else Path(lib.root)


def _listed(name: str) -> bool:
    """Whether a folder entry can name an artefact (temporary and leftover entries never do)."""
    return bool(name) and not name.startswith(".") and not name.endswith(RESERVED_SUFFIXES)


# -- artefacts -------------------------------------------------------------------------------------------------
def embeddings(lib, model: str) -> Artefact:
    """``embeddings/<model>``: vectors.npy, ids.npy, meta.json."""
    base = root_of(lib) / "embeddings"
    folder = base / model
    return Artefact(folder, what=f"embeddings of model {model!r}", rebuild="`musicemb embed`",
                    legacy=(folder, base / f"{model}.old"), legacy_marker="ids.npy",
                    legacy_junk=(folder / "vectors.npy", folder / "ids.npy", folder / "meta.json",
                                 base / f"{model}.old", base / f"{model}.tmp"))


def knn_index(lib, model: str) -> Artefact:
    """``index/knn/<model>``: index.faiss + index.faiss.json (+ its .ivfdata when built on disk)."""
    base = root_of(lib) / "index"
    legacy = legacy_index_file(lib, model)
    junk = (legacy, legacy.with_name(legacy.name + ".json"), base / f".{legacy.name}.build",
            *base.glob(f"{legacy.name}.*.ivfdata"), *base.glob(f".{legacy.name}.*.tmp*"),
            *base.glob(f".{legacy.name}.json.*.tmp*"))
    return Artefact(base / "knn" / model, what=f"index of model {model!r}", rebuild="`musicemb index`",
                    legacy_junk=junk)


INDEX_FILE = "index.faiss"


def legacy_index_file(lib, model: str) -> Path:
    """Where indexes were kept before generations (``index/<model>.faiss``); read while no generation exists."""
    return root_of(lib) / "index" / f"{model}.faiss"


def qbh_index(lib, model: str) -> Artefact:
    """``index/qbh/<model>``: vectors.faiss(.json), melody.npz, meta.json."""
    base = root_of(lib) / "index"
    old = base / f"qbh-{model}"
    return Artefact(base / "qbh" / model, what=f"query-by-humming index of {model!r}",
                    rebuild="`musicemb hum` (it rebuilds it)", legacy=(old,), legacy_marker="meta.json",
                    legacy_junk=(old, base / f"qbh-{model}.old", base / f"qbh-{model}.tmp"))


def landmarks(lib) -> Artefact:
    """``fingerprints``: hashes.npy, tracks.npy, times.npy, meta.json."""
    root = root_of(lib)
    folder = root / "fingerprints"
    return Artefact(folder, what="landmark fingerprints", rebuild="`musicemb index`", legacy=(folder,),
                    legacy_marker="meta.json",
                    legacy_junk=(*(folder / f"{n}.npy" for n in ("hashes", "tracks", "times")),
                                 folder / "meta.json", root / "fingerprints.old", root / "fingerprints.tmp"))


MAP_FILE = "map.npy"


def map_artefact(lib, model: str, method: str) -> Artefact:
    """``maps/<model>-<method>``: map.npy (n, 3) rows of segment id, x, y."""
    base = root_of(lib) / "maps"
    name = f"{model}-{method}"
    return Artefact(base / name, what=f"{method} map of {model!r}", rebuild="`musicemb map`",
                    legacy_junk=(base / f"{name}.npy", *base.glob(f".{name}.npy.*")))


# -- reading ---------------------------------------------------------------------------------------------------
def read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as e:
        raise LibraryError(f"{path}: damaged ({e})") from e
    if not isinstance(data, dict):
        raise LibraryError(f"{path}: damaged (not a JSON object)")
    return data


def stored_digest(meta: dict) -> str:
    """The digest of the model weights that made stored embeddings (``weights_digest``; older libraries wrote it
    as ``fingerprint``)."""
    return str(meta.get("weights_digest", meta.get("fingerprint", "")))


def read_embeddings_meta(lib, model: str) -> dict | None:
    """The ``meta.json`` of ``model``'s current embeddings (model, weights_digest, dim, source), None if none."""
    art = embeddings(lib, model)
    return art.read(lambda gen: read_json(gen / "meta.json") if (gen / "meta.json").exists() else {},
                    verify=False)  # damaged vectors are told by load_embeddings, not here


def read_embedding_arrays(lib, model: str, *names: str) -> tuple[np.ndarray, ...] | None:
    """Arrays ``<name>.npy`` stored beside ``model``'s current embeddings (one generation), None when any is
    missing or unreadable."""

    def read(gen: Path):
        try:
            return tuple(np.load(gen / f"{n}.npy") for n in names)
        except (OSError, ValueError, EOFError):
            return None

    return embeddings(lib, model).read(read)


def load_npy(path: Path, *, mmap: bool = False) -> np.ndarray:
    """``np.load`` with a damaged file reported in one line naming it."""
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError) as e:
        raise LibraryError(f"{path}: damaged ({e}); rebuild it") from e


def embedding_source_key(lib, model: str) -> str:
    """What the index of ``model`` was built from: the embeddings' fingerprint and generation (or, in the old
    layout, the ids file's mtime). An index with another key is stale."""
    art = embeddings(lib, model)
    art.verify()  # damaged vectors are told here (one line naming the file), before an index built from them
    meta = read_embeddings_meta(lib, model) or {}
    ptr = art.pointer()
    if ptr is not None:
        return f"{stored_digest(meta)}:{ptr['generation']}"
    gen = art.current()
    ids = gen / "ids.npy" if gen is not None else None
    return f"{stored_digest(meta)}:{ids.stat().st_mtime_ns if ids is not None and ids.exists() else 0}"


def embedding_models(lib) -> list[str]:
    """Models with stored embeddings (leftovers of crashes and temporary folders are never listed)."""
    base = root_of(lib) / "embeddings"
    if not base.is_dir():
        return []
    names = {p.name.removesuffix(".old") for p in base.iterdir() if p.is_dir() and
             (_listed(p.name) or p.name.endswith(".old"))}
    return sorted(n for n in names if _listed(n) and _published(embeddings(lib, n)))


def _published(art: Artefact) -> bool:
    """Whether ``art`` has a generation published; a damaged pointer counts (listed, the reader says it is damaged:
    `info` failed on it instead of reporting it)."""
    try:
        return art.exists()
    except LibraryError:
        return True


def embedding_count(lib, model: str) -> int:
    """How many vectors ``model`` has stored (read from the ids file's header: nothing is loaded)."""
    def count(gen: Path) -> int:
        return int(load_npy(gen / "ids.npy", mmap=True).shape[0])

    return embeddings(lib, model).read(count) or 0


def map_names(lib) -> list[str]:
    """``<model>-<method>`` of every stored map."""
    base = root_of(lib) / "maps"
    if not base.is_dir():
        return []
    names = set()
    for p in base.iterdir():
        if p.is_dir() and _listed(p.name) and _published(Artefact(p)):
            names.add(p.name)
        elif p.is_file() and _listed(p.name) and p.suffix == ".npy":
            names.add(p.stem)
    return sorted(names)


# -- writing ---------------------------------------------------------------------------------------------------
def writable(lib) -> bool:
    """Whether this process may write to the library folder and its catalogue (not: a read-only mount, chmod a-w)."""
    root = root_of(lib)
    return os.access(root, os.W_OK) and (not (root / CATALOGUE).exists() or os.access(root / CATALOGUE, os.W_OK))


def not_writable(root: Path) -> str:
    """Why the library cannot be written, as the OS says it: a read-only file system, else no permission."""
    try:
        read_only_fs = bool(os.statvfs(root).f_flag & os.ST_RDONLY)
    except OSError:
        read_only_fs = False
    return os.strerror(errno.EROFS if read_only_fs else errno.EACCES)


def write_lock(lib, command: str, *, wait_s: float | None = None):
    """Context manager: hold the library's writer lock as ``command`` (e.g. ``"embed"``). A second writer waits
    up to ``wait_s`` (default ``$MUSICEMB_LOCK_WAIT`` or 3 s), then gets :class:`LibraryError`
    ``library busy: `musicemb embed` (pid N) since 12:03:04``. Re-entrant within a thread."""
    root = root_of(lib)
    if not root.is_dir():
        raise LibraryError(f"{root}: not a musicemb library folder")
    if not writable(root):  # the lock file itself may still be writable (chmod a-w on the folder only)
        raise LibraryError(f"{root}: cannot write to this library ({not_writable(root)})")
    return writer_lock(root / LOCK_NAME, command, wait_s=wait_s, on_acquire=lambda: sweep(root))


def artefacts(lib) -> list[Artefact]:
    """Every derived artefact folder of the library (those with generations)."""
    root = root_of(lib)
    out = [landmarks(root)]
    for parent in (root / "embeddings", root / "index" / "knn", root / "index" / "qbh", root / "maps"):
        if parent.is_dir():
            out += [Artefact(p) for p in sorted(parent.iterdir()) if p.is_dir() and _listed(p.name)]
    return out


def sweep(lib) -> None:
    """Recovery when a writer takes the lock: remove the generations and temporary pointers that a killed writer
    left (never listed, but they take space). No reader needs them: none is current."""
    for art in artefacts(lib):
        art.sweep()


def try_write_lock(lib, command: str):
    """Context manager yielding True when the writer lock could be taken at once (False: busy or read-only)."""
    return try_writer_lock(root_of(lib) / LOCK_NAME, command)


def writes_library(command: str) -> Callable:
    """Decorator for job generators ``fn(lib, ...)`` that write to ``lib``: the writer lock is taken when the
    job starts (its first ``next``) and released when it ends, fails or is closed."""
    def deco(fn):
        @functools.wraps(fn)
        def job(lib, *args, **kwargs):
            with write_lock(lib, command):
                return (yield from fn(lib, *args, **kwargs))
        return job
    return deco
