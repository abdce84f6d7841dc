"""``iter_map``: a 2-D map of a model's embeddings, kept as a generation of ``maps/<model>-<method>`` (``map.npy``, rows: id, x, y;
``meta.json``: the embeddings it was drawn from)."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np

from musicemb_core.analysis.checks import check_count
from musicemb_core.analysis.projection import Projector
from musicemb_core.common.errors import ConfigError, LibraryError
from musicemb_core.common.names import model_key
from musicemb_core.common.pools import die_with_parent
from musicemb_core.common.progress import CancelToken, JobGen, Progress, drive
from musicemb_core.common.tables import write_table
from musicemb_core.data import layout
from musicemb_core.data.library import Library
from musicemb_core.stored_vectors import DEFAULT_MODEL, check_finite, load_embeddings


def map_path(lib: Library, model: str, method: str) -> Path:
    """The current map file of ``model`` by ``method`` (``maps/<model>-<method>/<generation>/map.npy``); a path
    that does not exist when there is no map yet."""
    art = layout.map_artefact(lib, model_key(model), method)
    gen = art.current()
    return (gen or art.folder) / layout.MAP_FILE


def load_map(lib: Library, model: str, method: str) -> np.ndarray | None:
    """Cached map rows (id, x, y), or None when there is none, it is damaged or it was not drawn from the current
    embeddings (re-embedded with retrained weights: the same ids, other vectors; a map that does not record its
    embeddings, as those of the old layout, may be such one); a map is recomputed."""
    key = model_key(model)
    art = layout.map_artefact(lib, key, method)

    def read(gen: Path) -> np.ndarray | None:
        meta = gen / "meta.json"
        if not meta.exists() or layout.read_json(meta).get("source") != layout.embedding_source_key(lib, key):
            return None
        return layout.load_npy(gen / layout.MAP_FILE)

    try:
        rows = art.read(read, deep=True)  # read whole: a map overwritten in place is drawn again too
    except LibraryError:
        return None
    return rows if rows is not None and rows.ndim == 2 and rows.shape[1] == 3 else None


def _publish_map(lib: Library, model: str, method: str, rows: np.ndarray, source: str) -> bool:
    """Keep ``rows``, drawn from the embeddings ``source`` (:func:`layout.embedding_source_key`), as the current
    map, under the writer lock; False (nothing kept) when the library is busy or read-only: a map is a cache,
    computing it must not fail for want of a place to keep it."""
    if not layout.writable(lib):
        return False
    try:
        with layout.write_lock(lib, "map"), layout.map_artefact(lib, model_key(model), method).publish() as gen:
            np.save(gen / layout.MAP_FILE, rows)
            (gen / "meta.json").write_text(json.dumps({"source": source}))
    except LibraryError:
        return False
    return True


def iter_map(lib: Library, *, model: str = DEFAULT_MODEL, method: str = "umap", random_state: int = 0,
             max_fit: int = 100_000, chunk: int = 50_000, isolate: bool = False,
             cancel: CancelToken | None = None) -> JobGen[np.ndarray]:
    """The map of every embedded segment: reused from the cache while the embedded ids are unchanged.

    Above ``max_fit`` segments, UMAP and PCA are fitted on a random sample of ``max_fit`` and the rest is placed
    with ``transform()`` in chunks (t-SNE, which cannot place points, is fitted on all). ``isolate`` computes it
    in a child process (the GUI's choice: UMAP's numba compilation holds the GIL for 0.2-0.4 s at a time, which
    would stall the event loop); cancelling then stops the child."""
    max_fit, chunk = check_count(max_fit, "max_fit", least=3), check_count(chunk, "chunk")
    cancel = cancel or CancelToken()
    source = layout.embedding_source_key(lib, model_key(model))  # before the vectors: a newer embed is drawn again
    emb = load_embeddings(lib, model)
    cached = load_map(lib, model, method)
    if cached is not None and np.array_equal(cached[:, 0].astype(np.int64), emb.ids):
        return cached
    if len(emb.ids) < 3:
        raise ConfigError(f"{lib.root}: a map needs at least 3 embedded segments; {model!r} has {len(emb.ids)} "
                          "(import more audio and embed it)")
    check_finite(lib, model, emb.ids, np.asarray(emb.vectors))
    args = (method, random_state, max_fit, chunk)
    if isolate:
        xy = yield from _in_child(lib.root, model, args, emb.ids, cancel)
    else:
        xy = yield from _project(emb.vectors, *args, cancel=cancel)
    rows = np.column_stack([emb.ids.astype(np.float64), xy.astype(np.float64)])
    if not _publish_map(lib, model, method, rows, source):
        yield Progress("map", 1, 1, "the library is busy or read-only: this map is not kept")
    return rows


def _project(X: np.ndarray, method: str, random_state: int, max_fit: int, chunk: int, *,
             cancel: CancelToken) -> JobGen[np.ndarray]:
    """2-D coordinates (n, 2) of the rows of ``X`` (see :func:`iter_map`)."""
    n = len(X)
    if n <= max_fit or method == "tsne":
        yield Progress("map", 0, 1, f"{method} of {n} segments")
        xy = Projector(method, random_state=random_state).fit(np.asarray(X)).embedding_
        yield Progress("map", 1, 1, "done")
        return xy
    fit_rows = np.sort(np.random.default_rng(random_state).choice(n, max_fit, replace=False))
    rest = np.setdiff1d(np.arange(n), fit_rows)
    steps = 1 + -(-len(rest) // chunk)
    yield Progress("map", 0, steps, f"{method} fitted on {max_fit} of {n} segments")
    proj = Projector(method, random_state=random_state).fit(np.asarray(X[fit_rows]))
    xy = np.empty((n, proj.n_components), np.float32)
    xy[fit_rows] = proj.embedding_
    for i, a in enumerate(range(0, len(rest), chunk), 1):
        cancel.check()
        yield Progress("map", i, steps, f"placing {min(a + chunk, len(rest))} of {len(rest)} with transform()")
        xy[rest[a:a + chunk]] = proj.transform(np.asarray(X[rest[a:a + chunk]]))
    yield Progress("map", steps, steps, "done")
    return xy


def _child_main(outbox, parent: int, pdeathsig: bool, root: str, model: str, args: tuple, ids: np.ndarray) -> None:
    """The map's child process: ends with its parent (``kill -9`` included), leaves Ctrl-C to it (the parent
    stops the child); sends ``outbox`` its progress events, then ``("done", coordinates)`` or ``("error", e)``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        die_with_parent(parent, pdeathsig)
        outbox.send(("done", _project_library(root, model, args, ids, lambda p: outbox.send(("progress", p)))))
    except BaseException as e:  # noqa: BLE001 - raised again in the parent
        try:
            outbox.send(("error", e))
        except Exception:  # noqa: BLE001 - an exception that cannot be pickled
            outbox.send(("error", LibraryError(f"{root}: the map failed in its worker process ({e!r})")))


