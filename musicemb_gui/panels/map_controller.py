"""What the map panel asks of the core, run off the GUI thread: maps, colourings, neighbours, spectrograms,
segment audio. Results come back as signals on the GUI thread."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QObject, Signal

from musicemb_core.analysis.clustering import AUTO_KS, iter_kmeans_select
from musicemb_core.analysis.probes import iter_probe_scores
from musicemb_core.common.errors import MusicEmbError
from musicemb_core.search.library_index import open_index
from musicemb_core.workflows.maps import iter_map, load_map
from musicemb_gui.panels.dj_colours import DJ_MODES, dim_filtered, track_colours
from musicemb_gui.session import Session
from musicemb_gui.widgets.audio_player import AudioCache
from musicemb_gui.workers import Job, run_in_thread

# tab20 without its two greys: grey means "none" (NONE_COLOUR), never a category
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#393b79", "#bcbd22",
           "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#637939",
           "#dbdb8d", "#9edae5"]
NONE_COLOUR = "#9a9a9a"
EXTRA_MODES = ("cluster", "predicted label")  # colourings computed in a thread, again whenever the points change


def label_categories(ids: np.ndarray, tracks: np.ndarray, track_labels: dict[int, str | None],
                     tags: tuple[np.ndarray, np.ndarray, list[str]]) -> tuple[np.ndarray, list[str]]:
    """Each segment's label as a category (its own tag, else its track's label; ``len(names)`` for none) and the
    sorted label names: per track and per tag value, vectorised (a loop over 1.6M tagged points: 1.8 s). ``tags``:
    the segment tags as :func:`~musicemb_gui.edits.tag_table` arrays."""
    owners, per_point = np.unique(tracks, return_inverse=True)
    owner_labels = [track_labels[int(t)] for t in owners]
    tag_ids, tag_codes, values = tags
    at = np.minimum(np.searchsorted(tag_ids, ids), max(len(tag_ids) - 1, 0))
    point_code = np.where(tag_ids[at] == ids, tag_codes[at], -1) if len(tag_ids) else np.full(len(ids), -1)
    used = [values[i] for i in np.unique(point_code[point_code >= 0])]
    names = sorted({lab for lab in owner_labels if lab} | set(used))
    index = {n: i for i, n in enumerate(names)}
    cats = np.array([index.get(lab, len(names)) for lab in owner_labels], dtype=np.int64)[per_point]
    tagged = point_code >= 0
    cats[tagged] = np.array([index.get(v, -1) for v in values], dtype=np.int64)[point_code[tagged]]
    return cats, names


class MapController(QObject):
    mapReady = Signal(object, object, str)          # ids (n,), xy (n, 2), method
    coloursReady = Signal(object, object, object)   # categories (n,), palette, names
    neighboursReady = Signal(int, object)           # source segment id, [{segment_id, score, name, path, start_s}]
    similarTracksReady = Signal(int, object)        # source track id, [{track_id, score, title, path, ...}]
    spectrogramReady = Signal(int, object, object, str)
    spectrogramFailed = Signal(int, str)            # segment id, why (its file gone, unreadable)
    cleared = Signal()                              # another library was opened: show nothing of the old one
    listsCleared = Signal()                         # another model: its neighbours and "more like this" are void
    status = Signal(str)

    def __init__(self, session: Session, audio: AudioCache | None = None):
        super().__init__()
        self.session = session
        self.audio = audio if audio is not None else AudioCache(max_items=256)
        self.ids = np.zeros(0, np.int64)
        self._rows = np.zeros((0, 3))  # the map shown: segment id, x, y per point
        self.method = "umap"
        self.mode = "label"  # the colouring asked for last
        self.cluster_ks: range | list[int] = AUTO_KS  # the k-means k tried for the cluster colouring
        self.shown = ""  # the method whose map is on screen
        # the open finding kind of each point (segment ids, their tracks), None where there is none
        self.finding_kinds: Callable[[np.ndarray, np.ndarray], np.ndarray] = lambda ids, _tracks: np.full(
            len(ids), None, dtype=object)
        self._index = None
        self._spectrogram_of = -1  # the segment whose spectrogram was asked for last
        self._similar = None  # SimilarTracks of the open library, opened on first use
        self._extra: dict[str, np.ndarray] = {}   # cluster / predicted label per embedded segment
        self._extra_names: dict[str, list[str]] = {}
        self._extra_jobs: dict[str, Job] = {}  # cluster / predicted label -> the job computing it
        self._map_jobs: dict[str, tuple[Job, tuple]] = {}  # method -> its map job running, and what it maps
        session.embeddingsChanged.connect(self._embeddings_changed)
        session.labelsChanged.connect(self._labels_changed)
        session.libraryOpened.connect(self._library_opened)
        session.libraryChanged.connect(self._drop_gone_points)  # before the panels read again (colour the map)
        session.modelChanged.connect(lambda _name: self.listsCleared.emit())
        session.trackFilterChanged.connect(lambda _ids: self.coloursReady.emit(*self.colours(self.mode, self.ids)))

    def _library_opened(self) -> None:
        self._cancel_maps()
        self._cancel_extra()
        self.ids, self.shown = np.zeros(0, np.int64), ""
        self._index, self._similar, self._extra, self._extra_names = None, None, {}, {}
        self.audio.clear()
        self.cleared.emit()

    def _live(self, fn: Callable, *, of_vectors: bool = True) -> Callable:
        """``fn`` guarded: it runs only if the library and model in use when the work started still are (and,
        ``of_vectors``, the vectors: not embedded or trained again since)."""
        s, generation, model, version = self.session, self.session.generation, self.session.model, \
            self.session.vectors_version
        return lambda *args: fn(*args) if s.is_current(generation, model) and (
            not of_vectors or version == s.vectors_version) else None

    # -- maps ----------------------------------------------------------------------------------------------
    def _embeddings_changed(self) -> None:
        self._cancel_maps(keep=("pca", self.method))  # of vectors (or a model) not shown any more
        self._cancel_extra()
        self._index, self._similar, self._extra, self._extra_names = None, None, {}, {}
        if self.session.embedding_ids is None:
            self.ids, self.shown = np.zeros(0, np.int64), ""
            self.cleared.emit()
            self.status.emit(f"No embeddings for model {self.session.model!r} yet: run Library ▸ Embed.")
            return
        self._drop_gone_points()
        self.request_map(self.method)

    def _drop_gone_points(self) -> None:
        """Segments no longer in the library (cut again: a file changed and was imported again; their tracks
        removed) leave the map at once, not when the next map is drawn: colouring the map shown raised KeyError
        for them. Clusters and predicted labels, one per point of the map before, are computed again."""
        if not np.isin(self.ids, self.session.segments.get("id", self.ids[:0])).all():
            self._cancel_extra()
            self._extra, self._extra_names = {}, {}
            self._emit_map(self._rows, self.shown)

    def _labels_changed(self, _changed: dict) -> None:
        """Colour the map shown by the new labels (predicted labels are computed again from them)."""
        self._forget_extra("predicted label")
        if len(self.ids):
            self.request_colours(self.mode)

    def request_map(self, method: str) -> None:
        """Show ``method``'s map: from the cache at once, else PCA now and ``method`` when its job ends."""
        self.method = method
        self._cancel_maps(keep=("pca", method))  # a method picked before, its map no longer wanted
        s = self.session
        if s.embedding_ids is None:
            return
        if len(s.embedding_ids) < 3:  # no job that can only fail (one per method chosen, piling up under Jobs)
            self.status.emit(f"a map needs at least 3 embedded segments; this library has {len(s.embedding_ids)}")
            return
        try:
            with s.library() as lib:
                cached = {m: load_map(lib, s.model, m) for m in {"pca", method}}
        except MusicEmbError as e:  # the library's folder is gone (moved, its drive unplugged)
            self.status.emit(str(e))
            return
        ids = s.embedding_ids
        for m in (method, "pca"):
            rows = cached[m]
            if rows is not None and np.array_equal(rows[:, 0].astype(np.int64), ids):
                self._emit_map(rows, m)
                if m == method:
                    return
                break
        else:
            self._submit_map("pca")
        if method != "pca":
            self._submit_map(method)

    def _mapping(self) -> tuple:
        """What a map job started now maps: the library, model and vectors in use."""
        s = self.session
        return s.generation, s.model, s.vectors_version

    def _cancel_maps(self, *, keep: tuple[str, ...] = ()) -> None:
        """Cancel the map jobs whose map would not be shown: of a method not in ``keep``, or of another library,
        model or vectors (a UMAP runs for minutes: methods picked in turn piled up jobs that ran one after another,
        each a child process, before the map picked last)."""
        for method, (job, of) in list(self._map_jobs.items()):
            if method not in keep or of != self._mapping():
                del self._map_jobs[method]
                job.cancel()

    def _submit_map(self, method: str) -> None:
        if method in self._map_jobs:  # asked again while it runs (the method picked again, the embeddings re-read)
            return
        model = self.session.model
        # in a child process: UMAP's numba compilation would hold the GIL and stall the window
        job = self.session.library_job(
            f"{method.upper()} map",
            lambda lib, token: iter_map(lib, model=model, method=method, isolate=method != "pca", cancel=token),
            on_done=self._live(lambda rows, m=method: self._map_done(rows, m)),  # not for other vectors since
            on_failed=lambda msg: self.status.emit(f"map failed: {msg}"))
        self._map_jobs[method] = (job, self._mapping())
        job.ended.connect(lambda _job: self._map_jobs.get(method, (None,))[0] is job and self._map_jobs.pop(method))

    def _map_done(self, rows: np.ndarray, method: str) -> None:
        # the quick PCA stands in only until the chosen method's map is there, whichever job ends first
        if method == self.method or (method == "pca" and self.shown != self.method):
            self._emit_map(rows, method)

    def _emit_map(self, rows: np.ndarray, method: str) -> None:
        rows = rows[np.isin(rows[:, 0].astype(np.int64), self.session.segments["id"])]  # no segment cut again since
        self.shown, self._rows = method, rows
        self.ids = rows[:, 0].astype(np.int64)
        self.mapReady.emit(self.ids, rows[:, 1:3].astype(np.float32), method)
        if self.mode in EXTRA_MODES and self.mode not in self._extra:  # void since (another library, new
            self.request_colours(self.mode)  # embeddings or labels): computed again for the points now shown

    # -- colours -------------------------------------------------------------------------------------------
    def colours(self, mode: str, ids: np.ndarray) -> tuple[np.ndarray, list[str], list[str]]:
        """Category per point, palette and names for ``mode`` (label and track at once; others when ready); points
        of tracks the library's filters leave out are dimmed."""
        s = self.session
        tracks = s.segment_tracks(ids)
        keep = None if s.track_filter is None else np.isin(tracks, np.fromiter(s.track_filter, np.int64))
        return dim_filtered(self._colours(mode, ids, tracks), keep)

    def _colours(self, mode: str, ids: np.ndarray, tracks: np.ndarray) -> tuple[np.ndarray, list[str], list[str]]:
        s = self.session
        if mode in DJ_MODES:  # per track, then per point
            owners, per_point = np.unique(tracks, return_inverse=True)
            cats, palette, names = track_colours(mode, [s.tracks[int(t)] for t in owners])
            return cats[per_point], palette, names
        if mode == "track":
            cats = np.unique(tracks, return_inverse=True)[1]
            return cats % len(PALETTE), PALETTE, []
        if mode == "finding":
            kinds = self.finding_kinds(ids, tracks)
            names = sorted({k for k in kinds if k is not None})
            index = {n: i for i, n in enumerate(names)}
            cats = np.array([index.get(k, len(names)) for k in kinds], dtype=np.int64)
            return cats, [PALETTE[i % len(PALETTE)] for i in range(len(names))] + [NONE_COLOUR], \
                names + ["(no finding)"]
        if mode in EXTRA_MODES and mode in self._extra:
            cats = self._extra[mode]
            names = self._extra_names.get(mode, [])
            palette = [PALETTE[i % len(PALETTE)] for i in range(max(1, len(names)))]
            if mode == "predicted label" and names:  # the label names and "(none)": grey, as when coloured by label
                palette[-1] = NONE_COLOUR
            return cats, palette, names
        cats, names = label_categories(ids, tracks, {t: tr.label for t, tr in s.tracks.items()},
                                       s.edits.tag_table())
        return cats, [PALETTE[i % len(PALETTE)] for i in range(len(names))] + [NONE_COLOUR], names + ["(none)"]

    def request_colours(self, mode: str) -> None:
        self.mode = mode
        if mode in EXTRA_MODES and mode not in self._extra:
            vectors, ids = self.session.vectors, self.ids
            if not np.array_equal(ids, self.session.embedding_ids):  # one value per vector: the map of these vectors
                return  # is still being made (new tracks imported), and asks for them when it is drawn
            if mode not in self._extra_jobs:  # asked again while it runs: shown when it ends
                self._submit_extra(mode, vectors, ids)
            return
        self.coloursReady.emit(*self.colours(mode, self.ids))

    def _submit_extra(self, mode: str, vectors: np.ndarray, ids: np.ndarray) -> None:
        """Compute clusters or predicted labels of the points shown as a job (minutes for 400,000 points: its
        progress and Cancel under Jobs)."""
        labels_cats, _, names = self.colours("label", ids)
        tracks = self.session.segment_tracks(ids)
        ks = self.cluster_ks

        def factory(token):
            if mode == "cluster":
                k = yield from iter_kmeans_select(vectors, ks=ks, cancel=token)
                return k["labels"], [f"cluster {i}" for i in range(k["k"])]
            lab = np.where(labels_cats < len(names) - 1, labels_cats, -1)
            pred = (yield from iter_probe_scores(vectors, lab, tracks, cancel=token))["predictions"]
            return np.where(pred >= 0, pred, len(names) - 1), names
        job = self.session.jobs.submit(f"colour the map by {mode}", factory)
        self._extra_jobs[mode] = job
        done = self._live(lambda r, m=mode, v=vectors: self._extra_done(m, r, v))
        job.finished.connect(lambda r: job.state == "done" and done(r))  # not one cancelled as it ended
        job.failed.connect(self._live(lambda msg, _tb: self.status.emit(f"{mode}: {msg}")))
        job.cancelled.connect(self._live(lambda: self.status.emit(f"{mode}: cancelled")))
        job.ended.connect(lambda _job: self._extra_jobs.get(mode) is job and self._extra_jobs.pop(mode))
        self.status.emit(f"computing {mode}… (progress and Cancel under Jobs)")

    def set_cluster_ks(self, ks: range | list[int]) -> None:
        """Colour by k-means clusters with the best silhouette of ``ks`` (one k: that many): computed again."""
        if list(ks) == list(self.cluster_ks):
            return
        self.cluster_ks = ks
        self._forget_extra("cluster")
        if self.mode == "cluster" and len(self.ids):
            self.request_colours("cluster")

    def _forget_extra(self, mode: str) -> None:
        """Drop a computed colouring (and cancel its job): it is computed again when asked for."""
        self._cancel_extra((mode,))
        self._extra.pop(mode, None)
        self._extra_names.pop(mode, None)

    def _cancel_extra(self, modes: tuple[str, ...] = EXTRA_MODES) -> None:
        """Cancel the jobs computing these colourings: of points or labels not shown any more."""
        for mode in modes:
            job = self._extra_jobs.pop(mode, None)
            if job is not None:
                job.cancel()

    def _extra_done(self, mode: str, result, vectors: np.ndarray) -> None:
        if vectors is not self.session.vectors:  # computed on another space's (or library's) vectors
            return
        cats, names = result
        self._extra[mode] = np.asarray(cats)
        self._extra_names[mode] = names
        if mode == self.mode:  # another colouring chosen meanwhile stays; this one is kept for when it is asked
            self.coloursReady.emit(*self.colours(mode, self.ids))
        self.status.emit("")

    # -- one segment ---------------------------------------------------------------------------------------
    def tooltip(self, seg_id: int) -> str:
        return self.session.tooltip(seg_id) if seg_id in self.session.seg_row else ""

    def prefetch(self, seg_id: int) -> None:
        """Decode a segment's audio into the cache ahead of a click; not kept once another library is open (segment
        ids start at 1 in every library: it played for the point of that id there)."""
        if self.audio.peek(seg_id) is None:
            run_in_thread(lambda: self.session.segment_audio(seg_id),
                          self._live(lambda audio: self.audio.put(seg_id, audio), of_vectors=False))

    def request_neighbours(self, seg_id: int, k: int, *, other_tracks: bool = False) -> None:
        """The ``k`` nearest segments of ``seg_id`` (FAISS), or of other tracks only with ``other_tracks``."""
        s = self.session
        if s.vectors is None:
            return
        row = int(np.searchsorted(s.embedding_ids, seg_id))
        if row >= len(s.embedding_ids) or int(s.embedding_ids[row]) != int(seg_id):  # imported, not embedded
            self.status.emit(f"{self.session.track_name(s.segment(seg_id)['track_id'])}: this segment has no "
                             f"{s.model!r} embedding yet, so no neighbours (Library ▸ Embed computes it)")
            return
        vec = s.vectors[row]
        own = s.segment(seg_id)["track_id"] if other_tracks else None
        generation, model = s.generation, s.model

        def search():
            index = self._index
            if index is None:
                with s.library() as lib:
                    index = open_index(lib, model)
                if s.is_current(generation, model):
                    self._index = index
            want = k + 1
            while True:  # widen the search until k segments of other tracks are found (or all were seen)
                scores, ids = index.search(vec[None], min(want, index.ntotal))
                rows = [{"segment_id": int(i), "score": float(sc), **{key: s.segment(int(i))[key]
                         for key in ("path", "start_s", "track_id")}} for sc, i in zip(scores[0], ids[0], strict=True)
                        if i >= 0 and i != seg_id and int(i) in s.seg_row]  # not a segment cut again since
                rows = [r for r in rows if r["track_id"] != own]
                if len(rows) >= k or want >= index.ntotal:
                    return [dict(r, name=s.track_name(r["track_id"])) for r in rows[:k]]
                want *= 4
        run_in_thread(search, self._live(lambda rows: self.neighboursReady.emit(seg_id, rows)),
                      self._live(lambda msg: self.status.emit(f"neighbours: {msg}")))

    def request_similar_tracks(self, track_id: int, k: int) -> None:
        """"More like this": the ``k`` tracks nearest ``track_id`` in the similarity space (track vectors)."""
        s = self.session
        if s.lib_path is None:
            return
        segs = s.segments["id"][s.segments["track_id"] == track_id]
        if s.embedding_ids is None or not np.isin(segs, s.embedding_ids).any():  # said in the app's words
            self.status.emit(f"more like this: {s.track_name(track_id)} is not embedded with {s.model!r} yet, so "
                             "there is nothing to compare it with (Library ▸ Embed computes it)")
            return
        open_library, generation, model = s.opener(), s.generation, s.model

        def search():
            space = self._similar
            if space is None:
                from musicemb_core.search.similar import SimilarTracks

                with open_library() as lib:
                    space = SimilarTracks(lib, model=model)
                if s.is_current(generation, model):
                    self._similar = space
            return space.query([str(track_id)], k=k)[0]["results"]
        run_in_thread(search, self._live(lambda rows: self.similarTracksReady.emit(track_id, rows)),
                      self._live(lambda msg: self.status.emit(f"more like this: {msg}")))

    def request_spectrogram(self, seg_id: int) -> None:
        info = self.session.segment(seg_id)
        title = f"{self.session.track_name(info['track_id'])} @ {info['start_s']:.1f} s"

        self._spectrogram_of = seg_id

        def failed(msg: str) -> None:
            self.status.emit(f"spectrogram: {msg}")
            if seg_id == self._spectrogram_of:  # not one asked for before, failing after the last was shown
                self.spectrogramFailed.emit(seg_id, f"No spectrogram of {title}: {msg}")
        def done(r) -> None:
            if seg_id == self._spectrogram_of:  # a point clicked before, ending after the last: not shown
                self.spectrogramReady.emit(seg_id, r[0], r[1], title)
        run_in_thread(lambda: self.session.segment_logmel(seg_id), self._live(done, of_vectors=False),
                      self._live(failed, of_vectors=False))

    def label_segments(self, ids: np.ndarray, label: str, *, whole_tracks: bool) -> None:
        """Label the tracks of segments ``ids`` whole, or tag only these segments (undoable: Edit ▸ Undo). The
        tracks are found vectorised: one lookup per segment froze the window for 7 s with a million selected.
        Segments gone since they were selected (the library read again while the label dialog was open) are left
        out: one raised KeyError, or failed the whole edit."""
        edits, ids = self.session.edits, np.asarray(ids, np.int64)
        ids = ids[np.isin(ids, self.session.segments.get("id", ids[:0]))]
        if not len(ids):
            self.status.emit("not labelled: the segments selected are no longer in the library")
            return
        if whole_tracks:
            edit = edits.relabel_tracks(np.unique(self.session.segment_tracks(ids)).tolist(), label)
        else:
            edit = edits.tag_segments(ids, label)
        self.status.emit(f"{edit.description} (Ctrl+Z undoes it)" if edit else
                         f"not labelled: {edits.error}" if edits.error else
                         f"labelling {len(ids):,} segments… (see Jobs)" if edits.busy else "no label changed")
