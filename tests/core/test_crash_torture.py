"""Crash torture: a training run killed (SIGKILL) or cancelled after an epoch, then resumed to its end, is listed as
the finished run an uninterrupted one is, also when no epoch after the resume beat the best one saved before it
(the model's config kept naming the interrupted run, so the app called the model "partly trained" for good)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from musicemb_core.common.errors import ConfigError
from musicemb_core.common.progress import CancelToken, drive
from musicemb_core.data.library import Library
from musicemb_core.models import ModelConfig
from musicemb_core.models import checkpoint as ckpt
from musicemb_core.training import loop
from musicemb_core.training.config import TrainConfig
from musicemb_core.training.entry import iter_train
from musicemb_core.workflows.models import list_models
from tests.conftest import labelled_tones

SR = 16000
TINY = ModelConfig(arch="cnn2", width=8, dim=16)
EPOCHS = 3

# Validation losses per epoch: the first epoch stays the best, so the resumed epochs save no model.
_TRAIN = """
import os, signal, sys
from musicemb_core.common.progress import drive
from musicemb_core.data.library import Library
from musicemb_core.models import ModelConfig
from musicemb_core.training import loop
from musicemb_core.training.config import TrainConfig
from musicemb_core.training.entry import iter_train

lib_dir, name, mode, epochs = sys.argv[1:5]
scores = iter([1.0, 2.0, 3.0][0 if mode == "kill" else 1:])
loop._evaluate = lambda strategy, va, cancel: {"val_loss": next(scores)}
kill = (lambda e: e.info.get("epoch_end") and os.kill(os.getpid(), signal.SIGKILL)) if mode == "kill" else None
with Library(lib_dir) as lib:
    drive(iter_train(lib, name=name, resume=mode == "resume", model=ModelConfig(arch="cnn2", width=8, dim=16),
                     train=TrainConfig(strategy="supervised", epochs=int(epochs), batch_size=2)), kill)
