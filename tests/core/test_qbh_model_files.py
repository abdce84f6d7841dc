"""QBH models are checkpoint model files (the older layout still loads); one entry point trains every strategy."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

from musicemb_core.cli import main as cli
from musicemb_core.common.errors import ConfigError
from musicemb_core.common.progress import drive
from musicemb_core.data.library import Library
from musicemb_core.models import checkpoint as ckpt
from musicemb_core.models.qbh import N_CHROMA, QBHConfig, QBHModel
from musicemb_core.search.qbh import qbh_model_folder
from musicemb_core.training.config import TrainConfig
from musicemb_core.training.entry import iter_train
from musicemb_core.training.loop import iter_fit
from musicemb_core.training.qbh_fit import QBHTrainConfig, iter_train_qbh, qbh_train_config
from musicemb_core.workflows.models import list_models

TINY = QBHConfig(extractor_channels=4, encoder_channels=4)


def _outputs(model: QBHModel) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    S = torch.rand(2, 120, 50, generator=g)
    P = torch.softmax(torch.randn(3, N_CHROMA + 1, 60, generator=g), dim=1)
    with torch.no_grad():
        return [model.extractor.chromagram(S), model.song(P), model.hum(P)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("qbh") / "m"
    tc = QBHTrainConfig(collections=("generated",), n_songs=0, n_generated=3, windows_per_song=2, song_s=12.0,
                        extractor_steps=2, extractor_batch=2, encoder_steps=2, encoder_batch=4)
    info = drive(iter_train_qbh(folder, cfg=TINY, train=tc, cache=False))
    return folder, info


def test_a_trained_model_round_trips_through_checkpoint_files(trained):
    folder, info = trained
    meta = ckpt.read_info(folder, encoder=False)
    assert meta.strategy == "qbh" and meta.model is None and meta.settings == TINY.to_dict()
    assert meta.metrics == info["metrics"] and meta.train["data"]["songs"] == 3
    assert ckpt.weights_path(folder).name.startswith("model-") and not (folder / ckpt.WEIGHTS).exists()
    model = QBHModel.load(folder)
    assert not model.training and model.cfg == TINY
    again = folder.parent / "again"
    model.save(again, train=meta.train, metrics=meta.metrics)
    for a, b in zip(_outputs(model), _outputs(QBHModel.load(again)), strict=True):
        assert torch.equal(a, b)
    assert ckpt.weights_path(again).read_bytes() == ckpt.weights_path(folder).read_bytes()
    with pytest.raises(ConfigError, match="not a segment encoder"):
        ckpt.load_encoder(folder)  # `musicemb embed --model` with a QBH model: a one-line error
    with pytest.raises(ConfigError, match="config.json"):
        QBHModel.load(folder.parent)


def test_the_older_layout_and_the_built_in_model_still_load(trained, tmp_path):
    model = QBHModel.load(trained[0])
    old = tmp_path / "old"
    old.mkdir()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(old / "model.safetensors"))
    (old / "config.json").write_text(json.dumps({"kind": "qbh", "qbh": TINY.to_dict(), "train": {}}))
    for a, b in zip(_outputs(model), _outputs(QBHModel.load(old)), strict=True):
        assert torch.equal(a, b)
    builtin = QBHModel.load(qbh_model_folder(None))
    assert builtin.cfg == QBHConfig() and ckpt.read_info(qbh_model_folder(None), encoder=False).strategy == "qbh"


def test_a_segment_encoder_is_not_a_qbh_model(tmp_path):
    from musicemb_core.resources import builtin_model_dir

    with pytest.raises(ConfigError, match="not a query-by-humming model"):
        QBHModel.load(builtin_model_dir("default"))


def test_train_config_maps_to_the_qbh_recipe():
    tc = qbh_train_config(TrainConfig(strategy="qbh", epochs=3, steps_per_epoch=10, songs=50, temperature=0.2))
    assert (tc.encoder_steps, tc.extractor_steps, tc.n_songs, tc.n_generated) == (30, 18, 50, 5)
    assert tc.temperature == 0.2 and tc.lr == QBHTrainConfig().lr  # changed knobs carried, defaults kept
    with pytest.raises(ConfigError, match="songs"):
        TrainConfig(strategy="qbh", songs=-1)


def test_cli_trains_qbh_through_the_entry_point(tmp_path, capsys):
    lib = tmp_path / "lib"
    Library(lib, create=True).close()
    with pytest.raises(SystemExit) as e:  # a usage error, before the library is read
        cli(["train", str(lib), "--strategy", "qbh", "--resume", "-q"])
    assert e.value.code == 2 and "cannot resume" in capsys.readouterr().err
    assert cli(["train", str(lib), "--songs", "0", "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "4",
                "--strategy", "qbh", "--name", "hums", "-q"]) == 0
    assert "model 'hums' done" in capsys.readouterr().out
    folder = lib / "models" / "hums"
    model = QBHModel.load(folder)
    assert ckpt.read_info(folder, encoder=False).train["data"]["songs"] == 2 and not model.training
    with Library(lib) as L:
        assert [(m["name"], m["strategy"]) for m in L.models()] == [("hums", "qbh")]
        assert "hums" not in [e.name for e in list_models(L)]  # the map's model picker lists embedding spaces
        with pytest.raises(ConfigError, match="does not train on segments"):
            drive(iter_fit(L, name="x", train=TrainConfig(strategy="qbh")))
        with pytest.raises(ConfigError, match="--from"):
            drive(iter_train(L, name="x", train=TrainConfig(strategy="qbh", from_model="default")))


@pytest.mark.parametrize("module, other", [("loop", "qbh_fit"), ("qbh_fit", "loop")])
def test_each_trainer_imports_alone(module, other):
    code = (f"import sys, musicemb_core.training.{module}\n"
            f"assert 'musicemb_core.training.{other}' not in sys.modules\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_qbh_training_refuses_a_device_it_would_not_use(tmp_path):
    """--device cuda trained on the CPU without a word; it says so before any work."""
    with Library(tmp_path / "lib", create=True) as lib, pytest.raises(ConfigError, match="trains on the CPU"):
        drive(iter_train(lib, name="hums", train=TrainConfig(strategy="qbh", device="cuda")))


def test_missing_weights_of_a_qbh_model_are_named(trained, tmp_path):
    """Indexing with a QBH model whose weights file is gone was a bare OSError."""
    import shutil

    from musicemb_core.search.qbh import _weights_key

    folder = tmp_path / "m"
    shutil.copytree(trained[0], folder)
    ckpt.weights_path(folder).unlink()
    with pytest.raises(ConfigError, match=r"model\.safetensors|model-.*\.safetensors: cannot read the query-by-hum"):
        _weights_key(folder)
