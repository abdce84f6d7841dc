"""Other versions of a track that share its audio (``musicemb_core.search.versions``): real landmarks, a real
library, ``similar`` and its CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import butter, sosfilt

from musicemb_core.cli import main as cli
from musicemb_core.common.progress import drive
from musicemb_core.data.ingest import iter_ingest
from musicemb_core.data.library import Library
from musicemb_core.data.synthesis import render_song
from musicemb_core.features import landmarks as lm
from musicemb_core.search import versions
from musicemb_core.search.fingerprints import LandmarkIndex, landmark_folder
from musicemb_core.search.similar import SimilarTracks

SR = 16000


def _edit(y: np.ndarray, a: float, b: float) -> np.ndarray:
    """A radio edit: ``y`` from ``a`` to ``b`` (shares), 4 dB down, high frequencies cut."""
    part = y[int(a * len(y)):int(b * len(y))] * 10 ** (-4 / 20)
    return sosfilt(butter(4, 3000, fs=SR, output="sos"), part).astype(np.float32)


@pytest.fixture(scope="module")
def songs():
    styles = ("rock", "folk", "techno", "chiptune", "ambient", "rock")
    return [render_song(s, seed=40 + i, duration_s=30.0, sr=SR) for i, s in enumerate(styles)]


def test_shared_audio_finds_an_edit_and_nothing_in_unrelated_music(songs):
    parts = [lm.landmarks(y, SR) for y in songs + [_edit(songs[0], 0.3, 0.9)]]
    index = LandmarkIndex(np.concatenate([h for h, _ in parts]),
                          np.concatenate([np.full(len(h), i, np.int32) for i, (h, _) in enumerate(parts)]),
                          np.concatenate([t for _, t in parts]))
    def shared(y, exclude):
        return versions.shared_audio(index, *lm.landmarks(y, SR), exclude=exclude)

    found = shared(songs[0], {0})
    assert list(found) == [6] and found[6] > 5 * versions.SHARED
    assert list(shared(_edit(songs[0], 0.3, 0.9), {6})) == [0]
    for i in range(1, 6):  # other songs, one of the same style: nothing shared
        assert shared(songs[i], {i}) == {}
    assert shared(np.zeros(SR * 5, np.float32), set()) == {}  # silence has no landmarks
    assert versions.versions_first([5, 6, 7, 8], {8: 0.2, 6: 0.5}) == [6, 8, 5, 7]


@pytest.fixture(scope="module")
def versions_library(tmp_path_factory, songs):
    """Six songs and a radio edit of the first, embedded with `musicemb embed` (which fingerprints them too)."""
    root = tmp_path_factory.mktemp("versions")
    paths = []
    for i, y in enumerate(songs):
        paths.append(root / f"song{i}.wav")
        sf.write(paths[-1], y, SR)
    paths.append(root / "song0-edit.flac")
    sf.write(paths[-1], _edit(songs[0], 0.2, 0.8), SR)
    sf.write(root / "outside-edit.wav", _edit(songs[3], 0.1, 0.5), SR)  # not in the library
    with Library(root / "lib", create=True) as lib:
        drive(iter_ingest(lib, paths))  # imported only: `embed` computes the rest
        ids = {p.name: lib.track_by_path(str(p.resolve())).id for p in paths}
    assert cli(["embed", str(root / "lib"), "-q"]) == 0
    return root, ids


def test_similar_puts_a_version_first_and_marks_it(versions_library):
    root, ids = versions_library
    with Library(root / "lib") as lib:
        assert LandmarkIndex.load(landmark_folder(lib)) is not None  # `embed` fingerprinted the library
        space = SimilarTracks(lib)
        res = space.query([str(ids["song0.wav"])], k=1)[0]["results"]  # first even if not the nearest sound
        assert [(r["track_id"], r["version"]) for r in res] == [(ids["song0-edit.flac"], True)]
        res = space.query([str(ids["song0-edit.flac"])], k=6)[0]["results"]
        assert res[0]["track_id"] == ids["song0.wav"] and res[0]["version"]
        assert [r["version"] for r in res[1:]] == [False] * 5
        for name in ("song1.wav", "song5.wav"):
            assert not any(r["version"] for r in space.query([str(ids[name])], k=6)[0]["results"])
        outside = space.query([str(root / "outside-edit.wav")], k=2)[0]["results"]  # any audio file as a query
        assert outside[0]["track_id"] == ids["song3.wav"] and outside[0]["version"]
        together = space.query([str(ids["song0.wav"]), str(ids["song1.wav"])], k=6, together=True)[0]["results"]
        assert not any(r["version"] for r in together)  # "tracks like these" follows no one recording


def test_a_long_query_is_read_in_excerpts_at_their_place(tmp_path, songs):
    long = np.concatenate(songs[:3])  # 90 s
    sf.write(tmp_path / "long.wav", long, SR)
    h, t = versions.query_landmarks(tmp_path / "long.wav")
    whole_h, whole_t = lm.landmarks(long, SR)
    assert len(h) < 0.7 * len(whole_h)  # excerpts only
    assert t.max() > 0.8 * whole_t.max()  # spread to the end, frames counted from the file's start
    common = np.isin(h, whole_h).mean()
    assert common > 0.6  # the same landmarks as the whole file's at those places


def test_versions_need_current_landmarks(versions_library):
    root, ids = versions_library
    with Library(root / "lib") as lib:
        hashes = {t.id: t.content_hash for t in lib.tracks()}
        stale = versions.VersionFinder.open(landmark_folder(lib), hashes | {ids["song0-edit.flac"]: "changed"})
        assert stale.of_file(root / "song0.wav", exclude={ids["song0.wav"]}) == {}  # its audio changed since
        assert versions.VersionFinder.open(root / "nowhere" / "fingerprints", hashes) is None
        space = SimilarTracks(lib)
        space._versions = None  # a library without landmarks: ranked by sound alone
        assert not any(r["version"] for r in space.query([str(ids["song0.wav"])], k=6)[0]["results"])


def test_cli_similar_marks_versions(versions_library, capsys):
    root, ids = versions_library
    assert cli(["similar", str(root / "lib"), str(ids["song0.wav"]), "-k", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)[0]["results"]
    assert out[0]["track_id"] == ids["song0-edit.flac"] and out[0]["version"] is True
    assert out[1]["version"] is False
    assert cli(["similar", str(root / "lib"), str(ids["song0.wav"]), "-k", "2"]) == 0
    assert "another version: shares its audio" in capsys.readouterr().out.splitlines()[1]
    assert cli(["similar", str(root / "lib"), "--no-versions", str(ids["song0.wav"]), "-k", "6", "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)[0]["results"]
    assert not any(r["version"] for r in plain) and ids["song0-edit.flac"] in [r["track_id"] for r in plain]
