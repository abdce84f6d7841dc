"""Query files that are quiet: the import keeps anything above -90 dBFS, and so do `similar`, `identify`, `search`
and `classify` (they refused everything below -60 dBFS as "silent", so a quiet field recording of the library
could only be queried by id, or not at all)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from musicemb_core.cli import main
from musicemb_core.data import edits
from musicemb_core.data.library import Library
from musicemb_core.search.similar import SimilarTracks
from tests.conftest import embedded_tones

SR = 16000


@pytest.fixture(scope="module")
def quiet_library(tmp_path_factory):
    """Four tones and a field recording at -70 dBFS RMS (peak about -57 dBFS), imported and embedded."""
    root = tmp_path_factory.mktemp("quiet")
    (root / "audio").mkdir()
    rng = np.random.default_rng(3)
    t = np.arange(9 * SR) / SR
    y = 10 ** (-70 / 20) * (0.5 * rng.standard_normal(len(t)) + 0.7 * np.sin(2 * np.pi * 210 * t))
    sf.write(root / "audio" / "field.wav", y.astype(np.float32), SR, subtype="FLOAT")
    lib = embedded_tones(root)
    with Library(lib) as opened:
        tracks = {t.path: t.id for t in opened.tracks()}
        edits.relabel_tracks(opened, [tracks[str(root / "audio" / "field.wav")]], "field")
        edits.relabel_tracks(opened, [i for p, i in tracks.items() if p.rsplit("/", 1)[-1].startswith("tone")], "tone")
    outside = root / "elsewhere" / "field copy.wav"
    outside.parent.mkdir()
    shutil.copy(root / "audio" / "field.wav", outside)
    return lib, root / "audio" / "field.wav", outside


def test_a_quiet_recording_of_the_library_is_a_query_file_with_its_stored_vector(quiet_library):
    lib_path, field, outside = quiet_library
    with Library(lib_path) as lib:
        track = lib.track_by_path(str(field))
        assert track is not None  # imported: above the import's -90 dBFS
        space = SimilarTracks(lib)
        vector, own = space.resolve(str(outside))  # decoded, not found by its path
        assert own == [] and float(vector @ space.vectors[space.row[track.id]]) > 0.999


def test_cli_similar_answers_a_quiet_query_file(quiet_library, capsys):
    lib_path, _, outside = quiet_library
    assert main(["similar", str(lib_path), str(outside), "--json", "-k", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out[0]["query"] == str(outside) and len(out[0]["results"]) == 3


@pytest.mark.parametrize("command", ["identify", "search", "classify"])
def test_the_other_queries_answer_a_quiet_query_file(quiet_library, capsys, command):
    """The field recording's copy: identify names it, search's neighbours are its segments, classify votes its
    label."""
    lib_path, field, outside = quiet_library
    k = ["-k", "3"] if command == "classify" else []  # the library holds 3 segments of it, 12 of tones
    assert main([command, str(lib_path), str(outside), "--json", *k]) == 0
    out = json.loads(capsys.readouterr().out)
    out = out[0] if isinstance(out, list) else out
    if command == "identify":
        assert out["results"][0]["path"] == str(field)
    elif command == "search":
        firsts = [w["neighbours"][0]["path"] for w in out["windows"]]
        assert firsts and set(firsts) == {str(field)}
    else:
        assert out["results"][0]["label"] == "field"


@pytest.mark.parametrize("command", ["similar", "identify", "search", "classify"])
@pytest.mark.parametrize("gain_db,level", [(None, "digital silence"), (-96, "peak -96 dBFS")])
def test_a_query_silent_by_the_imports_rule_is_one_line_naming_it(quiet_library, tmp_path, capsys, gain_db, level,
                                                                  command):
    lib_path, _, _ = quiet_library
    query = tmp_path / "hiss.wav"
    t = np.arange(4 * SR) / SR
    y = np.zeros(len(t)) if gain_db is None else 10 ** (gain_db / 20) * np.sin(2 * np.pi * 100 * t)
    sf.write(query, y.astype(np.float32), SR, subtype="FLOAT")
    assert main([command, str(lib_path), str(query)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"musicemb: error: {query}: silent ({level}, not above -90 dBFS): nothing to compare", err
