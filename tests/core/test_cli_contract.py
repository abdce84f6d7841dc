"""The CLI contract (DESIGN.md, README): ``--json`` prints one JSON document on stdout and nothing else, with the
documented keys, also for a query without results and a failed query among good ones; exit status 0 / 1 / 2
(141 silently when the reader of the output went away), also with stdout or stderr closed; help texts say each
option's default."""

from __future__ import annotations

import argparse
import errno
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from musicemb_core import cli
from musicemb_core.data import layout
from musicemb_core.data.library import Library
from tests.conftest import embedded_tones, write_tone

MUSICEMB = [sys.executable, "-m", "musicemb_core.cli"]
TRACK_KEYS = {"track_id", "path", "label", "score"}


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """Four embedded 9 s tones; a query of the library, a silent file, an 11 min hum and a missing file."""
    root = tmp_path_factory.mktemp("contract")
    lib = embedded_tones(root)
    sf.write(root / "silent.wav", np.zeros(8000, np.float32), 8000)
    sf.write(root / "long.wav", np.full(660 * 1000, 0.1, np.float32), 1000)  # over the 10 min of a hum
    return {"lib": str(lib), "query": str(root / "audio" / "tone440.wav"), "silent": str(root / "silent.wav"),
            "long": str(root / "long.wav"), "missing": str(root / "missing.wav"), "root": root}


def run(capsys, *argv) -> tuple[int, str, list[str]]:
    capsys.readouterr()
    code = cli.main([*map(str, argv), "-q"])
    out, err = capsys.readouterr()
    return code, out, [line for line in err.splitlines() if line.strip()]


def usage(capsys, *argv) -> list[str]:
    """The stderr lines of a usage error (exit status 2)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        cli.main([*map(str, argv)])
    assert e.value.code == 2
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


@pytest.mark.parametrize("command", ["identify", "classify", "similar", "hum"])
def test_query_commands_print_one_document_of_ranked_answers(work, capsys, command):
    """``--json`` between the library and its queries; one answer per query, results best first with the
    documented keys (classify: labels)."""
    code, out, err = run(capsys, command, work["lib"], "--json", work["query"], work["query"])
    assert code == 0 and err == []
    answers = json.loads(out)
    assert [q["query"] for q in answers] == [work["query"]] * 2
    for q in answers:
        keys = {"label", "score"} if command == "classify" else TRACK_KEYS
        assert all(keys <= set(r) for r in q["results"]), q
        scores = [r["score"] for r in q["results"]]
        assert scores == sorted(scores, reverse=True)
    if command == "identify":
        assert answers[0]["results"][0]["path"] == work["query"]
    if command == "classify":  # no label in this library: a query without results is still answered
        assert answers[0]["results"] == []


def test_info_document(work, capsys):
    code, out, _ = run(capsys, "info", "--json", work["lib"])
    info = json.loads(out)
    assert code == 0 and (info["tracks"], info["segments"], info["failed"], info["models"]) == (4, 12, [], [])


@pytest.mark.parametrize("command", ["identify", "classify", "hum"])
def test_a_failed_query_among_good_ones(work, capsys, command):
    """Each bad query is one line on stderr, the others are answered (exit 0). An 11 min hum stopped `hum`
    before any answer, and a silent hum was answered "no pitched sound heard" where every other query command
    says the file is silent."""
    bad = [work["missing"], work["silent"]] + ([work["long"]] if command == "hum" else [])
    code, out, err = run(capsys, command, work["lib"], *bad, work["query"], "--json")
    assert code == 0
    assert [q["query"] for q in json.loads(out)] == [work["query"]]
    assert len(err) == len(bad) and all(line.startswith("musicemb: error: ") for line in err)
    assert any(f"{work['silent']}: silent (digital silence" in line for line in err)
    if command == "hum":
        assert f"musicemb: error: {work['long']}: 11.0 min long; hums may be at most 10 min (trim it first)" in err


@pytest.mark.parametrize("command", ["identify", "classify", "similar", "hum"])
def test_no_query_answered_is_an_error_without_a_document(work, capsys, command):
    """identify and classify printed ``[]`` and exit 1 when every query failed; similar and hum printed nothing."""
    code, out, err = run(capsys, command, work["lib"], work["missing"], "--json")
    assert (code, out) == (1, "") and len(err) == 1 and work["missing"] in err[0]


def test_documents_of_an_empty_library(tmp_path, capsys):
    (tmp_path / "music").mkdir()
    assert run(capsys, "ingest", tmp_path / "lib", tmp_path / "music", "--json")[0] == 0
    code, out, _ = run(capsys, "info", tmp_path / "lib", "--json")
    assert code == 0 and (json.loads(out)["tracks"], json.loads(out)["failed"]) == (0, [])
    assert run(capsys, "tracks", tmp_path / "lib", "--json")[:2] == (0, "[]\n")
    code, out, _ = run(capsys, "inspect", tmp_path / "lib", "--json")
    assert (code, json.loads(out)) == (0, {"findings": []})
    code, out, err = run(capsys, "export", tmp_path / "lib", "--out", tmp_path / "all.m3u8")
    assert (code, out) == (1, "") and not (tmp_path / "all.m3u8").exists()
    assert err == [f"musicemb: error: {tmp_path / 'lib'}: no track matches the selection; nothing exported"]
    query = write_tone(tmp_path / "q.wav", 440.0, seconds=3.0)
    code, out, err = run(capsys, "identify", tmp_path / "lib", query, "--json")
    assert (code, out) == (1, "") and len(err) == 1 and str(tmp_path / "lib") in err[0]


def test_usage_errors_of_arguments_that_argparse_cannot_check(work, capsys):
    """`hum LIB` with neither files nor --record, `export` with tracks and --similar-to: exit 1 as if the library
    were at fault; now usage errors (exit 2) in the parser's own words."""
    assert usage(capsys, "hum", work["lib"], "--json") == [
        "musicemb hum: error: give QUERY_AUDIO files or --record SECONDS (see `musicemb hum --help`)"]
    assert usage(capsys, "export", work["lib"], "1", "--similar-to", "2", "--out", work["root"] / "x.m3u8") == [
        "musicemb export: error: give track ids/paths or --similar-to, not both (see `musicemb export --help`)"]
    assert not (work["root"] / "x.m3u8").exists()
    # options of another mode were ignored without a word: -k and --model of --similar-to, --songs of qbh,
    # --width of the resnet18
    assert usage(capsys, "export", work["lib"], "-k", "3", "--out", work["root"] / "x.m3u8") == [
        "musicemb export: error: -k goes with --similar-to TRACK; give it too (see `musicemb export --help`)"]
    assert usage(capsys, "export", work["lib"], "--model", "default", "--out", work["root"] / "x.m3u8") == [
        "musicemb export: error: --model goes with --similar-to TRACK; give it too (see `musicemb export --help`)"]
    assert usage(capsys, "train", work["lib"], "--strategy", "supervised", "--songs", "5") == [
        "musicemb train: error: --songs is the number of melodies --strategy qbh renders; leave it out (see "
        "`musicemb train --help`)"]
    assert usage(capsys, "train", work["lib"], "--strategy", "supervised", "--arch", "cnn2", "--width", "9") == [
        "musicemb train: error: --width sets the resnet18's base width; --arch cnn2 has its own: leave it out (see "
        "`musicemb train --help`)"]
    # a microphone named for hum files was silently ignored
    assert usage(capsys, "hum", work["lib"], work["query"], "--device", "mic") == [
        "musicemb hum: error: --device is the microphone --record SECONDS records from; give --record too (see "
        "`musicemb hum --help`)"]


