"""Panels say what to do when empty, keep a job history, show only the training fields the strategy reads, and
scale the input level in dB."""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import pytest

pytest.importorskip("PySide6")
from PySide6.QtWidgets import QFormLayout  # noqa: E402

from musicemb_core.common.errors import MusicEmbError  # noqa: E402
from musicemb_core.common.progress import Progress  # noqa: E402
from musicemb_core.training.config import STRATEGIES, TrainConfig  # noqa: E402
from musicemb_gui.panels.jobs_panel import JobsPanel, duration_text  # noqa: E402
from musicemb_gui.panels.training_panel import TrainingPanel  # noqa: E402
from musicemb_gui.session import Session  # noqa: E402
from musicemb_gui.widgets.confusion_view import ConfusionView  # noqa: E402
from musicemb_gui.widgets.curve_view import CurveView  # noqa: E402
from musicemb_gui.widgets.level_meter import LevelMeter  # noqa: E402
from musicemb_gui.widgets.spectrogram_view import SpectrogramView  # noqa: E402
from musicemb_gui.workers import JobManager  # noqa: E402


def test_jobs_that_end_are_kept_in_the_history_with_outcome_and_duration(qtbot):
    jobs = JobManager()
    panel = JobsPanel(jobs)
    qtbot.addWidget(panel)

    def sleeper(seconds, fail=None):
        def factory(token):
            yield Progress("work", 0, 1)
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                token.check()
                time.sleep(0.01)
            if fail:
                raise fail
            return "ok"
        return factory
    done = jobs.submit("embed", sleeper(0.3))
    assert panel.rows and panel.history.rowCount() == 0 and panel.empty.isHidden()
    with qtbot.waitSignal(jobs.jobEnded, timeout=10000):
        pass
    failed = jobs.submit("map", sleeper(0.0, MusicEmbError("no embeddings for model 'x'")))
    qtbot.waitUntil(lambda: panel.history.rowCount() == 2, timeout=10000)
    cancelled = jobs.submit("train", sleeper(30.0))
    qtbot.wait(100)
    panel.rows[cancelled.id].cancel.click()
    qtbot.waitUntil(lambda: panel.history.rowCount() == 3, timeout=10000)
    rows = [[panel.history.item(r, c).text() for c in range(4)] for r in range(3)]
    assert [r[:2] for r in rows] == [["train", "✗ cancelled"], ["map", "⚠ failed"], ["embed", "✓ done"]]
    assert rows[1][3] == "no embeddings for model 'x'"
    took = float(rows[2][2].removesuffix(" s"))
    assert 0.3 <= took < 5.0
    assert not panel.rows and not panel.empty.isHidden()
    assert done.state == "done" and failed.state == "failed" and cancelled.state == "cancelled"
    assert [duration_text(s) for s in (0.42, 12.4, 125, 3725)] == ["0.4 s", "12 s", "2:05", "1 h 02 min"]


def test_training_form_shows_the_fields_of_the_chosen_strategy_only(qtbot):
    panel = TrainingPanel(Session())
    qtbot.addWidget(panel)
    panel.show()
    form = panel.train_form

    def shown():
        return {name for name, w in form.editors.items() if w.isVisibleTo(panel)}
    common = {"strategy", "epochs", "batch_size", "lr", "weight_decay", "val_fraction", "patience", "seed",
              "steps_per_epoch", "from_model", "freeze_until", "spec_augment", "device"}
    expected = {"supervised": {"max_per_class"}, "transfer": {"max_per_class", "svm_head"},
                "triplet": {"margin", "neighbour_s"}, "autoencoder": {"tile_frames", "recon_weight", "aux_weight"},
                "contrastive": {"temperature", "shift_s"}, "qbh": {"temperature", "songs"}}
    assert set(expected) == set(STRATEGIES)
    assert common | set().union(*expected.values()) == {f.name for f in dataclasses.fields(TrainConfig)}
    assert shown() == common | expected["contrastive"]  # the default
    for strategy, own in expected.items():
        form.editors["strategy"].setCurrentText(strategy)
        assert shown() == common | own, strategy
        rows = [form.layout_.itemAt(r, QFormLayout.ItemRole.FieldRole).widget() for r in range(form.layout_.rowCount())]
        in_sight = [w.objectName() for w in rows if w.isVisibleTo(panel)]
        assert in_sight[:1 + len(own)] == ["strategy", *sorted(own)]  # its own fields right under the strategy
    form.editors["strategy"].setCurrentText("triplet")
    assert form.values()["temperature"] == TrainConfig().temperature  # hidden fields keep their values


