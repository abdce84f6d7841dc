"""A Ctrl-C that cancels a job where the job raises its cancel (``train`` while it reads the segments' audio) ends
as an interrupt, exit 130, not as "musicemb: error: cancelled" with exit 1."""

from __future__ import annotations

import signal

import pytest

from musicemb_core import cli
from musicemb_core.data import datasets
from musicemb_core.data.library import Library
from tests.core.test_cli_train import _lib


@pytest.fixture
def python_ctrl_c():
    """Python's own Ctrl-C handler, as a shell starts the CLI with (a library an earlier test loaded may have put
    its own in place)."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def test_ctrl_c_while_train_reads_the_audio_is_an_interrupt(tmp_path, capsys, monkeypatch, python_ctrl_c):
    lib = _lib(tmp_path, capsys)
    decode, pressed = datasets.load, []

    def load_then_ctrl_c(*args, **kwargs):
        if not pressed:
            pressed.append(True)
            signal.raise_signal(signal.SIGINT)  # handled on the main thread before it takes this track
        return decode(*args, **kwargs)

    monkeypatch.setattr(datasets, "load", load_then_ctrl_c)
    status = cli.main(["train", lib, "--strategy", "supervised", "--width", "8", "--dim", "16", "--epochs", "1",
                       "--name", "toy", "-q"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert pressed and status == 130
    assert err == ["musicemb: interrupted; work finished so far is kept"]
    with Library(lib) as library:
        assert library.runs() == []  # nothing was started, nothing half-stored
    assert not (tmp_path / "lib" / "models" / "toy").exists()


def test_ctrl_c_while_features_runs_writes_the_files_described_so_far(tmp_path, capsys, monkeypatch, python_ctrl_c):
    """A Ctrl-C during `features` raised inside whatever was running (once inside numba's compiler, whose callback
    printed a traceback and the run went on to exit 0) and lost every row; it now stops after the file being
    described, writes the rows finished, and exits 130."""
    import csv

    from musicemb_core.features import descriptors
    from tests.conftest import write_tone

    files = [write_tone(tmp_path / f"t{i}.wav", 220.0 * (i + 1), seconds=2.0) for i in range(3)]
    decode, loaded = descriptors.load, []

    def load_then_ctrl_c(path, *args, **kwargs):
        loaded.append(path)
        if len(loaded) == 2:
            signal.raise_signal(signal.SIGINT)
        return decode(path, *args, **kwargs)

    monkeypatch.setattr(descriptors, "load", load_then_ctrl_c)
    out = tmp_path / "f.csv"
    status = cli.main(["features", *map(str, files), "--out", str(out), "-q"])
    captured = capsys.readouterr()
    assert status == 130 and len(loaded) == 2
    with open(out, newline="") as f:
        assert [r["path"] for r in csv.DictReader(f)] == [str(files[0]), str(files[1])]
    assert captured.out.strip().endswith("(stopped: 1 files not described)")
