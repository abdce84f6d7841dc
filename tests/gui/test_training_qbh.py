"""The training panel trains a query-by-humming model through the core's training entry point."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from musicemb_core.data.library import Library  # noqa: E402
from musicemb_core.models import checkpoint as ckpt  # noqa: E402
from musicemb_core.models.qbh import QBHModel  # noqa: E402
from musicemb_gui.panels.training_panel import TrainingPanel  # noqa: E402
from musicemb_gui.session import Session  # noqa: E402


def test_training_panel_trains_a_qbh_model_and_does_not_offer_to_embed_with_it(qtbot, tmp_path):
    Library(tmp_path / "lib", create=True).close()
    session = Session()
    session.open(tmp_path / "lib")
    panel = TrainingPanel(session)
    qtbot.addWidget(panel)
    for name, value in (("strategy", "qbh"), ("songs", 0), ("epochs", 1), ("steps_per_epoch", 2),
                        ("batch_size", 4)):
        panel.train_form.set_value(name, value)
    panel.name.setText("hums")
    panel.start_training()
    with qtbot.waitSignal(panel.job.finished, timeout=180000):
        pass
    folder = tmp_path / "lib" / "models" / "hums"
    assert ckpt.read_info(folder, encoder=False).strategy == "qbh" and not QBHModel.load(folder).training
    assert "hums: done" in panel.state.text() and not panel.embed.isEnabled()
