"""What the query and listing commands load before they answer: `identify`, `search` and `classify` load their
model once (it was loaded twice: checked first, then again by the searcher); `search` and `classify` do not read the
query's landmarks, nor import what picks their peaks (only `identify` uses them); `tracks` and `export` do not import
numba (the set ordering's compiler). The answers are those of a :class:`Searcher` opened as before."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from musicemb_core import cli
from musicemb_core.common.progress import drive
from musicemb_core.data.library import Library
from musicemb_core.features import landmarks
from musicemb_core.inference import iter_embed
from musicemb_core.models import checkpoint as ckpt
from musicemb_core.search import knn
from tests.conftest import labelled_tones

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> tuple[Path, Path]:
    """(library, query): four labelled 6 s tones embedded with both built-in models, indexed, with landmarks; the
    query is 4 s of the third tone."""
    root = tmp_path_factory.mktemp("startup")
    lib = labelled_tones(root)
    with Library(lib) as opened:
        drive(iter_embed(opened))
    assert cli.main(["index", str(lib), "-q"]) == 0
    y, sr = sf.read(root / "audio" / "t2.wav", dtype="float32")
    sf.write(root / "q.wav", y[sr:5 * sr], sr)
    return lib, root / "q.wav"


def _counting(monkeypatch, module, name: str) -> list:
    """Wrap ``module.name`` so that each call is recorded (and still made); the list of their first arguments."""
    calls, real = [], getattr(module, name)

    def wrapper(*args, **kw):
        calls.append(args[0] if args else None)
        return real(*args, **kw)

    monkeypatch.setattr(module, name, wrapper)
    return calls


def _answer(capsys, *argv) -> list | dict:
    assert cli.main([*map(str, argv), "--json", "-q"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(("command", "model"), [("identify", "default"), ("search", "similarity"),
                                                ("classify", "similarity")])
def test_query_commands_load_their_model_once(work, capsys, monkeypatch, command, model):
    lib, query = work
    loads = _counting(monkeypatch, ckpt, "load_encoder")
    _answer(capsys, command, lib, query)
    assert [Path(f).name for f in loads] == [model]


def test_answers_are_those_of_a_searcher_opened_on_its_own(work, capsys):
    """The searcher given the checked model, and without landmarks for search and classify, answers as one that
    loads its own model and reads the landmarks."""
    lib, query = work
    got = {c: _answer(capsys, c, lib, query) for c in ("identify", "search", "classify")}
    with Library(lib) as opened:
        fingerprint, similarity = knn.Searcher(opened, model="default"), knn.Searcher(opened, model="similarity")
        q_fp, q_sim = fingerprint.embed_file(query), similarity.embed_file(query)
        want = {"identify": [{"query": str(query), "results": fingerprint.identify(q_fp)}],
                "search": {"query": str(query), "windows": similarity.nearest(q_sim)},
                "classify": [{"query": str(query), "results": similarity.classify(q_sim, top=2)}]}
    assert got == json.loads(json.dumps(want))
    assert got["identify"][0]["results"][0]["path"].endswith("t2.wav")
    assert got["identify"][0]["results"][0]["landmarks"] > 0  # the landmarks were read for identify
    assert got["classify"][0]["results"][0]["label"] == "high"


@pytest.mark.parametrize(("command", "readings"), [("identify", 1 + len(knn.SPEED_FACTORS)), ("search", 0),
                                                   ("classify", 0)])
def test_only_identify_reads_the_query_landmarks(work, capsys, monkeypatch, command, readings):
    lib, query = work
    calls = _counting(monkeypatch, landmarks, "landmarks")
    _answer(capsys, command, lib, query)
    assert len(calls) == readings


_PROBE = """
import json, sys
from musicemb_core import cli
code = cli.main(sys.argv[1:])
print(json.dumps([m for m in ("numba", "scipy.ndimage") if m in sys.modules]), file=sys.stderr)
sys.exit(code)
"""


@pytest.mark.parametrize(("command", "imported"), [("tracks", []), ("export", []), ("search", []),
                                                   ("classify", []), ("identify", ["scipy.ndimage"])])
def test_commands_import_only_what_they_use(work, tmp_path, command, imported):
    """numba (0.3 s to import) orders sets, scipy.ndimage (0.2-0.5 s) picks the landmarks' peaks: `tracks` and
    `export` imported both, `search` and `classify` scipy.ndimage."""
    lib, query = work
    argv = {"tracks": [lib, "--json"], "export": [lib, "--out", tmp_path / "crate.m3u8"]}.get(command, [lib, query])
    r = subprocess.run([sys.executable, "-c", _PROBE, command, *map(str, argv)], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stderr.splitlines()[-1]) == imported
    if command == "tracks":
        assert [row["label"] for row in json.loads(r.stdout)] == ["low", "low", "high", "high"]
    elif command == "export":
        assert r.stdout.strip() == f"4 tracks -> {tmp_path / 'crate.m3u8'}"
        assert (tmp_path / "crate.m3u8").read_text().count("#EXTINF") == 4


def test_set_orders_tracks_as_before(work, capsys):
    """The set ordering, whose imports moved into the call, still orders a crate (by the similarity vectors)."""
    lib, _ = work
    plan = _answer(capsys, "set", lib, 1, 2, 3, 4)
    assert sorted(r["track_id"] for r in plan["tracks"]) == [1, 2, 3, 4]
    assert plan["similarity"] == "similarity" and len(plan["steps"]) == 3
    assert np.isclose(sum(plan["steps"]), plan["cost"], atol=1e-3)