def test_an_unknown_argument_names_its_subcommand(work, capsys):
    """It said "musicemb: error: unrecognized arguments: extra (see `musicemb --help`)": the wrong help."""
    assert usage(capsys, "info", work["lib"], "extra", "--json") == [
        "musicemb info: error: unrecognized arguments: extra (see `musicemb info --help`)"]


def test_without_stderr_stdout_keeps_one_document(work, capsys, monkeypatch):
    """Started with stderr closed (``2>&-``, sys.stderr None): the error line of a bad query was printed on stdout
    (print's fallback) inside the JSON, and an import's progress bar failed ("unexpected AttributeError")."""
    monkeypatch.setattr(sys, "stderr", None)
    code = cli.main(["identify", work["lib"], work["missing"], work["query"], "--json"])
    out = capsys.readouterr().out
    assert code == 0 and [q["query"] for q in json.loads(out)] == [work["query"]]
    monkeypatch.setattr(sys, "stderr", None)
    code = cli.main(["ingest", str(work["root"] / "lib2"), str(work["root"] / "audio"), "--json", "--no-analysis",
                     "-j", "1"])
    assert code == 0 and json.loads(capsys.readouterr().out)["added"] == 4


class _FullStream(io.StringIO):
    def write(self, text):
        raise OSError(errno.ENOSPC, "No space left on device")


def test_unwritable_stderr_loses_no_answer(work, capsys, monkeypatch):
    """stderr on a full disk: the error line of one bad query failed the whole command (its answers lost)."""
    monkeypatch.setattr(sys, "stderr", _FullStream())
    code = cli.main(["identify", work["lib"], work["missing"], work["query"], "--json"])
    assert code == 0 and [q["query"] for q in json.loads(capsys.readouterr().out)] == [work["query"]]
    monkeypatch.setattr(sys, "stderr", _FullStream())
    assert cli.main(["info", work["lib"] + "-missing"]) == 1


