"""The window opens, shows a library's map and starts a recording's live spectrogram without importing torch (1.5-2 s
of a 4.6-5.1 s start): the models' code is loaded on a thread once the window is up, and what runs a model imports it
where it runs (a job, a thread)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import labelled_tones

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys, time
from PySide6.QtCore import QEventLoop, QSettings, QTimer
from PySide6.QtWidgets import QApplication
from musicemb_core.features.streaming import StreamingLogMel
from musicemb_gui import app as gui_app
from musicemb_gui.main_window import MainWindow

qapp = QApplication([])
win = MainWindow(QSettings(sys.argv[2], QSettings.Format.IniFormat))
win.show()
win.open_library(sys.argv[1])
loop = QEventLoop()
timer = QTimer(interval=20)
timer.timeout.connect(lambda: len(win.map_panel.scatter._ids) and not win.jobs.jobs and loop.quit())
timer.start()
QTimer.singleShot(120_000, loop.quit)
loop.exec()
StreamingLogMel().push(__import__("numpy").zeros(4000, "float32"))  # a recording's live spectrogram
seen = {"points": len(win.map_panel.scatter._ids), "torch": "torch" in sys.modules}
gui_app._load_models_soon()
for _ in range(600):
    if "musicemb_core.inference" in sys.modules and "torch" in sys.modules:
        break
    time.sleep(0.1)
seen["loaded"] = "musicemb_core.inference" in sys.modules
win.close()
print(json.dumps(seen))
"""


def test_the_window_and_a_librarys_map_need_no_torch(tmp_path):
    lib = labelled_tones(tmp_path)
    from musicemb_core.common.progress import drive
    from musicemb_core.data.library import Library
    from musicemb_core.inference import iter_embed

    with Library(lib) as opened:
        drive(iter_embed(opened))
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "MUSICEMB_HOME": str(tmp_path / "home")}
    r = subprocess.run([sys.executable, "-c", PROBE, str(lib), str(tmp_path / "settings.ini")], cwd=ROOT,
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1]) == {"points": 8, "torch": False, "loaded": True}
