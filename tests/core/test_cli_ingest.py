"""The ``musicemb`` command: ingest (including a kill -9 half-way), info, features, exit statuses."""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from musicemb_core import cli
from musicemb_core.audio.segment import window_starts
from musicemb_core.common.config import SegmentConfig
from musicemb_core.data.library import DB_NAME, Library
from musicemb_core.features.descriptors import descriptor_names

MUSICEMB = Path(sys.executable).with_name("musicemb")
SR = 8000


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("MUSICEMB_HOME", str(tmp_path / "home"))


def tone(path: Path, seconds: float, *, freq: float = 440.0, sr: int = SR, seed: int = 0, amp: float = 0.5,
         **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(round(seconds * sr))) / sr
    y = amp * np.sin(2 * np.pi * freq * t)
    if seed:
        y += 0.01 * np.random.default_rng(seed).standard_normal(len(t))
    sf.write(path, y.astype(np.float32), sr, **kw)
    return path


def musicemb(*args, timeout: float = 120) -> subprocess.CompletedProcess:
    cmd = [str(MUSICEMB)] if MUSICEMB.exists() else [sys.executable, "-m", "musicemb_core.cli"]
    return subprocess.run([*cmd, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})


# -- ingest / info ---------------------------------------------------------------------------------------------

def test_ingest_with_bad_files_succeeds_and_lists_them(tmp_path):
    d = tmp_path / "music"
    good = [tone(d / "rock" / "a.wav", 4.0, freq=300), tone(d / "jazz" / "b.flac", 7.0, freq=500)]
    bad = d / "rock" / "broken.mp3"
    bad.write_bytes(np.random.default_rng(1).bytes(3000))
    empty = d / "jazz" / "empty.wav"
    empty.write_bytes(b"")
    lib = tmp_path / "lib"

    r = musicemb("ingest", lib, d, "--labels-from-folders", "--window", "2", "-q")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == ("import done: 2 added, 0 updated, 0 moved, 0 unchanged, 0 duplicates skipped, "
                        "2 failed")
    assert any(line.startswith(f"  failed: {bad}: not a readable audio file") for line in lines)
    assert f"  failed: {empty}: zero-length file" in lines
    assert (lib / DB_NAME).is_file()

    r = musicemb("info", lib, "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)  # exactly one JSON document on stdout
    assert isinstance(info, dict)
    assert {"tracks", "segments", "failed", "models"} <= set(info)
    # 4 s / 2 s windows: 0, 2; 7 s: 0, 2, 4 and an end window at 5.
    assert (info["tracks"], info["segments"], info["models"]) == (2, 6, [])
    assert info["labels"] == {"jazz": 1, "rock": 1}
    assert (info["window_s"], info["hop_s"], info["duration_s"]) == (2.0, 2.0, 11.0)
    assert sorted(f["path"] for f in info["failed"]) == sorted([str(bad), str(empty)])
    assert all(set(f) == {"path", "error"} and f["error"] for f in info["failed"])

    # Second run: nothing to do, the failures are remembered and counted.
    r = musicemb("ingest", lib, d, "-q", "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert (rep["added"], rep["unchanged"], rep["still_failed"], rep["failed"]) == (0, 2, 2, [])

    r = musicemb("info", lib)
    assert r.returncode == 0
    assert "2 tracks, 6 segments" in r.stdout
    assert f"failed: {empty}: zero-length file" in r.stdout
    assert str(good[0]) not in r.stdout  # good tracks are counted, not listed


def test_ingest_max_duration_and_labels_csv(tmp_path):
    d = tmp_path / "music"
    long = tone(d / "sub" / "long.wav", 20.0, freq=100.0, sr=1000)
    short = tone(d / "short.wav", 3.0, freq=200.0, sr=1000)
    labels = tmp_path / "labels.csv"
    labels.write_text("file,label\nsub/long.wav,speech\nshort.wav,birds\n", "utf-8")
    lib = tmp_path / "lib"
    # 0.005 h = 18 s: the 20 s file is refused, the 3 s one imported.
    r = musicemb("ingest", lib, d, "--labels", labels, "--max-duration", "0.005", "-q", "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["added"] == 1
    assert [f["path"] for f in rep["failed"]] == [str(long)]
    assert rep["failed"][0]["error"].startswith("too long")
    # 0 = no limit: the refused file is imported on the next run, with its label.
    r = musicemb("ingest", lib, d, "--labels", labels, "--max-duration", "0", "-q", "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert (rep["added"], rep["unchanged"], rep["failed"]) == (1, 1, [])
    with Library(lib) as db:
        assert {Path(t.path).name: (t.label, t.duration_s) for t in db.tracks()} == {
            "short.wav": ("birds", 3.0), "long.wav": ("speech", 20.0)}
        assert db.failures() == []
    assert short.exists()


def test_info_on_a_non_library_exits_1_naming_it(tmp_path):
    folder = tmp_path / "plain folder"
    folder.mkdir()
    r = musicemb("info", folder)
    assert r.returncode == 1
    assert r.stdout == ""
    assert str(folder) in r.stderr and "not a musicemb library" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (folder / DB_NAME).exists()
    r = musicemb("info", tmp_path / "absent", "--json")
    assert r.returncode == 1 and str(tmp_path / "absent") in r.stderr and r.stdout == ""


def test_ingest_missing_path_exits_1(tmp_path, capsys):
    assert cli.main(["ingest", str(tmp_path / "lib"), str(tmp_path / "nope"), "-q"]) == 1
    err = capsys.readouterr().err
    assert str(tmp_path / "nope") in err and "no such file or folder" in err


@pytest.mark.parametrize("argv", [
    [],
    ["bogus-command"],
    ["ingest"],
    ["ingest", "LIB"],
    ["ingest", "LIB", "x.wav", "--labels-from-folders", "--labels", "l.csv"],
    ["ingest", "LIB", "x.wav", "--window", "three"],
    ["info"],
    ["features", "x.wav"],
    ["features", "x.wav", "--out", "t.csv", "--per", "bar"],
])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("musicemb") and ": error: " in err and "--help`)" in err  # one line, pointing at --help
    assert len(err.splitlines()) == 1


def test_usage_error_exit_status_from_the_console_script(tmp_path):
    r = musicemb("info")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == "musicemb info: error: the following arguments are required: lib (see `musicemb info --help`)\n"


# -- kill -9 half-way ------------------------------------------------------------------------------------------

def _count_tracks(db: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1.0)
    except sqlite3.Error:
        return 0
    try:
        return con.execute("SELECT COUNT(*) FROM tracks").fetchone()[0]
    except sqlite3.Error:  # not created yet, or mid-migration
        return 0
    finally:
        con.close()


def _make_corpus(d: Path, n: int, seconds: float) -> None:
    for i in range(n):
        tone(d / f"s{i:03d}.wav", seconds, freq=200 + 7 * i, sr=16000, seed=i + 1)


def _kill_mid_import(tmp_path: Path, seconds: float) -> tuple[Path, Path, int] | None:
    """Start a single-process import of 40 files, SIGKILL it once a few tracks are in; None if it finished first."""
    d, lib = tmp_path / f"corpus{seconds:g}", tmp_path / f"lib{seconds:g}"
    _make_corpus(d, 40, seconds)
    db = lib / DB_NAME
    proc = subprocess.Popen([str(MUSICEMB), "ingest", str(lib), str(d), "-j", "1", "-q", "--window", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if db.exists() and _count_tracks(db) >= 3:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.002)
        rc = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if rc == 0:
        return None
    assert rc == -signal.SIGKILL, f"the import exited with status {rc} before it was killed"
    return d, lib, _count_tracks(db)


def test_kill_9_mid_import_leaves_a_consistent_library(tmp_path):
    if not MUSICEMB.exists():
        pytest.fail(f"console script not found at {MUSICEMB}")
    cfg = SegmentConfig(window_s=1.0, hop_s=1.0)
    result = None
    for seconds in (20.0, 90.0, 300.0):  # longer files make each step slower if the machine is too fast
        result = _kill_mid_import(tmp_path, seconds)
        if result is not None:
            break
    assert result is not None, "the import always finished before it could be killed"
    d, lib_path, committed = result
    assert 3 <= committed < 40
    per_track = len(window_starts(seconds, cfg))

    with Library(lib_path) as lib:
        c = lib.conn
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert c.execute("PRAGMA foreign_key_check").fetchall() == []
        n = c.execute("SELECT COUNT(*) FROM tracks").fetchone()[0]
        assert n >= committed
        counts = c.execute("SELECT t.id, COUNT(s.id) FROM tracks t LEFT JOIN segments s ON s.track_id = t.id "
                           "GROUP BY t.id").fetchall()
        assert [k for _, k in counts] == [per_track] * n  # no half-written track
        assert c.execute("SELECT COUNT(*) FROM segments").fetchone()[0] == n * per_track
        assert c.execute("SELECT COUNT(DISTINCT path), COUNT(DISTINCT content_hash) FROM tracks").fetchone() == (n, n)
        assert lib.failures() == []

    r = musicemb("ingest", lib_path, d, "-j", "1", "-q", "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert (rep["added"], rep["unchanged"], rep["failed"], rep["duplicates"]) == (40 - n, n, [], [])
    with Library(lib_path) as lib:
        c = lib.conn
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert c.execute("SELECT COUNT(*), COUNT(DISTINCT path), COUNT(DISTINCT content_hash) FROM tracks"
                         ).fetchone() == (40, 40, 40)
        assert c.execute("SELECT COUNT(*) FROM segments").fetchone()[0] == 40 * per_track
        assert sorted(Path(t.path).name for t in lib.tracks()) == [f"s{i:03d}.wav" for i in range(40)]


# -- features --------------------------------------------------------------------------------------------------

DESCRIPTORS = descriptor_names()


def _read_csv(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="", encoding="utf-8") as f:
        r = csv.DictReader(f)
        return list(r.fieldnames), list(r)


def test_features_per_track_csv(tmp_path, capsys):
    a = tone(tmp_path / "in" / "a440.wav", 5.0, freq=440.0, amp=0.5)
    b = tone(tmp_path / "in" / "b.flac", 3.0, freq=261.63, amp=0.25, format="FLAC")
    out = tmp_path / "out" / "desc.csv"
    assert cli.main(["features", str(a), str(b), "--out", str(out), "-q"]) == 0
    assert len(DESCRIPTORS) == 74
    cols, rows = _read_csv(out)
    assert cols == ["path", "start_s", "duration_s", *DESCRIPTORS]
    assert [r["path"] for r in rows] == [str(a), str(b)]
    assert [(float(r["start_s"]), float(r["duration_s"])) for r in rows] == [(0.0, 5.0), (0.0, 3.0)]
    ra, rb = ({k: float(v) for k, v in r.items() if k != "path"} for r in rows)
    assert all(np.isfinite(list(ra.values())))
    # A 440 Hz sine at amplitude 0.5: RMS 0.354, centroid ~440 Hz, chroma peak at A (9), ~2 x 440 / 22050 zcr.
    assert ra["rms_mean"] == pytest.approx(0.5 / np.sqrt(2), rel=0.03)
    assert ra["centroid_mean"] == pytest.approx(440.0, rel=0.03)
    assert ra["zcr_mean"] == pytest.approx(2 * 440 / 22050, rel=0.05)
    assert max(range(12), key=lambda i: ra[f"chroma_{i}_mean"]) == 9
    assert max(range(12), key=lambda i: rb[f"chroma_{i}_mean"]) == 0  # C4
    assert rb["rms_mean"] == pytest.approx(0.25 / np.sqrt(2), rel=0.03)
    assert "2 rows x 74 descriptors from 2 files" in capsys.readouterr().out


def test_features_per_segment_parquet_and_bad_file(tmp_path, capsys):
    import pyarrow.parquet as pq

    d = tmp_path / "in"
    a = tone(d / "a.wav", 5.0, freq=440.0)
    b = tone(d / "b.wav", 2.0, freq=660.0)
    bad = d / "c_bad.wav"
    bad.write_text("not audio at all\n" * 10, "utf-8")
    out = tmp_path / "desc.parquet"
    assert cli.main(["features", str(d), "--out", str(out), "--per", "segment", "--window", "2", "-q"]) == 0
    captured = capsys.readouterr()
    assert f"failed: {bad}: not a readable audio file" in captured.err
    assert str(bad) not in captured.out

    t = pq.read_table(out)
    assert t.column_names == ["path", "start_s", "duration_s", *DESCRIPTORS]
    rows = t.to_pylist()
    # 5 s in 2 s windows: 0, 2 and, the 1 s tail being half a window, an end window at 3; 2 s: one window.
    assert [(r["path"], r["start_s"], r["duration_s"]) for r in rows] == [
        (str(a), 0.0, 2.0), (str(a), 2.0, 2.0), (str(a), 3.0, 2.0), (str(b), 0.0, 2.0)]
    assert rows[0]["centroid_mean"] == pytest.approx(440.0, rel=0.03)
    assert rows[3]["centroid_mean"] == pytest.approx(660.0, rel=0.03)
    assert not list(tmp_path.glob(".desc.parquet.*"))  # the atomic write left no temp file behind


def test_features_all_bad_exits_1_and_bad_extension(tmp_path, capsys):
    bad = tmp_path / "x.wav"
    bad.write_bytes(b"")
    assert cli.main(["features", str(bad), "--out", str(tmp_path / "t.csv"), "-q"]) == 1
    err = capsys.readouterr().err
    assert f"failed: {bad}: zero-length file" in err and "no descriptors computed" in err
    assert not (tmp_path / "t.csv").exists()

    good = tone(tmp_path / "g.wav", 2.0)
    assert cli.main(["features", str(good), "--out", str(tmp_path / "t.xlsx"), "-q"]) == 1
    assert "unknown table format" in capsys.readouterr().err
    assert not (tmp_path / "t.xlsx").exists()


def test_features_per_segment_via_console_script(tmp_path):
    a = tone(tmp_path / "a.wav", 6.0, freq=330.0)
    out = tmp_path / "seg.csv"
    r = musicemb("features", a, "--out", out, "--per", "segment", "-q")
    assert r.returncode == 0, r.stderr
    cols, rows = _read_csv(out)
    assert len(cols) == 77
    assert [(float(r["start_s"]), float(r["duration_s"])) for r in rows] == [(0.0, 3.0), (3.0, 3.0)]


def test_ingest_embed_computes_both_spaces_in_the_import(tmp_path, capsys):
    d = tmp_path / "music"
    tone(d / "a.wav", 7.0, freq=300, seed=1)
    tone(d / "b.flac", 4.0, freq=500, seed=2, format="FLAC")
    (d / "broken.mp3").write_bytes(np.random.default_rng(1).bytes(3000))
    lib = tmp_path / "lib"
    assert cli.main(["ingest", str(lib), str(d), "--embed", "--json", "-q", "-j", "1"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["added"] == 2 and [Path(f["path"]).name for f in rep["failed"]] == ["broken.mp3"]
    assert rep["embed"] == {"models": ["default", "similarity"], "computed": 6, "kept": 0, "dropped": 0, "failed": [],
                            "cancelled": False}  # 3 segments of 3 s, in both spaces
    assert cli.main(["info", str(lib), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["embeddings"] == {"default": 3, "similarity": 3}
    assert cli.main(["ingest", str(lib), str(d), "--embed", "-q"]) == 0  # nothing new: nothing embedded
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("import done: 0 added") and "0 segments embedded, 6 kept" in out[1]
