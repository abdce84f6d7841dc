"""``musicemb evaluate`` on odd labellings: labels the catalogue knows but the embedded segments do not carry on
two tracks (a label given only as a segment tag of the one labelled track, a label whose only track was cut
again since the embed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from musicemb_core.cli import main
from musicemb_core.common.progress import drive
from musicemb_core.data import edits
from musicemb_core.data.ingest import iter_ingest
from musicemb_core.data.library import Library
from musicemb_core.inference import iter_embed
from musicemb_core.workflows.evaluate import iter_evaluate
from tests.conftest import embedded_tones, write_tone


@pytest.fixture
def lib_path(tmp_path) -> Path:
    """Four 9 s tones (3 segments each), imported and embedded."""
    return embedded_tones(tmp_path)


def test_a_second_label_only_as_a_tag_of_the_one_labelled_track_skips_the_probes(lib_path, capsys):
    """One track labelled 'rock' and one of its segments tagged 'jazz': two labels, one labelled track. The
    whole evaluation (clustering, re-identification) failed with "a probe needs at least 2 labels and 2
    labelled tracks"; now only the probes are left out."""
    with Library(lib_path) as lib:
        first = min(t.id for t in lib.tracks())
        edits.relabel_tracks(lib, [first], "rock")
        seg = lib.segments()
        edits.tag_segments(lib, [int(seg["id"][seg["track_id"] == first][0])], "jazz")
    assert main(["evaluate", str(lib_path), "--reid", "3", "--json", "--quiet"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["labels"] == ["jazz", "rock"] and "probe_logistic" not in r and "confusion" not in r
    assert 0 < r["clustering"]["purity"] <= 1 and r["reid"]["n"] == 3


def test_a_label_whose_only_track_was_cut_again_since_the_embed(lib_path, capsys):
    """'jazz' is on one track only, whose file changed and was imported again (its segments cut again, not
    embedded yet): the embedded segments carry one label, and the evaluation failed; when only that track is
    labelled, purity was NaN (invalid JSON)."""
    with Library(lib_path) as lib:
        tracks = sorted(lib.tracks(), key=lambda t: t.id)
        edits.relabel_tracks(lib, [t.id for t in tracks[:2]], "rock")
        edits.relabel_tracks(lib, [tracks[2].id], "jazz")
        write_tone(Path(tracks[2].path), 470, seconds=12.0, sr=16000, seed=9)
        assert drive(iter_ingest(lib, [tracks[2].path], jobs=1)).updated == 1
        r = drive(iter_evaluate(lib, model="similarity", reid_n=0))
        assert "probe_logistic" not in r and r["clustering"]["purity"] == 1.0
        edits.relabel_tracks(lib, [t.id for t in tracks[:2]], None)
    assert main(["evaluate", str(lib_path), "--reid", "0", "--json", "--quiet"]) == 0
    r = json.loads(capsys.readouterr().out)  # strict JSON: NaN would not parse as a number here
    assert r["labels"] == [] and r["clustering"]["purity"] is None  # jazz is on no embedded segment: no class


def test_inspect_and_evaluate_refuse_vectors_of_weights_trained_over(lib_path, capsys):
    """A model trained again since the embed: `inspect` judged labels, outliers and duplicates, and `evaluate`
    probed, on vectors its old weights made, without a word (the map and the searches already refused them)."""
    import shutil

    from safetensors.torch import load_file, save_file

    from musicemb_core.models.checkpoint import weights_path
    from musicemb_core.resources import builtin_model_dir

    folder = lib_path / "models" / "mine"
    shutil.copytree(builtin_model_dir("default"), folder)
    with Library(lib_path) as lib:
        drive(iter_embed(lib, model="mine"))
    weights = load_file(weights_path(folder))
    save_file({k: v + 1e-3 if v.is_floating_point() else v for k, v in weights.items()}, weights_path(folder))
    assert main(["inspect", str(lib_path), "--model", "mine", "--json"]) == 0
    out = capsys.readouterr()
    assert "made by other weights of the model (trained again since?) for model 'mine'; run `musicemb embed`" in out.err
    assert main(["evaluate", str(lib_path), "--model", "mine", "--reid", "0", "--quiet"]) == 1
    assert "were made by other weights of the model" in capsys.readouterr().err
