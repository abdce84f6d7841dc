"""``iter_map``: a 2-D map of a model's embeddings, cached as ``maps/<model>-<method>.npy`` (rows: id, x, y)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from musicemb_core.analysis.projection import Projector
from musicemb_core.common.paths import atomic_path
from musicemb_core.common.progress import JobGen, Progress
from musicemb_core.common.tables import write_table
from musicemb_core.data.library import Library
from musicemb_core.inference import DEFAULT_MODEL, load_embeddings


def map_path(lib: Library, model: str, method: str) -> Path:
    return lib.folder("maps") / f"{model}-{method}.npy"


def load_map(lib: Library, model: str, method: str) -> np.ndarray | None:
    """Cached map rows (id, x, y) or None."""
    path = map_path(lib, model, method)
    return np.load(path) if path.exists() else None


def iter_map(lib: Library, *, model: str = DEFAULT_MODEL, method: str = "umap", random_state: int = 0,
             max_fit: int = 100_000, chunk: int = 50_000) -> JobGen[np.ndarray]:
    """The map of every embedded segment: reused from the cache while the embedded ids are unchanged.

    Above ``max_fit`` segments, UMAP and PCA are fitted on a random sample of ``max_fit`` and the rest is placed
    with ``transform()`` in chunks (t-SNE, which cannot place points, is fitted on all)."""
    emb = load_embeddings(lib, model)
    cached = load_map(lib, model, method)
    if cached is not None and np.array_equal(cached[:, 0].astype(np.int64), emb.ids):
        return cached
    n, steps = len(emb.ids), 1
    if n <= max_fit or method == "tsne":
        yield Progress("map", 0, 1, f"{method} of {n} segments")
        xy = Projector(method, random_state=random_state).fit(np.asarray(emb.vectors)).embedding_
    else:
        fit_rows = np.sort(np.random.default_rng(random_state).choice(n, max_fit, replace=False))
        rest = np.setdiff1d(np.arange(n), fit_rows)
        steps = 1 + -(-len(rest) // chunk)
        yield Progress("map", 0, steps, f"{method} fitted on {max_fit} of {n} segments")
        proj = Projector(method, random_state=random_state).fit(np.asarray(emb.vectors[fit_rows]))
        xy = np.empty((n, proj.n_components), np.float32)
        xy[fit_rows] = proj.embedding_
        for i, a in enumerate(range(0, len(rest), chunk), 1):
            yield Progress("map", i, steps, f"placing {min(a + chunk, len(rest))} of {len(rest)} with transform()")
            xy[rest[a:a + chunk]] = proj.transform(np.asarray(emb.vectors[rest[a:a + chunk]]))
    rows = np.column_stack([emb.ids.astype(np.float64), xy.astype(np.float64)])
    with atomic_path(map_path(lib, model, method)) as tmp, open(tmp, "wb") as f:
        np.save(f, rows)
    yield Progress("map", steps, steps, "done")
    return rows


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