def _project_library(root: str, model: str, args: tuple, ids: np.ndarray, say=None) -> np.ndarray:
    """In the child process: the library's embeddings (memory-mapped) -> coordinates, if they are still those of
    segments ``ids`` (the parent's): an embed may have published others since. Progress events go to ``say`` (if given)."""
    with Library(root) as lib:
        emb = load_embeddings(lib, model)
        if not np.array_equal(emb.ids, ids):
            raise LibraryError(f"{root}: the embeddings of {model!r} changed while the map was being drawn "
                               "(an embed ran meanwhile); draw it again")
        return drive(_project(emb.vectors, *args, cancel=CancelToken()), say)


def _in_child(root: Path, model: str, args: tuple, ids: np.ndarray, cancel: CancelToken) -> JobGen[np.ndarray]:
    """:func:`_project` in a spawned process, polled every 0.25 s: its progress events passed on with the seconds
    spent, the child terminated on cancel or error (and ending by itself if this process dies), its death (killed
    for want of memory, a broken install) a :class:`LibraryError`."""
    ctx = multiprocessing.get_context("spawn")
    inbox, outbox = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child_main, name="musicemb-map", daemon=True,
                        args=(outbox, os.getpid(), threading.current_thread() is threading.main_thread(), str(root),
                              model, args, ids))
    t0 = time.monotonic()
    last = Progress("map", 0, None, f"{args[0]} of {len(ids)} segments")
    try:
        child.start()
        outbox.close()  # the child holds the only writing end now: its death ends the pipe
        while True:
            cancel.check()
            kind, value = _receive(inbox, child, root) or ("progress", last)
            if kind == "done":
                child.join(10)  # ending by itself: killed, its semaphores were reported leaked at exit
                yield Progress("map", 1, 1, "done")
                return value
            if kind == "error":
                raise value
            last = value
            yield Progress("map", last.done, last.total, f"{last.message} ({time.monotonic() - t0:.0f} s)")
    finally:
        if child.is_alive():
            child.terminate()
        if child.pid is not None:
            child.join()
            child.close()
        inbox.close()


def _receive(inbox, child, root: Path) -> tuple | None:
    """The child's next message, None when none came within 0.25 s; :class:`LibraryError` once the child has died
    without a result."""
    ready = multiprocessing.connection.wait([inbox, child.sentinel], 0.25)
    if inbox in ready:
        with contextlib.suppress(EOFError, OSError):  # EOF: died (mid-message, perhaps)
            return inbox.recv()
    elif not ready:
        return None
    child.join(5)
    raise LibraryError(f"{root}: the map's worker process died{_ended(child.exitcode)} before it was done; "
                       "nothing was kept, draw it again")


def _ended(code: int | None) -> str:
    """How a process with exit code ``code`` ended, for a message."""
    if code is None:
        return ""
    if code >= 0:
        return f" (exit code {code})"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    return f" (killed by {name}{': out of memory?' if -code == signal.SIGKILL else ''})"


def export_map(lib: Library, rows: np.ndarray, out: str | Path) -> int:
    """CSV/Parquet with segment id, x, y, start, track id, track path and label; returns how many map rows were
    left out because their segments are no longer in the catalogue (cut again by an import with another window,
    or their track pruned, since the embed: their vectors go at the next ``embed``); a map with none left is a
    :class:`LibraryError`."""
    seg = lib.segments()
    pos = {int(i): j for j, i in enumerate(seg["id"])}
    tracks = {t.id: t for t in lib.tracks()}
    table = []
    for sid, x, y in rows:
        j = pos.get(int(sid))
        t = None if j is None else tracks.get(int(seg["track_id"][j]))
        if t is None:
            continue
        table.append({"segment_id": int(sid), "x": round(float(x), 5), "y": round(float(y), 5),
                      "start_s": float(seg["start_s"][j]), "track_id": t.id, "track": t.path, "label": t.label or ""})
    if not table and len(rows):
        raise LibraryError(f"{lib.root}: none of the {len(rows)} segments of this map is in the library any more "
                           "(cut again or removed since the embed); run `musicemb embed`, then draw the map again")
    write_table(table, out, columns=["segment_id", "x", "y", "start_s", "track_id", "track", "label"])
    return len(rows) - len(table)
