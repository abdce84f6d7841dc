"""DJ workflow on a large crate and odd input: long crates refine only the cheapest greedy paths (2,000 tracks
took a minute and more), the vectorised transition costs are the pair formula, a set of one track names the
library, BPM filters compare tempos as listed, and ``export --similar-to -k`` with filters gives k tracks."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from musicemb_core import cli
from musicemb_core.analysis import set_order
from musicemb_core.analysis.set_order import (
    BPM_WEIGHT,
    KEY_PENALTY,
    UNKNOWN_PENALTY,
    bpm_gap_percent,
    path_cost,
    transition_costs,
)
from musicemb_core.data.library import Library
from musicemb_core.features.camelot import compatible
from musicemb_core.search.similar import SimilarTracks
from musicemb_core.workflows import dj
from tests.conftest import catalogued_tones, embedded_tones


def random_costs(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    C = rng.random((n, n))
    C = C + C.T
    np.fill_diagonal(C, 0.0)
    return C


@pytest.mark.parametrize("n, refined", [(300, 200), (1000, 50)])
def test_long_crates_refine_only_the_cheapest_greedy_paths(monkeypatch, n, refined):
    """2-opt costs n^2 a pass: every start's path is refined up to 500 tracks, the cheapest greedy ones above."""
    C = random_costs(n)
    passed = []
    monkeypatch.setattr(set_order, "two_opt", lambda C, o, **_k: passed.append(list(o)) or list(o))
    plan = set_order.order_set(C)
    assert len(passed) == refined
    starts = sorted({int(i) for i in np.linspace(0, n - 1, 200)})
    greedy = sorted(path_cost(C, set_order.greedy_order(C, s)) for s in starts)
    assert sorted(path_cost(C, o) for o in passed) == greedy[:refined]
    assert plan["cost"] == round(greedy[0], 4)


def test_transition_costs_are_the_pair_formula():
    """The costs, computed on whole matrices, are the documented formula for every pair (the earlier track's
    tempo first), with unknown, zero and NaN tempos and unknown keys."""
    rng = np.random.default_rng(1)
    n = 40
    V = rng.standard_normal((n, 8))
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    bpms = [None, math.nan, 0.0, -5.0, math.inf, *rng.uniform(60, 180, n - 5)]
    keys = [None if i % 7 == 0 else (int(rng.integers(12)), ("major", "minor")[i % 2]) for i in range(n)]
    C = transition_costs(V, bpms, keys)
    for i in range(n):
        for j in range(i + 1, n):
            a, b = bpms[i], bpms[j]
            known = all(x is not None and 0 < x < math.inf for x in (a, b))
            want = max(0.0, min(2.0, 1.0 - float(V[i] @ V[j])))
            want += BPM_WEIGHT * bpm_gap_percent(a, b) if known else UNKNOWN_PENALTY
            want += (UNKNOWN_PENALTY if keys[i] is None or keys[j] is None
                     else 0.0 if compatible(keys[i], keys[j]) else KEY_PENALTY)
            assert C[i, j] == C[j, i] == pytest.approx(want, abs=1e-12)
    assert np.all(np.diag(C) == 0.0)


@pytest.fixture
def lib(tmp_path) -> Path:
    return catalogued_tones(tmp_path / "lib", tmp_path / "music", [
        {"name": "a.wav", "bpm": 127.96}, {"name": "b.wav", "bpm": 63.98}, {"name": "c.wav", "bpm": 131.0}])


def test_a_set_of_one_track_names_the_library(lib, capsys):
    assert cli.main(["set", str(lib), "1", "1"]) == 1
    err = capsys.readouterr().err
    assert err == f"musicemb: error: {lib}: a set needs at least 2 different tracks, got only track 1\n"


def test_bpm_filters_compare_tempos_as_listed(lib, capsys):
    """127.96 is listed as "128.0" and passes 128-130; 63.98 ("64.0") passes it at double time."""
    assert cli.main(["tracks", str(lib), "--bpm", "128-130"]) == 0
    out = capsys.readouterr().out
    assert [line.split()[:2] for line in out.splitlines()[1:]] == [["1", "128.0"]]
    with Library(lib) as library:
        rows = dj.track_rows(library)
    assert [dj.keep(r, bpm=(128.0, 130.0), half_double=True) for r in rows] == [True, True, False]
    assert [dj.keep(r, bpm=(64.0, 64.0), half_double=True) for r in rows] == [True, True, False]


def test_export_similar_to_with_filters_gives_k_tracks(tmp_path, capsys):
    """``export --similar-to T -k 2 --bpm ...``: T and the 2 nearest of the tracks the filters keep (the 2 nearest
    of all, filtered, gave 1 or none)."""
    root = embedded_tones(tmp_path, freqs=(440, 466, 494, 523, 554, 587))
    with Library(root) as lib:
        space = SimilarTracks(lib)
        ranked = [r["track_id"] for r in space.query(["1"], k=5, versions=False)[0]["results"]]
        for t in lib.tracks():  # the two nearest are out of the BPM range, the rest in it
            bpm = 90.0 if t.id in ranked[:2] else 125.0
            lib.set_analysis(t.id, bpm=bpm, bpm_confidence=0.9, key=None, key_confidence=None, analysis={})
        paths = {t.id: t.path for t in lib.tracks()}
    out = tmp_path / "near.m3u8"
    assert cli.main(["export", str(root), "--similar-to", "1", "-k", "2", "--bpm", "120-130", "--out", str(out)]) == 0
    listed = [line for line in out.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    assert listed == [paths[t] for t in [1, *ranked[2:4]]]
    assert "3 tracks" in capsys.readouterr().out
