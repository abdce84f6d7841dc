"""Query commands answer what they can and say why when they cannot; reports and help say what was done: vectors
older than the library's segments, a bad query among good ones, results without evidence, queries without a
labelled neighbour, the default name of a transfer model, tracks cut again by an import."""

from __future__ import annotations

import json
import shutil

import pytest

from musicemb_core import cli
from musicemb_core.data.library import Library
from musicemb_core.resources import default_model_dir
from tests.core.test_cli_errors import tone

FREQS = (220.0, 330.0, 495.0)


@pytest.fixture
def work(tmp_path, capsys):
    """Three 3 s tones cut into 1 s segments, embedded with the default model, indexed, with landmarks."""
    for i, f in enumerate(FREQS):
        tone(tmp_path / "music" / f"t{i}.wav", 3.0, freq=f)
    lib = tmp_path / "lib"
    for argv in (["ingest", lib, tmp_path / "music", "--window", "1", "-j", "1"], ["embed", lib, "--model", "default"],
                 ["index", lib, "--model", "default"]):
        assert cli.main([*map(str, argv), "-q"]) == 0
    capsys.readouterr()
    return tmp_path


def _run(capsys, *argv) -> tuple[int, str, list[str]]:
    code = cli.main([*map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, [line for line in err.splitlines() if line.strip()]


def test_search_passes_over_vectors_of_segments_cut_again(work, capsys):
    """A file changed and imported again (cut again, not embedded since): `search` printed "query at 0.0 s:" with
    no neighbour under it (its nearest vectors were the old segments') and exit 0. Now: the nearest segments
    still in the library; with none left, one line saying to run `musicemb embed`."""
    lib, query = work / "lib", work / "old-t1.wav"
    shutil.copy(work / "music" / "t1.wav", query)
    tone(work / "music" / "t1.wav", 4.0, freq=FREQS[1])  # its audio changed: cut again at the next import
    assert cli.main(["ingest", str(lib), str(work / "music"), "-q", "-j", "1"]) == 0
    capsys.readouterr()
    code, out, err = _run(capsys, "search", lib, query, "--model", "default", "-k", "2", "--json")
    assert code == 0 and err == ["musicemb: warning: 1 of 3 tracks have no vectors of 'default' yet and cannot be "
                                 "found (t1.wav); run `musicemb embed`"]  # its segments are new
    with Library(lib) as opened:
        current = set(opened.segments()["id"].tolist())
    windows = json.loads(out)["windows"]
    assert windows and all(len(w["neighbours"]) == 2 for w in windows)
    assert {n["segment_id"] for w in windows for n in w["neighbours"]} <= current

    assert cli.main(["ingest", str(lib), str(work / "music"), "--window", "0.5", "-q", "-j", "1"]) == 0
    capsys.readouterr()
    for command in ("search", "identify", "classify"):  # every vector is of segments cut again since
        code, out, err = _run(capsys, command, lib, query, "--model", "default")
        assert code == 1 and out == "" and len(err) == 1, (command, out, err)
        assert err[0] == (f"musicemb: error: {lib}: none of the segments embedded with 'default' is in the library "
                          "now (cut again or removed since the embed); run `musicemb embed`")
    assert cli.main(["embed", str(lib), "--model", "default", "-q"]) == 0
    capsys.readouterr()
    code, out, _ = _run(capsys, "search", lib, query, "--model", "default", "-k", "2")
    assert code == 0 and out.count(" @ ") == 2 * out.count("query at ")


def test_similar_answers_the_other_queries_and_reports_a_bad_one(work, capsys):
    """`similar LIB missing.wav 2` stopped at the missing file, as `identify`, `classify` and `hum` do not: each
    bad query is one error line, the others are answered (exit 0); exit 1 when none could be."""
    lib, missing = work / "lib", work / "missing.wav"
    with Library(lib) as opened:
        tid = opened.track_by_path(str(work / "music" / "t0.wav")).id
    code, out, err = _run(capsys, "similar", lib, missing, tid, "--model", "default", "--no-versions", "--json")
    assert code == 0
    assert err == [f"musicemb: error: {missing}: no such file, and not a track id of this library"]
    answers = json.loads(out)
    assert [q["query"] for q in answers] == [str(tid)] and len(answers[0]["results"]) == 2
    code, out, err = _run(capsys, "similar", lib, missing, "999", "--model", "default", "--no-versions")
    assert code == 1 and out == "" and len(err) == 2
    code, out, err = _run(capsys, "similar", lib, missing, tid, "--model", "default", "--together")
    assert code == 1 and out == "" and len(err) == 1  # one answer for all: a bad query stops it


def test_identify_leaves_out_results_without_evidence(work, capsys):
    """With -k 1 only the nearest track gets an embedding vote; the others had a few chance landmark matches
    (confidence 0) and were listed scored 0.000."""
    code, out, _ = _run(capsys, "identify", work / "lib", work / "music" / "t1.wav", "-k", "1", "--json")
    results = json.loads(out)[0]["results"]
    assert code == 0 and results and results[0]["path"] == str(work / "music" / "t1.wav")
    assert all(r["score"] > 0 for r in results), results


def test_classify_says_when_no_neighbour_is_labelled(work, capsys):
    """A library without labels: `classify` printed the query's name and nothing under it."""
    query = work / "music" / "t1.wav"
    code, out, _ = _run(capsys, "classify", work / "lib", query, "--model", "default", "-k", "3")
    assert code == 0
    assert out.splitlines() == [str(query), "  no labelled neighbour: none of the 3 nearest segments of its "
                                "sub-tracks is labelled (ingest --labels or --labels-from-folders labels tracks)"]


def test_transfer_model_is_named_as_the_help_says(work, capsys, monkeypatch):
    """`train --help` said the name defaults to STRATEGY-ARCH, but a transfer model is named after the model it
    starts from (and one from a model folder stopped: 'transfer-/path/to/folder' is no name)."""
    shutil.copytree(default_model_dir(), work / "mine")
    monkeypatch.setenv("COLUMNS", "1000")  # the help on one line
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    assert "with --from MODEL and no --arch, STRATEGY-MODEL, e.g. transfer-mine" in capsys.readouterr().out
    (work / "labels.csv").write_text("t0.wav,low\nt1.wav,high\nt2.wav,high\n")  # transfer learns labels
    assert cli.main(["ingest", str(work / "lib"), str(work / "music"), "--labels", str(work / "labels.csv"), "-q"]) == 0
    code, out, err = _run(capsys, "train", work / "lib", "--strategy", "transfer", "--from", work / "mine",
                          "--epochs", "1", "--steps-per-epoch", "1", "-q")
    assert code == 0, err
    assert "model 'transfer-mine'" in out and (work / "lib" / "models" / "transfer-mine").is_dir()


def test_ingest_reports_tracks_cut_again(work, capsys):
    """`ingest --window 0.5` cut every known track again and reported "3 unchanged", nothing more."""
    lib, music = work / "lib", work / "music"
    code, out, _ = _run(capsys, "ingest", lib, music, "--window", "0.5", "-q", "-j", "1")
    assert code == 0 and "3 unchanged" in out
    assert "  3 tracks cut again (window 0.5 s, hop 0.5 s): their new segments need `musicemb embed`" in out
    code, out, _ = _run(capsys, "ingest", lib, music, "--window", "1", "--hop", "0.5", "--json", "-q", "-j", "1")
    report = json.loads(out)
    assert code == 0 and (report["recut"], report["window_s"], report["hop_s"]) == (3, 1.0, 0.5)
    code, out, _ = _run(capsys, "ingest", lib, music, "-q", "-j", "1")
    assert code == 0 and "cut again" not in out
