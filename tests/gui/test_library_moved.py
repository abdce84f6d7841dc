"""The library open in the app changed under it: its drive unmounted (the mount point left empty), another
library put in its place, tracks cut again or edits made by another process (real ones)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("PySide6")

from musicemb_core.data.library import Library  # noqa: E402
from musicemb_gui.session import Session  # noqa: E402
from tests.gui.helpers import tone_library  # noqa: E402

GONE = ": the open library is not there any more (moved, deleted or on a drive unplugged)"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return tone_library(tmp_path_factory.mktemp("moved"))


@pytest.fixture
def session(qtbot, built, tmp_path):
    """A session on a copy of ``built`` (its tracks' files are ``built``'s); ``session.said``: its messages."""
    s = Session()
    s.said = []
    s.message.connect(s.said.append)
    s.open(shutil.copytree(built, tmp_path / "lib"))
    yield s
    s.jobs.wait(30000)


def _job_failure(qtbot, session) -> str:
    """The message of a job that writes a label on the open library, which must fail."""
    def work(lib, _token):
        lib.set_label(1, "wrong library")
        return (yield from ())
    failed = []
    session.library_job("label", work, writes=True, on_failed=failed.append)
    qtbot.waitUntil(lambda: bool(failed), timeout=5000)
    return failed[0]


def test_another_library_mounted_in_its_place_is_not_written(qtbot, session, tmp_path):
    """A DJ's second USB stick, of the same name, mounted where the first was: the next label edit and job wrote
    to the other library's track of the same id."""
    lib = session.lib_path
    shutil.move(lib, tmp_path / "first")
    with Library(lib, create=True) as other:
        other.conn.execute("INSERT INTO tracks (path, content_hash, size, mtime, duration_s, sample_rate, channels, "
                           "format, label, added_at) VALUES ('/x.wav', 'h', 1, 0, 9, 8000, 1, 'WAV', NULL, 0)")
    session.set_label(min(session.tracks), "techno")
    assert session.said[-1].startswith(f"{lib}: another library is there now, not the one open in the window")
    assert session.said[-1] in _job_failure(qtbot, session)
    with Library(lib) as other:
        assert other.labels() == {1: None}


def test_a_drive_unmounted_leaves_its_mount_point_empty(qtbot, session, tmp_path):
    """The folder is there (the mount point) but not the library: the app said "not a musicemb library (no
    library.sqlite); create one with `musicemb ingest LIB PATH...`"."""
    lib = session.lib_path
    shutil.move(lib, tmp_path / "unmounted")
    lib.mkdir()
    session.set_label(min(session.tracks), "techno")
    assert session.said[-1].startswith(f"{lib}{GONE}")
    assert _job_failure(qtbot, session).startswith(f"{lib}{GONE}")
    assert list(lib.iterdir()) == []


def test_a_segment_tagged_after_the_cli_cut_the_library_again(qtbot, session, built):
    """`musicemb ingest --window 1.5` while the app is open gives the segments new ids: tagging a segment of the
    map said "no segment with id N" and the map kept the old segments, so every try failed the same way."""
    old = [int(i) for i in session.segments["id"]]
    r = subprocess.run([sys.executable, "-m", "musicemb_core.cli", "ingest", str(session.lib_path),
                        str(built.parent / "audio"), "--window", "1.5", "-q"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert session.edits.tag_segments([old[0]], "intro") is None
    assert session.said[-1].startswith(f"{session.lib_path}: no segment with id {old[0]}; another program changed "
                                       "the library since the window read it")
    qtbot.waitUntil(lambda: len(session.segments["id"]) == 12)  # read again: the new cut
    new = [int(i) for i in session.segments["id"]]
    assert not set(new) & set(old)
    assert session.edits.tag_segments([new[0]], "intro") is not None


def test_findings_replaced_by_another_process_are_read_again(session):
    with Library(session.lib_path) as lib:
        tid = min(session.tracks)
        row = {"kind": "clipping", "segment_id": None, "track_id": tid, "start_s": 0.0, "end_s": 9.0, "score": 1.0,
               "reason": "clipped"}
        lib.replace_findings([row], kinds=["clipping"])
        fid = lib.findings()[0]["id"]
        lib.replace_findings([], kinds=["clipping"])  # another inspection found none
    assert session.edits.review_findings([fid], "accepted") is None
    assert "another program changed the library since the window read it" in session.said[-1]


UNDO_ELSEWHERE = textwrap.dedent("""
    import sys
    from musicemb_core.data import edits
    from musicemb_core.data.library import Library
    with Library(sys.argv[1]) as lib:
        edits.relabel_tracks(lib, [int(sys.argv[2])], "from the other window")
""")


def test_undo_refused_after_another_windows_edit_shows_that_edit(session):
    """Another window (process) labels a track; Undo here is refused (it names another edit now) but this window
    went on showing the track's old label, so the edit Undo now names was not to be seen."""
    a, b = sorted(session.tracks)
    session.set_label(a, "mine")
    subprocess.run([sys.executable, "-c", UNDO_ELSEWHERE, str(session.lib_path), str(b)], check=True, timeout=60)
    session.edits.undo()
    assert "nothing undone: another process changed the edits since" in session.said[-1]
    assert session.tracks[b].label == "from the other window" and session.tracks[a].label == "mine"
    assert session.edits.last_id is not None
    session.edits.undo()  # now the other window's edit, as the menu names it
    assert session.said[-1].startswith("undone: label") and session.tracks[b].label is None


def test_worker_reads_name_a_library_gone_from_its_place(qtbot, session, tmp_path):
    """"More like this" and Build set read the library in a thread: theirs said "not a musicemb library ...; create
    one with `musicemb ingest`" for a drive unmounted."""
    from musicemb_gui.workers import run_in_thread

    lib = session.lib_path
    open_library = session.opener()
    shutil.move(lib, tmp_path / "unmounted")
    lib.mkdir()
    failed = []
    run_in_thread(lambda: open_library().close(), lambda _r: None, failed.append)
    qtbot.waitUntil(lambda: bool(failed), timeout=5000)
    assert failed[0].startswith(f"{lib}{GONE}")
