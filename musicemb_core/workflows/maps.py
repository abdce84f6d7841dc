"""``iter_map``: a 2-D map of a model's embeddings, cached as ``maps/<model>-<method>.npy`` (rows: id, x, y)."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import numpy as np

from musicemb_core.analysis.projection import Projector
from musicemb_core.common.names import model_key
from musicemb_core.common.paths import atomic_path
from musicemb_core.common.progress import CancelToken, JobGen, Progress, drive
from musicemb_core.common.tables import write_table
from musicemb_core.data.library import Library
from musicemb_core.inference import DEFAULT_MODEL, load_embeddings


def map_path(lib: Library, model: str, method: str) -> Path:
    return lib.folder("maps") / f"{model_key(model)}-{method}.npy"


def load_map(lib: Library, model: str, method: str) -> np.ndarray | None:
    """Cached map rows (id, x, y) or None."""
    path = map_path(lib, model, method)
    return np.load(path) if path.exists() else None


def iter_map(lib: Library, *, model: str = DEFAULT_MODEL, method: str = "umap", random_state: int = 0,
             max_fit: int = 100_000, chunk: int = 50_000, isolate: bool = False,
             cancel: CancelToken | None = None) -> JobGen[np.ndarray]:
    """The map of every embedded segment: reused from the cache while the embedded ids are unchanged.

    Above ``max_fit`` segments, UMAP and PCA are fitted on a random sample of ``max_fit`` and the rest is placed
    with ``transform()`` in chunks (t-SNE, which cannot place points, is fitted on all). ``isolate`` computes it
    in a child process (the GUI's choice: UMAP's numba compilation holds the GIL for 0.2-0.4 s at a time, which
    would stall the event loop); cancelling then stops the child."""
    cancel = cancel or CancelToken()
    emb = load_embeddings(lib, model)
    cached = load_map(lib, model, method)
    if cached is not None and np.array_equal(cached[:, 0].astype(np.int64), emb.ids):
        return cached
    args = (method, random_state, max_fit, chunk)
    if isolate:
        xy = yield from _in_child(lib.root, model, args, len(emb.ids), cancel)
    else:
        xy = yield from _project(emb.vectors, *args, cancel=cancel)
    rows = np.column_stack([emb.ids.astype(np.float64), xy.astype(np.float64)])
    with atomic_path(map_path(lib, model, method)) as tmp, open(tmp, "wb") as f:
        np.save(f, rows)
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


def _project_library(root: str, model: str, args: tuple) -> np.ndarray:
    """In the child process: the library's embeddings (memory-mapped) -> coordinates."""
    with Library(root) as lib:
        return drive(_project(load_embeddings(lib, model).vectors, *args, cancel=CancelToken()))


def _in_child(root: Path, model: str, args: tuple, n: int, cancel: CancelToken) -> JobGen[np.ndarray]:
    """:func:`_project` in a spawned process, polled every 0.25 s; terminated on cancel or error."""
    pool = multiprocessing.get_context("spawn").Pool(1)
    t0 = time.monotonic()
    try:
        pending = pool.apply_async(_project_library, (str(root), model, args))
        while True:
            cancel.check()
            try:
                xy = pending.get(timeout=0.25)
                yield Progress("map", 1, 1, "done")
                return xy
            except multiprocessing.TimeoutError:
                yield Progress("map", 0, None, f"{args[0]} of {n} segments ({time.monotonic() - t0:.0f} s)")
    finally:
        pool.terminate()
        pool.join()


def export_map(lib: Library, rows: np.ndarray, out: str | Path) -> None:
    """CSV/Parquet with segment id, x, y, start, track id, track path and label."""
    seg = lib.segments()
    pos = {int(i): j for j, i in enumerate(seg["id"])}
    tracks = {t.id: t for t in lib.tracks()}
    table = []
    for sid, x, y in rows:
        j = pos[int(sid)]
        t = tracks[int(seg["track_id"][j])]
        table.append({"segment_id": int(sid), "x": round(float(x), 5), "y": round(float(y), 5),
                      "start_s": float(seg["start_s"][j]), "track_id": t.id, "track": t.path, "label": t.label or ""})
    write_table(table, out)
