"""Screenshots of every panel of the app with a library loaded (default: the demo library), for looking at.

    xvfb-run -a -s "-screen 0 1920x1200x24" .venv/bin/python bench/screenshots.py [LIB] [--out DIR]

Drives the real window: waits for the UMAP map, clicks a segment (neighbours + spectrogram), trains a small
model for two epochs (live curves), runs evaluation and inspection, then grabs the window and each dock.
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("lib", nargs="?", help="library (default: the demo library, built if absent)")
    ap.add_argument("--out", default="bench/results/screenshots")
    ap.add_argument("--skip-jobs", action="store_true", help="no training/evaluation/inspection runs")
    a = ap.parse_args()

    from musicemb_core.common.progress import drive
    from musicemb_core.workflows.demo import default_demo_path, iter_build_demo
    from musicemb_gui.main_window import MainWindow

    lib = Path(a.lib) if a.lib else default_demo_path()
    if not (lib / "library.sqlite").exists():
        drive(iter_build_demo(lib))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    settings = QSettings(str(Path(tempfile.mkdtemp()) / "s.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings)
    win.resize(1600, 1000)
    win.show()
    assert win.open_library(lib), f"cannot open {lib}"
    ctl, mp = win.map_controller, win.map_panel
    wait(app, lambda: ctl.shown == "umap", 600, "the UMAP map")
    settle(app)

    def grab(widget, name: str) -> None:
        settle(app, 0.3)
        widget.grab().save(str(out / f"{name}.png"))
        print(f"saved {out / name}.png")

    seg_id = int(ctl.ids[len(ctl.ids) // 3])
    mp.select_segment(seg_id)
    wait(app, lambda: mp.neighbours.rowCount() > 0 and mp.spectrogram.data().size > 0 and mp.similar.rowCount() > 0,
         60, "neighbours and more like this")
    grab(win, "main_window")
    grab(mp, "map_panel")
    grab(win.library_panel, "library_panel")
    mp.colour.setCurrentText("cluster")
    wait(app, lambda: "cluster" in ctl._extra, 300, "clusters")
    grab(mp.scatter, "map_by_cluster")
    mp.colour.setCurrentText("label")

    if not a.skip_jobs:
        tp = win.training_panel
        win.docks["Training"].raise_()
        for name, value in (("strategy", "supervised"), ("epochs", 3), ("patience", 0)):
            tp.train_form.set_value(name, value)
        tp.model_form.set_value("arch", "cnn2")
        tp.name.setText("screenshot-cnn2")
        tp.start_training()
        wait(app, lambda: len(tp.curves.series_data("train loss")[0]) > 5, 300, "training curves")
        grab(win.jobs_panel, "jobs_panel")
        wait(app, lambda: tp.start.isEnabled(), 900, "training to end")
        grab(win.docks["Training"], "training_panel")

        ep = win.evaluation_panel
        win.docks["Evaluation"].raise_()
        ep.reid.setValue(50)
        ep.start()
        wait(app, lambda: ep.result is not None, 900, "evaluation")
        grab(win.docks["Evaluation"], "evaluation_panel")

        win.docks["Inspection"].raise_()
        win.inspection.run()
        wait(app, lambda: win.inspection_panel.run.isEnabled(), 900, "inspection")
        grab(win.docks["Inspection"], "inspection_panel")
        mp.colour.setCurrentText("finding")
        settle(app, 1.0)
        grab(mp.scatter, "map_by_finding")
    hum_screens(app, win, grab)
    grab(win, "main_window_end")
    win.jobs.cancel_all()
    win.jobs.wait(30000)
    return 0


if __name__ == "__main__":
    sys.exit(main())
