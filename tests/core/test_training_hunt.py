"""Training runs that end oddly: a run replacing a saved model cancelled before its first epoch, a resume with
another learning rate, a device out of memory, an autoencoder started from a model of other features."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch

from musicemb_core.common.errors import ConfigError
from musicemb_core.common.progress import CancelToken, drive
from musicemb_core.data.library import Library
from musicemb_core.models import ModelConfig, build_encoder
from musicemb_core.models import checkpoint as ckpt
from musicemb_core.training import loop
from musicemb_core.training.config import MODEL_FEATURES, TrainConfig
from musicemb_core.training.entry import iter_train
from musicemb_core.workflows.models import list_models
from tests.conftest import labelled_tones

SR = 16000
TINY = ModelConfig(arch="resnet18", width=8, dim=16)


@pytest.fixture(scope="module")
def lib_dir(tmp_path_factory):
    """Four 6 s tones (2 segments each), two labels."""
    return labelled_tones(tmp_path_factory.mktemp("hunt"))


def _train(lib_dir, name, *, cancel=None, on_event=None, model=TINY, **kw):
    with Library(lib_dir) as lib:
        return drive(iter_train(lib, name=name, train=TrainConfig(**{"strategy": "supervised", "epochs": 1,
                                                                        "batch_size": 2, **kw}),
                                model=model, cancel=cancel, replace=True), on_event)


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_replacing_run_cancelled_in_its_first_epoch_leaves_the_saved_model_whole(lib_dir):
    """The app asks "Training replaces it from scratch once the new run saves its first epoch"; a cancel at the
    replacing run's first step replaced the 2-epoch model by one of a single step (its best figures gone), and the
    model list then called the kept model "cancelled after 0 of 2 epochs"."""
    first = _train(lib_dir, "kept", epochs=2)
    folder = lib_dir / "models" / "kept"
    before = _files(folder)
    with Library(lib_dir) as lib:
        registered = [m for m in lib.models() if m["name"] == "kept"]
    token = CancelToken()
    cut = _train(lib_dir, "kept", epochs=3, cancel=token, on_event=lambda e: "step" in e.info and token.cancel())
    assert (cut.status, cut.epochs_done) == ("cancelled", 0)
    assert _files(folder) == before  # weights, config and the resume state of the first run
    assert ckpt.read_info(folder).metrics["best"] == first.best
    with Library(lib_dir) as lib:
        assert [r["status"] for r in lib.runs("kept")] == ["done", "cancelled"]
        assert [m for m in lib.models() if m["name"] == "kept"] == registered
        entry = next(e for e in list_models(lib) if e.name == "kept")
    assert entry.partial == "" and entry.problem == ""


def test_a_replacing_run_cancelled_after_its_first_epoch_is_the_model_and_says_so(lib_dir):
    """Once the replacing run saved an epoch the model is its own, and the list says that run was cancelled."""
    _train(lib_dir, "swapped", epochs=2)
    token = CancelToken()
    cut = _train(lib_dir, "swapped", epochs=4, cancel=token,
                 on_event=lambda e: e.info.get("epoch_end") and token.cancel())
    assert (cut.status, cut.epochs_done) == ("cancelled", 1)
    info = ckpt.read_info(lib_dir / "models" / "swapped")
    assert info.train["epochs"] == 4 and info.metrics["epochs"] == 1
    with Library(lib_dir) as lib:
        assert next(e for e in list_models(lib) if e.name == "swapped").partial == "cancelled after 1 of 4 epochs"


def test_a_resume_with_another_learning_rate_is_refused_and_with_its_own_continues(lib_dir, monkeypatch):
    """``--resume --lr 1e-5`` trained on at the saved optimizer's lr (1e-3) while the model's config recorded 1e-5."""
    _train(lib_dir, "slower", lr=1e-3)

    def resume(lr):
        with Library(lib_dir) as lib:
            return drive(loop.iter_fit(lib, name="slower", resume=True, train=TrainConfig(
                strategy="supervised", epochs=2, batch_size=2, lr=lr)))
    with pytest.raises(ConfigError) as err:
        resume(1e-5)
    assert str(err.value) == ("--lr 1e-05: 'slower' was trained with --lr 0.001; give it to resume, or train under "
                              "another --name (--from it to start from its weights)")
    rates = []
    step = torch.optim.AdamW.step

    def seen(self, *a, **kw):
        rates.append(self.param_groups[0]["lr"])
        return step(self, *a, **kw)
    monkeypatch.setattr(torch.optim.AdamW, "step", seen)
    result = resume(1e-3)
    assert result.status == "done" and len(result.history) == 2 and set(rates) == {1e-3}
    assert ckpt.read_info(result.folder).train["lr"] == 1e-3


@pytest.mark.parametrize("where", ["model", "step"])
def test_running_out_of_memory_is_one_line_and_keeps_the_epochs_saved(lib_dir, monkeypatch, where):
    """A model or a batch larger than the device's memory ended the app's run with "RuntimeError: [enforce fail at
    alloc_cpu.cpp:127] ..." and a traceback (the command line: "unexpected OutOfMemoryError")."""
    if where == "model":
        def build(cfg):
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate "
                               "memory: you tried to allocate 3600000000000000 bytes. Error code 12")
        monkeypatch.setattr(loop, "build_encoder", build)
    else:
        loss = loop.STRATEGY_CLASSES["supervised"].loss

        steps = []

        def big(self, data, batch, rng):
            if len(steps) == 4:  # 8 segments in batches of 2: the second epoch's first step
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            steps.append(len(batch))
            return loss(self, data, batch, rng)
        monkeypatch.setattr(loop.STRATEGY_CLASSES["supervised"], "loss", big)
    name = f"oom-{where}"
    with pytest.raises(ConfigError) as err:
        _train(lib_dir, name, epochs=3, batch_size=2, val_fraction=0.0)
    assert str(err.value) == (f"{lib_dir}: out of memory training {name!r} on device auto (batch size 2): lower the "
                              "batch size, or the model's width or dim; epochs saved before are kept")
    with Library(lib_dir) as lib:
        runs = lib.runs(name)
    if where == "model":  # failed before a run began: nothing saved
        assert runs == [] and not (lib_dir / "models" / name / ckpt.CONFIG).exists()
    else:
        assert [r["status"] for r in runs] == ["failed"] and len(runs[0]["history"]) == 1
        assert ckpt.read_info(lib_dir / "models" / name).metrics["epochs"] == 1
        ckpt.load_encoder(lib_dir / "models" / name)


