"""Segments of a library loaded for training or embedding: ids, tracks, labels and their waveforms."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from musicemb_core.audio.decode import load
from musicemb_core.common.errors import AudioError
from musicemb_core.common.progress import CancelToken, EtaClock, JobGen, Progress
from musicemb_core.data import edits
from musicemb_core.data.library import Library


@dataclass
class SegmentSet:
    """Segments as parallel arrays. ``audio`` rows hold each segment with ``pad_s`` of context on both sides
    (``window_s + 2 * pad_s`` long at ``sr``, zero-padded past the track's ends); :meth:`window` cuts them."""

    ids: np.ndarray          # (n,) int64 segment ids
    track_ids: np.ndarray    # (n,) int64
    starts: np.ndarray       # (n,) float64 seconds
    labels: np.ndarray       # (n,) int64 index into label_names, -1 = unlabelled
    label_names: list[str]
    sr: int
    window_s: float
    audio: np.ndarray        # (n, round((window_s + 2 * pad_s) * sr)) float32
    pad_s: float = 0.0

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, index: np.ndarray) -> SegmentSet:
        return SegmentSet(self.ids[index], self.track_ids[index], self.starts[index], self.labels[index],
                          self.label_names, self.sr, self.window_s, self.audio[index], self.pad_s)

    def window(self, index: np.ndarray, shifts_s: np.ndarray | None = None) -> np.ndarray:
        """Segments ``index`` (n,) as (n, window samples): centred, or moved by ``shifts_s`` (each within
        ±``pad_s``) for views that overlap their segment only partly."""
        n_win, pad = int(round(self.window_s * self.sr)), int(round(self.pad_s * self.sr))
        index = np.atleast_1d(index)
        offs = np.full(len(index), pad) if shifts_s is None else pad + np.round(
            np.clip(shifts_s, -self.pad_s, self.pad_s) * self.sr).astype(int)
        return np.stack([self.audio[i, o:o + n_win] for i, o in zip(index, offs, strict=True)])


def iter_load_segments(lib: Library, *, sr: int, window_s: float | None = None, pad_s: float = 0.0,
                       segment_ids: np.ndarray | None = None, label_names: list[str] | None = None, workers: int = 2,
                       cancel: CancelToken | None = None) -> JobGen[SegmentSet]:
    """Decode every track once (resampled to ``sr``) and cut its segments.

    ``segment_ids`` restricts to those segments; ``label_names`` fixes the label order (a model's label map),
    labels outside it become -1. A track that no longer decodes is skipped with its segments (listed in the
    progress messages). Yields one event per track.
    """
    seg = lib.segments()
    if segment_ids is not None:
        keep = np.isin(seg["id"], segment_ids)
        seg = {k: v[keep] for k, v in seg.items()}
    window_s = window_s or (lib.segment_config().window_s if lib.segment_config() else 3.0)
    tracks = {t.id: t for t in lib.tracks()}
    names = label_names if label_names is not None else edits.label_names(lib)
    lab_index = {n: i for i, n in enumerate(names)}
    n_samp, pad = int(round((window_s + 2 * pad_s) * sr)), int(round(pad_s * sr))
    audio = np.zeros((len(seg["id"]), n_samp), dtype=np.float32)
    ok = np.ones(len(seg["id"]), dtype=bool)
    track_list = np.unique(seg["track_id"])
    rows_of = {t: np.flatnonzero(seg["track_id"] == t) for t in track_list}

    def decode(tid: int):
        try:
            return tid, load(tracks[tid].path, sr=sr)[0], ""
        except AudioError as e:
            return tid, None, str(e)

    clock = EtaClock()
    cancel = cancel or CancelToken()
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for done, (tid, y, err) in enumerate(pool.map(decode, track_list), 1):
            cancel.check()
            rows = rows_of[tid]
            if y is None:
                ok[rows] = False
            else:
                for r in rows:
                    a = int(round(seg["start_s"][r] * sr)) - pad
                    chunk = y[max(0, a):a + n_samp]
                    audio[r, max(0, -a):max(0, -a) + len(chunk)] = chunk
            yield Progress("load", done, len(track_list), err or tracks[tid].path, clock.eta(done, len(track_list)))
    labels = np.array([lab_index.get(lab, -1) for lab in edits.labels_of_segments(lib, seg["id"], seg["track_id"])],
                      dtype=np.int64)  # a segment's tag over its track's label
    out = SegmentSet(seg["id"], seg["track_id"], seg["start_s"], labels, list(names), sr, window_s, audio, pad_s)
    return out.subset(np.flatnonzero(ok))
