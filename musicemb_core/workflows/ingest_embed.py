"""Import + embed in one decode: while the import's workers hold each new file's audio, they compute its
segments' vectors with the built-in models too (an ingest :class:`~musicemb_core.data.ingest.Tap`); ``iter_embed``
then stores them with the library's other vectors as one new generation, computing only what is still missing
(tracks imported earlier without vectors, a file whose vectors could not be computed in the import).

A crash during the import leaves the catalogue's imported tracks without new vectors (the next ``embed`` or
``ingest --embed`` computes them); a cancel keeps the vectors of the files imported so far, and stops a file's
embedding within a batch (nothing of that file is stored).
"""

from __future__ import annotations

import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from musicemb_core.audio.decode import SampleBuffer
from musicemb_core.audio.resample import StreamResampler
from musicemb_core.common.errors import ConfigError
from musicemb_core.common.progress import CancelToken, JobGen, drive
from musicemb_core.data import layout
from musicemb_core.data.ingest import IngestReport, iter_ingest
from musicemb_core.data.library import Library
from musicemb_core.models import checkpoint as ckpt
from musicemb_core.stored_vectors import builtin_models, model_folder

if TYPE_CHECKING:  # the models run in jobs: torch is imported there, not with this module (the app's start)
    from musicemb_core.inference import Embedder, EmbedReport


@dataclass
class IngestEmbedReport:
    ingest: IngestReport
    embed: EmbedReport


@dataclass(frozen=True)
class EmbedTap:
    """An ingest tap giving each file's raw segment vectors (see :meth:`_EmbedRun.result`), computed
    with ``models`` ((name, model folder) pairs, all reading audio at ``sr``). In a worker process, torch runs
    ``threads`` threads."""

    models: tuple[tuple[str, str], ...]
    sr: int
    threads: int = 1
    batch_size: int = 64

    def start(self, sr: int) -> _EmbedRun:
        return _EmbedRun(self, sr)


_EMBEDDERS: dict[str, Embedder] = {}  # a worker loads each model once


def _embedder(tap: EmbedTap, folder: str) -> Embedder:
    if folder not in _EMBEDDERS:
        import torch

        from musicemb_core.inference import Embedder

        if multiprocessing.parent_process() is not None:  # an import worker: its share of the cores
            torch.set_num_threads(tap.threads)
        _EMBEDDERS[folder] = Embedder(Path(folder))
    return _EMBEDDERS[folder]


class _EmbedRun:
    """One file: its mono blocks resampled to the models' rate as they come, into one array sized from the header
    (a 2-hour file's 0.46 GB at 16 kHz held once, not also as the blocks joined), embedded when the file ends."""

    def __init__(self, tap: EmbedTap, sr: int):
        self.tap, self.sr = tap, sr
        self._resample = StreamResampler(sr, tap.sr)
        self._frames, self._cancel = 0, None
        self._out: SampleBuffer | None = None

    def begin(self, frames: int, cancel: CancelToken | None) -> None:
        """The header's length (frames at the file's rate) and the import's cancel, checked between batches."""
        self._frames, self._cancel = frames, cancel

    def __call__(self, mono: np.ndarray) -> None:
        if self._out is None:  # at the first block: a file too long by its header has failed before
            self._out = SampleBuffer.for_frames(self._frames, self.sr, self.tap.sr)
        self._out.add(self._resample(mono))

    def result(self, starts: np.ndarray) -> dict[str, np.ndarray]:
        """{"starts": ``starts``, model name: (len(starts), dim) raw vectors, and for a model with a tagger,
        "<name>#tag": its raw values of the file's clips (:meth:`~musicemb_core.inference.Embedder.tag`)}.
        Raises :class:`~musicemb_core.common.errors.Cancelled` at a cancel (checked before each batch and before the
        tagger)."""
        from musicemb_core.inference import embed_clips

        buf, self._out = self._out or SampleBuffer(0), None
        buf.add(self._resample.flush())
        y = buf.array()
        out = {"starts": starts}
        for name, folder in self.tap.models:
            emb = _embedder(self.tap, folder)
            vecs, tags = drive(embed_clips(emb, y, self.tap.sr, starts, self.tap.batch_size, self._cancel))
            out[name] = np.concatenate(vecs) if vecs else np.zeros((0, emb.encoder.dim), np.float32)
            if tags is not None:
                out[f"{name}#tag"] = tags
        return out


