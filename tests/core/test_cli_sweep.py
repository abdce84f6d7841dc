"""Odd arguments and bad input found by sweeping every ``musicemb`` subcommand: each is one line on stderr with a
non-zero exit status, never a traceback, an "unexpected" error or work done in the wrong place."""

from __future__ import annotations

import os

import pytest

from musicemb_core import cli

EMPTY = [
    (["ingest", "", "music"], "argument lib: an empty path"),
    (["ingest", "LIB", ""], "argument PATH: an empty path"),
    (["info", ""], "argument lib: an empty path"),
    (["similar", "LIB", ""], "argument QUERY: an empty path"),
    (["identify", "LIB", "q.wav", ""], "argument QUERY_AUDIO: an empty path"),
    (["export", "LIB", "--out", ""], "argument --out: an empty path"),
    (["features", "a.wav", "--out", ""], "argument --out: an empty path"),
    (["evaluate", "LIB", "--plots", " "], "argument --plots: an empty path"),
    (["demo", "--lib", ""], "argument --lib: an empty path"),
]


@pytest.mark.parametrize(("argv", "needle"), EMPTY, ids=[" ".join(a) for a, _ in EMPTY])
def test_an_empty_path_is_a_usage_error_not_the_current_folder(argv, needle, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and needle in err[0], err
    assert os.listdir(tmp_path) == []  # no library made in the current folder
