"""Odd arguments and bad input found by sweeping every ``musicemb`` subcommand: each is one line on stderr with a
non-zero exit status, never a traceback, an "unexpected" error or work done in the wrong place."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from musicemb_core import cli
from musicemb_core.data.library import Library
from tests.core import test_cli_errors as ce
from tests.core.test_cli_errors import musicemb, one_line_error, tone

work = ce.work  # the small embedded library of the error tests (a fixture)

EMPTY = [
    (["ingest", "", "music"], "argument lib: an empty path"),
    (["ingest", "LIB", ""], "argument PATH: an empty path"),
    (["info", ""], "argument lib: an empty path"),
    (["similar", "LIB", ""], "argument QUERY: an empty path"),
    (["identify", "LIB", "q.wav", ""], "argument QUERY_AUDIO: an empty path"),
    (["export", "LIB", "--out", ""], "argument --out: an empty path"),
    (["features", "a.wav", "--out", ""], "argument --out: an empty path"),
    (["evaluate", "LIB", "--plots", " "], "argument --plots: an empty path"),
    (["demo", "--lib", ""], "argument --lib: an empty path"),
]


@pytest.mark.parametrize(("argv", "needle"), EMPTY, ids=[" ".join(a) for a, _ in EMPTY])
def test_an_empty_path_is_a_usage_error_not_the_current_folder(argv, needle, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and needle in err[0], err
    assert os.listdir(tmp_path) == []  # no library made in the current folder


def test_nan_audio_is_an_audio_error(tmp_path):
    from musicemb_core.audio.decode import load
    from musicemb_core.common.errors import AudioError

    y = np.zeros(8000, np.float32)
    y[4000:] = np.nan
    sf.write(tmp_path / "nan.wav", y, 8000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"nan.wav: contains NaN/Inf samples \(first at 0.50 s\)"):
        load(tmp_path / "nan.wav", sr=16000)


def test_features_reports_nan_and_silent_files_per_file(tmp_path, capsys):
    """A NaN-filled file was an "unexpected ParameterError" from librosa that stopped the table; silence warned."""
    tone(tmp_path / "in" / "good.wav", 2.0)
    sf.write(tmp_path / "in" / "nan.wav", np.full(8000, np.nan, np.float32), 8000, subtype="FLOAT")
    sf.write(tmp_path / "in" / "silent.wav", np.zeros(8000, np.float32), 8000)
    assert cli.main(["features", str(tmp_path / "in"), "--out", str(tmp_path / "f.csv"), "-q"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [f"failed: {tmp_path / 'in' / 'nan.wav'}: contains NaN/Inf samples (first at 0.00 s)"], err
    assert len((tmp_path / "f.csv").read_text().splitlines()) == 3


@pytest.mark.parametrize("command", ["identify", "classify", "search", "similar"])
def test_silent_and_nan_queries_are_one_line_errors(work, tmp_path, command):
    """identify/classify/search answered a silent query with nothing (or meaningless neighbours) and exit 0,
    similar called a NaN-filled file silent."""
    sf.write(tmp_path / "silent.wav", np.zeros(16000, np.float32), 8000)
    sf.write(tmp_path / "nan.wav", np.full(16000, np.nan, np.float32), 8000, subtype="FLOAT")
    model = ["--model", "default"] if command != "identify" else []
    silent = "silent (digital silence, not above -90 dBFS): nothing to compare"  # a quiet recording is fine
    for name, reason in (("silent.wav", silent),
                         ("nan.wav", "contains NaN/Inf samples (first at 0.00 s)")):
        r = ce.musicemb_here(command, work["lib"], tmp_path / name, *model, "--json", home=work["home"])
        one_line_error(r, 1, f"{tmp_path / name}: {reason}")


def test_pick_device_names_what_this_machine_lacks(monkeypatch):
    import torch

    from musicemb_core.common.errors import ConfigError
    from musicemb_core.models.device import pick_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert pick_device("auto") == torch.device("cuda") and pick_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(ConfigError, match=r"--device cuda:2: this machine has 2 CUDA GPUs \(cuda:0 to cuda:1\)"):
        pick_device("cuda:2")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device("auto") == torch.device("cpu")
    with pytest.raises(ConfigError, match="--device mps: Apple's MPS is not available here"):
        pick_device("mps")
    for bad in ("gpu", ""):  # through the API (the CLI and the app offer a list): torch's RuntimeError before
        with pytest.raises(ConfigError, match=f"--device {bad!r}: not a device; use auto, cpu"):
            pick_device(bad)
    with pytest.raises(ConfigError, match="--device meta: not a device this project runs on"):
        pick_device("meta")


@pytest.mark.parametrize("argv", [["embed", "--device", "cuda"], ["embed", "--device", "auto"],
                                  ["train", "--strategy", "supervised", "--device", "cuda:0"]])
def test_a_device_this_machine_lacks_is_one_line(work, argv, monkeypatch, capsys):
    """embed --device cuda without a GPU was an unexpected AssertionError, --device auto an unexpected RuntimeError
    (it is the CPU then); train failed only after loading every segment."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    status = cli.main([argv[0], str(work["lib"]), *argv[1:], "-q"])
    err = capsys.readouterr().err
    if "auto" in argv:
        assert status == 0 and err == "", err
    else:
        assert status == 1
        assert err == f"musicemb: error: --device {argv[-1]}: no CUDA GPU here (or torch built without CUDA); use " \
                      "--device cpu\n"


