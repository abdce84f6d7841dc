"""`musicemb similar --bpm-range PCT --key-compatible` (filters after ranking, results carry bpm/key) and
`musicemb set` with the similarity space, on a small embedded library of songs with known tempo and key."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from musicemb_core.cli import main
from musicemb_core.common.progress import drive
from musicemb_core.data.library import Library
from musicemb_core.inference import iter_embed
from tests.core.dj_audio import SR, song, write

# name -> (bpm, tonic MIDI, minor)
SONGS = {"q_120_Am": (120.0, 57, True), "half_61_Am": (61.0, 57, True), "near_123_Em": (123.0, 64, True),
         "far_140_Am": (140.0, 57, True), "clash_121_Ebm": (121.0, 63, True), "rel_119_C": (119.0, 60, False)}


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    root = tmp_path_factory.mktemp("mix")
    for name, (bpm, tonic, minor) in SONGS.items():
        write(root / "music" / f"{name}.wav", song(bpm, tonic, minor, seconds=12.0))
    with Library(root / "lib", create=True) as lib:
        from musicemb_core.data.ingest import iter_ingest

        drive(iter_ingest(lib, [str(root / "music")], jobs=1))
        drive(iter_embed(lib, model="similarity"))
        return root / "lib", {Path(t.path).stem: t.id for t in lib.tracks()}


def names(out) -> list[str]:
    return [Path(r["path"]).stem for r in out[0]["results"]]


def test_similar_filters_after_ranking(lib, capsys):
    root, ids = lib
    q = str(ids["q_120_Am"])
    assert main(["similar", str(root), q, "--json", "-k", "10", "--model", "similarity"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(names(out)) == 5
    r = out[0]["results"][0]
    assert {"track_id", "path", "title", "artist", "score", "bpm", "key"} <= set(r)
    assert main(["similar", str(root), q, "--json", "--bpm-range", "4"]) == 0
    assert set(names(json.loads(capsys.readouterr().out))) == {"half_61_Am", "near_123_Em", "clash_121_Ebm",
                                                                "rel_119_C"}
    assert main(["similar", str(root), q, "--json", "--key-compatible"]) == 0
    assert set(names(json.loads(capsys.readouterr().out))) == {"half_61_Am", "near_123_Em", "far_140_Am",
                                                                "rel_119_C"}
    assert main(["similar", str(root), q, "--json", "--key-compatible", "--bpm-range", "4", "-k", "2"]) == 0
    got = names(json.loads(capsys.readouterr().out))
    assert len(got) == 2 and set(got) <= {"half_61_Am", "near_123_Em", "rel_119_C"}


def test_similar_says_when_no_track_passes_the_filters(lib, capsys):
    """Filters that left no track printed the header line alone; --json stays valid JSON with no results."""
    root, ids = lib
    q = str(ids["far_140_Am"])  # no other tempo within 4 % of 140 (or of 70, 280)
    assert main(["similar", str(root), q, "--bpm-range", "4", "--key-compatible"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == ["  no track passed the filters (--bpm-range 4, --key-compatible)"]
    assert main(["similar", str(root), q, "--bpm-range", "4", "--key-compatible", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"query": q, "results": []}]
    # one filter alone, the other off (None): a TypeError formatting the absent --bpm-range
    q = str(ids["clash_121_Ebm"])  # no other key compatible with Ebm
    assert main(["similar", str(root), q, "--key-compatible"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == ["  no track passed the filters (--key-compatible)"]


def test_similar_filter_errors(lib, capsys):
    root, _ = lib
    with pytest.raises(SystemExit) as e:
        main(["similar", str(root), "1", "--bpm-range", "-3"])
    assert e.value.code == 2 and "--bpm-range" in capsys.readouterr().err
    # a query without a tempo: one line naming it and why
    silent_ish = root.parent / "music" / "pad.wav"
    from tests.core.dj_audio import chord_pad

    write(silent_ish, chord_pad(57, True, seconds=8.0))
    assert main(["similar", str(root), str(silent_ish), "--bpm-range", "5"]) == 1
    err = capsys.readouterr().err.strip()
    assert "no tempo to filter by (no steady beat)" in err and len(err.splitlines()) == 1


def test_set_uses_the_similarity_space(lib, capsys):
    root, ids = lib
    given = [str(ids[n]) for n in ("far_140_Am", "q_120_Am", "clash_121_Ebm", "near_123_Em", "rel_119_C")]
    assert main(["set", str(root), *given, "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["similarity"] == "similarity"
    assert plan["cost"] <= plan["given_cost"] and plan["cost"] < plan["random_cost"]
    assert len(plan["steps"]) == 4


def test_export_similar_to(lib, tmp_path, capsys):
    root, ids = lib
    out = tmp_path / "near.m3u8"
    assert main(["export", str(root), "--similar-to", str(ids["q_120_Am"]), "-k", "3", "--out", str(out)]) == 0
    paths = [ln for ln in out.read_text().splitlines() if not ln.startswith("#")]
    assert len(paths) == 4 and Path(paths[0]).stem == "q_120_Am"
    assert main(["export", str(root), "--similar-to", str(ids["q_120_Am"]), "--key-compatible", "8A",
                 "--out", str(out)]) == 0
    stems = {Path(p).stem for p in out.read_text().splitlines() if not p.startswith("#")}
    assert "clash_121_Ebm" not in stems and "q_120_Am" in stems


def test_a_query_without_tempo_or_key_names_the_reason_of_the_filter_asked(lib, capsys):
    """--key-compatible on a query with neither tempo nor key gave the tempo's reason ("no steady beat")."""
    root, _ = lib
    noise = root.parent / "music" / "noise.wav"
    write(noise, (0.2 * np.random.default_rng(5).standard_normal(8 * SR)).astype(np.float32))
    assert main(["similar", str(root), str(noise), "--key-compatible"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.endswith(f"{noise}: no key to filter by (no clear tonal centre); leave out --key-compatible"), err
    assert main(["similar", str(root), str(noise), "--bpm-range", "5"]) == 1
    assert "no tempo to filter by (no steady beat)" in capsys.readouterr().err


def test_tag_tempos_are_read_as_the_listing_reads_them(lib, capsys, tmp_path):
    """Without our estimate, `similar --bpm-range` read a tag "nan" as a tempo that passed every range, and a
    tag "120,5" (a decimal comma) as none, where `tracks` lists no tempo and 120.5."""
    import shutil

    root, ids = lib
    copy = tmp_path / "lib"
    shutil.copytree(root, copy)
    with Library(copy) as lib_:
        for name, tag in (("far_140_Am", "nan"), ("clash_121_Ebm", "120,5")):
            t = lib_.track(ids[name])
            lib_.set_analysis(t.id, bpm=None, bpm_confidence=None, key=t.key, key_confidence=t.key_confidence,
                              analysis={"bpm_reason": "no clear beat"})
            lib_.set_tags([(t.id, {**(t.tags or {}), "bpm": tag})])
    assert main(["similar", str(copy), str(ids["q_120_Am"]), "--json", "--bpm-range", "4"]) == 0
    assert set(names(json.loads(capsys.readouterr().out))) == {"half_61_Am", "near_123_Em", "clash_121_Ebm",
                                                                "rel_119_C"}
