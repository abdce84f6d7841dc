"""Hum panel: a hum whose tune is not in the library (no confident match) is said so, the closest songs listed;
recorded with the fake, real-time paced recorder of test_hum_panel."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")
from PySide6.QtCore import QObject, Signal  # noqa: E402

from musicemb_core.search.qbh import HumSearcher  # noqa: E402
from musicemb_gui.panels.hum_controller import HumController  # noqa: E402
from musicemb_gui.panels.hum_panel import NO_CONFIDENT_MATCH, HumPanel  # noqa: E402
from tests.gui.test_hum_panel import FakeRecorder, hum_signal  # noqa: E402

ROWS = [{"track_id": 3, "path": "/music/a/song3.wav", "label": "folk", "score": 0.71, "segment_id": 31,
         "start_s": 6.0, "confidence": 0.12},
        {"track_id": 1, "path": "/music/b/song1.wav", "label": None, "score": 0.69, "segment_id": 12,
         "start_s": 0.0, "confidence": 0.05}]


class StubSession(QObject):
    libraryOpened = Signal()
    libraryChanged = Signal()
    labelsChanged = Signal(object)
    lib_path = "/music/lib"
    generation = 1

    def is_current(self, generation: int) -> bool:
        return generation == self.generation

    def track_name(self, track_id: int) -> str:  # untagged tracks are named by their file
        return next(r["path"] for r in ROWS if r["track_id"] == track_id).rsplit("/", 1)[-1]


class StubSearcher:
    """A searcher already opened: ranked rows, and whether the best is a confident match."""

    def __init__(self, confident: bool):
        self.confident, self.queries = confident, 0

    def query(self, y, sr, *, k=10):
        self.queries += 1
        return [dict(r) for r in ROWS[:k]]

    def is_confident(self, rows, method="rerank"):
        return bool(rows) and self.confident

    relabel = HumSearcher.relabel  # the real one, on the stub's ``tracks``


@pytest.fixture
def hum(qtbot):
    panel = HumPanel(recorder_factory=FakeRecorder)
    qtbot.addWidget(panel)
    panel.show()
    controller = HumController(StubSession(), panel)
    return panel, controller


@pytest.mark.parametrize("confident", [False, True])
def test_recorded_hum_says_whether_the_match_is_confident(qtbot, hum, confident):
    panel, controller = hum
    controller._searcher = StubSearcher(confident)
    FakeRecorder.signal = hum_signal(1.5)
    panel.start_recording()
    qtbot.waitUntil(lambda: panel.recorder._sent == len(FakeRecorder.signal), timeout=10000)
    with qtbot.waitSignal(controller.resultsShown, timeout=10000) as got:
        panel.stop_recording()
    assert controller._searcher.queries == 1 and len(got.args[0]) == 2
    assert panel.results.rowCount() == 2 and panel.results.item(0, 2).text() == "song3.wav"  # still listed
    assert panel.confident is confident
    assert (NO_CONFIDENT_MATCH in panel.state.text()) is not confident, panel.state.text()
    assert panel.results.item(0, 1).toolTip() == "confidence 12%"


def test_panel_alone_shows_no_confident_match():
    panel = HumPanel(recorder_factory=FakeRecorder)
    panel.set_results(ROWS, confident=False)
    assert panel.state.text() == NO_CONFIDENT_MATCH and not panel.confident
    panel.set_results(ROWS)
    assert panel.state.text() == "2 songs, best first." and panel.confident
    panel.set_results([], confident=False)
    assert "No tune recognised" in panel.state.text() and not panel.confident


def test_the_app_embed_job_builds_the_melody_index(qtbot, tmp_path):
    """Embedding a library in the app (the built-in models) also builds its melody index, in the same job, with
    progress: the first hum does not wait for it."""
    import numpy as np
    import soundfile as sf
    from PySide6.QtCore import QSettings

    from musicemb_core.common.progress import drive
    from musicemb_core.data.hum_synthesis import render_melody_song
    from musicemb_core.data.ingest import iter_ingest
    from musicemb_core.data.library import Library
    from musicemb_core.data.melodies import generated_melodies
    from musicemb_core.search.qbh import qbh_index_current
    from musicemb_gui.main_window import MainWindow
    from musicemb_gui.widgets.audio_player import AudioPlayer
    from tests.gui.helpers import FakeBackend

    for i, m in enumerate(generated_melodies(2, n_notes=24, random_state=5)):
        y, _, _ = render_melody_song(m, seed=300 + i, sr=16000, max_s=10.0)
        sf.write(tmp_path / f"song{i}.wav", np.asarray(y, np.float32), 16000)
    with Library(tmp_path / "lib", create=True) as lib:
        drive(iter_ingest(lib, [tmp_path / f"song{i}.wav" for i in range(2)], jobs=1))
    win = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat),
                     player=AudioPlayer(backend=FakeBackend()))
    qtbot.addWidget(win)
    assert win.open_library(tmp_path / "lib")
    stages = set()
    win.jobs.jobAdded.connect(lambda job: job.progress.connect(lambda ev: stages.add(ev.stage)))
    with qtbot.waitSignal(win.jobs.jobEnded, timeout=180000):
        win.embed_library()
    assert "qbh-index" in stages
    with Library(tmp_path / "lib") as lib:
        assert qbh_index_current(lib)


class SlowLongSearcher(StubSearcher):
    """A long recording takes longer to search than a short one; each answers with its own best track."""

    def query(self, y, sr, *, k=10):
        import time

        long = len(y) > sr
        time.sleep(0.6 if long else 0.0)
        self.queries += 1
        return [dict(ROWS[0 if long else 1], score=0.9)]


def test_only_the_latest_query_and_library_get_results(qtbot, hum):
    """A long query answered after a short one asked later does not replace its results; results of a library
    closed since are dropped (both were shown)."""
    panel, controller = hum
    controller._searcher = SlowLongSearcher(True)
    shown = []
    controller.resultsShown.connect(lambda rows, _lat: shown.append(rows[0]["track_id"]))
    controller.search(np.zeros(20 * 16000), 16000, "long.wav")
    controller.search(np.zeros(16000), 16000, "short.wav")
    qtbot.waitUntil(lambda: controller._searcher.queries == 2 and bool(shown), timeout=10000)  # both answered
    qtbot.wait(300)  # the long one's answer delivered too
    assert shown == [ROWS[1]["track_id"]] and panel.results.item(0, 2).text() == "song1.wav"
    controller.search(np.zeros(16000), 16000, "again.wav")
    controller.session.generation += 1  # another library opened before the answer came
    qtbot.wait(300)
    assert len(shown) == 1


def test_an_import_asked_while_the_melody_index_builds_waits_for_it(qtbot, tmp_path):
    """The melody index the first hum builds holds the library's writer lock: an import asked meanwhile (a folder
    dropped) waits for it and then runs, instead of failing with "library busy" naming the app itself."""
    import numpy as np
    import soundfile as sf
    from PySide6.QtCore import QSettings

    from musicemb_core.common.progress import drive
    from musicemb_core.data.hum_synthesis import render_melody_song
    from musicemb_core.data.ingest import iter_ingest
    from musicemb_core.data.library import Library
    from musicemb_core.data.melodies import generated_melodies
    from musicemb_gui.main_window import MainWindow
    from musicemb_gui.widgets.audio_player import AudioPlayer
    from tests.gui.helpers import FakeBackend

    for i, m in enumerate(generated_melodies(3, n_notes=24, random_state=7)):
        y, _, _ = render_melody_song(m, seed=400 + i, sr=16000, max_s=10.0)
        sf.write(tmp_path / f"song{i}.wav", np.asarray(y, np.float32), 16000)
    with Library(tmp_path / "lib", create=True) as lib:  # imported without its melody index
        drive(iter_ingest(lib, [tmp_path / f"song{i}.wav" for i in range(2)], jobs=1))
    win = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat),
                     player=AudioPlayer(backend=FakeBackend()))
    qtbot.addWidget(win)
    assert win.open_library(tmp_path / "lib")
    qtbot.waitUntil(lambda: not win.jobs.jobs, timeout=60000)
    said, failed = [], []
    win.session.message.connect(said.append)
    win.jobs.jobAdded.connect(lambda job: job.failed.connect(lambda msg, _tb: failed.append(msg)))
    win.hum.prepare()  # what Record does first: the melody index, built now
    win.import_paths([str(tmp_path / "song2.wav")])
    assert any("starts when melody index for humming ends" in m for m in said), said
    qtbot.waitUntil(lambda: not win.jobs.jobs, timeout=240000)
    assert not failed and len(win.session.tracks) == 3