def test_table_outputs_are_checked_first_and_name_the_file(work, tmp_path, monkeypatch, capsys):
    """An unwritable --out named the hidden temporary file and was an unexpected error (with a log); a wrong suffix
    or a folder was found only after the whole run."""
    from musicemb_core.workflows import inspect, maps

    def never(*a, **k):
        raise AssertionError("the work ran before --out was checked")

    monkeypatch.setattr(maps, "iter_map", never)
    monkeypatch.setattr(inspect, "iter_inspect", never)
    (tmp_path / "folder.csv").mkdir()
    for argv, line in (
            (["map", work["lib"], "--out", tmp_path / "m.txt"], f"{tmp_path / 'm.txt'}: unknown table format '.txt'"),
            (["map", work["lib"], "--out", tmp_path / "folder.csv"], f"{tmp_path / 'folder.csv'}: is a folder"),
            (["inspect", work["lib"], "--out", tmp_path / "f.txt"],
             f"{tmp_path / 'f.txt'}: write the findings to .csv, .parquet or .json"),
            (["features", tmp_path / "empty", "--out", tmp_path / "f.csv"], f"no audio files in {tmp_path / 'empty'}"),
    ):
        (tmp_path / "empty").mkdir(exist_ok=True)
        assert cli.main([*map(str, argv), "-q"]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"musicemb: error: {line}") and len(err.splitlines()) == 1, err

    blocker = tmp_path / "file"
    blocker.write_text("")
    out = blocker / "t.csv"
    assert cli.main(["features", str(tone(tmp_path / "a.wav", 1.0)), "--out", str(out), "-q"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"musicemb: error: {out}: cannot write the table there, {blocker} is a file") \
        and ".tmp" not in err.replace(str(tmp_path), ""), err
    assert "details in" not in err and len(err.splitlines()) == 1


def test_evaluate_plots_folder_is_checked_first(work, tmp_path, monkeypatch, capsys):
    """--plots naming a file said "File exists" (an unexpected error, with a log) after the whole evaluation."""
    from musicemb_core.workflows import evaluate

    def never(*a, **k):
        raise AssertionError("the evaluation ran before --plots was checked")

    monkeypatch.setattr(evaluate, "load_embeddings", never)
    afile = tmp_path / "afile"
    afile.write_text("")
    for plots, line in ((afile, f"{afile}: is a file; give a folder for the plots"),
                        (afile / "sub", f"{afile / 'sub'}: cannot make the plots folder (")):
        assert cli.main(["evaluate", str(work["lib"]), "--plots", str(plots), "-q"]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"musicemb: error: {line}") and len(err.splitlines()) == 1, err


def test_demo_is_never_built_among_other_files(tmp_path, capsys):
    """demo --lib FOLDER rendered 50 songs and a library into any folder (e.g. the user's music); a folder that
    cannot be made was an unexpected error."""
    music = tmp_path / "music"
    tone(music / "mine.wav", 1.0)
    before = ce.snapshot(music)
    afile = tmp_path / "afile"
    afile.write_text("")
    for lib, line in ((music, f"{music}: a folder with other files, not a musicemb library; give a new or empty "
                              "folder for the demo"),
                      (afile / "demo", f"{afile / 'demo'}: cannot make the demo folder (")):
        assert cli.main(["demo", "--lib", str(lib), "--no-gui", "-q"]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"musicemb: error: {line}") and len(err.splitlines()) == 1, err
    assert ce.snapshot(music) == before


def test_ivfpq_index_of_the_similarity_space(tmp_path):
    """`index --kind ivfpq` (and `auto` above 2M vectors) failed on the 182-d similarity space: "dim 182 must be a
    multiple of pq_m 16"; it now takes 14 sub-quantisers, in memory and on disk."""
    from musicemb_core.common.progress import drive
    from musicemb_core.index import EmbeddingIndex
    from musicemb_core.index.faiss_index import pq_subquantisers
    from musicemb_core.index.ondisk import iter_build_ondisk
    from tests.core.test_index import _clustered

    assert (pq_subquantisers(182, 16), pq_subquantisers(128, 16), pq_subquantisers(7, 16)) == (14, 16, 7)
    X = _clustered(3000, 182)
    for index in (EmbeddingIndex("ivfpq", nlist=32).fit(X, np.arange(len(X))),
                  drive(iter_build_ondisk(X, np.arange(len(X)), tmp_path / "i.faiss", nlist=32, threads=1))):
        _, got = index.search(X[:100] + 0.01, 10)
        assert np.mean([i in row for i, row in enumerate(got)]) > 0.9


def test_embed_repairs_a_damaged_embeddings_pointer(work, tmp_path):
    """A damaged embeddings/<model>/CURRENT said "rebuild it with `musicemb embed`", and embed failed the same way."""
    import shutil

    lib = tmp_path / "lib"
    shutil.copytree(work["lib"], lib)
    (lib / "embeddings" / "default" / "CURRENT").write_text("g-nonexistent")
    one_line_error(musicemb("identify", lib, work["query"], home=work["home"]), 1, "CURRENT: damaged pointer",
                   "musicemb embed")
    r = musicemb("embed", lib, "--model", "default", "-q", home=work["home"])
    assert r.returncode == 0, r.stderr
    r = musicemb("identify", lib, work["query"], "--json", home=work["home"])
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)[0]["results"][0]["path"].endswith("t1.wav")


