"""The app with a large library: how long it takes, and how long the window is frozen meanwhile (the longest gap
between the ticks of a 10 ms timer; reads on a thread let the window's events go on), when it opens a library of
20,000 tracks, when a label is edited, when the library table is filled, sorted and filtered, and when the library
is read again after an import.

    .venv/bin/python bench/bench_library_ui.py [--tracks 20000]

The catalogue is made once (tracks of 3-5 minutes, no audio: the table, the edits and the segment tables are
what is timed; opening is timed without and with the segments snapshot a first open writes) and kept in bench/results/ui_library. Qt runs offscreen. Writes bench/results/library_ui.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from musicemb_core.audio.segment import window_starts  # noqa: E402
from musicemb_core.common.config import SegmentConfig  # noqa: E402
from musicemb_core.data import library as library_module  # noqa: E402
from musicemb_core.data.library import Library  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
LABELS = ["house", "techno", "disco", "ambient", "drum and bass", "", "hip hop", "jazz"]


FIELDS = {"size": 8_000_000, "mtime": 1.0, "duration_s": 240.0, "sample_rate": 44100, "channels": 2, "format": "MP3",
          "label": None, "tags": {}, "warning": ""}


def catalogue(root: Path, n: int) -> Path:
    """A library of ``n`` tracks with labels, tempo and key (made once)."""
    if (root / "done").exists():
        return root
    rng = np.random.default_rng(0)
    cfg = SegmentConfig()
    with Library(root, create=True) as lib:
        for i in range(n):
            tid = lib.save_track({
                "path": f"/music/crate {i % 40}/artist {i % 700} - title {i}.mp3", "content_hash": f"h{i}",
                "size": 8_000_000, "mtime": 1.0, "duration_s": float(rng.uniform(180, 300)), "sample_rate": 44100,
                "channels": 2, "format": "MP3", "label": LABELS[i % len(LABELS)] or None,
                "tags": {"artist": f"artist {i % 700}", "title": f"title {i}"}, "warning": ""},
                cfg=cfg, starts_of=window_starts)
            lib.set_analysis(tid, bpm=float(rng.uniform(90, 140)), bpm_confidence=0.9, key="A minor",
                             key_confidence=0.8, analysis={})
    (root / "done").touch()
    return root


def frozen(app, fn) -> tuple[float, float]:
    """(seconds ``fn`` plus the events it posted take, the longest time the window could not answer meanwhile: the
    longest gap between ticks of a 10 ms timer; a read on a thread lets its events go on)."""
    from PySide6.QtCore import QTimer

    ticks = [time.perf_counter()]
    timer = QTimer(interval=10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    t0 = time.perf_counter()
    fn()
    app.processEvents()
    end = time.perf_counter()
    timer.stop()
    return end - t0, max(b - a for a, b in zip(ticks, [*ticks[1:], end], strict=True))


def timed(app, fns) -> list[tuple[float, float]]:
    """:func:`frozen` of each of ``fns``."""
    return [frozen(app, fn) for fn in fns]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tracks", type=int, default=20_000)
    ap.add_argument("--edits", type=int, default=5)
    args = ap.parse_args()
    os.environ.setdefault("MUSICEMB_HOME", str(RESULTS / "ui_home"))
    t0 = time.perf_counter()
    root = catalogue(RESULTS / f"ui_library_{args.tracks}", args.tracks)
    made = time.perf_counter() - t0

    from PySide6.QtCore import QSettings, Qt
    from PySide6.QtWidgets import QApplication

    from musicemb_gui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    win = MainWindow(QSettings(str(RESULTS / "ui_settings.ini"), QSettings.Format.IniFormat))
    win.resize(1600, 1000)
    win.show()
    app.processEvents()
    (root / library_module.SEGMENTS_SNAPSHOT).unlink(missing_ok=True)
    opened = timed(app, [lambda: win.open_library(root)])  # every segment read from the catalogue
    library_module._SEGMENTS.clear()  # as a new process: the segments from the snapshot the first open wrote
    reopened = timed(app, [lambda: win.open_library(root)])
    rows = win.library_panel.proxy.rowCount()
    fill = timed(app, [win.library_controller.fill_table] * 3)
    tid = win.library_panel.track_id_at(0)
    edit = timed(app, [lambda i=i: win.session.set_label(tid, f"edited {i}") for i in range(args.edits)])
    assert win.session.tracks[tid].label == f"edited {args.edits - 1}"
    panel = win.library_panel
    sort = timed(app, [lambda c=c: panel.table.sortByColumn(c, Qt.SortOrder.DescendingOrder) for c in (2, 5, 0)])
    typed = timed(app, [lambda t=t: panel.filter.setText(t) for t in ("t", "ti", "tit", "title 1", "")])
    kept, whole = [], []
    for i in range(3):  # an import of one track ended: the window reads the library again
        with Library(root) as lib:
            added = lib.save_track({**FIELDS, "path": f"/music/new/track {i}.mp3", "content_hash": f"new{i}"},
                                   cfg=SegmentConfig(), starts_of=window_starts)
        kept.append(frozen(app, win.session.refresh))  # read since: the new track's segments, rows made: its own
        with Library(root) as lib:
            lib.remove_tracks([added])
        win.session.refresh()
        library_module._SEGMENTS.clear()  # nothing kept, as before this was: all 1.6M segments read, all rows made
        (root / library_module.SEGMENTS_SNAPSHOT).unlink(missing_ok=True)
        win.library_controller._made, win.library_panel.model._made = {}, {}
        with Library(root) as lib:
            added = lib.save_track({**FIELDS, "path": f"/music/new/track {i}.mp3", "content_hash": f"new{i}"},
                                   cfg=SegmentConfig(), starts_of=window_starts)
        whole.append(frozen(app, win.session.refresh))
        with Library(root) as lib:
            lib.remove_tracks([added])
        win.session.refresh()

    def fig(runs: list[tuple[float, float]]) -> dict:
        took, gaps = zip(*runs, strict=True)
        return {"took (s)": round(statistics.median(took), 3), "window frozen (s)": round(statistics.median(gaps), 3)}

    result = {"tracks": args.tracks, "rows shown": rows, "segments": int(len(win.session.segments["id"])),
              "catalogue made (s)": round(made, 1), "open library, no segments snapshot": fig(opened),
              "open library again in a new process, from the snapshot": fig(reopened),
              "fill the table (median of 3)": fig(fill),
              f"label edit (median of {args.edits})": fig(edit),
              "sort by a column (median of 3)": fig(sort),
              "filter, one key typed (median of 5)": fig(typed),
              "read again after a one-track import (median of 3)": fig(kept),
              "... the same with nothing kept (every segment read, every row made; median of 3)": fig(whole)}
    win.close()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "library_ui.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
