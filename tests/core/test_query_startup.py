"""What the query and listing commands load before they answer: `identify`, `search` and `classify` load their
model once (it was loaded twice: checked first, then again by the searcher); `search` and `classify` do not read the
query's landmarks, nor import what picks their peaks (only `identify` uses them); `tracks` and `export` import neither
numba (the set ordering's compiler) nor torch (1.5-1.9 s: they read the tags' probabilities `embed` kept), nor do
`index`, `map`, `evaluate` (without snippets), `inspect` and `similar` on a library track. The answers are those of
a :class:`Searcher` opened as before."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from musicemb_core import cli, inference
from musicemb_core.analysis.tag_words import stored_likeliest_tags
from musicemb_core.common.progress import drive
from musicemb_core.data import layout
from musicemb_core.data.library import Library
from musicemb_core.features import landmarks
from musicemb_core.inference import iter_embed, sounds_like
from musicemb_core.models import checkpoint as ckpt
from musicemb_core.search import knn
from musicemb_core.workflows.dj import track_row
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
print(json.dumps([m for m in ("numba", "scipy.ndimage", "torch") if m in sys.modules]), file=sys.stderr)
sys.exit(code)
"""


@pytest.mark.parametrize(("command", "imported"), [("tracks", []), ("export", []), ("search", ["torch"]),
                                                   ("classify", ["torch"]), ("identify", ["scipy.ndimage", "torch"])])
def test_commands_import_only_what_they_use(work, tmp_path, command, imported):
    """numba (0.3 s to import) orders sets, scipy.ndimage (0.2-0.5 s) picks the landmarks' peaks, torch (1.5-1.9 s)
    runs models: `tracks` and `export` imported all three, `search` and `classify` scipy.ndimage."""
    lib, query = work
    argv = {"tracks": [lib, "--json"], "export": [lib, "--out", tmp_path / "crate.m3u8"]}.get(command, [lib, query])
    r = subprocess.run([sys.executable, "-c", _PROBE, command, *map(str, argv)], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stderr.splitlines()[-1]) == imported, r.stderr
    if command == "tracks":
        rows = json.loads(r.stdout)
        assert [row["label"] for row in rows] == ["low", "low", "high", "high"]
        with Library(lib) as opened:
            assert [row["sounds_like"] for row in rows] == [track_row(t, sounds_like(opened).get(t.id))["sounds_like"]
                                                           for t in opened.tracks()]
    elif command == "export":
        assert r.stdout.strip() == f"4 tracks -> {tmp_path / 'crate.m3u8'}"
        assert (tmp_path / "crate.m3u8").read_text().count("#EXTINF") == 4