"""


@pytest.fixture(scope="module")
def lib_dir(tmp_path_factory):
    """Four 6 s tones (2 segments each), two labels."""
    return labelled_tones(tmp_path_factory.mktemp("torture"))


def _scored(monkeypatch, scores):
    it = iter(scores)
    monkeypatch.setattr(loop, "_evaluate", lambda strategy, va, cancel: {"val_loss": next(it)})


def _train(lib_dir, name, *, resume=False, cancel=None, on_event=None):
    with Library(lib_dir) as lib:
        return drive(iter_train(lib, name=name, resume=resume, model=TINY, cancel=cancel,
                                train=TrainConfig(strategy="supervised", epochs=EPOCHS, batch_size=2)), on_event)


def _listed(lib_dir, name):
    with Library(lib_dir) as lib:
        entry = next(e for e in list_models(lib) if e.name == name)
        runs = [(r["status"], len(r["history"])) for r in lib.runs(name)]
    return entry, runs


def _python(*args):
    return subprocess.run([sys.executable, "-c", _TRAIN, *map(str, args), str(EPOCHS)],
                          capture_output=True, text=True, timeout=300)


def test_a_run_killed_after_an_epoch_and_resumed_is_listed_as_an_uninterrupted_one(lib_dir, monkeypatch):
    _scored(monkeypatch, [1.0, 2.0, 3.0])
    whole = _train(lib_dir, "whole")
    assert (whole.status, whole.epochs_done) == ("done", EPOCHS)
    killed = _python(lib_dir, "killed", "kill")
    assert killed.returncode == -9, killed.stderr
    entry, _ = _listed(lib_dir, "killed")
    assert entry.partial == f"training not finished (1 of {EPOCHS} epochs)"
    resumed = _python(lib_dir, "killed", "resume")
    assert resumed.returncode == 0, resumed.stderr
    reference, runs = _listed(lib_dir, "whole")
    entry, resumed_runs = _listed(lib_dir, "killed")
    assert (entry.partial, entry.validation) == ("", reference.validation) == ("", "val loss 1.000")
    assert resumed_runs == runs == [("done", EPOCHS)]  # the resumed run goes on in its row
    assert ckpt.read_info(lib_dir / "models" / "killed").metrics["best"] == \
        ckpt.read_info(lib_dir / "models" / "whole").metrics["best"]


def test_a_run_cancelled_after_an_epoch_and_resumed_to_its_end_is_not_partly_trained(lib_dir, monkeypatch):
    _scored(monkeypatch, [1.0, 2.0, 3.0])
    token = CancelToken()
    cut = _train(lib_dir, "cut", cancel=token, on_event=lambda e: e.info.get("epoch_end") and token.cancel())
    assert (cut.status, cut.epochs_done) == ("cancelled", 1)
    assert _listed(lib_dir, "cut")[0].partial == f"cancelled after 1 of {EPOCHS} epochs"
    done = _train(lib_dir, "cut", resume=True)
    assert (done.status, done.epochs_done) == ("done", EPOCHS)
    entry, runs = _listed(lib_dir, "cut")
    assert entry.partial == "" and runs == [("done", EPOCHS)]


def test_a_replacing_run_killed_once_its_first_epoch_is_the_model_leaves_nothing_of_the_old_run_to_resume(
        lib_dir, monkeypatch):
    """Killed between its first model and its first training state, a ``--replace`` run left the replaced run's
    state beside its own model: ``--resume`` then went on with the old run's weights and history under the new
    run's config (its learning rate too)."""
    with Library(lib_dir) as lib:
        drive(iter_train(lib, name="swap", model=TINY, train=TrainConfig(strategy="supervised", epochs=2,
                                                                         batch_size=2)))
    new = TrainConfig(strategy="supervised", epochs=2, batch_size=2, lr=2e-3)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # as a kill there: the model is this run's, its state is not saved yet

    monkeypatch.setattr(ckpt, "save_resume", killed)
    with Library(lib_dir) as lib, pytest.raises(KeyboardInterrupt):
        drive(iter_train(lib, name="swap", model=TINY, train=new, replace=True))
    monkeypatch.undo()
    assert ckpt.read_info(lib_dir / "models" / "swap").train["lr"] == 2e-3
    with Library(lib_dir) as lib, pytest.raises(ConfigError, match="nothing to resume"):
        drive(iter_train(lib, name="swap", model=TINY, train=new, resume=True))


def test_the_training_state_is_on_disk_before_it_is_renamed_into_place(tmp_path, monkeypatch):
    """``save_resume`` renamed its folder into place without flushing the files: after a power cut the checkpoint
    could be there by name with empty files (``--resume`` then refused it: train again)."""
    import torch

    events = []
    real_fsync, real_rename = os.fsync, Path.rename
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))),
                                                 real_fsync(fd)))
    monkeypatch.setattr(Path, "rename", lambda self, to: (events.append(("rename", str(self))), real_rename(self, to))[1])
    net = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(net.parameters())
    net(torch.ones(1, 2)).sum().backward()
    opt.step()
    for epoch in (1, 2):  # the second save renames the first state aside
        ckpt.save_resume(tmp_path, {"encoder": net}, opt, {"epoch": epoch, "step": 0, "history": [], "best": {}})
    swaps = [i for i, e in enumerate(events) if e == ("rename", str(tmp_path / "resume.tmp"))]
    files = sorted(p.name for p in (tmp_path / "resume").iterdir())
    assert len(swaps) == 2 and files == ["model.safetensors", "optimizer.json", "optimizer.safetensors", "state.json"]
    flushed = {Path(p).name for kind, p in events[swaps[0] + 1:swaps[1]]
               if kind == "fsync" and Path(p).parent.name == "resume.tmp"}
    assert flushed >= set(files)
    assert ckpt.load_resume(tmp_path)[2]["epoch"] == 2
