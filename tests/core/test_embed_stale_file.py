"""A track's file replaced after its import (another size or modification time than the catalogue's) is not
embedded or fingerprinted against the old segment list: it fails with a reason naming it, the others go on, and
importing it again makes it embeddable."""

from __future__ import annotations

import numpy as np
import pytest

from musicemb_core import cli
from musicemb_core.common.progress import drive
from musicemb_core.data.ingest import iter_ingest
from musicemb_core.data.library import Library
from musicemb_core.inference import iter_embed
from musicemb_core.search.fingerprints import iter_fingerprint
from musicemb_core.stored_vectors import load_embeddings
from tests.core.test_inference import _write  # a sine plus seeded noise


@pytest.fixture
def replaced(tmp_path):
    """A library of three 12 s tracks; the first file then replaced by a 2 s one. Yields (lib, music, that file)."""
    music = tmp_path / "m"
    music.mkdir()
    for i in range(3):
        _write(music / f"c{i}.wav", 200 + 150 * i, 12.0, seed=i)
    lib = Library(tmp_path / "lib", create=True)
    drive(iter_ingest(lib, [music], jobs=1, analyse=False))
    _write(music / "c0.wav", 900, 2.0, seed=7)
    yield lib, music, str(music / "c0.wav")
    lib.close()


def _segments_of(lib: Library, path: str) -> set[int]:
    seg = lib.segments()
    return set(seg["id"][seg["track_id"] == lib.track_by_path(path).id].tolist())


def test_embed_skips_a_changed_file_as_failed_and_embeds_the_others(replaced):
    lib, music, changed = replaced
    stale = _segments_of(lib, changed)
    report = drive(iter_embed(lib, model="default"))
    assert len(report.failed) == 1
    path, reason = report.failed[0]
    assert path == changed and "changed since import" in reason and "import it again" in reason
    ids = set(load_embeddings(lib, "default").ids.tolist())
    assert ids == set(lib.segments()["id"].tolist()) - stale and report.computed == len(ids) == 8

    drive(iter_ingest(lib, [music], jobs=1, analyse=False))  # imported again: the 2 s file, embeddable
    again = drive(iter_embed(lib, model="default"))
    assert again.failed == [] and again.computed == 1 and again.kept == 8
    assert lib.track_by_path(changed).duration_s == pytest.approx(2.0)


def test_embed_command_names_the_changed_file(replaced, capsys):
    lib, _, changed = replaced
    assert cli.main(["embed", str(lib.root), "--model", "default", "-q"]) == 0
    out = capsys.readouterr().out
    assert "1 tracks failed" in out and f"failed: {changed}: changed since import: import it again" in out


def test_fingerprint_leaves_a_changed_file_out(replaced):
    lib, _, changed = replaced
    index = drive(iter_fingerprint(lib))
    fingerprinted = set(np.unique(index.tracks).tolist())
    assert fingerprinted == {t.id for t in lib.tracks()} - {lib.track_by_path(changed).id}


def test_melody_index_leaves_a_changed_file_out(replaced):
    import json

    from musicemb_core.search.qbh import iter_build_qbh_index

    lib, _, changed = replaced
    folder = drive(iter_build_qbh_index(lib))
    meta = json.loads((folder / "meta.json").read_text())
    assert [p for p, _ in meta["failed"]] == [changed] and "changed since import" in meta["failed"][0][1]
    with np.load(folder / "melody.npz") as z:
        assert set(z["track_ids"].tolist()) == {t.id for t in lib.tracks()} - {lib.track_by_path(changed).id}


def test_landmarks_are_not_written_again_for_a_file_that_stays_unreadable(replaced):
    """Every `embed` and `index` wrote the whole landmark index again (gigabytes for a large library) when one
    track could not be fingerprinted, though nothing had changed."""
    from musicemb_core.data import layout

    lib, _, changed = replaced
    drive(iter_fingerprint(lib))
    before = layout.landmarks(lib).current()
    index = drive(iter_fingerprint(lib))
    assert layout.landmarks(lib).current() == before and lib.track_by_path(changed).id not in index.tracks


def test_a_cancelled_landmark_build_keeps_the_tracks_it_finished(tmp_path, monkeypatch):
    """A cancel (the app's Cancel, Ctrl-C) threw away every track fingerprinted so far, hours of them in a large
    library; the finished ones are kept and the next run decodes only the rest."""
    from musicemb_core.common.errors import Cancelled
    from musicemb_core.common.progress import CancelToken
    from musicemb_core.search import fingerprints

    music = tmp_path / "m"
    music.mkdir()
    for i in range(5):
        _write(music / f"c{i}.wav", 200 + 150 * i, 6.0, seed=i)
    decoded = []
    real = fingerprints.load
    monkeypatch.setattr(fingerprints, "load", lambda path, **kw: decoded.append(path) or real(path, **kw))
    with Library(tmp_path / "lib", create=True) as lib:
        drive(iter_ingest(lib, [music], jobs=1, analyse=False))
        token = CancelToken()
        job = iter_fingerprint(lib, cancel=token)
        steps = 0
        with pytest.raises(Cancelled):
            for ev in job:
                steps += ev.done > 0
                if steps == 2:
                    token.cancel()
        kept = set(fingerprints.LandmarkIndex.load(fingerprints.landmark_folder(lib)).meta["tracks"])
        assert len(kept) == 2
        decoded.clear()
        drive(iter_fingerprint(lib))
        assert len(decoded) == 3
        assert len(fingerprints.LandmarkIndex.load(fingerprints.landmark_folder(lib)).meta["tracks"]) == 5