def test_other_runtime_errors_are_not_called_out_of_memory(lib_dir, monkeypatch):
    def build(cfg):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")
    monkeypatch.setattr(loop, "build_encoder", build)
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        _train(lib_dir, "shapes")


def test_an_autoencoder_from_a_model_of_standardised_features_says_what_to_do(lib_dir):
    """It said "needs features normalised to [0, 1] (normalise='minmax')", which no option of the command line or
    the app sets: the features are the --from model's."""
    folder = lib_dir / "models" / "std"
    ckpt.save_model(folder, ckpt.ModelInfo("std", TINY, MODEL_FEATURES, 3.0, "supervised"),
                    {"encoder": build_encoder(TINY)})
    assert json.loads((folder / ckpt.CONFIG).read_text())["features"]["normalise"] == "standard"
    with pytest.raises(ConfigError) as err:
        _train(lib_dir, "ae", strategy="autoencoder", from_model="std", model=None)
    assert str(err.value) == ("the autoencoder strategy needs features normalised to [0, 1] (normalise='minmax'); "
                              "--from std's are normalised 'standard': start from an autoencoder model, or train "
                              "from scratch (no --from)")


@pytest.fixture
def python_ctrl_c():
    """Python's own Ctrl-C handler, as a shell starts the CLI with: a library an earlier test loaded may have put
    its own in place (the CLI then leaves Ctrl-C to it)."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def test_ctrl_c_during_cli_train_is_a_cancel_and_resume_keeps_the_runs_learning_rate(lib_dir, monkeypatch, capsys,
                                                                                      python_ctrl_c):
    """Ctrl-C in `musicemb train` raised KeyboardInterrupt: the run was marked failed and, in its first epoch,
    nothing was kept. Now it is a cancel (exit 130) that keeps its checkpoint, and `--resume` without `--lr`
    continues at the rate the run was started with (the CLI's default 1e-3 was passed and refused)."""
    from musicemb_core.cli import main
    from musicemb_core.training import entry

    real = entry.iter_train
    monkeypatch.setattr(entry, "iter_train", lambda *a, **k: _interrupted(real, *a, **k))
    common = ["train", str(lib_dir), "--strategy", "supervised", "--name", "ctrl-c", "--arch", "resnet18",
              "--width", "8", "--dim", "16", "--epochs", "2", "--batch-size", "2", "-q"]
    assert main([*common, "--lr", "0.0005"]) == 130
    out = capsys.readouterr().out
    assert "model 'ctrl-c' cancelled" in out, out
    folder = lib_dir / "models" / "ctrl-c"
    assert (folder / "resume").is_dir() and ckpt.read_info(folder).train["lr"] == 0.0005
    monkeypatch.setattr(entry, "iter_train", real)
    assert main([*common, "--resume"]) == 0
    assert "model 'ctrl-c' done after 2 epochs" in capsys.readouterr().out
    assert ckpt.read_info(folder).train["lr"] == 0.0005


def _interrupted(real, *args, **kw):
    """``real(*args, **kw)``'s events and result, a SIGINT (the user's Ctrl-C) sent at its first training step."""
    job = real(*args, **kw)
    sent = False
    while True:
        try:
            ev = next(job)
        except StopIteration as stop:
            return stop.value
        if not sent and ev.stage == "train" and ev.done >= 1:
            sent = True
            os.kill(os.getpid(), signal.SIGINT)
        yield ev
