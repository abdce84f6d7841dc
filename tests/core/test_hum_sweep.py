"""``musicemb hum`` on odd libraries: each answer says what the search can tell, never more."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf

from musicemb_core import cli
from musicemb_core.common.progress import drive
from musicemb_core.data.ingest import iter_ingest
from musicemb_core.data.library import Library


def test_a_one_track_library_gives_no_confident_match(tmp_path, capsys):
    """With one track, its margin over "the best other" was its whole score: any hum, of any tune, was a confident
    match (0.79 for a tone a fifth away from the only song)."""
    sr = 16000
    t = np.arange(6 * sr) / sr
    for name, f in (("song.wav", 220.0), ("other.wav", 330.0)):
        sf.write(tmp_path / name, (0.3 * np.sin(2 * np.pi * f * (1 + np.floor(t * 2) % 3 / 120) * t)).astype(
            np.float32), sr)
    with Library(tmp_path / "lib", create=True) as lib:
        drive(iter_ingest(lib, [tmp_path / "song.wav"], jobs=1))
    assert cli.main(["hum", str(tmp_path / "lib"), str(tmp_path / "other.wav"), "--json", "-q"]) == 0
    (answer,) = json.loads(capsys.readouterr().out)
    assert [r["path"] for r in answer["results"]] == [str(tmp_path / "song.wav")]  # still listed, the closest
    assert not answer["confident"] and answer["results"][0]["confidence"] < 0.01
