"""Other versions of a piece in `similar`: melody excerpts, the same-tune rule, and a library whose re-arranged
version of a tune comes first (marked) while its other tracks keep the similarity space's order."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from musicemb_core.cli import main
from musicemb_core.common.config import SegmentConfig
from musicemb_core.common.progress import drive
from musicemb_core.data.ingest import iter_ingest
from musicemb_core.data.library import Library
from musicemb_core.data.synthesis import generate_melody, render_song
from musicemb_core.inference import iter_embed
from musicemb_core.search import versions as V
from musicemb_core.search.qbh import iter_update_qbh_index
from musicemb_core.search.similar import SimilarTracks

SR = 16000


def test_melody_queries_take_sung_frames_of_excerpts_spread_over_the_track():
    rate = 12.5
    frames = int(60 * rate)
    chroma = np.zeros((frames, 12))
    chroma[np.arange(frames), (np.arange(frames) // 5) % 12] = 0.9  # a rising line, a note every 0.4 s
    chroma[: int(20 * rate)] *= 0.2  # the first 20 s unsung
    qs = V.melody_queries(chroma, rate)
    assert len(qs) == 2  # the first excerpt has nothing sung: no query
    assert all(len(q) == int(V.EXCERPT_S * rate) for q in qs)
    n = int(V.EXCERPT_S * rate)
    assert np.array_equal(qs[-1] - 60, np.arange(frames - n, frames) // 5 % 12)  # the last ends at the end
    assert V.melody_queries(np.zeros((frames, 12)), rate) == []


def test_same_tune_needs_a_score_standing_out_from_the_candidates():
    rng = np.random.default_rng(0)
    s = 0.55 + 0.03 * rng.standard_normal(40)
    assert not V.same_tune(s).any()
    s[7] = 0.9
    assert np.flatnonzero(V.same_tune(s)).tolist() == [7]
    assert not V.same_tune(np.array([0.9, 0.5])).any()  # too few candidates to tell


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    root = tmp_path_factory.mktemp("versions")
    audio = root / "audio"
    audio.mkdir()
    tune = generate_melody(np.random.default_rng(42), n_notes=32)
    # one tune in two arrangements, and other tunes in both styles
    sf.write(audio / "tune-folk.flac", render_song("folk", seed=1, duration_s=20.0, sr=SR, melody=tune), SR)
    sf.write(audio / "tune-techno.flac", render_song("techno", seed=2, duration_s=20.0, sr=SR, melody=tune), SR)
    for i, style in enumerate(["folk", "folk", "folk", "techno", "techno", "techno"]):
        sf.write(audio / f"other{i}-{style}.flac", render_song(style, seed=10 + i, duration_s=20.0, sr=SR), SR)
    lib = Library(root / "lib", create=True)
    drive(iter_ingest(lib, [audio], segments=SegmentConfig(3.0, 3.0), jobs=1))
    drive(iter_embed(lib))
    drive(iter_update_qbh_index(lib))
    yield lib
    lib.close()


def test_similar_puts_the_other_version_first(library, capsys):
    folk = library.track_by_path(str(library.root.parent / "audio" / "tune-folk.flac"))
    techno = library.track_by_path(str(library.root.parent / "audio" / "tune-techno.flac"))
    plain = SimilarTracks(library, versions=False).query([str(folk.id)], k=7)[0]["results"]
    assert not any(r["same_tune"] for r in plain)
    assert plain[0]["track_id"] != techno.id  # the similarity space alone: another folk track is nearer
    res = SimilarTracks(library).query([str(folk.id)], k=7)[0]["results"]
    assert res[0]["track_id"] == techno.id and res[0]["same_tune"]
    assert [r["same_tune"] for r in res[1:]] == [False] * 6
    rest = [r["track_id"] for r in plain if r["track_id"] != techno.id]
    assert [r["track_id"] for r in res[1:]] == rest  # the others keep their order
    # the CLI says so; an outside file of the tune finds it too
    assert main(["similar", str(library.root), str(folk.id), "-k", "3"]) == 0
    assert "same tune" in capsys.readouterr().out.splitlines()[1]
    assert main(["similar", "--json", str(library.root), str(library.root.parent / "audio" / "tune-techno.flac")]) == 0
    out = json.loads(capsys.readouterr().out)[0]["results"]
    assert out[0]["track_id"] == folk.id and out[0]["same_tune"]