def _by_segment(seg: dict, tapped: dict[int, dict], names: tuple[str, ...]) -> dict[str, tuple]:
    """The tap's per-track results -> {model: (segment ids, vectors[, tagger's track ids, its raw values])}, for
    tracks whose segments in the catalogue are those the vectors were cut at. A track given NaN or infinity is left
    out: ``iter_embed`` computes it again and, as ``embed`` does, fails it naming the model."""
    order = np.lexsort((seg["id"], seg["track_id"]))
    tids = seg["track_id"][order]
    rows = []
    for tid, res in tapped.items():
        a, b = np.searchsorted(tids, [tid, tid + 1])
        finite = all(np.isfinite(v).all() for k, v in res.items() if k != "starts")
        if finite and np.array_equal(seg["start_s"][order[a:b]], res["starts"]):
            rows.append((tid, order[a:b], res))
    out = {}
    for n in names if rows else ():
        out[n] = (np.concatenate([seg["id"][r] for _, r, _ in rows]), np.concatenate([res[n] for _, _, res in rows]))
        if all(f"{n}#tag" in res for _, _, res in rows):
            out[n] += (np.concatenate([np.full(len(res[f"{n}#tag"]), tid, np.int64) for tid, _, res in rows]),
                       np.concatenate([res[f"{n}#tag"] for _, _, res in rows]))
    return out


@layout.writes_library("ingest")
def iter_ingest_embed(lib: Library, paths: list[str | Path], *, models: tuple[str, ...] | None = None,
                      jobs: int | None = None, cancel: CancelToken | None = None,
                      **ingest) -> JobGen[IngestEmbedReport]:
    """:func:`~musicemb_core.data.ingest.iter_ingest` (``ingest``: its keyword arguments) and
    :func:`~musicemb_core.inference.iter_embed` with ``models`` (default: the built-in models) in one decode
    per file; yields both jobs' progress."""
    from musicemb_core.inference import iter_embed

    cancel = cancel or CancelToken()
    names = builtin_models() if models is None else tuple(models)
    folders = [model_folder(lib, n) for n in names]
    srs = {ckpt.read_info(f).features.sr for f in folders}
    if len(srs) > 1:
        raise ConfigError(f"models {', '.join(names)} read audio at different rates {sorted(srs)}: embed them one at a time")
    workers = jobs or os.cpu_count() or 1
    tap = EmbedTap(tuple((n, str(f)) for n, f in zip(names, folders, strict=True)), srs.pop(),
                   threads=max(1, (os.cpu_count() or 1) // workers))
    report = yield from iter_ingest(lib, paths, jobs=jobs, tap=tap, cancel=cancel, **ingest)
    report.cancelled |= cancel.cancelled  # a cancel at the very end: no more work after it
    done = _by_segment(lib.segments(), report.tapped, names)
    report.tapped.clear()
    embedded = yield from iter_embed(lib, model=names, precomputed=done, cancel=cancel)
    return IngestEmbedReport(report, embedded)


def iter_search_indexes(lib: Library, *, cancel: CancelToken | None = None) -> JobGen[tuple[Path | None, str | None]]:
    """After an embed with the built-in models: the melody index (so that the first hum is fast) and the landmarks
    (identification, versions in ``similar``), both incremental. Returns (the melody index folder if it was
    (re)built, why it could not be built); a melody index that fails leaves the landmarks to be built."""
    from musicemb_core.common.errors import MusicEmbError
    from musicemb_core.search.fingerprints import iter_fingerprint
    from musicemb_core.search.qbh import iter_update_qbh_index

    melody, error = None, None
    try:
        melody = yield from iter_update_qbh_index(lib, cancel=cancel)
    except MusicEmbError as e:  # the embeddings are kept; a hum builds the melody index when asked
        error = str(e)
    yield from iter_fingerprint(lib, cancel=cancel)
    return melody, error
