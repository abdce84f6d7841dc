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