@pytest.mark.parametrize("command", ["index", "map", "evaluate", "inspect", "similar"])
def test_commands_on_stored_vectors_import_no_torch(work, tmp_path, command):
    """torch (1.5-1.9 s to import) runs models: building an index, a map, an evaluation without snippets to embed,
    an inspection and `similar` on a track of the library only read stored vectors and model configs, and imported it
    (through the models' registry and the stored vectors' reader in `inference`)."""
    lib = tmp_path / "lib"
    shutil.copytree(work[0], lib)
    shutil.rmtree(lib / "index" / "knn")  # index has something to build
    argv = {"index": [lib, "-q"], "map": [lib, "--method", "pca", "-q", "--out", tmp_path / "map.csv"],
            "evaluate": [lib, "--reid", "0", "--clusters", "2", "--json", "-q"],
            "inspect": [lib, "--kinds", "label", "outlier", "--json", "-q"], "similar": [lib, "1", "--json"]}[command]
    r = subprocess.run([sys.executable, "-c", _PROBE, command, *map(str, argv)], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "torch" not in json.loads(r.stderr.splitlines()[-1]), r.stderr
    with Library(lib) as opened:
        n_segments, tracks = len(opened.segments()["id"]), [t.id for t in opened.tracks()]
    if command == "index":
        assert r.stdout.count(f"index of {n_segments} vectors") == 2, r.stdout  # both built-in models
    elif command == "map":
        assert len((tmp_path / "map.csv").read_text().splitlines()) == n_segments + 1
    elif command == "evaluate":
        assert json.loads(r.stdout)["knn_tracks"]["n_tracks"] == len(tracks)
    elif command == "inspect":
        assert isinstance(json.loads(r.stdout)["findings"], list)
    else:
        assert [row["track_id"] for row in json.loads(r.stdout)[0]["results"]] != []

def test_listings_read_the_tag_probabilities_embed_kept_as_the_tagger_gives_them(work, monkeypatch):
    """`embed` keeps each clip's tag probabilities; what a listing reads from them is what the tagger's last layer
    gives from its raw values (the way taken for a library embedded before they were kept)."""
    lib, _ = work
    with Library(lib) as opened:
        kept = stored_likeliest_tags(opened, top=5, min_p=0.0)
        monkeypatch.setattr(inference, "stored_likeliest_tags", lambda *a, **k: None)
        computed = inference.sounds_like(opened, top=5, min_p=0.0)
        ids = sorted(t.id for t in opened.tracks())
    assert sorted(kept) == sorted(computed) == ids
    for tid, tags in kept.items():
        assert [name for name, _ in tags] == [name for name, _ in computed[tid]]
        assert np.allclose([p for _, p in tags], [p for _, p in computed[tid]], atol=1e-3)
        assert len(tags) == 5


def test_set_orders_tracks_as_before(work, capsys):
    """The set ordering, whose imports moved into the call, still orders a crate (by the similarity vectors)."""
    lib, _ = work
    plan = _answer(capsys, "set", lib, 1, 2, 3, 4)
    assert sorted(r["track_id"] for r in plan["tracks"]) == [1, 2, 3, 4]
    assert plan["similarity"] == "similarity" and len(plan["steps"]) == 3
    assert np.isclose(sum(plan["steps"]), plan["cost"], atol=1e-3)


def _generation(lib: Library, model: str) -> Path:
    return layout.embeddings(lib, model).read(lambda gen: gen)


def test_embed_keeps_the_tag_probabilities_of_a_library_embedded_before_they_were_kept(work, tmp_path):
    """A library embedded by an earlier release (its generation without them) gets them at its next `embed`, even
    with nothing to compute, so its listings stop loading the model."""
    lib = tmp_path / "lib"
    shutil.copytree(work[0], lib)
    with Library(lib) as opened:
        want = stored_likeliest_tags(opened)
        old = _generation(opened, "similarity")
        with layout.embeddings(opened, "similarity").publish() as gen:
            for f in old.iterdir():
                if f.name not in ("tag_probs.npy", "tag_names.npy"):
                    shutil.copy2(f, gen / f.name)
        assert stored_likeliest_tags(opened) is None
    assert cli.main(["embed", str(lib), "-q"]) == 0
    with Library(lib) as opened:
        assert stored_likeliest_tags(opened) == want


def test_embed_repairs_a_generation_missing_its_tagger_values(work, tmp_path, capsys):
    """A generation missing one of its files beside the vectors (here the tagger's values): `embed` stopped with
    "missing ...; rebuild it with `musicemb embed`". It computes them again."""
    lib = tmp_path / "lib"
    shutil.copytree(work[0], lib)
    with Library(lib) as opened:
        want = stored_likeliest_tags(opened)
        (_generation(opened, "similarity") / "tag_raw.npy").unlink()
    assert cli.main(["embed", str(lib), "-q"]) == 0, capsys.readouterr().err
    with Library(lib) as opened:
        got = stored_likeliest_tags(opened)
    assert sorted(got) == sorted(want)
    for tid, tags in got.items():
        assert [n for n, _ in tags] == [n for n, _ in want[tid]]