def test_level_meter_maps_dbfs_along_a_labelled_scale(qtbot):
    meter = LevelMeter()
    qtbot.addWidget(meter)
    meter.resize(240, 34)
    assert [meter.fraction(db) for db in (-math.inf, -90, -60, -30, 0, 6)] == [0, 0, 0, 0.5, 1, 1]
    meter.set_level(-6.0)
    meter.show()
    qtbot.waitExposed(meter)
    image = meter.grab().toImage()
    bar_y = 8
    lit = [image.pixelColor(x, bar_y) for x in range(image.width())]
    green = [x for x, c in enumerate(lit) if c.green() > 120 and c.red() < 120 and c.blue() < 120]
    amber = [x for x, c in enumerate(lit) if c.red() > 200 and 150 < c.green() < 220 and c.blue() < 100]
    assert green and amber and max(green) < min(amber)  # green up to -12 dB, amber above
    assert max(amber) < 0.95 * image.width()  # not lit past -6 dB
    assert not any(c.red() > 200 and c.green() < 80 and c.blue() < 80 for c in lit)  # the red zone (-3 dB up) stays dark


@pytest.mark.parametrize("name", ["spectrogram", "curves", "confusion"])
def test_empty_widgets_say_what_to_do_instead_of_drawing_axes(qtbot, name):
    widget = {"spectrogram": lambda: SpectrogramView(empty_text="Click a point"),
              "curves": lambda: CurveView(empty_text="Start training"),
              "confusion": lambda: ConfusionView(empty_text="Run evaluation")}[name]()
    qtbot.addWidget(widget)
    assert widget.stack.empty and not widget.stack.content.isVisibleTo(widget)
    if name == "spectrogram":
        widget.set_spectrogram(np.zeros((8, 10)), sr=16000, hop_length=160, fmin=20, fmax=8000)
    elif name == "curves":
        widget.add_point("train loss", 0, 1.0)
    else:
        widget.set_matrix(np.eye(2, dtype=int), ["a", "b"])
    assert not widget.stack.empty
    widget.clear()
    assert widget.stack.empty


def test_training_cancelled_before_an_epoch_ended_shows_no_best_figure(qtbot):
    """Cancelled in the first epoch, the panel said "m: cancelled after 0 epochs (val_loss inf)"."""
    from musicemb_core.training.config import FitResult

    panel = TrainingPanel(Session())
    qtbot.addWidget(panel)
    panel._finished(FitResult("m", "/nowhere", "cancelled", 0, [], {}))
    assert panel.state.text() == "m: cancelled after 0 epochs"


@pytest.mark.parametrize("field, value", [("max_per_class", 0), ("val_fraction", 1.0)])
def test_training_form_numbers_out_of_range_are_named_before_any_work(qtbot, field, value):
    """max_per_class 0 trained nothing and saved no model, yet ended "done"; val_fraction 1 failed only after the
    whole library was decoded."""
    panel = TrainingPanel(Session())
    qtbot.addWidget(panel)
    panel.train_form.set_value("strategy", "supervised")
    panel.train_form.set_value(field, value)
    panel.start_training()
    assert panel.state.text().startswith(f"⚠ {field} must be ") and panel.job is None


def test_training_cancelled_before_its_first_step_says_so_and_waits_for_nothing(qtbot):
    """Start, then Cancel at once: the curves said "Waiting for the first training steps…" for ever and the
    state "the last checkpoint is kept", though the run saved none."""
    panel = TrainingPanel(Session())
    qtbot.addWidget(panel)
    panel.curves.clear("Waiting for the first training steps…")  # as start_training leaves it
    panel._failed()  # the job's cancelled signal
    assert panel.state.text() == "training cancelled before its first step: nothing was trained"
    assert panel.curves.stack.empty and panel.curves.stack.label.text() == "No training step ran."
    assert panel.start.isEnabled() and not panel.embed.isEnabled()


def test_an_embed_that_ends_after_its_library_went_says_so(qtbot, tmp_path):
    """Training's embed job ended, then showing the new model in a library gone since (its drive unplugged) raised
    in the job's slot: a traceback instead of a line."""
    import shutil

    from musicemb_core.data.library import Library

    with Library(tmp_path / "lib", create=True):
        pass
    session = Session()
    session.open(tmp_path / "lib")
    panel = TrainingPanel(session)
    qtbot.addWidget(panel)
    panel.trained = "m"
    shutil.rmtree(tmp_path / "lib")
    panel._embedded(None)
    assert panel.state.text().startswith("library embedded with m; not shown: ")
    assert f"{tmp_path / 'lib'}: " in panel.state.text() and session.model != "m"
