"""The model picker on the map: it lists the library's models with strategy, date, validation figure and state,
the choice is what the map, evaluation and inspection use and is remembered per library, and a partly trained
model is embedded only after a confirmation."""

from __future__ import annotations

import json
import shutil

import pytest

pytest.importorskip("PySide6")
from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication, QMessageBox  # noqa: E402

from musicemb_core.common.progress import drive  # noqa: E402
from musicemb_core.data.ingest import iter_ingest  # noqa: E402
from musicemb_core.data.library import Library  # noqa: E402
from musicemb_core.inference import iter_embed  # noqa: E402
from musicemb_core.models import checkpoint as ckpt  # noqa: E402
from musicemb_core.resources import builtin_model_dir  # noqa: E402
from musicemb_core.search.similar import SimilarTracks  # noqa: E402
from tests.conftest import write_tone  # noqa: E402
from tests.gui.helpers import shown_window  # noqa: E402


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Two labelled folders of 6 s tones embedded with the built-in spaces, and a model "stopped": the
    fingerprint network copied, its training run cancelled after 1 of 5 epochs."""
    root = tmp_path_factory.mktemp("models")
    for label, freqs in (("low", (220, 260)), ("high", (880, 990))):
        for f in freqs:
            write_tone(root / "audio" / label / f"{f}.wav", f, seconds=6.0, sr=16000, seed=f)
    path = root / "lib"
    with Library(path, create=True) as lib:
        drive(iter_ingest(lib, [root / "audio"], labels="folders", jobs=1))
        drive(iter_embed(lib))
        folder = shutil.copytree(builtin_model_dir("default"), path / "models" / "stopped")
        info = json.loads((folder / ckpt.CONFIG).read_text())
        info.update(name="stopped", train={**info["train"], "epochs": 5})
        (folder / ckpt.CONFIG).write_text(json.dumps(info))
        run = lib.start_run("stopped", "contrastive", {})
        lib.update_run(run, "cancelled", [{"epoch": 1, "loss": 2.0}], finished=True)
        lib.register_model("stopped", "resnet18", "contrastive", 128, info)
    return path


@pytest.fixture
def window(qtbot, tmp_path):
    yield from shown_window(qtbot, tmp_path)


def _answer(button: QMessageBox.StandardButton, seen: list) -> None:
    """Press ``button`` of the confirmation once it is shown (it runs its own event loop)."""
    def press():
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, press)
            return
        seen.append(box.text())
        box.button(button).click()
    QTimer.singleShot(20, press)


def test_picker_lists_models_and_the_choice_drives_map_evaluation_inspection(qtbot, window, built, tmp_path):
    lib_path = shutil.copytree(built, tmp_path / "lib")
    assert window.open_library(lib_path)
    picker, ctl = window.models.picker, window.map_controller
    qtbot.waitUntil(lambda: len(ctl.ids) == 8, timeout=120000)
    assert [e.name for e in picker.entries] == ["default", "similarity", "stopped"]
    assert picker.currentText() == "similarity" and window.session.model == "similarity"
    row = 2
    assert picker.row_text(row, "strategy") == "contrastive"
    assert picker.row_text(row, "validation") == "val acc 0.658"  # what the model's config stores
    assert picker.row_text(row, "embedded") == "no"
    assert picker.row_text(row, "state") == "⚠ partly trained: cancelled after 1 of 5 epochs"
    assert picker.row_text(0, "state") == "ok" and picker.row_text(0, "trained") == "shipped"
    assert window.map_panel.bar.itemAt(0).widget() is picker  # shown first on the map's toolbar
    assert picker.toolTip().startswith("similarity: built-in similarity")

    picker.activated.emit(row)  # the user picks "stopped"
    assert window.session.model == "stopped" and picker.currentText() == "stopped"
    assert "⚠ partly trained: cancelled after 1 of 5 epochs" in picker.toolTip()
    with Library(lib_path) as lib:
        assert lib.get_meta("active_model") == "stopped"
    assert len(ctl.ids) == 0 and "No embeddings for model 'stopped'" in window.map_panel.status.text()

    seen: list[str] = []
    _answer(QMessageBox.StandardButton.Cancel, seen)
    window.embed_library()  # Library ▸ Embed: a partly trained model asks first; Cancel embeds nothing
    assert seen and "partly trained (cancelled after 1 of 5 epochs)" in seen[0]
    assert not [j for j in window.jobs.jobs if j.name.startswith("embed")]
    window.training_panel.trained = "stopped"  # the training panel's "Embed the library with this model" too
    _answer(QMessageBox.StandardButton.Cancel, seen)
    window.training_panel.embed_library()
    assert len(seen) == 2 and not [j for j in window.jobs.jobs if j.name.startswith("embed")]

    _answer(QMessageBox.StandardButton.Yes, seen)
    window.embed_library()
    assert [j.name for j in window.jobs.jobs if j.name.startswith("embed")] == ["embed with stopped"]
    qtbot.waitUntil(lambda: len(ctl.ids) == 8, timeout=120000)
    assert "'stopped' space" in window.map_panel.status.text()
    assert picker.row_text(row, "embedded") == "yes"
    window.embed_library()  # embedded once with consent: new tracks are embedded without asking again
    assert len(seen) == 3

    window.evaluation_panel.start()
    window.inspection.run()
    names = [j.name for j in window.jobs.jobs]
    assert "evaluate stopped" in names and "inspect with stopped" in names
    window.jobs.cancel_all()
    window.jobs.wait(60000)


def test_the_choice_is_remembered_per_library_and_reset_by_another(qtbot, window, built, tmp_path):
    a = shutil.copytree(built, tmp_path / "a")
    b = shutil.copytree(built, tmp_path / "b")
    assert window.open_library(a)
    window.models.choose("default")
    with qtbot.waitSignal(window.map_controller.similarTracksReady, timeout=60000) as got:
        window.map_controller.request_similar_tracks(1, 2)  # "More like this" in the chosen space
    with Library(a) as lib:
        want = {m: SimilarTracks(lib, model=m).query(["1"], k=2)[0]["results"] for m in ("default", "similarity")}
    assert [r["score"] for r in got.args[1]] == pytest.approx([r["score"] for r in want["default"]])
    assert [r["score"] for r in want["default"]] != pytest.approx([r["score"] for r in want["similarity"]])
    assert window.open_library(b)
    assert window.session.model == "similarity" and window.models.picker.currentText() == "similarity"
    window.models.choose("nope")  # a model this library does not have: said, nothing changes
    assert window.session.model == "similarity"
    assert "no model 'nope'" in window.statusBar().currentMessage()
    assert window.open_library(a)
    assert window.session.model == "default" and window.models.picker.currentText() == "default"
    shutil.rmtree(a / "models" / "stopped")
    window.models.choose("stopped")  # removed behind the app's back: the picker lists what is there
    assert [e.name for e in window.models.picker.entries] == ["default", "similarity"]
    assert window.session.model == "default"


def test_another_model_empties_the_neighbour_and_more_like_this_lists(qtbot, window, built, tmp_path):
    """Another model chosen: the neighbour and "More like this" lists (and their export) kept the previous model's
    tracks and scores; answers of the previous model still on their way are dropped too."""
    from PySide6.QtCore import QThreadPool

    assert window.open_library(shutil.copytree(built, tmp_path / "lib"))
    ctl, panel, exports = window.map_controller, window.map_panel, window.exports
    qtbot.waitUntil(lambda: len(ctl.ids) == 8, timeout=120000)
    seg = int(ctl.ids[0])
    with qtbot.waitSignals([ctl.neighboursReady, ctl.similarTracksReady], timeout=60000):
        panel.select_segment(seg)
    assert panel.neighbours.rowCount() and panel.similar.rowCount() and exports.items("neighbours")
    panel.select_segment(seg)  # asked again: answered once "default" is chosen
    window.models.choose("default")
    assert QThreadPool.globalInstance().waitForDone(60000)
    qtbot.wait(50)  # the answers delivered
    assert panel.neighbours.rowCount() == panel.similar.rowCount() == 0
    assert exports.items("neighbours") == exports.items("similar") == []


def test_a_damaged_model_is_listed_with_its_problem_and_neither_chosen_nor_embedded(qtbot, tmp_path):
    """A model whose weights were cut short was left out of the list without a word (or, with weights of another
    shape, listed as fine); now its row says what is wrong, and choosing or embedding it says so and changes
    nothing."""
    from musicemb_core.common.config import FeatureConfig
    from musicemb_core.models import ModelConfig, build_encoder
    from musicemb_gui.panels.model_controller import ModelController
    from musicemb_gui.panels.model_picker import DAMAGED_COLOUR, ModelPicker
    from musicemb_gui.session import Session

    write_tone(tmp_path / "audio" / "a.wav", 440, seconds=4.0, sr=16000)
    with Library(tmp_path / "lib", create=True) as lib:
        drive(iter_ingest(lib, [tmp_path / "audio"], jobs=1))
        folder = lib.root / "models" / "cut"
        cfg = ModelConfig(arch="cnn2", dim=8)
        ckpt.save_model(folder, ckpt.ModelInfo("cut", cfg, FeatureConfig(), 3.0, "contrastive"),
                        {"encoder": build_encoder(cfg)})
        weights = ckpt.weights_path(folder)
        weights.write_bytes(weights.read_bytes()[:-100])
    session, picker = Session(), ModelPicker()
    qtbot.addWidget(picker)
    controller = ModelController(session, picker)
    messages: list[str] = []
    session.message.connect(messages.append)
    session.open(tmp_path / "lib")
    row = [e.name for e in picker.entries].index("cut")
    state = picker.row_text(row, "state")
    assert state.startswith(f"✖ damaged: {weights}: cannot read model weights")
    assert picker.items.item(row, 0).foreground().color().name() == DAMAGED_COLOUR
    picker.activated.emit(row)
    assert session.model == "similarity" and picker.currentText() == "similarity"
    assert messages[-1].startswith(f"{weights}: cannot read model weights")
    assert not controller.may_embed("cut")
    assert messages[-1].startswith(f"cannot embed with cut: {weights}: cannot read model weights")
