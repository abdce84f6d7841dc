"""`musicemb train` / `musicemb embed` drive the core jobs, print a summary and use the exit codes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from musicemb_core.cli import main


def _lib(tmp_path, capsys):
    for label, f in (("lo", 250.0), ("hi", 2500.0)):
        (tmp_path / "a" / label).mkdir(parents=True)
        for i in range(3):
            t = np.arange(16000 * 6) / 16000
            sf.write(tmp_path / "a" / label / f"{i}.wav", (0.3 * np.sin(2 * np.pi * f * (1 + 0.1 * i) * t)).astype("f4"),
                     16000)
    assert main(["ingest", str(tmp_path / "lib"), str(tmp_path / "a"), "--labels-from-folders", "-q", "-j", "1"]) == 0
    capsys.readouterr()
    return str(tmp_path / "lib")


def test_train_then_embed(tmp_path, capsys):
    lib = _lib(tmp_path, capsys)
    assert main(["train", lib, "--strategy", "supervised", "--width", "8", "--dim", "16", "--epochs", "2",
                 "--name", "toy", "--batch-size", "4", "-q"]) == 0
    out = capsys.readouterr().out
    assert "model 'toy' done after 2 epochs" in out and "val_acc" in out
    assert main(["embed", lib, "--model", "toy", "-q"]) == 0
    assert "12 segments embedded, 0 kept" in capsys.readouterr().out
    assert main(["embed", lib, "--model", "toy", "-q"]) == 0
    assert "0 segments embedded, 12 kept" in capsys.readouterr().out
    assert main(["info", lib, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["models"][0]["name"] == "toy" and info["embeddings"] == {"toy": 12}


def test_resume_refuses_a_shape_option_that_differs_from_the_saved_run(tmp_path, capsys):
    """`--resume --dim 32` went on with the saved dim 16 without a word. Options left out (at their default) or
    equal to the saved shape still resume."""
    lib = _lib(tmp_path, capsys)
    base = ["train", lib, "--strategy", "supervised", "--name", "toy", "--batch-size", "4", "-q"]
    assert main([*base, "--width", "8", "--dim", "16", "--epochs", "1"]) == 0
    capsys.readouterr()
    for option, given, saved in (("--dim", "32", "16"), ("--width", "4", "8"), ("--arch", "cnn2", "resnet18")):
        assert main([*base, option, given, "--epochs", "2", "--resume"]) == 1
        err = capsys.readouterr().err.strip()
        assert err == (f"musicemb: error: {option} {given}: 'toy' was trained with {option[2:]} {saved}; leave out "
                       f"{option} to resume it, or train under another --name")
    assert main([*base, "--arch", "resnet18", "--dim", "16", "--epochs", "2", "--resume"]) == 0
    assert "model 'toy' done after 2 epochs" in capsys.readouterr().out
    # trained again under its name: refused without --replace (the finished model was replaced without a word)
    weights = sorted((tmp_path / "lib" / "models" / "toy").glob("model-*.safetensors"))
    assert main([*base, "--width", "8", "--dim", "16", "--epochs", "1"]) == 1
    assert capsys.readouterr().err.strip() == (
        f"musicemb: error: {tmp_path / 'lib' / 'models' / 'toy'}: a model 'toy' is already saved there; --replace "
        "trains it again from scratch, --resume continues its run, or choose another --name")
    assert sorted((tmp_path / "lib" / "models" / "toy").glob("model-*.safetensors")) == weights
    with pytest.raises(SystemExit) as e:  # a usage error
        main([*base, "--epochs", "2", "--resume", "--replace"])
    assert e.value.code == 2 and capsys.readouterr().err.strip() == ("musicemb train: error: --resume continues the saved run, --replace "
                                               "trains it again from scratch: give one (see `musicemb train --help`)")
    assert main([*base, "--width", "8", "--dim", "16", "--epochs", "1", "--replace"]) == 0
    assert "model 'toy' done after 1 epochs" in capsys.readouterr().out


def test_train_errors_exit_1_with_a_reason(tmp_path, capsys):
    lib = _lib(tmp_path, capsys)
    with pytest.raises(SystemExit) as e:  # a usage error: --from is needed with transfer, as argparse's required
        main(["train", lib, "--strategy", "transfer", "-q"])
    assert e.value.code == 2 and "--from" in capsys.readouterr().err
    assert main(["train", lib, "--strategy", "transfer", "--from", "missing", "-q"]) == 1
    assert "no model 'missing'" in capsys.readouterr().err
    assert main(["embed", lib, "--model", "missing", "-q"]) == 1
