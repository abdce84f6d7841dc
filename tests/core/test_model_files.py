"""Damaged, foreign and unsafe model files: each is one line naming the file and the problem; a failed save keeps
what was saved before and leaves no temporary file; a pickle that would run code is refused without running it."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch

from musicemb_core import cli
from musicemb_core.common.config import FeatureConfig
from musicemb_core.common.errors import ConfigError, LibraryError
from musicemb_core.common.progress import CancelToken, drive
from musicemb_core.data.ingest import iter_ingest
from musicemb_core.data.library import Library
from musicemb_core.inference import iter_embed
from musicemb_core.models import ModelConfig, build_encoder
from musicemb_core.models import checkpoint as ckpt
from musicemb_core.models.qbh import QBHConfig, QBHModel
from musicemb_core.stored_vectors import StaleEmbeddings, check_weights
from musicemb_core.training.config import TrainConfig
from musicemb_core.training.loop import iter_fit
from musicemb_core.workflows.models import active_model, list_models, set_active_model
from tests.conftest import write_tone

TINY = ModelConfig(arch="cnn2", dim=8)


def _save(folder, cfg=TINY):
    ckpt.save_model(folder, ckpt.ModelInfo(folder.name, cfg, FeatureConfig(sr=16000), 3.0, "contrastive"),
                    {"encoder": build_encoder(cfg)})
    return folder


def _edit(folder, **changes):
    config = json.loads((folder / ckpt.CONFIG).read_text())
    (folder / ckpt.CONFIG).write_text(json.dumps(config | changes))


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    """A two-track library embedded with its own small model "tiny"."""
    root = tmp_path_factory.mktemp("model_files")
    for i, f in enumerate((300, 700)):
        write_tone(root / "audio" / f"t{i}.wav", f, seconds=3.5, sr=16000, seed=i)
    with Library(root / "lib", create=True) as lib:
        drive(iter_ingest(lib, [root / "audio"], labels={"t0.wav": "a", "t1.wav": "b"}, jobs=1))
        _save(lib.root / "models" / "tiny")
        drive(iter_embed(lib, model="tiny"))
    return root


def test_a_newer_model_file_format_is_refused_and_an_older_config_still_loads(tmp_path):
    folder = _save(tmp_path / "m")
    assert json.loads((folder / ckpt.CONFIG).read_text())["format"] == ckpt.FORMAT
    config = json.loads((folder / ckpt.CONFIG).read_text())
    (folder / ckpt.CONFIG).write_text(json.dumps({k: v for k, v in config.items() if k != "format"}))
    ckpt.load_encoder(folder)  # written before the format was recorded
    _edit(folder, format=ckpt.FORMAT + 1)
    with pytest.raises(ConfigError, match=f"^{folder / ckpt.CONFIG}: .*newer musicemb .*format 2"):
        ckpt.load_encoder(folder)
    _edit(folder, format="1")
    with pytest.raises(ConfigError, match="format must be a positive integer"):
        ckpt.read_info(folder)


def test_the_weights_file_of_an_unreadable_config_is_not_guessed(tmp_path):
    """A config.json that is no JSON (or names no file) made errors name model.safetensors, a file that never
    existed in a folder of the digest-named layout."""
    folder = _save(tmp_path / "m")
    _edit(folder, weights_file=5)
    with pytest.raises(ConfigError, match=f"^{folder / ckpt.CONFIG}: .*weights_file must name a file"):
        ckpt.weights_path(folder)
    (folder / ckpt.CONFIG).write_text('{"name": ')
    with pytest.raises(ConfigError, match=f"^{folder / ckpt.CONFIG}: not a readable model config"):
        ckpt.weights_path(folder)


@pytest.mark.parametrize("damage", ["truncated", "zero bytes", "missing", "not safetensors"])
def test_damaged_weights_of_an_embedded_model_are_said_not_taken_for_retrained(embedded, tmp_path, damage, capsys):
    """Stored vectors and damaged weights: "made by other weights, run embed" (which then failed), or for a
    missing file a bare FileNotFoundError; now one line naming the weights file."""
    lib_dir = tmp_path / "lib"
    shutil.copytree(embedded / "lib", lib_dir, symlinks=True)
    path = ckpt.weights_path(lib_dir / "models" / "tiny")
    data = path.read_bytes()
    if damage == "missing":
        path.unlink()
    else:
        path.write_bytes({"truncated": data[: len(data) // 2], "zero bytes": b"",
                          "not safetensors": b"PK\x03\x04" * 100}[damage])
    with Library(lib_dir) as lib, pytest.raises(ConfigError, match=f"^{path}: cannot read model weights") as e:
        check_weights(lib, "tiny")
    assert not isinstance(e.value, StaleEmbeddings)
    assert cli.main(["search", str(lib_dir), str(embedded / "audio" / "t0.wav"), "--model", "tiny"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"musicemb: error: {path}: cannot read model weights") and "\n" not in err


def test_vectors_of_a_model_whose_settings_were_edited_since_are_recomputed(embedded, tmp_path, capsys):
    """A hand edit of a model's log-mel settings in its config.json left the vectors embedded before it in place:
    `embed` reused them (only the weights' digest was compared) and searches mixed the two. A change of its name
    or metrics still keeps them, as do vectors stored before the settings' digest was recorded."""
    lib_dir = tmp_path / "lib"
    shutil.copytree(embedded / "lib", lib_dir, symlinks=True)
    folder = lib_dir / "models" / "tiny"
    config = json.loads((folder / ckpt.CONFIG).read_text())
    _edit(folder, name="renamed", metrics={"note": "hand edit"})
    with Library(lib_dir) as lib:
        check_weights(lib, "tiny")
        report = drive(iter_embed(lib, model="tiny"))
        assert report.computed == 0 and report.kept > 0
    _edit(folder, features={**config["features"], "n_mels": 32})
    with Library(lib_dir) as lib, pytest.raises(StaleEmbeddings, match="other settings .*config.json was edited"):
        check_weights(lib, "tiny")
    assert cli.main(["search", str(lib_dir), str(embedded / "audio" / "t0.wav"), "--model", "tiny"]) == 1
    assert "were made with other settings of the model" in capsys.readouterr().err
    with Library(lib_dir) as lib:
        report = drive(iter_embed(lib, model="tiny"))
        assert report.computed > 0 and report.kept == 0
        check_weights(lib, "tiny")
        meta_path = lib.root / "embeddings" / "tiny"
    meta_file = next(meta_path.rglob("meta.json"))
    meta = json.loads(meta_file.read_text())
    meta_file.write_text(json.dumps({k: v for k, v in meta.items() if k != "settings_digest"}))  # an older library
    _edit(folder, features={**config["features"], "n_mels": 48})
    with Library(lib_dir) as lib:
        check_weights(lib, "tiny")  # judged by its weights alone, as before


def test_a_model_whose_config_is_a_symlink_loop_is_named(tmp_path):
    """Said to be "no model 'loop'" beside a listing of the library's models naming others."""
    (tmp_path / "loop").mkdir()
    (tmp_path / "loop" / ckpt.CONFIG).symlink_to(tmp_path / "loop" / ckpt.CONFIG)
    (tmp_path / "self").symlink_to(tmp_path / "self")
    for name in ("loop", "self"):
        with pytest.raises(ConfigError, match=f"^{tmp_path / name / ckpt.CONFIG}: not a readable .*symbolic links"):
            ckpt.read_info(ckpt.find_model(tmp_path, name))
    with pytest.raises(ConfigError, match="no model 'none'"):
        ckpt.find_model(tmp_path, "none")


def test_damaged_models_are_listed_with_their_problem_and_cannot_be_chosen(embedded, tmp_path):
    """The app's model picker left damaged models out without a word (truncated weights, or weights of another
    shape, were even listed as fine); choosing one switched the map to a model that cannot load."""
    lib_dir = tmp_path / "lib"
    shutil.copytree(embedded / "lib", lib_dir, symlinks=True)
    models = lib_dir / "models"
    trunc = _save(models / "trunc")
    ckpt.weights_path(trunc).write_bytes(ckpt.weights_path(trunc).read_bytes()[:-100])
    _edit(_save(models / "wide"), model=TINY.replace(dim=1024).to_dict())
    _edit(_save(models / "newer"), format=99)
    (models / "noconfig").mkdir()  # no config.json: no model at all
    hums = models / "hums"  # query-by-humming models are no embedding space, damaged or not
    QBHModel(QBHConfig(extractor_channels=4, encoder_channels=4)).save(hums)
    ckpt.weights_path(hums).write_bytes(b"")
    (models / "old-hums").mkdir()
    (models / "old-hums" / ckpt.CONFIG).write_text(json.dumps({"kind": "qbh", "qbh": {}}))
    with Library(lib_dir) as lib:
        lib.set_meta("active_model", "tiny")
        entries = {e.name: e for e in list_models(lib)}
        assert set(entries) == {"default", "similarity", "tiny", "trunc", "wide", "newer"}
        assert entries["tiny"].problem == "" and entries["tiny"].embedded
        assert entries["trunc"].problem.startswith(f"{ckpt.weights_path(trunc)}: cannot read model weights")
        assert entries["wide"].problem.startswith(f"{ckpt.weights_path(models / 'wide')}: the weights do not fit")
        assert "2 tensors differ, e.g. fc.bias: (8,) in the weights, (1024,) in the model" in entries["wide"].problem
        assert "newer musicemb" in entries["newer"].problem
        with pytest.raises(ConfigError, match="cannot read model weights"):
            set_active_model(lib, "trunc")
        assert active_model(lib) == "tiny"
        ckpt.weights_path(models / "tiny").write_bytes(b"")
        assert active_model(lib) == "similarity"  # the remembered model was damaged since



@pytest.mark.parametrize("at", [1, 2])
def test_a_save_interrupted_at_a_publishing_step_leaves_a_whole_current_model(tmp_path, monkeypatch, at):
    """Ctrl-C (or a kill) at either publishing step: the folder loads, as the old model or the new one."""
    folder = _save(tmp_path / "m")
    calls = []

    def interrupt(step):
        calls.append(step)
        if len(calls) == at:
            raise KeyboardInterrupt

    monkeypatch.setattr(ckpt, "kill_point", interrupt)
    with pytest.raises(KeyboardInterrupt):
        _save(folder, TINY.replace(dim=16))
    assert ckpt.load_encoder(folder)[1].model.dim == (8 if at == 1 else 16)
    assert not list(folder.glob(".weights-*"))

def _full_disk(tmp_path, code: str) -> str:
    """Run ``code`` after ``folder`` (a saved small model and training state) and a file size limit of 100 kB."""
    script = textwrap.dedent(f"""
        import resource, torch
        from pathlib import Path
        from musicemb_core.common.config import FeatureConfig
        from musicemb_core.models import ModelConfig, build_encoder
        from musicemb_core.models import checkpoint as ckpt
        folder = Path({str(tmp_path / "m")!r})
        small, big = ModelConfig(arch="cnn2", dim=8), ModelConfig(arch="resnet18", width=8)
        enc = build_encoder(small)
        ckpt.save_model(folder, ckpt.ModelInfo("m", small, FeatureConfig(), 3.0), {{"encoder": enc}})
        ckpt.save_resume(folder, {{"encoder": enc}}, torch.optim.SGD(enc.parameters(), lr=0.1), {{"epoch": 1}})
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
        enc = build_encoder(big)
    """) + textwrap.dedent(code)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_a_full_disk_keeps_the_saved_model_and_state_and_leaves_no_temporary_files(tmp_path):
    """A save that failed for want of space raised safetensors' own error, naming no folder, and left a half
    written ``resume.tmp``; now a LibraryError naming the folder, and the earlier model and state stay whole."""
    out = _full_disk(tmp_path, """
        from musicemb_core.common.errors import LibraryError
        for save in (lambda: ckpt.save_model(folder, ckpt.ModelInfo("m", big, FeatureConfig(), 3.0), {"encoder": enc}),
                     lambda: ckpt.save_resume(folder, {"encoder": enc}, torch.optim.SGD(enc.parameters()), {"epoch": 2})):
            try:
                save()
            except LibraryError as e:
                print(e)
    """)
    folder = tmp_path / "m"
    lines = out.splitlines()
    assert len(lines) == 2 and all(line.startswith(f"{folder}: cannot save") for line in lines), out
    assert "File too large" in lines[0] and "what was saved before is kept" in lines[0]
    assert sorted(p.name for p in folder.iterdir()) == [ckpt.CONFIG, ckpt.weights_path(folder).name, "resume"]
    assert ckpt.load_encoder(folder)[1].model == ModelConfig(arch="cnn2", dim=8)
    assert ckpt.load_resume(folder)[2] == {"epoch": 1}


def test_a_state_left_only_in_resume_old_survives_a_failed_save(tmp_path, monkeypatch):
    """Killed between the two renames, the state is only in ``resume.old``; the next save deleted it before its
    own state was in place, so a second failure there left nothing to resume."""
    enc = build_encoder(TINY)
    opt = torch.optim.SGD(enc.parameters(), lr=0.1)
    ckpt.save_resume(tmp_path, {"encoder": enc}, opt, {"epoch": 1})
    (tmp_path / "resume").rename(tmp_path / "resume.old")
    rename = type(tmp_path).rename

    def failing(self, target):
        if self.name == "resume.tmp":
            raise OSError(28, "No space left on device")
        return rename(self, target)

    monkeypatch.setattr(type(tmp_path), "rename", failing)
    with pytest.raises(LibraryError, match="No space left on device"):
        ckpt.save_resume(tmp_path, {"encoder": enc}, opt, {"epoch": 2})
    assert ckpt.load_resume(tmp_path)[2] == {"epoch": 1}
    assert not (tmp_path / "resume.tmp").exists()


def test_a_cancel_whose_state_cannot_be_saved_marks_the_run_failed(embedded, tmp_path, monkeypatch):
    """The run stayed "running" in the catalogue (the app listed the model as "training not finished")."""
    shutil.copytree(embedded / "lib", tmp_path / "lib", symlinks=True)

    def full(folder, *a, **k):
        raise LibraryError(f"{folder}: cannot save the training state (No space left on device)")

    monkeypatch.setattr(ckpt, "save_resume", full)
    token = CancelToken()
    with Library(tmp_path / "lib") as lib, pytest.raises(LibraryError, match="No space left"):
        drive(iter_fit(lib, name="cut", model=TINY, train=TrainConfig(strategy="contrastive", epochs=1, batch_size=2,
                                                                      val_fraction=0.0), cancel=token),
              lambda e: "step" in e.info and token.cancel())
    with Library(tmp_path / "lib") as lib:
        assert lib.runs("cut")[-1]["status"] == "failed"


class _Marker:
    """Unpickled, it writes a marker file (what a malicious model file would do)."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("how", ["pickle", "torch.save"])
def test_a_weights_file_that_would_run_code_is_refused_without_running_it(tmp_path, how):
    marker, path = tmp_path / "ran", tmp_path / "vgg16.pth"
    payload = {"features.0.weight": _Marker(str(marker))}
    if how == "pickle":
        path.write_bytes(pickle.dumps(payload, protocol=2))
    else:
        torch.save(payload, path)
    with pytest.raises(ConfigError, match=f"^{path}: cannot read weights"):
        build_encoder(ModelConfig(arch="vgg", weights=str(path)))
    assert not marker.exists()


def test_a_weights_file_holding_other_values_than_tensors_is_refused(tmp_path):
    """Plain values in a state dict (allowed by weights_only) failed with AttributeError: 'list' has no 'ndim'."""
    path = tmp_path / "odd.pth"
    torch.save({"features.0.weight": [1, 2]}, path)
    with pytest.raises(ConfigError, match=f"^{path}: expected a state dict of tensors, 'features.0.weight' is a list"):
        build_encoder(ModelConfig(arch="vgg", weights=str(path)))