def test_an_emptied_catalogue_is_not_silently_replaced(work, tmp_path, capsys):
    """A 0-byte library.sqlite was made a new, empty catalogue (even by `info`), and the next `embed` kept the old
    vectors for the new catalogue's segments of the same ids."""
    import shutil

    lib = tmp_path / "lib"
    shutil.copytree(work["lib"], lib)
    (lib / "library.sqlite").write_bytes(b"")
    before = ce.snapshot(lib)
    for argv in (["info", str(lib)], ["ingest", str(lib), str(work["music"]), "-q"], ["embed", str(lib), "-q"]):
        assert cli.main(argv) == 1
        err = capsys.readouterr().err
        assert err == (f"musicemb: error: {lib / 'library.sqlite'}: empty (0 bytes) beside the library's models, "
                       "embeddings or indexes: the catalogue was damaged; restore it from a backup (a new one would "
                       "not match them)\n"), err
    assert ce.snapshot(lib) == before

    fresh = tmp_path / "fresh"  # a creation that stopped before its first write: a new catalogue, as before
    fresh.mkdir()
    (fresh / "library.sqlite").write_bytes(b"")
    assert cli.main(["info", str(fresh)]) == 0
    assert "0 tracks, 0 segments, 0.00 h\n" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["default", "similarity", "qbh-default"])
def test_train_refuses_a_built_in_models_name(work, name, capsys):
    """`train --name default` saved the library's own `default`, which then took the built-in's place: identify
    embedded queries with it against the vectors the built-in had made."""
    strategy = "qbh" if name.startswith("qbh") else "contrastive"
    assert cli.main(["train", str(work["lib"]), "--strategy", strategy, "--name", name, "--epochs", "1", "-q"]) == 1
    assert capsys.readouterr().err == (f"musicemb: error: --name {name!r} is a built-in model's; choose another "
                                       "name\n")
    assert not (work["lib"] / "models" / name).exists()


def test_evaluate_a_one_segment_library(tmp_path, capsys):
    """Was "need more points than clusters: 1 points", after the probes."""
    lib = tmp_path / "lib"
    assert cli.main(["ingest", str(lib), str(tone(tmp_path / "a.wav", 2.0)), "--embed", "-q"]) == 0
    capsys.readouterr()
    assert cli.main(["evaluate", str(lib), "-q"]) == 1
    assert capsys.readouterr().err == (f"musicemb: error: {lib}: evaluation needs at least 3 segments embedded with "
                                       "'similarity', found 1\n")


@pytest.mark.parametrize("text", ["", "path,label\n", "a.wav\n", '"unterminated,x\n'])
def test_a_labels_csv_without_labels_is_one_line(tmp_path, text, capsys):
    """Was accepted silently: the import ran and labelled nothing."""
    (tmp_path / "labels.csv").write_text(text)
    lib = tmp_path / "lib"
    assert cli.main(["ingest", str(lib), str(tone(tmp_path / "a.wav", 1.0)), "--labels",
                     str(tmp_path / "labels.csv"), "-q"]) == 1
    why = ("line 1: a quote is opened and never closed ('unterminated,x\\n'...)" if text.startswith('"') else
           "no labels in the CSV (one line per file: path,label)")
    assert capsys.readouterr().err == f"musicemb: error: {tmp_path / 'labels.csv'}: {why}\n"
    assert not lib.exists()


