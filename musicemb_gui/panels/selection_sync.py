"""One selection for the library table and the map: rows selected in the table ring their tracks' points on the
map (and become the map's selection, ready to label); a box, lasso or click on the map selects its tracks' rows in
the table. Neither echoes back: the table does not signal a selection it was given, and the map is told through
calls that emit nothing."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject

from musicemb_gui.panels.library_panel import LibraryPanel
from musicemb_gui.panels.map_panel import MapPanel
from musicemb_gui.session import Session


class SelectionSync(QObject):
    def __init__(self, session: Session, library: LibraryPanel, map_panel: MapPanel):
        super().__init__()
        self.session, self.library, self.map = session, library, map_panel
        library.tracksSelected.connect(self.from_table)
        map_panel.scatter.selectionChanged.connect(self.from_map)
        map_panel.scatter.pointClicked.connect(lambda seg_id: self.from_map([seg_id]))

    def _tracks_of(self, seg_ids) -> np.ndarray:
        """The track of each segment, -1 for one the open library does not know."""
        seg, known = np.asarray(seg_ids, dtype=np.int64), self.session.segments.get("id", np.zeros(0, np.int64))
        if not len(seg) or not len(known):
            return np.full(len(seg), -1, dtype=np.int64)
        order = np.argsort(known, kind="stable")  # vectorised: a map holds up to a million points
        rows = order[np.searchsorted(known, seg, sorter=order).clip(0, len(known) - 1)]
        return np.where(known[rows] == seg, self.session.segments["track_id"][rows], -1).astype(np.int64)

    def from_table(self, track_ids: list[int]) -> None:
        """Select the map's points of these tracks."""
        ids = self.map.ctl.ids
        self.map.show_selection(ids[np.isin(self._tracks_of(ids), track_ids)] if len(ids) else ids)

    def from_map(self, seg_ids) -> None:
        """Select the table rows of these segments' tracks."""
        self.library.select_tracks(t for t in self._tracks_of(seg_ids).tolist() if t >= 0)
