"""The training panel: sizes bounded as on the command line, and a run replacing a saved model, cancelled before
its first epoch, says that model is kept (and it is)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("PySide6")
from PySide6.QtCore import Qt  # noqa: E402

from musicemb_core.common.progress import drive  # noqa: E402
from musicemb_core.data.ingest import iter_ingest  # noqa: E402
from musicemb_core.data.library import Library  # noqa: E402
from musicemb_core.models import ModelConfig  # noqa: E402
from musicemb_core.training.config import TrainConfig  # noqa: E402
from musicemb_core.training.entry import iter_train  # noqa: E402
from musicemb_gui.panels.training_panel import TrainingPanel  # noqa: E402
from musicemb_gui.session import Session  # noqa: E402


def test_model_and_run_sizes_are_bounded_as_on_the_command_line(qtbot):
    """Width, dim, epochs and batch size went up to 10 million: a width of 10 million ended the run with
    "RuntimeError: ... DefaultCPUAllocator: can't allocate memory" and a traceback."""
    panel = TrainingPanel(Session())
    qtbot.addWidget(panel)
    for form, name in ((panel.model_form, "width"), (panel.model_form, "dim"), (panel.train_form, "epochs"),
                       (panel.train_form, "batch_size")):
        form.set_value(name, 10_000_000)
    assert panel.model_form.values()["width"] == 1024 and panel.model_form.values()["dim"] == 8192
    assert panel.train_form.values()["epochs"] == 100_000 and panel.train_form.values()["batch_size"] == 65_536


def test_a_replacing_run_cancelled_at_its_first_step_keeps_the_saved_model_and_says_so(qtbot, tmp_path):
    (tmp_path / "audio").mkdir()
    for i in range(3):
        t = np.arange(6 * 16000) / 16000
        sf.write(tmp_path / "audio" / f"t{i}.wav", (0.3 * np.sin(2 * np.pi * (220 + 300 * i) * t)).astype(np.float32),
                 16000)
    tiny = ModelConfig(arch="cnn2", width=8, dim=8)
    with Library(tmp_path / "lib", create=True) as lib:
        drive(iter_ingest(lib, [tmp_path / "audio"], jobs=1))
        drive(iter_train(lib, name="mine", train=TrainConfig(epochs=1, batch_size=2), model=tiny))
    folder = tmp_path / "lib" / "models" / "mine"
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    session = Session()
    session.open(tmp_path / "lib")
    panel = TrainingPanel(session)
    qtbot.addWidget(panel)
    for name, value in (("epochs", 3), ("batch_size", 2)):
        panel.train_form.set_value(name, value)
    for name, value in (("arch", "cnn2"), ("width", 8), ("dim", 8)):
        panel.model_form.set_value(name, value)
    panel.name.setText("mine")
    panel.confirm_replace = lambda name: True
    panel.start_training()
    job = panel.job  # cancelled in the worker at its first step, before the next one (a queued slot came later)
    job.progress.connect(lambda ev: "step" in ev.info and job.cancel(), Qt.ConnectionType.DirectConnection)
    with qtbot.waitSignal(job.ended, timeout=120000):
        pass
    assert panel.state.text() == "mine: cancelled after 0 of 3 epochs; the model saved before is kept"
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before


def test_a_fine_tuning_learning_rate_is_kept(qtbot):
    """The learning rate had 5 decimals: 3e-6 became 0.0, and Start said "lr must be > 0, got 0.0"."""
    panel = TrainingPanel(Session())
    qtbot.addWidget(panel)
    panel.train_form.set_value("lr", 3e-6)
    panel.train_form.set_value("weight_decay", 1e-6)
    assert (panel.train_form.values()["lr"], panel.train_form.values()["weight_decay"]) == (3e-6, 1e-6)
    panel.train_form.editors["lr"].stepBy(1)  # one step up from 3e-6 is a small one, not 0.1
    assert 3e-6 < panel.train_form.values()["lr"] < 1e-5
    lr = panel.train_form.editors["lr"]
    panel.train_form.set_value("lr", 1e-3)
    assert lr.text() == "0.001"  # as written: 8 fixed decimals showed "0.00100000"
    lr.lineEdit().selectAll()
    qtbot.keyClicks(lr, "2e-5")
    lr.interpretText()
    assert panel.train_form.values()["lr"] == 2e-5 and lr.text() == "2e-05"
    assert panel.train_form.editors["temperature"].text() == "0.1"
