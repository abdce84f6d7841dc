"""Helpers for GUI tests: a recording audio backend (no device needed), the shown main window, scatter-view
pixel mapping, a small library of tones."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QPoint, QPointF, QSettings
from PySide6.QtWidgets import QApplication

from musicemb_core.common.progress import drive
from musicemb_core.data.ingest import iter_ingest
from musicemb_core.data.library import Library
from tests.conftest import write_tone


class FakeHandle:
    def __init__(self, on_finished):
        self.on_finished = on_finished
        self.closed = False

    def close(self):
        self.closed = True


class FakeBackend:
    """Audio backend recording what it was asked to play; ``fail`` makes every start raise it."""

    def __init__(self, fail: Exception | None = None):
        self.fail = fail
        self.calls = []
        self.handles = []

    def start(self, data, sr, on_finished, gain=lambda: 1.0):
        self.calls.append((data, sr))
        self.gain = gain
        if self.fail is not None:
            raise self.fail
        self.handles.append(FakeHandle(on_finished))
        return self.handles[-1]


def to_px(view, x: float, y: float) -> QPoint:
    """Viewport pixel of a ScatterView's data position (x, y), after pending layout changes (axis widths)."""
    QApplication.processEvents()
    return view.plot.mapFromScene(view.vb.mapViewToScene(QPointF(x, y)))


def tone_library(root: Path) -> Path:
    """A library of two 9 s tones, tone440.wav and tone660.wav (3 segments each), imported, not embedded."""
    for freq in (440, 660):
        write_tone(root / "audio" / f"tone{freq}.wav", freq, seconds=9.0, sr=16000)
    with Library(root / "lib", create=True) as lib:
        drive(iter_ingest(lib, [root / "audio"], jobs=1))
    return root / "lib"


def shown_window(qtbot, tmp_path: Path, *, method: str = "PCA"):
    """Yield a shown MainWindow with its own settings file and a FakeBackend player (``win.backend``), its map
    drawn by ``method`` (PCA: no UMAP child process unless a test asks for it); its jobs are cancelled and waited
    for afterwards. For ``yield from`` in a fixture."""
    from musicemb_gui.main_window import MainWindow
    from musicemb_gui.widgets.audio_player import AudioPlayer

    backend = FakeBackend()
    win = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat),
                     player=AudioPlayer(backend=backend))
    win.backend = backend
    win.map_panel.method.setCurrentText(method)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.jobs.cancel_all()
    win.jobs.wait(30000)
