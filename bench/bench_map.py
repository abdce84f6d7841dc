"""Map widget speed: set + first draw of 200k and 1M points, pan/zoom repaints and click-to-signal latency
of ScatterView, against the naive approach in the same run (one pyqtgraph ScatterPlotItem, per-point brushes,
outline).

    .venv/bin/python bench/bench_map.py [--xvfb on|off] [--frames 40] [--clicks 100]

Qt runs offscreen (software raster) unless --xvfb on (needs Xvfb and the xcb libraries, see DESIGN.md).
Writes bench/results/map.json and map.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PALETTE = ["#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00", "#ffff33", "#a65628", "#f781bf", "#999999",
           "#66c2a5", "#fc8d62", "#8da0cb"]
SIZE = (1000, 750)
NOTES = """Qt platform {platform}, window {w}x{h}, {k} categories, point size 4 px, {frames} frames a column.
pan_full: pans with every point in view; pan_4x: drag-like pan at 4x zoom (3% of the view a frame);
jumps: random points at random zooms 1x-40x (worst case: points reloaded). A frame = set range + LOD refresh
(ScatterView; its timer runs it at most every 30 ms) + synchronous repaint; medians.
lod_refresh: the refresh alone (median, max). click: QTest click on a random point -> pointClicked
(naive: ScatterPlotItem.sigClicked), median."""


def blobs(n: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """UMAP-like layout: one Gaussian blob of varied spread per category, plus 5% scattered points."""
    rng = np.random.default_rng(seed)
    cat = rng.integers(0, len(PALETTE), n)
    centres = rng.uniform(-10, 10, (len(PALETTE), 2))
    spread = rng.uniform(0.5, 2.0, len(PALETTE))
    xy = centres[cat] + rng.normal(0, 1, (n, 2)) * spread[cat, None]
    noise = rng.random(n) < 0.05
    xy[noise] = rng.uniform(-14, 14, (noise.sum(), 2))
    return xy.astype(np.float32), cat


def views(xy: np.ndarray, frames: int, *, seed: int = 1) -> dict[str, list]:
    """View ranges (centre, half-size): pans with every point in view, a drag-like pan at 4x zoom (3% of the
    view per frame), and jumps to random points at random zooms (1x to 40x, the worst case for reloading)."""
    rng = np.random.default_rng(seed)
    lo, hi = xy.min(0).astype(float), xy.max(0).astype(float)
    c, half = (lo + hi) / 2, (hi - lo) / 2 * 1.02
    full = [(c + rng.uniform(-0.05, 0.05, 2) * half * 2, half) for _ in range(frames)]
    step = np.array([0.06, 0.03]) * half / 4
    drag = [(c - step * frames / 2 + step * i, half / 4) for i in range(frames)]
    zooms = np.geomspace(1, 40, frames)
    rng.shuffle(zooms)
    jumps = [(xy[rng.integers(len(xy))].astype(float), half / z) for z in zooms]
    return {"full": full, "drag4x": drag, "jumps": jumps}


def time_frames(app, plot, vb, ranges, refresh=None) -> list[float]:
    """Seconds per view change: set the range, run the LOD refresh (what the debounce timer does), repaint."""
    out = []
    for centre, half in ranges:
        t0 = time.perf_counter()
        vb.setRange(xRange=(centre[0] - half[0], centre[0] + half[0]),
                    yRange=(centre[1] - half[1], centre[1] + half[1]), padding=0)
        if refresh is not None:
            refresh()
        plot.viewport().repaint()
        out.append(time.perf_counter() - t0)
        app.processEvents()
    return out


def time_clicks(app, plot, vb, signal, xy: np.ndarray, clicks: int, *, seed: int = 2) -> tuple[list, int]:
    """Seconds from sending a left click on a random point to ``signal``; also how many clicks hit."""
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtTest import QTest

    got: list[float] = []
    slot = lambda *_: got.append(time.perf_counter())  # noqa: E731
    signal.connect(slot)
    rng = np.random.default_rng(seed)
    lat, hits = [], 0
    for k in rng.choice(len(xy), clicks, replace=False):
        app.processEvents()
        pos = plot.mapFromScene(vb.mapViewToScene(QPointF(*xy[k].astype(float))))
        got.clear()
        t0 = time.perf_counter()
        QTest.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pos)
        if got:
            hits += 1
            lat.append(got[0] - t0)
        time.sleep(0.002)
    signal.disconnect(slot)
    return lat, hits


def median_ms(values: list[float]) -> float:
    return 1000 * statistics.median(values) if values else float("nan")


def bench_scatter_view(app, n: int, args) -> dict:
    from musicemb_gui.widgets.scatter_view import ScatterView

    xy, cat = blobs(n)
    view = ScatterView()
    view.resize(*SIZE)
    view.show()
    app.processEvents()
    t0 = time.perf_counter()
    view.set_points(xy, np.arange(n, dtype=np.int64), cat, PALETTE)
    t1 = time.perf_counter()
    view.plot.viewport().repaint()
    t2 = time.perf_counter()
    refreshes: list[float] = []

    def refresh():
        t = time.perf_counter()
        view.refresh()
        refreshes.append(time.perf_counter() - t)

    frames, modes = {}, {}
    for name, ranges in views(xy, args.frames).items():
        frames[name] = time_frames(app, view.plot, view.vb, ranges, refresh)
        modes[name] = "density" if view.image_item.isVisible() else "points"
    view.reset_view()
    view.refresh()
    click_t, hits = time_clicks(app, view.plot, view.vb, view.pointClicked, xy, args.clicks)
    view.close()
    return row(f"ScatterView (full view: {modes['full']}, 4x: {modes['drag4x']})", n, t1 - t0, t2 - t1,
               frames, click_t, hits, args.clicks, refreshes=refreshes)


def bench_naive(app, n: int, args) -> dict:
    import pyqtgraph as pg

    xy, cat = blobs(n)
    plot = pg.PlotWidget()
    plot.resize(*SIZE)
    plot.show()
    app.processEvents()
    brushes = [pg.mkBrush(c) for c in PALETTE]
    t0 = time.perf_counter()
    item = pg.ScatterPlotItem(x=xy[:, 0], y=xy[:, 1], size=4, brush=[brushes[c] for c in cat])
    plot.addItem(item)
    t1 = time.perf_counter()
    plot.viewport().repaint()
    t2 = time.perf_counter()
    vb = plot.getPlotItem().getViewBox()
    frames = {name: time_frames(app, plot, vb, ranges) for name, ranges in views(xy, args.frames).items()}
    vb.autoRange(padding=0.01)
    clicks = max(5, args.clicks // 5)
    click_t, hits = time_clicks(app, plot, vb, item.sigClicked, xy, clicks)
    plot.close()
    return row("naive ScatterPlotItem (per-point brushes, outline)", n, t1 - t0, t2 - t1, frames, click_t,
               hits, clicks, refreshes=[])


def row(name, n, set_s, draw_s, frames, click_t, hits, clicks, *, refreshes) -> dict:
    full, drag = median_ms(frames["full"]), median_ms(frames["drag4x"])
    return {"approach": name, "points": n, "set_s": set_s, "first_draw_s": draw_s,
            "pan_full_ms": full, "fps_full": 1000 / full, "pan_4x_ms": drag, "fps_4x": 1000 / drag,
            "jumps_ms": median_ms(frames["jumps"]), "lod_refresh_ms": median_ms(refreshes),
            "lod_refresh_max_ms": 1000 * max(refreshes, default=float("nan")),
            "click_ms": median_ms(click_t), "clicks_hit": f"{hits}/{clicks}"}


class _TimingBackend:
    """Audio backend that only notes that playback started (the bench measures up to the player)."""

    class _Handle:
        def close(self):
            pass

    def start(self, data, sr, on_finished):
        return self._Handle()


def bench_app_clicks(app, lib: Path, clicks: int) -> list[dict]:
    """The whole app on ``lib``: click a map point -> the player starts that segment, cold (decoded after the
    click) and warm (decoded ahead on hover, as when the pointer rests on a point)."""
    import tempfile

    from PySide6.QtCore import QSettings

    from musicemb_gui.main_window import MainWindow
    from musicemb_gui.widgets.audio_player import AudioPlayer

    settings = QSettings(str(Path(tempfile.mkdtemp()) / "s.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings, player=AudioPlayer(backend=_TimingBackend()))
    win.resize(*SIZE)
    win.show()
    win.open_library(lib)
    ctl, view = win.map_controller, win.map_panel.scatter
    end = time.monotonic() + 600
    while ctl.shown != "umap" and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)
    xy = view._xy
    rows = []
    for mode in ("cold", "warm"):
        started: list[float] = []
        win.player.started.connect(lambda _k, got=started: got.append(time.perf_counter()))
        lat = []
        rng = np.random.default_rng(5)
        for k in rng.choice(len(xy), min(clicks, len(xy)), replace=False):
            seg = int(view._ids[k])
            win.player.cache.clear()
            if mode == "warm":
                ctl.prefetch(seg)
                while win.player.cache.peek(seg) is None:
                    app.processEvents()
            started.clear()
            t0 = time.perf_counter()
            view.pointClicked.emit(seg)  # the click hit-test itself is timed above
            while not started and time.perf_counter() - t0 < 5:
                app.processEvents()
            if started:
                lat.append(started[0] - t0)
            for _ in range(20):  # let the neighbour / spectrogram work of this click finish
                app.processEvents()
                time.sleep(0.005)
        rows.append({"what": f"app click -> player ({mode})", "n": len(xy), "clicks": len(lat),
                     "median_ms": median_ms(lat), "p90_ms": round(1000 * float(np.percentile(lat, 90)), 2)})
        print(rows[-1], file=sys.stderr)
    win.jobs.cancel_all()
    win.jobs.wait(30000)
    win.close()
    return rows


def start_xvfb() -> subprocess.Popen:
    if shutil.which("Xvfb") is None:
        raise SystemExit("--xvfb on needs Xvfb: apt-get install -y xvfb xauth libxcb-icccm4 libxcb-keysyms1")
    display = ":97"
    proc = subprocess.Popen(["Xvfb", display, "-screen", "0", "1920x1080x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    if proc.poll() is not None:
        raise SystemExit(f"Xvfb exited at once (is display {display} taken?)")
    os.environ["DISPLAY"], os.environ["QT_QPA_PLATFORM"] = display, "xcb"
    return proc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--xvfb", choices=["on", "off"], default="off")
    ap.add_argument("--frames", type=int, default=40, help="view changes per pan/zoom measurement")
    ap.add_argument("--clicks", type=int, default=100)
    ap.add_argument("--sizes", type=int, nargs="+", default=[200_000, 1_000_000])
    ap.add_argument("--lib", help="library for the app click-to-player timing (default: the demo library)")
    args = ap.parse_args()
    xvfb = start_xvfb() if args.xvfb == "on" else None
    if xvfb is None:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    try:
        from PySide6.QtWidgets import QApplication

        from bench.common import write_results

        app = QApplication.instance() or QApplication([])
        rows = [bench_naive(app, 200_000, args)]
        print(rows[-1], file=sys.stderr)
        for n in args.sizes:
            rows.append(bench_scatter_view(app, n, args))
            print(rows[-1], file=sys.stderr)
        from musicemb_core.workflows.demo import default_demo_path

        write_results("click_to_player", bench_app_clicks(app, Path(args.lib or default_demo_path()), args.clicks),
                      notes="Segment id from the map's click signal to AudioPlayer.started (decode + play call); "
                            "cold: nothing cached; warm: decoded ahead on hover.")
        platform = os.environ["QT_QPA_PLATFORM"]
        write_results("map", rows, notes=NOTES.format(platform=platform, w=SIZE[0], h=SIZE[1],
                                                      k=len(PALETTE), frames=args.frames))
    finally:
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait()


if __name__ == "__main__":
    main()
