"""Screenshots of every panel of the app with a library loaded, at each window size, for looking at.

    xvfb-run -a -s "-screen 0 1920x1200x24" .venv/bin/python bench/screenshots.py [LIB] [--out DIR]

Default library: the demo songs with title/artist tags (every tenth untagged, so named by its file), built once
under /tmp. Drives the real window: waits for the UMAP map, selects tracks in the library table (rings on the
map), clicks a segment (neighbours, "more like this", spectrogram), trains a small model (live curves), runs
evaluation and inspection, hums, opens the set and label dialogs; then, at each size, grabs the window with each
bottom tab in front, each dock and the dialogs into ``OUT/<W>x<H>/``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/ and tests/ helpers


def wait(app: QApplication, cond, timeout_s: float, what: str) -> None:
    end = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > end:
            raise TimeoutError(f"timed out waiting for {what}")
        app.processEvents()
        time.sleep(0.02)


def settle(app: QApplication, seconds: float = 0.5) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def hum_screens(app: QApplication, win, grab) -> None:
    """The Hum panel while "recording" (a synthetic hum of the demo's chiptune_05 fed at real-time pace, no
    microphone needed), then its results."""
    import numpy as np

    from musicemb_core.data.hum_synthesis import render_hum
    from musicemb_core.data.synthesis import melody_timeline
    from tests.gui.test_hum_panel import FakeRecorder

    seed = int(np.random.SeedSequence([0, 5]).generate_state(1)[0])  # as render_demo_corpus seeds chiptune_05
    tl = np.array(melody_timeline("chiptune", seed=seed, duration_s=20.0))[:, :3]
    sel = tl[(tl[:, 0] >= 4.0) & (tl[:, 0] < 12.0)]
    hum = render_hum(np.column_stack([sel[:, 0] - sel[0, 0], sel[:, 1:]]), seed=1, sr=48000).y
    FakeRecorder.signal = np.concatenate([np.zeros(24000, np.float32), hum.astype(np.float32)])
    panel = win.hum_panel
    panel.recorder_factory = FakeRecorder
    panel.record.setEnabled(True)
    win.docks["Hum"].raise_()
    panel.start_recording()
    length = len(FakeRecorder.signal) / 48000
    settle(app, min(6.0, length))
    grab(win.docks["Hum"], "hum_panel_recording")
    settle(app, max(0.0, length - 6.0) + 0.3)  # the whole hum, then stop
    panel.stop_recording()
    wait(app, lambda: panel.results.rowCount() > 0 or "⚠" in panel.state.text(), 600, "hum results")
    grab(win.docks["Hum"], "hum_panel_results")


ARTISTS = {"ambient": "Drift Lab", "chiptune": "8-Bit Club", "rock": "The Loud Ones", "folk": "Hedgerow Trio",
           "techno": "Unit 909"}


def tagged_demo(root: Path) -> Path:
    """The demo songs under ``root/audio``, tagged "<artist> – <Style> study N" (the tenth of each style left
    untagged), imported labelled by folder and embedded with the built-in models."""
    import mutagen.flac

    from musicemb_core.common.progress import drive
    from musicemb_core.data.library import Library
    from musicemb_core.data.synthesis import render_demo_corpus
    from musicemb_core.workflows.ingest_embed import iter_ingest_embed

    if (root / "library.sqlite").exists():
        return root
    for path, style in render_demo_corpus(root / "audio", random_state=0):
        n = int(path.stem.rsplit("_", 1)[1])
        if n < 9:
            f = mutagen.flac.FLAC(path)
            f["artist"], f["title"] = ARTISTS[style], f"{style.capitalize()} study {n + 1}"
            f.save()
    with Library(root, create=True) as lib:
        drive(iter_ingest_embed(lib, [root / "audio"], labels="folders"))
    return root


def prepare(app: QApplication, win, *, jobs: bool) -> None:
    """Fill every panel: map, selection, neighbours, training, evaluation, inspection, hum, dialogs."""
    ctl, mp, lp = win.map_controller, win.map_panel, win.library_panel
    wait(app, lambda: ctl.shown == "umap", 600, "the UMAP map")
    settle(app)
    mp.colour.setCurrentText("cluster")
    wait(app, lambda: "cluster" in ctl._extra, 300, "clusters")
    mp.colour.setCurrentText("label")
    if jobs:
        tp = win.training_panel
        win.docks["Training"].raise_()
        for name, value in (("strategy", "supervised"), ("epochs", 3), ("patience", 0)):
            tp.train_form.set_value(name, value)
        tp.model_form.set_value("arch", "cnn2")
        tp.name.setText("screenshot-cnn2")
        tp.confirm_replace = lambda name: True  # a rerun replaces the last run's model without a modal question
        tp.start_training()
        wait(app, lambda: len(tp.curves.series_data("train loss")[0]) > 5, 300, "training curves")
        wait(app, lambda: tp.start.isEnabled(), 900, "training to end")
        ep = win.evaluation_panel
        ep.reid.setValue(50)
        ep.start()
        wait(app, lambda: ep.result is not None, 900, "evaluation")
        win.inspection.run()
        wait(app, lambda: win.inspection_panel.run.isEnabled(), 900, "inspection")
        win.inspection_panel.table.selectRow(0)
    lp.table.selectRow(3)  # the table's selection rings its track on the map
    seg_id = int(ctl.ids[len(ctl.ids) // 3])
    mp.select_segment(seg_id)
    wait(app, lambda: mp.neighbours.rowCount() > 0 and mp.spectrogram.data().size > 0 and mp.similar.rowCount() > 0,
         60, "neighbours and more like this")


def grab_all(app: QApplication, win, out: Path, size: tuple[int, int], grab) -> None:
    """The window with each bottom tab in front, each dock, the map, the dialogs: at ``size``."""
    from musicemb_gui.dock_layout import fit_docks

    win.showNormal()
    win.resize(*size)
    settle(app, 0.5)
    fit_docks(win, win.docks)  # as a first run at this size arranges them
    settle(app, 1.0)
    out.mkdir(parents=True, exist_ok=True)
    for tab in ("Training", "Evaluation", "Inspection", "Hum"):
        win.docks[tab].raise_()
        grab(win, out / f"window_{tab.lower()}")
        grab(win.docks[tab], out / f"dock_{tab.lower()}")
    for name in ("Library", "Jobs"):
        grab(win.docks[name], out / f"dock_{name.lower()}")
    grab(win.map_panel, out / "map_panel")
    win.map_panel.lists.setCurrentIndex(1)
    grab(win.map_panel, out / "map_panel_more_like_this")
    win.map_panel.lists.setCurrentIndex(0)
    set_dialog = win.library_controller.set_dialog
    if set_dialog.isVisible():
        grab(set_dialog, out / "dialog_set")
    mp = win.map_panel
    mp._on_selection(win.map_controller.ids[:40])  # as a lasso of 40 points
    mp._label_selection()
    settle(app)
    grab(mp.label_dialog, out / "dialog_label")
    mp.label_dialog.reject()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("lib", nargs="?", help="library (default: the tagged demo library under /tmp, built if absent)")
    ap.add_argument("--out", default="bench/results/screenshots")
    ap.add_argument("--sizes", default="1280x720,1920x1200", help="window sizes, WxH, comma-separated")
    ap.add_argument("--skip-jobs", action="store_true", help="no training/evaluation/inspection runs")
    a = ap.parse_args()

    from musicemb_gui.main_window import MainWindow

    lib = Path(a.lib) if a.lib else tagged_demo(Path(tempfile.gettempdir()) / "musicemb-screenshots-demo")
    out = Path(a.out)
    sizes = [tuple(int(v) for v in s.split("x")) for s in a.sizes.split(",")]
    app = QApplication.instance() or QApplication(sys.argv[:1])
    settings = QSettings(str(Path(tempfile.mkdtemp()) / "s.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings)
    win.resize(*sizes[-1])
    win.show()
    assert win.open_library(lib), f"cannot open {lib}"

    def grab(widget, path: Path) -> None:
        settle(app, 0.3)
        widget.grab().save(str(path.with_suffix(".png")))
        print(f"saved {path}.png")

    prepare(app, win, jobs=not a.skip_jobs)
    (out / "hum").mkdir(parents=True, exist_ok=True)
    hum_screens(app, win, lambda w, name: grab(w, out / "hum" / name))
    win.library_controller.build_set(win.library_panel.shown_tracks()[:12])
    wait(app, lambda: win.library_controller.set_dialog.isVisible(), 120, "the set dialog")
    for w, h in sizes:
        grab_all(app, win, out / f"{w}x{h}", (w, h), grab)
    win.jobs.cancel_all()
    win.jobs.wait(30000)
    return 0


if __name__ == "__main__":
    sys.exit(main())
