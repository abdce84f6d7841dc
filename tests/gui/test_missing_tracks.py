"""Library ▸ Remove missing tracks: only tracks whose files are still gone when the job runs are removed."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from musicemb_core.common.progress import drive  # noqa: E402
from musicemb_core.data.ingest import file_gone as gone  # noqa: E402
from musicemb_core.data.library import Library  # noqa: E402
from musicemb_gui.panels.missing_tracks import folders, iter_remove, missing  # noqa: E402
from tests.gui.helpers import tone_library  # noqa: E402


def test_a_file_back_in_place_by_the_time_of_removal_keeps_its_track(tmp_path):
    """A drive mounted again between the confirmation and the job: its tracks are not removed."""
    lib_dir = tone_library(tmp_path)
    with Library(lib_dir) as lib:
        paths = {t.id: t.path for t in lib.tracks()}
    a, b = sorted(paths)
    moved = tmp_path / "moved.wav"
    (tmp_path / "audio" / "tone440.wav").rename(moved)
    (tmp_path / "audio" / "tone660.wav").unlink()
    ids = missing(paths)
    assert sorted(ids) == [a, b]
    assert folders([paths[i] for i in ids]) == [(str(tmp_path / "audio"), 2, "tone440.wav")]
    moved.rename(tmp_path / "audio" / "tone440.wav")  # back before the job ran
    with Library(lib_dir) as lib:
        assert drive(iter_remove(lib, ids)) == 1
        assert [t.path for t in lib.tracks()] == [str(tmp_path / "audio" / "tone440.wav")]
        assert len(lib.segments()["id"]) == 3


def test_only_a_path_with_nothing_there_is_gone(tmp_path):
    """Nothing there (or a file where a folder should be) is gone; a path that cannot be looked at (here a name
    too long for the file system) is not: its track is kept."""
    (tmp_path / "file.txt").write_text("x")
    assert gone(str(tmp_path / "nothing.wav"))
    assert gone(str(tmp_path / "file.txt" / "under-a-file.wav"))
    assert not gone(str(tmp_path / "file.txt"))
    assert not gone(str(tmp_path / ("x" * 300)))