def test_hum_record_without_a_device_is_one_line(work, monkeypatch, capsys):
    """"recording 1 s: hum now..." came before the device error: two lines, the first a prompt to hum."""
    try:
        import sounddevice as sd
    except (ImportError, OSError) as e:
        pytest.skip(f"sounddevice unusable here: {e}")

    def query_devices(device=None, kind=None):
        if device is None and kind is None:
            return []
        raise sd.PortAudioError("Error querying device -1")

    monkeypatch.setattr(sd, "query_devices", query_devices)
    assert cli.main(["hum", str(work["lib"]), "--record", "1", "-q"]) == 1
    assert capsys.readouterr().err == ("musicemb: error: no audio input devices found (is a sound server such as "
                                       "PulseAudio or PipeWire running?)\n")


@pytest.mark.filterwarnings("error::sklearn.exceptions.ConvergenceWarning")  # was printed: liblinear on raw
def test_transfer_from_a_built_in_model(tmp_path, capsys):  # embeddings; now fitted on standardised ones
    """`--from default` was "no model 'default'" (built-ins were not looked up); with them, the built-in's labels
    (another corpus') left every track unlabelled: "needs labelled tracks"; `--from similarity` and `--from default
    --arch cnn2` (an unexpected RuntimeError loading the weights) are one line."""
    for i, (label, freq) in enumerate((("low", 220.0), ("low", 247.0), ("high", 880.0), ("high", 988.0))):
        tone(tmp_path / "music" / label / f"{i}.wav", 6.0, freq=freq)
    lib = str(tmp_path / "lib")
    assert cli.main(["ingest", lib, str(tmp_path / "music"), "--labels-from-folders", "-q"]) == 0
    assert cli.main(["train", lib, "--strategy", "transfer", "--from", "similarity", "-q"]) == 1
    assert capsys.readouterr().err == ("musicemb: error: --from similarity: a simstats model has no trained layers to "
                                       "start from\n")
    assert cli.main(["train", lib, "--strategy", "transfer", "--from", "default", "--arch", "cnn2", "-q"]) == 1
    assert capsys.readouterr().err == ("musicemb: error: --from default: its weights are a resnet18 of dim 128, width "
                                       "32; they cannot start a cnn2 of dim 128, width 32 (leave out --arch)\n")
    with pytest.raises(SystemExit) as e:  # a usage error: it was ignored without a word
        cli.main(["train", lib, "--strategy", "transfer", "--from", "default", "--dim", "64", "-q"])
    assert e.value.code == 2
    assert capsys.readouterr().err == ("musicemb train: error: --dim: --from default keeps that model's shape (its "
                                       "weights fix it); leave the option out (see `musicemb train --help`)\n")
    assert cli.main(["train", lib, "--strategy", "transfer", "--from", "default", "--epochs", "1",
                     "--steps-per-epoch", "1", "--name", "tuned", "-q"]) == 0
    with Library(lib) as opened:
        assert opened.models()[0]["name"] == "tuned"
    assert json.loads((tmp_path / "lib" / "models" / "tuned" / "config.json").read_text())["labels"] == ["high", "low"]


def test_evaluate_reid_with_no_long_track_or_an_unreadable_one(work, tmp_path, capsys):
    """--snippet longer than every track was an unexpected ValueError ("high <= 0") after the probes; a library file
    that cannot be read now stopped the whole evaluation."""
    import shutil

    assert cli.main(["evaluate", str(work["lib"]), "--model", "default", "--snippet", "60", "-q"]) == 1
    assert capsys.readouterr().err == ("musicemb: error: re-identification snippets of 60 s: no track is that long "
                                       "(the longest is 3.0 s); give a shorter --snippet or --reid 0\n")
    lib, music = tmp_path / "lib", tmp_path / "music"
    shutil.copytree(work["music"], music)
    assert cli.main(["ingest", str(lib), str(music), "--window", "1", "-q"]) == 0
    assert cli.main(["embed", str(lib), "--model", "default", "-q"]) == 0
    (music / "t0.wav").write_bytes(b"")
    capsys.readouterr()
    assert cli.main(["evaluate", str(lib), "--model", "default", "--reid", "20", "--json", "-q"]) == 0
    out, err = capsys.readouterr()
    reid = json.loads(out)["reid"]
    assert reid["unreadable"] == [str(music / "t0.wav")] and 0 < reid["n"] < 20
    assert err == ""  # --json: the list says it
    for f in music.glob("*.wav"):  # no snippet can be read: no figure ("top-1 0.000" over none before)
        f.write_bytes(b"")
    assert cli.main(["evaluate", str(lib), "--model", "default", "--reid", "5", "-q"]) == 0
    out, err = capsys.readouterr()
    assert "re-identification: no snippet could be read" in out and "top-1 0.000" not in out
    assert cli.main(["evaluate", str(lib), "--model", "default", "--reid", "5", "--json", "-q"]) == 0
    reid = json.loads(capsys.readouterr().out)["reid"]
    assert (reid["n"], reid["top1"], reid["top2"]) == (0, None, None)


