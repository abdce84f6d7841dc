"""A damaged MP3: libmpg123's resync notes stay off the terminal, the file fails with one line naming it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from musicemb_core.audio import decode, info, load
from musicemb_core.common.errors import AudioError
from tests.conftest import sine, write_sf

MUSICEMB = Path(sys.executable).with_name("musicemb")
NOTES = ("Note:", "resync", "libmpg123")


def damaged_mp3(path: Path) -> Path:
    """A valid 10 s MP3 with 4,000 bytes in its middle overwritten (libmpg123 gives up resyncing)."""
    write_sf(path, sine(440, sr=44100, seconds=10.0), 44100, format="MP3")
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 4000] = np.random.default_rng(0).bytes(4000)
    path.write_bytes(bytes(data))
    return path


def test_damaged_mp3_fails_in_one_line_and_prints_nothing(tmp_path, capfd):
    bad = damaged_mp3(tmp_path / "bad.mp3")
    text = tmp_path / "notes.mp3"
    text.write_bytes(b"not audio at all, but named .mp3")
    with pytest.raises(AudioError, match=r"bad\.mp3: decoding failed part-way"):
        load(bad)
    with pytest.raises(AudioError, match=r"notes\.mp3: not a readable audio file"):
        info(text)
    err = capfd.readouterr().err
    assert not any(n in err for n in NOTES), err


def test_other_stderr_output_meanwhile_is_kept(capfd):
    with decode._mpg123_quiet():
        os.write(2, b"Note: Trying to resync...\n")
        t = threading.Thread(target=lambda: os.write(2, b"another thread's line\n"))
        t.start()
        t.join()
        with decode._mpg123_quiet():  # nested (two decoding threads): stderr comes back once, after both
            pass
        os.write(2, b"[src/libmpg123/parse.c:wetwork():1349] error: Giving up resync\n")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "another thread's line\nafter\n"


def test_ingest_one_job_keeps_decoder_notes_off_the_terminal(tmp_path):
    music = tmp_path / "music"
    music.mkdir()
    damaged_mp3(music / "bad.mp3")
    write_sf(music / "good.mp3", sine(440, sr=44100, seconds=4.0), 44100, format="MP3")
    cmd = [str(MUSICEMB)] if MUSICEMB.exists() else [sys.executable, "-m", "musicemb_core.cli"]
    r = subprocess.run([*cmd, "ingest", str(tmp_path / "lib"), str(music), "--jobs", "1", "--no-analysis"],
                       capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert r.returncode == 0, r.stderr
    out = r.stdout + r.stderr
    assert not any(n in out for n in NOTES), out
    assert "1 added" in out
    failed = [line for line in out.splitlines() if "failed:" in line]
    assert len(failed) == 1 and "bad.mp3: decoding failed part-way" in failed[0]
