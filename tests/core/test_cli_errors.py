"""Every bad argument and damaged file is a one-line message from the real ``musicemb`` command, never a traceback:
exit status 2 for usage, 1 for errors; and nothing the user gave is deleted or written to. Cases that differ only
in the file given run the command's ``main`` in this process (:func:`musicemb_here`), the others a real process."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import soundfile as sf

from musicemb_core import cli
from musicemb_core.resources import default_model_dir

MUSICEMB = Path(sys.executable).with_name("musicemb")


def musicemb(*args, home: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    cmd = [str(MUSICEMB)] if MUSICEMB.exists() else [sys.executable, "-m", "musicemb_core.cli"]
    return subprocess.run([*cmd, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "MUSICEMB_HOME": str(home), "PYTHONUNBUFFERED": "1"})


def musicemb_here(*args, home: Path) -> subprocess.CompletedProcess:
    """:func:`musicemb` run by the command's ``main`` in this process: the same exit status and output, without a
    new interpreter importing torch (2 s a call)."""
    out, err = io.StringIO(), io.StringIO()
    with mock.patch.dict(os.environ, {"MUSICEMB_HOME": str(home)}), contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(err):
        code = cli.main([str(a) for a in args])
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def one_line_error(r: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    """Assert exit status ``code``, one line on stderr (no traceback) holding each of ``needles``."""
    assert r.returncode == code, f"exit {r.returncode}, stderr:\n{r.stderr}"
    assert "Traceback" not in r.stderr, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def tone(path: Path, seconds: float, *, freq: float = 440.0, sr: int = 8000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(round(seconds * sr))) / sr
    y = 0.4 * np.sin(2 * np.pi * freq * t) + 0.01 * np.random.default_rng(int(freq)).standard_normal(len(t))
    sf.write(path, y.astype(np.float32), sr, subtype="PCM_16")
    return path


def snapshot(folder: Path) -> dict[str, str]:
    """Relative path -> content hash of every file under ``folder``."""
    return {str(p.relative_to(folder)): hashlib.blake2b(p.read_bytes(), digest_size=16).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> dict[str, Path]:
    """A small embedded and indexed library (built with the real command), a query, and a copy of the default
    model as a folder outside the library."""
    root = tmp_path_factory.mktemp("cli_errors")
    home = root / "home"
    music = root / "music"
    for i, f in enumerate((220.0, 330.0, 495.0)):
        tone(music / f"t{i}.wav", 3.0, freq=f)
    lib = root / "lib"
    for args in (("ingest", lib, music, "--window", "1", "-q"), ("embed", lib, "--model", "default", "-q"),
                 ("index", lib, "--model", "default", "-q")):
        r = musicemb(*args, home=home)
        assert r.returncode == 0, (args, r.stderr)
    model = root / "models" / "my-model"
    shutil.copytree(default_model_dir(), model)
    return {"root": root, "home": home, "music": music, "lib": lib, "query": music / "t1.wav", "model": model}


# -- usage errors: exit 2, one line naming the argument ---------------------------------------------------------

USAGE = [
    (["identify", "L", "q.wav", "-k", "0"], "-k"),
    (["identify", "L", "q.wav", "-k", "-5"], "-k"),
    (["classify", "L", "q.wav", "--top", "0"], "--top"),
    (["search", "L", "q.wav", "-k", "0"], "-k"),
    (["search", "L", "q.wav", "-k", "ten"], "-k"),
    (["hum", "L", "q.wav", "-k", "0"], "-k"),
    (["hum", "L", "--record", "0"], "--record"),
    (["hum", "L", "--record", "-3"], "--record"),
    (["hum", "L", "--record", "7200"], "--record"),
    (["hum", "L", "--record", "nan"], "--record"),
    (["ingest", "L", "x.wav", "--window", "0"], "--window"),
    (["ingest", "L", "x.wav", "--window", "-3"], "--window"),
    (["ingest", "L", "x.wav", "--window", "inf"], "--window"),
    (["ingest", "L", "x.wav", "--window", "nan"], "--window"),
    (["ingest", "L", "x.wav", "--window", "1e-6"], "--window"),
    (["ingest", "L", "x.wav", "--window", "601"], "--window"),
    (["ingest", "L", "x.wav", "--hop", "0"], "--hop"),
    (["ingest", "L", "x.wav", "--hop", "inf"], "--hop"),
    (["ingest", "L", "x.wav", "--hop", "1e-6"], "--hop"),
    (["ingest", "L", "x.wav", "--max-duration", "-1"], "--max-duration"),
    (["ingest", "L", "x.wav", "-j", "0"], "-j"),
    (["features", "x.wav", "--out", "t.csv", "--window", "0"], "--window"),
    (["features", "x.wav", "--out", "t.csv", "--sr", "0"], "--sr"),
    (["train", "L", "--strategy", "supervised", "--epochs", "0"], "--epochs"),
    (["train", "L", "--strategy", "supervised", "--epochs", "-1"], "--epochs"),
    (["train", "L", "--strategy", "supervised", "--dim", "0"], "--dim"),
    (["train", "L", "--strategy", "supervised", "--dim", "1.5"], "--dim"),
    (["train", "L", "--strategy", "supervised", "--width", "0"], "--width"),
    (["train", "L", "--strategy", "supervised", "--batch-size", "0"], "--batch-size"),
    (["train", "L", "--strategy", "supervised", "--lr", "0"], "--lr"),
    (["train", "L", "--strategy", "supervised", "--lr", "inf"], "--lr"),
    (["train", "L", "--strategy", "supervised", "--patience", "-1"], "--patience"),
    (["train", "L", "--strategy", "supervised", "--steps-per-epoch", "0"], "--steps-per-epoch"),
    (["train", "L", "--strategy", "supervised", "--device", "gpu7"], "--device"),
    (["train", "L", "--strategy", "supervised", "--name", "../evil"], "--name"),
    (["train", "L", "--strategy", "supervised", "--name", "/tmp/evil"], "--name"),
    (["train", "L", "--strategy", "supervised", "--name", ""], "--name"),
    (["train", "L", "--strategy", "supervised", "--name", ".hidden"], "--name"),
    (["train", "L", "--strategy", "supervised", "--name", "a\\b"], "--name"),
    (["train", "L", "--strategy", "supervised", "--name", "v1.old"], "--name"),  # would sweep v1's leftovers
    (["embed", "L", "--model", "v1.tmp"], "--model"),
    (["train", "L", "--strategy", "transfer", "--from", "../../x"], "--from"),
    (["embed", "L", "--model", "../nowhere"], "--model"),
    (["embed", "L", "--model", "/nonexistent/model"], "--model"),
    (["embed", "L", "--model", ""], "--model"),
    (["embed", "L", "--batch-size", "0"], "--batch-size"),
    (["index", "L", "--model", ".."], "--model"),
    (["map", "L", "--model", "a/b"], "--model"),
    (["evaluate", "L", "--reid", "-1"], "--reid"),
    (["evaluate", "L", "--snippet", "0"], "--snippet"),
    (["evaluate", "L", "--clusters", "1"], "--clusters"),
    (["evaluate", "L", "--clusters", "9-3"], "--clusters"),
    (["evaluate", "L", "--clusters", "two"], "--clusters"),
    (["inspect", "L", "--top", "-2"], "--top"),
    (["no-such-command"], "invalid choice"),
]


@pytest.mark.parametrize("argv, arg", USAGE, ids=[" ".join(a[0][:1] + a[0][2:]) for a in USAGE])
def test_bad_arguments_are_one_line_usage_errors(argv, arg, tmp_path):
    line = one_line_error(musicemb(*argv, home=tmp_path / "home"), 2, arg, "error:")
    assert "--help" in line
    assert not (tmp_path / "L").exists()


def test_debug_flag_is_accepted_anywhere(tmp_path):
    r = musicemb("info", tmp_path / "nolib", "--debug", home=tmp_path / "home")
    assert r.returncode == 1 and "usage" not in r.stderr.replace(str(tmp_path), "")  # parsed, then a missing library


# -- errors: exit 1, one line naming the file -------------------------------------------------------------------

def test_labels_csv_not_utf8(work, tmp_path):
    csv = tmp_path / "labels.csv"
    csv.write_bytes("path,label\nt0.wav,caf\xe9\n".encode("latin-1"))
    r = musicemb("ingest", tmp_path / "lib", work["music"], "--labels", csv, "-q", home=work["home"])
    one_line_error(r, 1, str(csv), "UTF-8")
    assert not (tmp_path / "lib").exists()


def test_labels_csv_with_byte_order_mark_is_read(work, tmp_path):
    csv = tmp_path / "labels.csv"
    csv.write_bytes("path,label\nt0.wav,café\n".encode("utf-8-sig"))
    r = musicemb("ingest", tmp_path / "lib", work["music"], "--labels", csv, "--window", "1", "-q", "--json",
                 home=work["home"])
    assert r.returncode == 0, r.stderr
    r = musicemb("info", tmp_path / "lib", "--json", home=work["home"])
    assert json.loads(r.stdout)["labels"].get("café") == 1


@pytest.mark.parametrize("command", [["ingest", "{lib}", "{music}"], ["info", "{lib}"], ["embed", "{lib}"],
                                     ["identify", "{lib}", "{query}"]])
def test_library_path_that_is_a_file(work, tmp_path, command):
    lib = tmp_path / "lib.txt"
    lib.write_text("not a library")
    argv = [a.format(lib=lib, music=work["music"], query=work["query"]) for a in command]
    one_line_error(musicemb(*argv, "-q" if command[0] != "identify" else "--json", home=work["home"]), 1,
                   str(lib), "not a library folder")
    assert lib.read_text() == "not a library"


BAD_CONFIGS = {
    "dim-bool": lambda d: d["model"].update(dim=True),
    "sr-string": lambda d: d["features"].update(sr="22050"),
    "missing-features": lambda d: d.pop("features"),
    "window-string": lambda d: d.update(window_s="3"),
    "labels-not-list": lambda d: d.update(labels="abc"),
    "model-not-object": lambda d: d.update(model=[1, 2]),
    "unknown-key": lambda d: d["model"].update(colour="blue"),
}


@pytest.mark.parametrize("damage", [*BAD_CONFIGS, "not-json"])
def test_model_config_of_the_wrong_shape(work, tmp_path, damage):
    model = tmp_path / "bad-model"
    shutil.copytree(work["model"], model)
    config = model / "config.json"
    if damage == "not-json":
        config.write_text('{"name": "default", "model": ')
    else:
        d = json.loads(config.read_text())
        BAD_CONFIGS[damage](d)
        config.write_text(json.dumps(d))
    before = snapshot(model)
    lib = tmp_path / "lib"
    shutil.copytree(work["lib"], lib)
    one_line_error(musicemb_here("embed", lib, "--model", model, "-q", home=work["home"]), 1, str(config))
    one_line_error(musicemb_here("identify", lib, work["query"], "--model", model, home=work["home"]), 1, str(config))
    assert snapshot(model) == before


def test_model_given_as_a_path_is_read_only(work, tmp_path):
    """``embed --model /path/to/my-model`` used to delete that folder and write vectors into it."""
    model = tmp_path / "elsewhere" / "my-model"
    shutil.copytree(work["model"], model)
    (model / "README.md").write_text("my notes")
    before = snapshot(model)
    lib = tmp_path / "lib"
    shutil.copytree(work["lib"], lib)
    outside = sorted(p.name for p in model.parent.iterdir())
    for args in (("embed", lib, "--model", model, "-q"), ("index", lib, "--model", model, "-q", "--no-landmarks"),
                 ("identify", lib, work["query"], "--model", model, "--json")):
        r = musicemb(*args, home=work["home"])
        assert r.returncode == 0, (args, r.stderr)
        assert snapshot(model) == before, args
        assert sorted(p.name for p in model.parent.iterdir()) == outside, args
    assert (lib / "embeddings" / "my-model").is_dir()  # outputs under the library, by the folder's name
    assert any("my-model" in str(p.relative_to(lib / "index")) for p in (lib / "index").rglob("*"))
    assert json.loads(r.stdout)[0]["results"][0]["path"].endswith("t1.wav")


def _files(folder: Path, name: str) -> list[Path]:
    return [p for p in folder.rglob(name) if p.is_file()]


@pytest.mark.parametrize("how", ["truncated", "garbage"])
def test_damaged_embeddings_are_reported_in_one_line(work, tmp_path, how):
    lib = tmp_path / "lib"
    shutil.copytree(work["lib"], lib)
    files = _files(lib / "embeddings" / "default", "vectors.npy")
    assert files
    for f in files:
        data = f.read_bytes()
        f.write_bytes(data[: len(data) // 2] if how == "truncated" else b"\x00garbage" * 10)
    r = musicemb_here("identify", lib, work["query"], home=work["home"])
    one_line_error(r, 1, "damaged", "vectors.npy", "musicemb embed")
    r = musicemb_here("embed", lib, "--model", "default", "-q", home=work["home"])  # derived data: recomputed
    assert r.returncode == 0, r.stderr
    r = musicemb_here("identify", lib, work["query"], "--json", home=work["home"])
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)[0]["results"][0]["path"].endswith("t1.wav")


def test_damaged_index_is_rebuilt(work, tmp_path):
    lib = tmp_path / "lib"
    shutil.copytree(work["lib"], lib)
    files = _files(lib / "index", "*.faiss")
    assert files
    for f in files:
        f.write_bytes(f.read_bytes()[:40])
    r = musicemb("identify", lib, work["query"], "--json", home=work["home"])
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert json.loads(r.stdout)[0]["results"][0]["path"].endswith("t1.wav")


def test_too_long_hum_and_query_are_refused_before_any_work(work, tmp_path):
    hum = tmp_path / "long-hum.wav"  # 11 min at 1 kHz: small on disk, long in time
    sf.write(hum, np.zeros(11 * 60 * 1000, np.int16), 1000, subtype="PCM_16")
    one_line_error(musicemb("hum", work["lib"], hum, home=work["home"]), 1, str(hum), "at most 10 min")
    query = tmp_path / "long-query.wav"
    sf.write(query, np.zeros(31 * 60 * 1000, np.int16), 1000, subtype="PCM_16")
    one_line_error(musicemb("search", work["lib"], query, home=work["home"]), 1, str(query), "at most 30 min")


def test_an_output_under_a_file_is_refused_before_any_work(work, tmp_path):
    """A table or findings file whose folder is a file (a typo) is refused before the analysis, naming both."""
    blocker = tmp_path / "notes.txt"
    blocker.write_text("x")
    r = musicemb("features", work["music"], "--out", blocker / "table.csv", home=work["home"])
    one_line_error(r, 1, str(blocker / "table.csv"), f"{blocker} is a file, not a folder")
    r = musicemb("inspect", work["lib"], "--kinds", "clipping", "--out", blocker / "f.csv", home=work["home"])
    one_line_error(r, 1, str(blocker / "f.csv"), "is a file, not a folder")
    r = musicemb("inspect", work["lib"], "--kinds", "clipping", "--out", blocker / "f.json", home=work["home"])
    one_line_error(r, 1, str(blocker / "f.json"), "is a file, not a folder")
    assert not (tmp_path / "table.csv").exists()


# -- the top-level handler (in-process: faults that real files cannot cause on demand) ---------------------------

def _fail_with(monkeypatch, exc: BaseException) -> None:
    def boom(a):
        raise exc

    monkeypatch.setattr(cli, "cmd_info", boom)


def test_disk_full_is_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("MUSICEMB_HOME", str(tmp_path / "home"))
    _fail_with(monkeypatch, OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "lib" / "x.npy")))
    assert cli.main(["info", str(tmp_path / "lib")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"musicemb: error: disk full writing {tmp_path / 'lib' / 'x.npy'} (details in ")
    assert len(err.splitlines()) == 1


def test_unexpected_error_is_logged_not_shown(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("MUSICEMB_HOME", str(tmp_path / "home"))
    _fail_with(monkeypatch, AssertionError("k must be positive"))
    assert cli.main(["info", str(tmp_path / "lib")]) == 1
    err = capsys.readouterr().err
    log = tmp_path / "home" / "logs" / "musicemb.log"
    assert err == f"musicemb: error: unexpected AssertionError: k must be positive (details in {log})\n"
    text = log.read_text()
    assert "Traceback" in text and "k must be positive" in text and "musicemb info" in text

    assert cli.main(["info", "--debug", str(tmp_path / "lib")]) == 1  # --debug: the traceback, on stderr
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().endswith("k must be positive")


def test_interrupt_exits_130(monkeypatch, tmp_path, capsys):
    _fail_with(monkeypatch, KeyboardInterrupt())
    assert cli.main(["info", str(tmp_path / "lib")]) == 130
    assert "Traceback" not in capsys.readouterr().err
