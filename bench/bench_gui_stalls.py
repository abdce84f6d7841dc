"""How long the app's GUI thread stalls while it works: nine songs dropped on a new library are imported (both
built-in spaces embedded in the import's own decode), then the PCA and UMAP maps are made, all in background jobs.
A 50 ms timer on the GUI thread ticks throughout; a gap between ticks is how long the window could not answer.
The baseline is the same window idle for as long, in the same run (these machines are shared and noisy).

    .venv/bin/python bench/bench_gui_stalls.py [--repeats 3]

Writes bench/results/gui_stalls.json and .md. The tests only check that the window never freezes for half a
second (tests/gui/test_app_flow.py); the finer figure is measured here.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
from PySide6.QtCore import QEventLoop, QSettings, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from bench.common import write_results  # noqa: E402
from musicemb_core.data.library import Library  # noqa: E402
from musicemb_core.data.synthesis import render_song  # noqa: E402

SR = 16000
STYLES = ("rock", "ambient", "techno")


def songs(root: Path) -> Path:
    """Three styles x three 9 s songs, one folder per style."""
    for style in STYLES:
        (root / style).mkdir(parents=True)
        for seed in range(3):
            sf.write(root / style / f"{style}{seed}.wav", render_song(style, seed=seed, duration_s=9.0, sr=SR), SR)
    return root


def ticking(until, timeout_s: float) -> np.ndarray:
    """Gaps (s) between the ticks of a 50 ms GUI-thread timer, run in the event loop until ``until()``."""
    ticks: list[float] = []
    loop = QEventLoop()
    timer = QTimer(interval=50)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()) or (until() and loop.quit()))
    end = time.perf_counter() + timeout_s
    guard = QTimer(interval=500)
    guard.timeout.connect(lambda: time.perf_counter() > end and loop.quit())
    gc.collect()
    gc.freeze()
    timer.start()
    guard.start()
    loop.exec()
    timer.stop()
    guard.stop()
    gc.unfreeze()
    return np.diff(ticks)


def summary(what: str, gaps: np.ndarray, seconds: float) -> dict:
    return {"what": what, "seconds": round(seconds, 1), "ticks": len(gaps),
            "max_gap_ms": round(float(gaps.max()) * 1000, 1), "p99_gap_ms": round(float(np.percentile(gaps, 99)) * 1000, 1),
            "gaps_over_100ms": int((gaps >= 0.1).sum())}


def run_once(work: Path, folder: Path, r: int) -> list[dict]:
    """One window, one new library: the drop's jobs timed, then the idle window for as long."""
    from musicemb_gui.main_window import MainWindow

    win = MainWindow(QSettings(str(work / f"s{r}.ini"), QSettings.Format.IniFormat))
    win.map_panel.method.setCurrentText("UMAP")  # the app's default: its child process is part of the job
    win.resize(1600, 1000)
    win.show()
    Library(work / f"lib{r}", create=True).close()
    assert win.open_library(work / f"lib{r}")
    ticking(lambda: False, 1.0)  # the first paint
    jobs, ended = [], []
    win.jobs.jobAdded.connect(jobs.append)
    win.jobs.jobEnded.connect(ended.append)
    t0 = time.perf_counter()
    win.library_panel.addPaths.emit([str(folder)])
    busy = ticking(lambda: len(ended) >= 3 and len(ended) == len(jobs), 300.0)
    seconds = time.perf_counter() - t0
    assert [j.name for j in jobs] == ["import 1 item(s)", "PCA map", "UMAP map"], [j.name for j in jobs]
    idle = ticking(lambda: False, seconds)
    win.close()
    return [summary(f"run {r + 1}: import + embed + maps", busy, seconds),
            summary(f"run {r + 1}: idle, as long (baseline)", idle, seconds)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("musicemb-bench")
    work = Path(tempfile.mkdtemp(prefix="musicemb-gui-stalls-"))
    folder = songs(work / "songs")
    rows = [row for r in range(args.repeats) for row in run_once(work, folder, r)]
    busy_max = [x["max_gap_ms"] for x in rows[::2]]
    idle_max = [x["max_gap_ms"] for x in rows[1::2]]
    write_results("gui_stalls", rows, notes=(
        f"Longest GUI-thread gap while working / idle, median over {args.repeats} runs: "
        f"{np.median(busy_max):.0f} / {np.median(idle_max):.0f} ms "
        f"(ratio {np.median(busy_max) / np.median(idle_max):.2f}). A 50 ms timer's ticks; offscreen Qt."))


if __name__ == "__main__":
    main()
