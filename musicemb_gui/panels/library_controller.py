"""What the library panel's DJ tools ask of the core: which tracks pass the BPM and key filters (the core's
``keep``, on the catalogue's tempo and key, else the tags'), the selected track's tempo and key as a filter, and a
set ordered from a selection (``plan_set``, off the GUI thread) shown in the set dialog."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QObject

from musicemb_core.features.camelot import camelot, key_name, parse_key
from musicemb_core.workflows.dj import bpm_text, keep, key_text, plan_set, row_bpm, row_key
from musicemb_gui.panels.library_panel import LibraryPanel
from musicemb_gui.panels.set_dialog import SetDialog
from musicemb_gui.session import Session, table_row
from musicemb_gui.workers import run_in_thread

MATCH_BPM_PCT = 6.0  # "Match selected": tempo within this many percent
MAX_SET = 500  # ordered in about 1 s (bench/bench_set_order.py)
WHEEL = [f"{n}{letter}" for n in range(1, 13) for letter in "AB"]


class LibraryController(QObject):
    def __init__(self, session: Session, panel: LibraryPanel, *,
                 map_selection: Callable[[], np.ndarray] = lambda: np.zeros(0, np.int64)):
        super().__init__()
        self.session, self.panel, self.map_selection = session, panel, map_selection
        self.rows: dict[int, dict] = {}  # track id -> the core's DJ row
        self._made: dict[int, tuple] = {}  # track id -> (the Track, its sounds, its DJ row, the table's texts of it)
        self.plan: dict | None = None    # the last set built
        self.set_dialog = SetDialog(panel)
        bar = panel.dj_filters
        bar.set_keys([(code, f"{code}  {key_name(parse_key(code))}") for code in WHEEL])
        bar.changed.connect(self.apply_filters)
        bar.matchRequested.connect(self.match_selected)
        panel.shownTracksChanged.connect(session.set_track_filter)
        panel.setRequested.connect(self.build_set)
        session.libraryChanged.connect(self._library_changed)
        session.labelsChanged.connect(self._labels_changed)
        session.libraryOpened.connect(self._library_opened)

    def _library_opened(self) -> None:
        self.rows, self.plan, self._made = {}, None, {}
        self.panel.new_library()
        self.set_dialog.clear()
        self.panel.dj_filters.reset()

    def _library_changed(self) -> None:
        self.fill_table()
        self.apply_filters()

    def fill_table(self) -> None:
        """The table's rows from the session's tracks (each track's DJ row made once: the filters use them too) and
        failed files."""
        s = self.session
        made, self._made = self._made, {}
        for t in s.tracks.values():  # a track read again unchanged keeps its row and texts (0.5 s for 20,000)
            sounds, old = s.sounds.get(t.id), made.get(t.id)
            if old is not None and old[0] == t and old[1] == sounds:
                self._made[t.id] = old
            else:  # made as the track was read (on a thread), unless edited since (another Track)
                read = s.track_rows.get(t.id)
                t, r, texts = read if read is not None and read[0] is t else table_row(t, sounds)
                self._made[t.id] = (t, sounds, dict(r), texts)
        self.rows = {tid: m[2] for tid, m in self._made.items()}
        counts = dict(zip(*(a.tolist() for a in np.unique(s.segments["track_id"], return_counts=True)), strict=True))
        rows = [(t.id, t.path, t.duration_s, t.label or "", counts.get(t.id, 0), t.warning or "ok", *texts)
                for t, _sounds, _row, texts in self._made.values()]
        rows += [(None, f["path"], None, "", None, f"failed: {f['error']}") for f in s.failures]
        self.panel.set_rows(rows)

    def _labels_changed(self, changed: dict[int, str | None]) -> None:
        for tid, label in changed.items():  # the DJ filters do not read labels: no need to filter again
            if tid in self.rows:
                self.rows[tid]["label"] = label
                self._made.pop(tid, None)  # made of the Track before the edit
        self.panel.set_labels(changed)

    # -- filters -------------------------------------------------------------------------------------------
    def apply_filters(self) -> None:
        """Show only the tracks that pass the DJ filters (all rows when none is set)."""
        bar = self.panel.dj_filters
        if not bar.active():
            self.panel.set_allowed_tracks(None)
            return
        bpm, code = bar.bpm_range(), bar.key_code()
        key = parse_key(code) if code else None
        half_double = bar.half_double.isChecked()
        self.panel.set_allowed_tracks([t for t, r in self.rows.items()
                                       if keep(r, bpm=bpm, key_compatible=key, half_double=half_double)])

    def match_selected(self) -> None:
        """Filter by the selected track's tempo (± ``MATCH_BPM_PCT`` %) and the keys that mix with its key."""
        row = self.rows.get(self.panel.selected_track())
        if row is None:
            return
        bpm, key = row_bpm(row), row_key(row)
        if bpm is None and key is None:
            self.session.message.emit(f"{self.session.track_name(row['track_id'])} has no tempo or key to match")
            return
        f = MATCH_BPM_PCT / 100
        self.panel.dj_filters.set_filter(None if bpm is None else (round(bpm * (1 - f), 1), round(bpm * (1 + f), 1)),
                                         None if key is None else camelot(key))

    # -- sets ----------------------------------------------------------------------------------------------
    def map_tracks(self) -> list[int]:
        """Tracks of the segments selected on the map, in order of first appearance."""
        s, ids = self.session, np.asarray(self.map_selection(), dtype=np.int64)
        ids = ids[np.isin(ids, s.segments.get("id", ids[:0]))]  # not a segment cut again since
        return list(dict.fromkeys(s.segment_tracks(ids).tolist()))

    def build_set(self, track_ids: list[int] | None = None) -> None:
        """Order ``track_ids`` (else the table's selection, else the map's) into a set, shown when ready."""
        ids = list(dict.fromkeys(int(t) for t in track_ids or [])) or self.panel.selected_tracks()  # each once
        if len(ids) < 2:
            ids = self.map_tracks()
        s = self.session
        if len(ids) < 2 or s.lib_path is None:
            s.message.emit("select at least 2 tracks (in the library table, or with a lasso on the map) for a set")
            return
        if len(ids) > MAX_SET:
            s.message.emit(f"a set is ordered from at most {MAX_SET} tracks; {len(ids)} are selected")
            return
        open_library, generation = s.opener(), s.generation

        def plan():
            with open_library() as lib:
                return plan_set(lib, [lib.track(t) for t in ids])
        s.message.emit(f"ordering {len(ids)} tracks into a set…")
        run_in_thread(plan, lambda p: s.is_current(generation) and self._show_set(p),
                      lambda msg: s.is_current(generation) and s.message.emit(f"set: {msg}"))

    def _show_set(self, plan: dict) -> None:
        self.plan = plan
        steps = [None, *plan["steps"]]
        rows = [(r["track_id"], self.session.track_name(r["track_id"]), r["path"],
                 bpm_text(r), key_text(r), cost)  # as the library table shows them ("tag 127" without an estimate)
                for r, cost in zip(plan["tracks"], steps, strict=True)]
        similarity = plan["similarity"]
        note = "" if not similarity.startswith("none") else f"; tempo and key only ({similarity})"
        self.set_dialog.show_set(rows, f"{len(rows)} tracks, transition cost {plan['cost']:.2f} in all (the order "
                                       f"given: {plan['given_cost']:.2f}, a random order: {plan['random_cost']:.2f})"
                                       + note)
        self.set_dialog.show()
        self.set_dialog.raise_()
        self.session.message.emit("")

    def set_items(self) -> list[dict]:
        """The last set's tracks in play order, each with the cost of the transition into it."""
        if self.plan is None:
            return []
        steps = [None, *self.plan["steps"]]
        return [{"track_id": r["track_id"], "transition_cost": c}
                for r, c in zip(self.plan["tracks"], steps, strict=True)]
