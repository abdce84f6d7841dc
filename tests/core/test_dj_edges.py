"""DJ commands on a library whose tempo and key come from tags only (analysis off): the set lists the values it
ordered by; a wrong export name is said before a long ordering; a symlink loop named as a track; a NaN tempo in
the pure set ordering."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from musicemb_core import cli
from musicemb_core.analysis.set_order import order_set, transition_costs
from musicemb_core.features.camelot import parse_key
from musicemb_core.workflows import dj
from tests.conftest import catalogued_tones

# (file name, tag bpm, tag key): no estimates, as after `ingest --no-analysis` of files a DJ tool has tagged
TAGGED = [("one.wav", "126", "8A"), ("two.wav", "124", "Em"), ("three.wav", "", "")]


@pytest.fixture
def lib(tmp_path) -> Path:
    return catalogued_tones(tmp_path / "lib", tmp_path / "music", [
        {"name": name, "tags": {k: v for k, v in (("bpm", bpm), ("initialkey", key)) if v}}
        for name, bpm, key in TAGGED])


def test_set_and_tracks_list_the_tag_tempo_and_key_they_use(lib, capsys):
    assert cli.main(["set", str(lib), "1", "2", "3", "--start", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "126.0t  8A  one" in lines[0] and "124.0t  9A  two" in lines[1]  # E minor is 9A
    assert "     -   -  three" in lines[2]
    assert cli.main(["tracks", str(lib)]) == 0
    out = capsys.readouterr().out
    assert "A minor (tag)  8A  one" in out and "E minor (tag)  9A  two" in out


@pytest.mark.parametrize("name, needle", [("set.txt", "not .txt"), ("set", "name the file with its format"),
                                          ("", "is a folder")])
def test_a_wrong_export_name_is_said_before_the_set_is_ordered(lib, tmp_path, capsys, monkeypatch, name, needle):
    def no_plan(*_a, **_k):
        raise AssertionError("ordered before the export name was checked")
    monkeypatch.setattr(dj, "iter_plan_set", no_plan)
    out = str(tmp_path / name) if name else str(tmp_path)
    assert cli.main(["set", str(lib), "1", "2", "--out", out]) == 1
    err = capsys.readouterr().err
    assert err.startswith("musicemb: error: ") and needle in err and len(err.splitlines()) == 1


def test_a_symlink_loop_named_as_a_track_is_not_a_track(lib, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.symlink("loop2", "loop1")
    os.symlink("loop1", "loop2")
    assert cli.main(["set", str(lib), "loop1", "2"]) == 1
    err = capsys.readouterr().err
    assert "loop1: not a track of this library" in err and "RuntimeError" not in err


def test_a_nan_tempo_counts_as_unknown_in_a_set():
    bpms = [120.0, float("nan"), 124.0, 90.0, -5.0]
    keys = [parse_key("8A"), None, parse_key("9A"), parse_key("3B"), parse_key("8A")]
    C = transition_costs(None, bpms, keys)
    assert np.isfinite(C).all()
    assert C[0, 4] == pytest.approx(0.15) and C[0, 1] == pytest.approx(0.3)  # unknown tempo (and key)
    plan = order_set(C)
    assert sorted(plan["order"]) == list(range(5)) and np.isfinite(plan["cost"])


def test_a_model_that_does_not_exist_is_an_error_not_tempo_and_key_alone(lib, capsys, monkeypatch):
    """`set --model simlarity` (a typo) ordered by tempo and key alone with a note; a model there is but not
    embedded still falls back (the default similarity space before `musicemb embed`)."""
    assert cli.main(["set", str(lib), "1", "2", "--model", "simlarity"]) == 1
    err = capsys.readouterr().err
    assert "no model 'simlarity'" in err and len(err.splitlines()) == 1
    assert cli.main(["set", str(lib), "1", "2"]) == 0
    assert "similarity: none: " in capsys.readouterr().out
    monkeypatch.setattr(dj, "MAX_SET", 2)
    assert cli.main(["set", str(lib), "1", "2", "3"]) == 1
    assert "a set of 3 tracks is too long to order (at most 2" in capsys.readouterr().err


def test_a_set_from_a_given_start_is_compared_with_random_orders_from_that_start():
    """With --start, random orders were drawn from any start: a crate whose chosen opener is far from every other
    track read 'set cost 0.899 ... random 0.870', the smooth set looking worse than chance."""
    C = np.full((8, 8), 0.1)
    C[0, :] = C[:, 0] = 3.0  # the opener: far from everything
    np.fill_diagonal(C, 0.0)
    plan = order_set(C, start=0)
    assert plan["order"][0] == 0
    assert plan["cost"] <= plan["random_cost"]
    assert np.isclose(plan["random_cost"], 3.0 + 6 * 0.1, atol=1e-4)  # every path from the opener costs the same