def test_similar_to_a_track_whose_file_is_gone(work, tmp_path, capsys):
    """Said "not embedded yet; run `musicemb embed`", which fails for that file again."""
    import shutil

    lib, music = tmp_path / "lib", tmp_path / "music"
    shutil.copytree(work["music"], music)
    assert cli.main(["ingest", str(lib), str(music), "-q"]) == 0
    (music / "t0.wav").unlink()
    assert cli.main(["embed", str(lib), "--model", "similarity", "-q"]) == 0
    capsys.readouterr()
    with Library(lib) as opened:
        tid = next(t.id for t in opened.tracks() if t.path.endswith("t0.wav"))
    assert cli.main(["similar", str(lib), str(tid)]) == 1
    assert capsys.readouterr().err == (f"musicemb: warning: 1 of 3 tracks cannot be found: their files are gone since "
                                       "they were imported (t0.wav); import their new place\n"
                                       f"musicemb: error: {lib}: no track with id {tid} embedded: its file "
                                       f"{music / 't0.wav'} is gone (moved? import its new place)\n")


class _ClosedPipe(io.StringIO):
    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")


def test_output_that_cannot_be_written(work, tmp_path, monkeypatch, capsys):
    """`musicemb ... | head` said "LIB: Broken pipe" (an unexpected error, logged); output to a full disk said "disk
    full writing LIB": both blamed the library."""
    monkeypatch.setenv("MUSICEMB_HOME", str(tmp_path / "home"))
    capsys.readouterr()
    with monkeypatch.context() as m:
        m.setattr(sys, "stdout", _ClosedPipe())
        assert cli.main(["tracks", str(work["lib"]), "--json"]) == 141
    assert capsys.readouterr().err == ""
    assert not (tmp_path / "home" / "logs").exists()  # nothing unexpected
    if not os.path.exists("/dev/full"):
        return
    with open("/dev/full", "w") as full:
        r = subprocess.run([str(ce.MUSICEMB), "info", str(work["lib"]), "--json"], stdout=full, stderr=subprocess.PIPE,
                           text=True, env={**os.environ, "MUSICEMB_HOME": str(work["home"])}, timeout=300)
    assert r.returncode == 1 and r.stderr == "musicemb: error: cannot write the output (No space left on device)\n"


def test_hum_answers_the_queries_it_can(work, tmp_path):
    """One missing or NaN-filled hum among several stopped the command: no answer for the good ones."""
    sf.write(tmp_path / "nan.wav", np.full(16000, np.nan, np.float32), 8000, subtype="FLOAT")
    r = musicemb("hum", work["lib"], work["query"], tmp_path / "missing.wav", tmp_path / "nan.wav", "--json",
                 home=work["home"])
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == [f"musicemb: error: {tmp_path / 'missing.wav'}: file not found",
                                     f"musicemb: error: {tmp_path / 'nan.wav'}: contains NaN/Inf samples (first at "
                                     "0.00 s)"]
    assert [q["query"] for q in json.loads(r.stdout)] == [str(work["query"])]
    one_line_error(musicemb("hum", work["lib"], tmp_path / "missing.wav", home=work["home"]), 1, "file not found")


