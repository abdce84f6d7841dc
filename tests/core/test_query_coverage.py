"""Queries say which tracks they cannot find: tracks imported but not embedded yet (a query answered from the
others looked whole), and for `identify` tracks without landmarks (an `index` or `embed` stopped by Ctrl-C left
some out, and a recording of one of them was matched by vectors alone, with nothing said)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile as sf

from musicemb_core import cli
from musicemb_core.common.errors import Cancelled
from musicemb_core.common.progress import CancelToken, drive
from musicemb_core.data.ingest import iter_ingest
from musicemb_core.data.library import Library
from musicemb_core.search.fingerprints import iter_fingerprint
from tests.conftest import labelled_tones


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    root = tmp_path_factory.mktemp("coverage")
    lib = labelled_tones(root)
    assert cli.main(["embed", str(lib), "-q"]) == 0  # both spaces, the melody index and the landmarks
    y, sr = sf.read(root / "audio" / "t2.wav", dtype="float32")
    sf.write(root / "q.wav", y[sr:5 * sr], sr)
    return root


def _run(capsys, *argv) -> tuple[str, str]:
    assert cli.main([*map(str, argv), "-q"]) == 0
    got = capsys.readouterr()
    return got.out, got.err


@pytest.mark.parametrize("command", ["identify", "search", "similar"])
def test_a_library_searched_whole_says_nothing(embedded, capsys, command):
    out, err = _run(capsys, command, embedded / "lib", embedded / "q.wav")
    assert "t2.wav" in out and err == ""


@pytest.mark.parametrize(("command", "model"), [("identify", "default"), ("search", "similarity"),
                                                ("classify", "similarity"), ("similar", "similarity")])
def test_tracks_imported_but_not_embedded_are_named(embedded, tmp_path, capsys, command, model):
    lib = tmp_path / "lib"
    shutil.copytree(embedded / "lib", lib)
    new = tmp_path / "new"
    new.mkdir()
    t = np.arange(6 * 16000) / 16000
    sf.write(new / "late.wav", (0.3 * np.sin(2 * np.pi * 500 * t)).astype(np.float32), 16000)
    with Library(lib) as opened:
        drive(iter_ingest(opened, [new], jobs=1))
    _, err = _run(capsys, command, lib, embedded / "q.wav")
    assert err.splitlines() == [f"musicemb: warning: 1 of 5 tracks have no vectors of {model!r} yet and cannot be "
                                "found (late.wav); run `musicemb embed`"]


def test_identify_names_tracks_without_landmarks(embedded, tmp_path, capsys):
    lib = tmp_path / "lib"
    shutil.copytree(embedded / "lib", lib)
    shutil.rmtree(lib / "fingerprints")
    with Library(lib) as opened:  # an `index` stopped by Ctrl-C after its first track's landmarks
        token = CancelToken()
        with pytest.raises(Cancelled):
            for ev in iter_fingerprint(opened, cancel=token):
                if ev.done:
                    token.cancel()
    out, err = _run(capsys, "identify", lib, embedded / "q.wav")
    assert "t2.wav" in out
    assert err.splitlines() == ["musicemb: warning: 3 of 4 tracks have no landmarks yet and are matched by their "
                                "vectors alone (t1.wav, t2.wav, t3.wav); run `musicemb index`"]
    shutil.rmtree(lib / "fingerprints")  # none at all, as after `index --no-landmarks`: nothing to say
    assert _run(capsys, "identify", lib, embedded / "q.wav")[1] == ""
    assert cli.main(["index", str(lib), "-q"]) == 0
    capsys.readouterr()
    assert _run(capsys, "identify", lib, embedded / "q.wav")[1] == ""
