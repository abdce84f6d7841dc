"""A ``--model``/``--from`` path the system cannot look at (a name too long for it, a folder without permission)
is a one-line usage error, not a traceback from argument parsing (``Path.is_file`` raises for those)."""

from __future__ import annotations

import pytest

from musicemb_core import cli
from musicemb_core.common.errors import ConfigError
from musicemb_core.common.names import model_key


def test_a_model_path_too_long_for_the_system_is_a_config_error(tmp_path):
    folder = tmp_path / ("m" * 300)
    with pytest.raises(ConfigError, match=r"mmm: cannot look for a model folder there \(File name too long\)"):
        model_key(str(folder))


@pytest.mark.parametrize("argv", [["similar", "LIB", "1", "--model", "M"],
                                  ["train", "LIB", "--strategy", "transfer", "--from", "M"]])
def test_the_cli_says_it_in_one_usage_line(argv, tmp_path, capsys):
    model = str(tmp_path / ("m" * 300))
    with pytest.raises(SystemExit) as e:
        cli.main([model if a == "M" else str(tmp_path) if a == "LIB" else a for a in argv])
    assert e.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    option = "--model" if "--model" in argv else "--from"
    assert err[0].startswith(f"musicemb {argv[0]}: error: argument {option}: /")
    assert "cannot look for a model folder there (File name too long)" in err[0]