def test_a_labels_csv_that_names_no_file_is_a_warning(tmp_path, capsys):
    """Silently labelled nothing (a CSV of another folder's paths, or of names with a typo)."""
    (tmp_path / "labels.csv").write_text("elsewhere/b.wav,x\n")
    assert cli.main(["ingest", str(tmp_path / "lib"), str(tone(tmp_path / "in" / "a.wav", 1.0)), "--labels",
                     str(tmp_path / "labels.csv"), "-q"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == [
        "  warning: --labels: none of the 1 labelled paths in the CSV names one of the 1 files found; nothing is "
        "labelled"]
    # rows naming the file but all with empty labels said the same (the paths named no file)
    (tmp_path / "empty.csv").write_text("a.wav,\na.wav,  \n")
    assert cli.main(["ingest", str(tmp_path / "lib2"), str(tmp_path / "in" / "a.wav"), "--labels",
                     str(tmp_path / "empty.csv"), "-q"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == [
        "  warning: --labels: every label in the CSV is empty; nothing is labelled"]


def test_importing_folders_without_audio_says_so(tmp_path, capsys):
    """Said only "0 added, 0 updated, ..." (a typo in the folder, or the wrong one)."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "readme.txt").write_text("not audio")
    assert cli.main(["ingest", str(tmp_path / "lib"), str(tmp_path / "empty"), str(tmp_path / "docs"), "-q"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == [
        f"  warning: {tmp_path / 'empty'}, {tmp_path / 'docs'}: no audio files found"]


def _legacy_name(folder, source) -> str:
    """A copy of ``source`` in ``folder`` named in Latin-1 ("café.wav" as bytes that are not UTF-8)."""
    folder.mkdir(parents=True, exist_ok=True)
    raw = os.path.join(os.fsencode(folder), b"caf\xe9.wav")
    try:
        with open(raw, "wb") as f:
            f.write(source.read_bytes())
    except OSError:
        pytest.skip("this file system refuses file names that are not UTF-8")
    return os.fsdecode(raw)


@pytest.mark.skipif(sys.platform == "win32", reason="Windows file names are always Unicode")
def test_file_names_that_are_not_utf8(work, tmp_path):
    """Such a file stopped the whole import (an unexpected UnicodeEncodeError, nothing imported), as a query it was
    an unexpected error whose log could not be written (a traceback on the screen), and features failed on it."""
    def run(*args) -> tuple[int, bytes, str]:  # the output holds the name's own bytes
        r = subprocess.run([str(ce.MUSICEMB), *map(str, args)], capture_output=True, timeout=300,
                           env={**os.environ, "MUSICEMB_HOME": str(work["home"])})
        return r.returncode, r.stdout, r.stderr.decode()

    music = tmp_path / "music"
    tone(music / "good.wav", 3.0)
    legacy = _legacy_name(music, work["query"])
    code, out, err = run("ingest", tmp_path / "lib", music, "-q")
    assert code == 0, err
    assert os.fsencode(f"  failed: {legacy}: its name is not valid UTF-8 (a legacy encoding?); rename the "
                       "file") in out.splitlines()
    assert b"1 added" in out
    code, out, err = run("identify", work["lib"], legacy, "--json")
    assert code == 0 and "Traceback" not in err, err
    assert json.loads(out)[0]["results"][0]["path"].endswith("t1.wav")  # a copy of t1.wav
    code, out, err = run("features", music, "--out", tmp_path / "f.csv", "-q")
    assert code == 0, err
    assert os.fsencode(legacy) in (tmp_path / "f.csv").read_bytes()


def test_the_log_takes_any_file_name(monkeypatch, tmp_path, capsys):
    """An unexpected error about a file name that is not UTF-8 could not be logged: a traceback on the screen."""
    monkeypatch.setenv("MUSICEMB_HOME", str(tmp_path / "home"))

    def boom(a):
        raise RuntimeError("bad \udce9")

    monkeypatch.setattr(cli, "cmd_info", boom)
    assert cli.main(["info", "caf\udce9"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.splitlines()) == 1
    assert "bad \\udce9" in (tmp_path / "home" / "logs" / "musicemb.log").read_text()


def test_queries_against_a_library_without_segments(tmp_path, capsys):
    """identify/classify/search of a library with nothing imported answered nothing and exit 0."""
    lib = tmp_path / "lib"
    Library(lib, create=True).close()
    assert cli.main(["embed", str(lib), "-q"]) == 0
    query = str(tone(tmp_path / "q.wav", 3.0))
    capsys.readouterr()
    for command, model in (("identify", "default"), ("classify", "similarity"), ("search", "similarity")):
        assert cli.main([command, str(lib), query]) == 1
        assert capsys.readouterr().err == (f"musicemb: error: {lib}: no segments embedded with {model!r}; import "
                                           "audio and run `musicemb embed`\n")


@pytest.mark.skipif(sys.platform == "win32", reason="symbolic links")
@pytest.mark.parametrize("command", ["info", "ingest"])
def test_a_library_path_that_is_a_symlink_loop(tmp_path, command, capsys):
    """Was an unexpected RuntimeError ("Symlink loop")."""
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    argv = [command, str(loop)] + ([str(tone(tmp_path / "a.wav", 1.0)), "-q"] if command == "ingest" else [])
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"musicemb: error: {loop}: cannot open the library folder (") and len(err.splitlines()) == 1


def test_rekordbox_xml_with_control_characters_stays_xml(work, tmp_path, capsys):
    """A control character in the playlist name (or a track's tags) was written as it is: XML no reader parses."""
    import xml.etree.ElementTree as ET

    out = tmp_path / "crate.xml"
    assert cli.main(["export", str(work["lib"]), "--out", str(out), "--name", "set\x01 <1> & \x1b2"]) == 0
    names = [n.get("Name") for n in ET.parse(out).iter("NODE")]
    assert names == ["ROOT", "set <1> & 2"]


def test_m3u8_keeps_one_line_per_entry(tmp_path):
    """A line break in a title or a file name split an entry over several lines: a broken playlist."""
    from musicemb_core.workflows.dj import m3u8_text

    path = tmp_path / "new\nline.wav"
    rows = [{"artist": "A\nB", "title": "x\r\ny", "duration_s": 12.4, "path": str(path)}]
    assert m3u8_text(rows).splitlines() == ["#EXTM3U", "#EXTINF:12,A B - x y", path.as_uri()]


def test_hum_repairs_a_damaged_melody_index_pointer(work, tmp_path):
    """A damaged index/qbh/<model>/CURRENT said "rebuild it with `musicemb hum`", and hum failed the same way."""
    import shutil

    lib = tmp_path / "lib"
    shutil.copytree(work["lib"], lib)
    first = musicemb("hum", lib, work["query"], "--json", home=work["home"])
    assert first.returncode == 0, first.stderr
    pointers = list((lib / "index" / "qbh").glob("*/CURRENT"))
    assert len(pointers) == 1
    pointers[0].write_text("g-nonexistent")
    r = musicemb("hum", lib, work["query"], "--json", home=work["home"])
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == json.loads(first.stdout)


@pytest.mark.parametrize("argv", [["similar", "LIB", "²", "--model", "default"], ["set", "LIB", "1", "²"],
                                  ["export", "LIB", "²", "--out", "x.m3u8"]], ids=["similar", "set", "export"])
def test_a_track_reference_of_other_digits_is_one_line(work, tmp_path, argv, capsys):
    """"²" passed isdigit() and then failed int(): an unexpected ValueError."""
    argv = [str(work["lib"]) if a == "LIB" else str(tmp_path / a) if a.endswith(".m3u8") else a for a in argv]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "²" in err and "unexpected" not in err and len(err.splitlines()) == 1, err


def test_an_empty_label_filter_means_the_unlabelled_tracks(work, tmp_path, capsys):
    """`--label ""` matched no track at all (the unlabelled ones have no label, not an empty one)."""
    from musicemb_core.workflows.dj import keep

    capsys.readouterr()
    assert cli.main(["tracks", str(work["lib"]), "--json", "--label", ""]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 3 and all(r["label"] is None for r in rows)
    assert cli.main(["export", str(work["lib"]), "--label", "", "--out", str(tmp_path / "x.m3u8")]) == 0
    assert not keep({"label": "house"}, label="") and keep({"label": "house"}, label="house")


def test_a_labels_csv_of_paths_relative_to_the_current_folder(tmp_path, monkeypatch):
    """Only paths relative to an imported folder, written as it writes them, were found: `music/a.wav` from the
    current folder, `./a.wav` or `x/../a.wav` labelled nothing."""
    monkeypatch.chdir(tmp_path)
    for name, freq in (("sub/a.wav", 300.0), ("b.wav", 400.0), ("c.wav", 500.0)):
        tone(tmp_path / "music" / name, 1.0, freq=freq)
    (tmp_path / "labels.csv").write_text(f"music/sub/a.wav,one\n./b.wav,two\n{tmp_path}/music/sub/../c.wav,three\n")
    assert cli.main(["ingest", "lib", "music", "--labels", "labels.csv", "--no-analysis", "-q", "-j", "1"]) == 0
    with Library(tmp_path / "lib") as lib:
        assert {os.path.basename(t.path): t.label for t in lib.tracks()} == {"a.wav": "one", "b.wav": "two",
                                                                             "c.wav": "three"}


def test_demo_is_never_built_into_another_library(work, tmp_path, capsys):
    """demo --lib LIB rendered the 50 demo songs into an existing library, mixed in with its own tracks."""
    import shutil

    lib = tmp_path / "lib"
    shutil.copytree(work["lib"], lib)
    assert cli.main(["demo", "--lib", str(lib), "--no-gui", "-q"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"musicemb: error: {lib}: a musicemb library of other tracks (e.g. ") and len(
        err.splitlines()) == 1, err
    assert not (lib / "audio").exists()
    with Library(lib) as opened:
        assert len(opened.tracks()) == 3


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_non_finite_stored_vector_is_one_line(work, tmp_path, bad, capsys):
    """A NaN vector (a model that failed on a segment) was an unexpected ValueError in evaluate and map, and inspect
    measured outliers against it silently."""
    import shutil

    from musicemb_core.stored_vectors import load_embeddings

    lib = tmp_path / "lib"
    shutil.copytree(work["lib"], lib)
    with Library(lib) as opened:
        emb = load_embeddings(opened, "default")
    vectors = np.load(f"{emb.generation}/vectors.npy", mmap_mode="r+")
    vectors[1, 0] = bad
    vectors.flush()
    sid = int(emb.ids[1])
    for argv in (["evaluate", "--reid", "0"], ["map", "--method", "pca"], ["inspect", "--kinds", "outlier"]):
        assert cli.main([argv[0], str(lib), *argv[1:], "--model", "default", "-q"]) == 1
        assert capsys.readouterr().err == (f"musicemb: error: {lib}: 1 of {len(emb.ids)} vectors of 'default' hold NaN "
                                           f"or infinity (segment {sid} first): the model failed on them; embed with "
                                           "another model or retrain this one\n")


def test_inspect_with_a_label_only_on_tracks_not_embedded(work, tmp_path, capsys):
    """A label carried only by a track imported since the embed (sorting last) was an unexpected ValueError ("zip()
    argument 2 is shorter") as soon as a track was a finding: the label had a name but no column."""
    import shutil

    from musicemb_core.data import edits

    lib = tmp_path / "lib"
    shutil.copytree(work["lib"], lib)
    with Library(lib) as opened:
        ids = {t.path.rsplit("/", 1)[-1]: t.id for t in opened.tracks()}
        edits.relabel_tracks(opened, [ids["t0.wav"], ids["t1.wav"]], "a")
        edits.relabel_tracks(opened, [ids["t2.wav"]], "b")
    (tmp_path / "labels.csv").write_text("new.wav,zz\n")
    assert cli.main(["ingest", str(lib), str(tone(tmp_path / "new" / "new.wav", 3.0, freq=600.0)),
                     "--labels", str(tmp_path / "labels.csv"), "-q"]) == 0
    capsys.readouterr()
    assert cli.main(["inspect", str(lib), "--kinds", "label", "--model", "default", "--json", "-q"]) == 0
    findings = json.loads(capsys.readouterr().out)["findings"]
    assert findings and all(set(f["details"]["probs"]) == {"a", "b"} for f in findings if f["segment_id"] is None)


def test_a_file_name_with_a_newline_stays_on_its_line(tmp_path):
    """A name holding a newline split progress and failure lines in two (the second half looked like another
    line of the report); control characters are now shown escaped."""
    music = tmp_path / "music"
    tone(music / "good\nname.wav", 2.0)
    (music / "bad\nfile.wav").write_bytes(b"RIFF not really audio" * 50)
    r = musicemb("ingest", tmp_path / "lib", music, home=tmp_path / "home")
    assert r.returncode == 0, r.stderr
    failed = [line for line in r.stdout.splitlines() if "failed:" in line]
    assert len(failed) == 1 and "bad\\nfile.wav" in failed[0], r.stdout
    assert not [line for line in (r.stdout + r.stderr).splitlines() if line.startswith(("name.wav", "file.wav"))]


def test_an_ivfpq_index_of_a_small_library_says_which_library_and_what_to_use(work, tmp_path):
    """"ivfpq needs at least 256 vectors to train (nlist=21), got 28" named neither the library nor what to do."""
    line = one_line_error(musicemb("index", work["lib"], "--kind", "ivfpq", "--model", "default", "-q",
                                   home=work["home"]), 1, "needs at least", "use --kind flat (exact) or hnsw")
    assert line.startswith(f"musicemb: error: {work['lib']}: default: ivfpq needs at least"), line


def test_evaluate_with_a_chosen_number_of_clusters(work, capsys):
    """k-means took k by silhouette from 2-10 only: "k-means with a chosen k" could not be asked for."""
    lib = str(work["lib"])
    assert cli.main(["evaluate", lib, "--model", "default", "--reid", "0", "--clusters", "4", "--json", "-q"]) == 0
    c = json.loads(capsys.readouterr().out)["clustering"]
    assert c["k"] == 4 and c["ks"] == [4] and sum(row["size"] for row in c["composition"]) == 9
    assert len(c["composition"]) == 4
    assert cli.main(["evaluate", lib, "--model", "default", "--reid", "0", "--clusters", "2-3", "-q"]) == 0
    assert "by silhouette" in capsys.readouterr().out
    assert cli.main(["evaluate", lib, "--model", "default", "--reid", "0", "--clusters", "12", "-q"]) == 1
    assert capsys.readouterr().err == (f"musicemb: error: {lib}: 12 clusters need more than the 9 segments "
                                       "embedded with 'default'\n")
