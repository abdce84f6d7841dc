"""``musicemb-gui --selftest``: prove an install (source or bundle) works end to end, without a display or sound card.

Opens the main window offscreen on the demo library (built first when absent), clicks a point of the map and checks
that its segment reaches the audio player, its neighbours and its spectrogram; embeds one second of audio with the
default model. Prints one line per check; returns 0 when all pass.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF, QSettings, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication


class _Checks:
    def __init__(self, out):
        self.out, self.failed, self.t0 = out, [], time.perf_counter()

    def __call__(self, name: str, ok: bool, detail: str) -> bool:
        print(f"selftest: {'ok  ' if ok else 'FAIL'} {name:<10} {detail} "
              f"[{time.perf_counter() - self.t0:.1f} s]", file=self.out, flush=True)
        if not ok:
            self.failed.append(name)
        return ok


def _wait(app, cond: Callable[[], bool], timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > end:
            return False
        app.processEvents()
        time.sleep(0.01)
    return True


def run_selftest(lib: str | Path | None = None, *, timeout_s: float = 30.0, out=None) -> int:
    """Run the checks on ``lib`` (default: the demo library, built when absent); 0 if all pass, else 1."""
    check = _Checks(out or sys.stdout)
    try:
        _run_checks(check, lib, timeout_s)
    except Exception as e:  # a broken install shows up here (missing module, library, plugin): report, not crash
        check("error", False, f"{type(e).__name__}: {e}\n{traceback.format_exc()}")
    print(f"selftest: {'FAILED: ' + ', '.join(check.failed) if check.failed else 'all checks passed'}",
          file=check.out, flush=True)
    return 1 if check.failed else 0


def _run_checks(check: _Checks, lib: str | Path | None, timeout_s: float) -> None:
    os.environ["QT_QPA_PLATFORM"] = "offscreen"  # read when the QApplication is made, below
    from musicemb_core.resources import default_model_dir, package_version, resources_dir

    app = QApplication.instance() or QApplication(["musicemb-gui"])
    res = resources_dir()
    check("version", True, f"musicemb {package_version()}, Qt platform {app.platformName()!r}, "
          f"{'bundle' if getattr(sys, 'frozen', False) else 'python ' + sys.version.split()[0]}")
    icon, model = res / "icons" / "musicemb-256.png", default_model_dir() / "config.json"
    if not check("resources", icon.is_file() and model.is_file(), f"{res} (icon {icon.is_file()}, "
                 f"default model {model.is_file()})"):
        return
    if lib is not None:
        found = (Path(lib) / "library.sqlite").is_file()
        if not check("library", found, f"{lib}: {'found' if found else 'no library.sqlite there'}"):
            return
    from musicemb_core.common.progress import drive  # torch and the window's modules: after the quick checks
    from musicemb_core.inference import Embedder
    from musicemb_core.workflows.demo import default_demo_path, iter_build_demo
    from musicemb_gui.main_window import MainWindow

    if lib is None:
        lib = default_demo_path()
        if not (lib / "library.sqlite").exists():
            t = time.perf_counter()
            drive(iter_build_demo(lib))
            check("demo", True, f"built {lib} in {time.perf_counter() - t:.1f} s")

    with tempfile.TemporaryDirectory(prefix="musicemb-selftest-") as tmp:
        settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat)  # the user's stay as they are
        win = MainWindow(settings)
        try:
            _window_checks(app, win, Path(lib), check, timeout_s)
        finally:
            win.close()
            win.jobs.wait(10000)
            app.processEvents()

    emb = Embedder(default_model_dir())
    t = np.arange(emb.sr, dtype=np.float32) / emb.sr
    v = emb(np.stack([0.3 * np.sin(2 * np.pi * f * t) for f in (220.0, 880.0)]))
    cos = float(v[0] @ v[1] / (np.linalg.norm(v[0]) * np.linalg.norm(v[1]) + 1e-12))
    check("embed", v.shape == (2, emb.encoder.dim) and bool(np.isfinite(v).all()) and cos < 0.9999,
          f"1 s at {emb.sr} Hz -> {v.shape[1]}-d vectors, cosine(220 Hz, 880 Hz) = {cos:.3f}")


def _window_checks(app, win, lib: Path, check: _Checks, timeout_s: float) -> None:
    got: dict[str, object] = {}
    ctl, panel = win.map_controller, win.map_panel
    ctl.mapReady.connect(lambda ids, xy, method: got.setdefault("map", (ids, xy, method)))
    ctl.neighboursReady.connect(lambda src, rows: got.setdefault("neighbours", rows))
    ctl.spectrogramReady.connect(lambda seg, S, cfg, title: got.setdefault("spectrogram", S.shape))
    panel.scatter.pointClicked.connect(lambda seg: got.setdefault("clicked", seg))
    panel.method.setCurrentText("PCA")  # PCA is instant; UMAP would be a background fit
    win.show()
    if not check("window", win.open_library(lib), f"opened {lib}: {win.statusBar().currentMessage()}"):
        return
    if not check("map", _wait(app, lambda: "map" in got, timeout_s),
                 "{} map of {} segments".format(*((got["map"][2], len(got["map"][0])) if "map" in got else
                                                  ("no", 0)))):
        return
    ids, xy, _ = got["map"]
    k = int(np.argmin(np.linalg.norm(xy - np.median(xy, 0), axis=1)))  # a point inside the view
    app.processEvents()
    sc = panel.scatter
    pos = sc.plot.mapFromScene(sc.vb.mapViewToScene(QPointF(float(xy[k, 0]), float(xy[k, 1]))))
    QTest.mouseClick(sc.plot.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pos)
    seg = got.get("clicked")
    heard = _wait(app, lambda: seg is not None and win.player.last_key == seg, timeout_s)
    check("click", heard, f"clicked segment {seg} (aimed at {int(ids[k])}); player.last_key = "
          f"{win.player.last_key}, sound {'on' if win.player.available else 'off (no audio device)'}")
    _wait(app, lambda: "neighbours" in got and "spectrogram" in got, timeout_s)
    rows = got.get("neighbours") or []
    check("neighbours", len(rows) > 0 and all(r["segment_id"] != seg for r in rows),
          f"{len(rows)} listed, best cosine {rows[0]['score']:.3f}" if rows else "none arrived")
    check("spectrum", "spectrogram" in got, f"log-mel shape {got.get('spectrogram')}")