@pytest.mark.parametrize(("argv", "stdout", "stderr", "code"), [
    (["identify", "{lib}", "{query}", "--json"], "closed", "pipe", 141),  # the reader went away: silently
    (["info", "{lib}-missing", "--json"], "closed", "pipe", 1),
    (["hum", "{lib}", "--json"], "closed", "pipe", 2),
    (["identify", "{lib}", "{missing}", "{query}", "--json"], "pipe", "closed", 0),  # 2>&-
])
def test_exit_status_with_a_standard_stream_closed(work, argv, stdout, stderr, code):
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    line = [a.format(**work) for a in argv]
    shell = 'exec "$@" 2>&-' if stderr == "closed" else 'exec "$@"'
    p = subprocess.Popen(["sh", "-c", shell, "sh", *MUSICEMB, *line], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE if stderr == "pipe" else None, text=True, env=env)
    if stdout == "closed":  # as `| head -c0`: before anything is written
        p.stdout.close()
        err = p.communicate(timeout=300)[1]
        assert p.returncode == code and "Traceback" not in err
        assert len(err.splitlines()) == (0 if code == 141 else 1), err
    else:
        out = p.communicate(timeout=300)[0]
        assert p.returncode == code and [q["query"] for q in json.loads(out)] == [work["query"]]


def test_help_texts_say_every_default():
    """Many options had a default the help did not say (train --epochs 10, evaluate --reid 100, index --kind
    auto, hum --model qbh-default...)."""
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    missing = []
    for name, parser in sub.choices.items():
        for action in parser._actions:
            if not action.option_strings or action.default in (None, True, False, argparse.SUPPRESS):
                continue
            default = f"{action.default:g}" if isinstance(action.default, (int, float)) else str(action.default)
            if default not in (action.help or ""):
                missing.append(f"{name} {action.option_strings[-1]} {default}")
    assert missing == []


def test_a_map_of_too_few_segments_names_the_library(tmp_path, capsys):
    """"musicemb: error: a map needs at least 3 points, got 1" named neither the library nor what to do."""
    from musicemb_core.common.progress import drive
    from musicemb_core.data.ingest import iter_ingest
    from musicemb_core.data.library import Library
    from musicemb_core.inference import iter_embed
    from tests.conftest import write_tone

    write_tone(tmp_path / "music" / "short.wav", 440.0, seconds=3.0)
    with Library(tmp_path / "lib", create=True) as lib:
        drive(iter_ingest(lib, [tmp_path / "music"], jobs=1))
        drive(iter_embed(lib))
    assert cli.main(["map", str(tmp_path / "lib"), "--method", "pca"]) == 1
    assert capsys.readouterr().err.strip() == (
        f"musicemb: error: {tmp_path / 'lib'}: a map needs at least 3 embedded segments; 'similarity' has 1 (import "
        "more audio and embed it)")


def test_info_reports_damaged_embeddings_instead_of_failing(work, tmp_path, capsys):
    """A garbage ``CURRENT`` pointer of one model's embeddings (or of a map) made `info`, the command one runs to
    see what is wrong, fail with that error; truncated vectors were listed as "-1 vectors"."""
    import shutil

    lib = tmp_path / "lib"
    shutil.copytree(work["lib"], lib)
    (lib / "embeddings" / "similarity" / "CURRENT").write_text("garbage!!")
    maps = lib / "maps" / "similarity-pca"
    maps.mkdir(parents=True)
    (maps / "CURRENT").write_text("{")
    code, out, _ = run(capsys, "info", lib)
    assert code == 0 and "  embeddings: default (" in out
    assert "similarity (damaged: run `musicemb embed`)" in out
    code, out, _ = run(capsys, "info", lib, "--json")
    assert code == 0 and json.loads(out)["embeddings"]["similarity"] == -1 and "similarity-pca" in json.loads(out)["maps"]


def test_inspect_names_damaged_embeddings_and_lists_the_findings_kept_from_before(work, tmp_path, capsys):
    """Truncated similarity vectors were "no embeddings for model 'similarity'; run `musicemb embed` first", and
    the findings an earlier run kept (other kinds) were counted ("8 findings: ") but neither named nor listed."""
    import shutil

    lib = tmp_path / "lib"
    shutil.copytree(work["lib"], lib)
    with Library(lib) as opened:
        t = opened.tracks()[0]
        opened.replace_findings([{"kind": "clipping", "segment_id": None, "track_id": t.id, "start_s": 0.0,
                                  "end_s": 3.0, "score": 1.5, "reason": "flat tops"}], kinds=["clipping"])
        gen = layout.embeddings(opened, "similarity").current()
    with open(gen / "vectors.npy", "r+b") as f:
        f.truncate(100)
    code, out, err = run(capsys, "inspect", lib, "--kinds", "label")
    assert code == 0 and err == [f"musicemb: warning: skipped label: {gen / 'vectors.npy'}: damaged (100 bytes, "
                                 f"{(12 * 182 * 4) + 128} expected); rebuild it with `musicemb embed`"]
    assert out.splitlines()[0] == "1 findings: clipping 1" and "flat tops" in out.splitlines()[1]
