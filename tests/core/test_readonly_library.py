"""A library this user may not write (chmod a-w on the folder and catalogue, its lock file left writable), with real
permissions: as root, the commands run without the capability that overrides them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from musicemb_core.audio.segment import window_starts
from musicemb_core.common.config import SegmentConfig
from musicemb_core.data import layout
from musicemb_core.data.library import SEGMENTS_SNAPSHOT, Library

NO_OVERRIDE = ["setpriv", "--inh-caps=-dac_override,-dac_read_search",
               "--bounding-set=-dac_override,-dac_read_search"]


def _as_user(folder: Path) -> list[str] | None:
    """A command prefix under which file permissions hold (root bypasses them), None where there is none."""
    prefix = NO_OVERRIDE if os.geteuid() == 0 else []
    if prefix and not shutil.which("setpriv"):
        return None
    probe = subprocess.run([*prefix, "sh", "-c", f'! touch "{folder}/probe"'], capture_output=True, timeout=30)
    return prefix if probe.returncode == 0 else None


@pytest.fixture
def locked_lib(tmp_path):
    """A library of one track (its lock file written by an earlier writer), then chmod a-w; the command prefix."""
    with Library(tmp_path / "lib", create=True) as lib:
        cfg = SegmentConfig(window_s=3.0, hop_s=3.0)
        lib.set_segment_config(cfg, window_starts)
        lib.save_track({"path": str(tmp_path / "a.wav"), "content_hash": "h", "size": 1, "mtime": 0.0,
                        "duration_s": 9.0, "sample_rate": 8000, "channels": 1, "format": "WAV", "label": "a",
                        "tags": {}, "warning": ""}, cfg=cfg, starts_of=window_starts)
        with layout.write_lock(lib, "ingest"):
            pass
    root = tmp_path / "lib"
    for p in (root / "library.sqlite", root):
        p.chmod(0o555)
    prefix = _as_user(root)
    if prefix is None:
        pytest.skip("file permissions cannot be enforced here (root without setpriv)")
    yield root, prefix
    root.chmod(0o755)


def test_a_writer_of_a_library_it_may_not_write_stops_naming_it_and_writes_nothing(locked_lib):
    """The lock file was still writable, so writers took the lock and `embed`, `index` wrote new generations into
    the library (`train`: "Permission denied" and the log); now every writer stops in one line naming the library,
    and reading it (the segments) writes no snapshot."""
    root, prefix = locked_lib
    code = textwrap.dedent("""
        import sys
        from musicemb_core.data import layout
        from musicemb_core.data.library import Library
        with Library(sys.argv[1]) as lib:
            print(lib.read_only, len(lib.segments()["id"]))
            try:
                with layout.write_lock(lib, "embed"):
                    print("locked")
            except Exception as e:
                print(e)
    """)
    r = subprocess.run([*prefix, sys.executable, "-c", code, str(root)], capture_output=True, text=True, timeout=60)
    assert r.stdout.splitlines() == ["True 3", f"{root}: cannot write to this library (Permission denied)"], r.stderr
    assert (root / layout.LOCK_NAME).read_text() == ""  # no holder written
    assert not (root / SEGMENTS_SNAPSHOT).exists()
    (root.parent / "empty").mkdir()  # nothing to import: the import took the lock and said "done"
    r = subprocess.run([*prefix, sys.executable, "-m", "musicemb_core.cli", "ingest", str(root), str(root.parent / "empty"),
                        "-q"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.splitlines() == [f"musicemb: error: {root}: cannot write to this library (Permission denied)"]
    assert sorted(p.name for p in root.iterdir()) == ["library.lock", "library.sqlite"]


READ_NOTE = textwrap.dedent("""
    import sys
    from musicemb_core.common.errors import LibraryError
    from musicemb_core.data.library import Library
    try:
        with Library(sys.argv[1]) as lib:
            print(lib.read_only, lib.get_meta("note"))
    except LibraryError as e:
        print(e)
""")


def test_a_read_only_copy_made_while_the_library_was_open_is_not_read_as_it_was_before(tmp_path):
    """A backup copied while the app had the library open, without its ``-shm`` (backup tools skip it), mounted
    read-only: SQLite could only open it ignoring the ``-wal`` file, so its last changes were silently missing."""
    Library(tmp_path / "lib", create=True).close()
    lib = Library(tmp_path / "lib")
    lib.conn.execute("PRAGMA wal_autocheckpoint=0")
    lib.set_meta("note", "the last change")
    copy = Path(shutil.copytree(tmp_path / "lib", tmp_path / "backup"))
    lib.close()
    (copy / "library.sqlite-shm").unlink()
    for p in (*copy.iterdir(), copy):
        p.chmod(0o555)
    prefix = _as_user(copy)
    if prefix is None:
        pytest.skip("file permissions cannot be enforced here (root without setpriv)")
    try:
        r = subprocess.run([*prefix, sys.executable, "-c", READ_NOTE, str(copy)], capture_output=True, text=True,
                           timeout=60)
    finally:
        copy.chmod(0o755)
    assert r.stdout.splitlines() == [f"{copy}: read-only library whose last changes are in library.sqlite-wal, which "
                                     "cannot be read here without library.sqlite-shm; open it once where it is "
                                     "writable"], r.stderr


def test_a_map_of_a_library_it_may_not_write_is_refused_without_out_before_it_is_drawn(locked_lib, tmp_path):
    """`musicemb map LIB` drew the map, then printed "umap map of 350 segments -> LIB/maps/.../map.npy", a file
    never written (only the hidden progress said "not kept")."""
    root, prefix = locked_lib
    r = subprocess.run([*prefix, sys.executable, "-m", "musicemb_core.cli", "map", str(root), "--method", "pca", "-q"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.splitlines() == [f"musicemb: error: {root}: Permission denied: the map cannot be kept in the "
                                     "library; give --out FILE"]
    assert not (root / "maps").exists()


def test_a_map_the_library_could_not_keep_is_said_not_kept(tmp_path, monkeypatch, capsys):
    """Another program writing to the library (its lock held past the wait): the map was drawn and not kept."""
    from musicemb_core import cli
    from musicemb_core.workflows import maps
    from tests.conftest import labelled_tones

    lib = labelled_tones(tmp_path)
    assert cli.main(["embed", str(lib), "--model", "similarity", "-q"]) == 0
    capsys.readouterr()
    monkeypatch.setattr(maps, "_publish_map", lambda *a, **k: False)
    assert cli.main(["map", str(lib), "--method", "pca", "--model", "similarity", "-q"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [f"musicemb: error: {lib}: the pca map was drawn but not kept: the library was busy (another "
                   "program writing to it); draw it again, or give --out FILE"]
    assert cli.main(["map", str(lib), "--method", "pca", "--model", "similarity", "-q", "--out",
                     str(tmp_path / "m.csv")]) == 0
    assert (tmp_path / "m.csv").read_text().count("\n") == 9  # a header and the 8 segments
    monkeypatch.undo()
    capsys.readouterr()
    assert cli.main(["map", str(lib), "--method", "pca", "--model", "similarity", "-q"]) == 0
    with Library(lib) as opened:
        assert capsys.readouterr().out == f"pca map of 8 segments -> {maps.map_path(opened, 'similarity', 'pca')}\n"
