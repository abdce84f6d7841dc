"""The library catalogue: creation and versioning, atomic track writes, re-segmenting, summary counts."""

from __future__ import annotations

import shutil
import sqlite3

import numpy as np
import pytest

from musicemb_core.audio.segment import window_starts
from musicemb_core.common.config import SegmentConfig
from musicemb_core.common.errors import LibraryError
from musicemb_core.data.library import DB_NAME, MIGRATIONS, SCHEMA_VERSION, Library


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("MUSICEMB_HOME", str(tmp_path / "home"))


def _fields(path: str, *, duration_s: float = 10.0, content_hash: str = "h0", label: str | None = None,
            tags: dict | None = None, warning: str = "") -> dict:
    return {"path": path, "content_hash": content_hash, "size": 1234, "mtime": 1.5e9, "duration_s": duration_s,
            "sample_rate": 8000, "channels": 1, "format": "WAV", "label": label, "tags": tags or {},
            "warning": warning}


def _segments(lib: Library, track_id: int) -> list[tuple[float, float]]:
    return [tuple(r) for r in lib.conn.execute(
        "SELECT start_s, duration_s FROM segments WHERE track_id=? ORDER BY start_s", (track_id,))]


def _count(lib: Library, table: str) -> int:
    return lib.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def test_create_makes_catalogue_at_current_schema_version(tmp_path):
    root = tmp_path / "new" / "lib"
    with Library(root, create=True) as lib:
        assert lib.root == root.resolve()
        assert (root / DB_NAME).is_file()
        assert len(MIGRATIONS) == SCHEMA_VERSION
        assert lib.conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert lib.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert lib.get_meta("created_at") is not None
        assert lib.segment_config() is None
        tables = {r[0] for r in lib.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"meta", "tracks", "segments", "failures", "models", "runs", "findings", "segment_labels", "edits"} <= tables
    # Re-opening an existing library runs no migration again and keeps its data.
    with Library(root) as lib:
        assert lib.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert lib.conn.execute("SELECT COUNT(*) FROM meta WHERE key='created_at'").fetchone()[0] == 1


def test_open_non_library_folder_names_it(tmp_path):
    folder = tmp_path / "just a folder"
    folder.mkdir()
    (folder / "song.wav").write_bytes(b"x")
    with pytest.raises(LibraryError) as e:
        Library(folder)
    assert str(folder.resolve()) in str(e.value)
    assert "not a musicemb library" in str(e.value)
    assert not (folder / DB_NAME).exists()  # opening never creates

    missing = tmp_path / "missing"
    with pytest.raises(LibraryError, match="not a musicemb library"):
        Library(missing)
    assert not missing.exists()


def test_newer_catalogue_version_is_refused(tmp_path):
    Library(tmp_path / "lib", create=True).close()
    con = sqlite3.connect(tmp_path / "lib" / DB_NAME)
    con.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    con.close()
    with pytest.raises(LibraryError) as e:
        Library(tmp_path / "lib")
    msg = str(e.value)
    assert "newer" in msg and str(SCHEMA_VERSION + 1) in msg and str((tmp_path / "lib").resolve()) in msg


def test_garbage_catalogue_is_a_library_error(tmp_path):
    root = tmp_path / "lib"
    root.mkdir()
    (root / DB_NAME).write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(LibraryError, match="cannot open the catalogue"):
        Library(root)


def test_transaction_rolls_back_on_exception(tmp_path):
    with Library(tmp_path / "lib", create=True) as lib:
        with pytest.raises(RuntimeError, match="boom"), lib.transaction() as c:
            c.execute("INSERT INTO meta VALUES ('k', 'v')")
            raise RuntimeError("boom")
        assert lib.get_meta("k") is None
        assert not lib.conn.in_transaction
        # The connection is usable afterwards.
        with lib.transaction() as c:
            c.execute("INSERT INTO meta VALUES ('k', 'v2')")
        assert lib.get_meta("k") == "v2"


def test_save_track_is_one_transaction(tmp_path):
    cfg = SegmentConfig(window_s=3.0, hop_s=3.0)
    with Library(tmp_path / "lib", create=True) as lib:
        lib.record_failure("/music/a.wav", "truncated: x", size=1, mtime=2.0)

        def exploding_starts(duration_s, cfg):
            raise RuntimeError("segmenting failed")

        # The track row is inserted before the segments: a failure while cutting must undo it.
        with pytest.raises(RuntimeError, match="segmenting failed"):
            lib.save_track(_fields("/music/a.wav"), cfg=cfg, starts_of=exploding_starts)
        assert _count(lib, "tracks") == 0
        assert _count(lib, "segments") == 0
        assert lib.failures() == [{"path": "/music/a.wav", "error": "truncated: x"}]

        # Starts are consumed lazily after some segment rows were prepared: still nothing half-written.
        def half_then_fail(duration_s, cfg):
            yield 0.0
            yield 3.0
            raise RuntimeError("half way")

        with pytest.raises(RuntimeError, match="half way"):
            lib.save_track(_fields("/music/a.wav"), cfg=cfg, starts_of=half_then_fail)
        assert (_count(lib, "tracks"), _count(lib, "segments")) == (0, 0)

        tid = lib.save_track(_fields("/music/a.wav", tags={"title": "T"}), cfg=cfg, starts_of=window_starts)
        assert _count(lib, "tracks") == 1
        # 10 s, 3 s windows every 3 s: 0, 3, 6; the 1 s tail is under min_tail (0.5 x 3 s), so no end window.
        assert _segments(lib, tid) == [(0.0, 3.0), (3.0, 3.0), (6.0, 3.0)]
        assert lib.failures() == []  # a successful save clears the failure at that path
        t = lib.track(tid)
        assert (t.path, t.duration_s, t.tags, t.label) == ("/music/a.wav", 10.0, {"title": "T"}, None)

        # Replacing a track's content keeps its id and replaces its segments, atomically.
        with pytest.raises(RuntimeError):
            lib.save_track(_fields("/music/a.wav", duration_s=2.0, content_hash="h1"), cfg=cfg,
                           starts_of=exploding_starts, track_id=tid)
        assert lib.track(tid).content_hash == "h0"
        assert len(_segments(lib, tid)) == 3
        assert lib.save_track(_fields("/music/a.wav", duration_s=2.0, content_hash="h1"), cfg=cfg,
                              starts_of=window_starts, track_id=tid) == tid
        assert lib.track(tid).content_hash == "h1"
        assert _segments(lib, tid) == [(0.0, 2.0)]  # shorter than a window: one short segment


def test_duplicate_path_is_rejected_atomically(tmp_path):
    cfg = SegmentConfig()
    with Library(tmp_path / "lib", create=True) as lib:
        lib.save_track(_fields("/m/a.wav"), cfg=cfg, starts_of=window_starts)
        with pytest.raises(sqlite3.IntegrityError):
            lib.save_track(_fields("/m/a.wav", content_hash="other"), cfg=cfg, starts_of=window_starts)
        assert (_count(lib, "tracks"), _count(lib, "segments")) == (1, 3)


def test_set_segment_config_recuts_existing_tracks(tmp_path):
    cfg3 = SegmentConfig(window_s=3.0, hop_s=3.0)
    with Library(tmp_path / "lib", create=True) as lib:
        a = lib.save_track(_fields("/m/a.wav", duration_s=11.0, content_hash="a"), cfg=cfg3,
                           starts_of=window_starts)
        b = lib.save_track(_fields("/m/b.wav", duration_s=2.5, content_hash="b"), cfg=cfg3,
                           starts_of=window_starts)
        # 11 s: 0, 3, 6 and, the 2 s tail being >= 1.5 s, a last window aligned to the end at 8 s.
        assert _segments(lib, a) == [(0.0, 3.0), (3.0, 3.0), (6.0, 3.0), (8.0, 3.0)]
        assert _segments(lib, b) == [(0.0, 2.5)]

        cfg2 = SegmentConfig(window_s=2.0, hop_s=1.0)
        lib.set_segment_config(cfg2, window_starts)
        assert lib.segment_config() == cfg2
        assert _segments(lib, a) == [(float(s), 2.0) for s in range(10)]  # 0..9
        assert _segments(lib, b) == [(0.0, 2.0)]  # 2.5 s: the 0.5 s tail is under half a window
        assert _count(lib, "segments") == 11

    with Library(tmp_path / "lib") as lib:  # persisted
        assert lib.segment_config() == cfg2


def test_summary_counts(tmp_path):
    cfg = SegmentConfig(window_s=3.0, hop_s=3.0)
    with Library(tmp_path / "lib", create=True) as lib:
        empty = lib.summary()
        assert (empty["tracks"], empty["segments"], empty["duration_s"], empty["labels"], empty["failed"],
                empty["models"], empty["maps"]) == (0, 0, 0, {}, [], [], [])
        assert empty["window_s"] is None

        lib.set_segment_config(cfg, window_starts)
        lib.save_track(_fields("/m/a.wav", duration_s=10.0, content_hash="a", label="rock"), cfg=cfg,
                       starts_of=window_starts)  # 3 segments
        lib.save_track(_fields("/m/b.wav", duration_s=11.0, content_hash="b", label="rock"), cfg=cfg,
                       starts_of=window_starts)  # 4 segments
        lib.save_track(_fields("/m/c.wav", duration_s=1.25, content_hash="c", label="jazz",
                               warning="extension .wav but the content is FLAC; imported anyway"),
                       cfg=cfg, starts_of=window_starts)  # 1 segment
        lib.save_track(_fields("/m/d.wav", duration_s=6.0, content_hash="d"), cfg=cfg,
                       starts_of=window_starts)  # 2 segments
        lib.record_failure("/m/bad.mp3", "not a readable audio file (x)", size=3, mtime=1.0)
        lib.record_failure("/m/empty.wav", "zero-length file", size=0, mtime=1.0)
        (lib.folder("maps") / "default-umap.npy").write_bytes(b"")

        s = lib.summary()
        assert s["path"] == str((tmp_path / "lib").resolve())
        assert s["tracks"] == 4
        assert s["segments"] == 10
        assert s["duration_s"] == 28.25
        assert s["labels"] == {"": 1, "jazz": 1, "rock": 2}
        assert (s["window_s"], s["hop_s"]) == (3.0, 3.0)
        assert s["failed"] == [{"path": "/m/bad.mp3", "error": "not a readable audio file (x)"},
                               {"path": "/m/empty.wav", "error": "zero-length file"}]
        assert s["warnings"] == [{"path": "/m/c.wav",
                                  "warning": "extension .wav but the content is FLAC; imported anyway"}]
        assert s["maps"] == ["default-umap"]
        assert s["models"] == []

        lib.set_label(1, "pop")
        assert lib.summary()["labels"] == {"": 1, "jazz": 1, "pop": 1, "rock": 1}
        with pytest.raises(LibraryError, match="no track with id 99"):
            lib.set_label(99, "x")
        with pytest.raises(LibraryError, match="no track with id 99"):
            lib.track(99)


def test_segments_columns(tmp_path):
    cfg = SegmentConfig(window_s=3.0, hop_s=3.0)
    with Library(tmp_path / "lib", create=True) as lib:
        assert {k: v.shape for k, v in lib.segments().items()} == {k: (0,) for k in
                                                                   ("id", "track_id", "start_s", "duration_s")}
        a = lib.save_track(_fields("/m/a.wav", duration_s=8.0, content_hash="a"), cfg=cfg, starts_of=window_starts)
        b = lib.save_track(_fields("/m/b.wav", duration_s=7.0, content_hash="b"), cfg=cfg, starts_of=window_starts)
        seg = lib.segments()
        assert seg["id"].dtype == np.int64
        assert seg["track_id"].tolist() == [a, a, a, b, b]
        # 8 s: 0, 3 and a window ending at the end (2 s tail >= 1.5 s); 7 s: 0, 3 (1 s tail dropped).
        assert seg["start_s"].tolist() == [0.0, 3.0, 5.0, 0.0, 3.0]
        assert seg["duration_s"].tolist() == [3.0] * 5


def _direct(lib: Library) -> dict:
    rows = np.array(lib.conn.execute("SELECT id, track_id, start_s, duration_s FROM segments ORDER BY id").fetchall(),
                    dtype=np.float64).reshape(-1, 4)
    return {"id": rows[:, 0], "track_id": rows[:, 1], "start_s": rows[:, 2], "duration_s": rows[:, 3]}


def _same_as_catalogue(lib: Library) -> bool:
    got, want = lib.segments(), _direct(lib)
    return all(np.array_equal(got[k], want[k]) for k in want)


@pytest.fixture
def reads(monkeypatch) -> list[int]:
    """The ``after`` id of each read of segment rows from the catalogue (0: every segment read)."""
    import musicemb_core.data.library as library_module

    calls: list[int] = []
    real = library_module._segment_rows
    monkeypatch.setattr(library_module, "_segment_rows",
                        lambda conn, after, *count: calls.append(after) or real(conn, after, *count))
    return calls


def test_segments_kept_between_reads_follow_every_change(tmp_path, reads):
    """The columns a process keeps (read again only where segments were added) match the catalogue after inserts,
    deletions, a re-cut, writes by another connection, a rolled-back transaction and another library made at the
    same path."""

    cfg = SegmentConfig(window_s=3.0, hop_s=3.0)
    root = tmp_path / "lib"
    with Library(root, create=True) as lib:
        a = lib.save_track(_fields("/m/a.wav", duration_s=9.0, content_hash="a"), cfg=cfg, starts_of=window_starts)
        assert _same_as_catalogue(lib) and reads == [0]
        assert _same_as_catalogue(lib) and reads == [0]  # unchanged: nothing read
        seg = lib.segments()
        seg["start_s"][:] = -1  # a caller's copy: the kept columns stay right
        b = lib.save_track(_fields("/m/b.wav", duration_s=7.0, content_hash="b"), cfg=cfg, starts_of=window_starts)
        assert _same_as_catalogue(lib) and reads[-1] == 3  # only the segments after the 3 known ones
        with Library(root) as other:  # another connection (as another process) adds and removes
            other.save_track(_fields("/m/c.wav", duration_s=6.0, content_hash="c"), cfg=cfg, starts_of=window_starts)
            other.remove_tracks([a])
        assert _same_as_catalogue(lib) and reads[-1] == 0  # some were removed: read whole
        lib.save_track(_fields("/m/b.wav", duration_s=12.0, content_hash="b2"), cfg=cfg, starts_of=window_starts,
                       track_id=b)  # re-cut: its old segments deleted, new ones inserted
        assert _same_as_catalogue(lib)
        with pytest.raises(RuntimeError), lib.transaction() as c:
            c.execute("INSERT INTO segments (track_id, start_s, duration_s) VALUES (?, 0, 3)", (b,))
            assert len(lib.segments()["id"]) == len(_direct(lib)["id"])  # its own write, seen but not kept
            raise RuntimeError
        assert _same_as_catalogue(lib)
        before = lib.segments()
    shutil.rmtree(root)
    with Library(root, create=True) as lib:  # the same path, the same ids, other segments
        lib.save_track(_fields("/m/x.wav", duration_s=9.0, content_hash="x"), cfg=cfg, starts_of=window_starts)
        assert _same_as_catalogue(lib) and len(before["id"]) != 3


def test_segments_snapshot_spares_the_next_process_the_whole_read(tmp_path, reads):
    """A new process (nothing kept in memory) reads the columns from the library's snapshot and only the segments
    added since from the catalogue; a snapshot of a restored (older) catalogue, of another library, or a damaged
    one is not used."""
    import musicemb_core.data.library as library_module

    cfg = SegmentConfig(window_s=3.0, hop_s=3.0)
    root = tmp_path / "lib"

    def new_process(lib) -> bool:
        library_module._SEGMENTS.clear()
        return _same_as_catalogue(lib)

    with Library(root, create=True) as lib:
        for i in range(12):
            lib.save_track(_fields(f"/m/{i}.wav", duration_s=9.0, content_hash=f"h{i}"), cfg=cfg,
                           starts_of=window_starts)
        assert _same_as_catalogue(lib) and reads == [0] and (root / library_module.SEGMENTS_SNAPSHOT).exists()
        lib.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        shutil.copy(root / DB_NAME, tmp_path / "backup.sqlite")
        assert new_process(lib) and reads == [0]  # all 36 segments from the snapshot
        lib.save_track(_fields("/m/new.wav", duration_s=6.0, content_hash="new"), cfg=cfg, starts_of=window_starts)
        assert new_process(lib) and reads == [0, 36]  # only the 2 new ones from the catalogue (not rewritten)
        lib.remove_tracks([lib.track_by_path("/m/0.wav").id])
        assert new_process(lib) and reads[-1] == 0  # some removed: read whole (and the snapshot rewritten)
        lib.save_track(_fields("/m/0.wav", duration_s=9.0, content_hash="h0"), cfg=cfg, starts_of=window_starts)
    shutil.copy(tmp_path / "backup.sqlite", root / DB_NAME)  # the catalogue restored: the snapshot is newer
    with Library(root) as lib:
        n = len(reads)
        assert new_process(lib) and reads[n:] == [0]
        (root / library_module.SEGMENTS_SNAPSHOT).write_bytes(b"PK\x03\x04 not a zip")
        assert new_process(lib) and reads[n + 1:] == [0]
    (root / DB_NAME).unlink()
    with Library(root, create=True) as lib:  # another library in the folder: its own segments, not the snapshot's
        lib.save_track(_fields("/m/x.wav", duration_s=3.0, content_hash="x"), cfg=cfg, starts_of=window_starts)
        assert new_process(lib) and len(lib.segments()["id"]) == 1


def test_a_segments_snapshot_is_not_taken_for_a_restored_catalogue_changed_otherwise(tmp_path):
    """A catalogue restored from a backup and then added to gives the ids of the snapshot's last segments to other
    segments: count and largest id may match the snapshot, its rows do not."""
    import musicemb_core.data.library as library_module

    cfg = SegmentConfig(window_s=3.0, hop_s=3.0)
    root = tmp_path / "lib"
    with Library(root, create=True) as lib:
        for i in range(10):
            lib.save_track(_fields(f"/m/{i}.wav", duration_s=9.0, content_hash=f"h{i}"), cfg=cfg,
                           starts_of=window_starts)
        lib.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        shutil.copy(root / DB_NAME, tmp_path / "backup.sqlite")
        for i in (10, 11):  # two 9 s tracks: segments 31-36
            lib.save_track(_fields(f"/m/{i}.wav", duration_s=9.0, content_hash=f"h{i}"), cfg=cfg,
                           starts_of=window_starts)
        assert _same_as_catalogue(lib) and (root / library_module.SEGMENTS_SNAPSHOT).exists()
    shutil.copy(tmp_path / "backup.sqlite", root / DB_NAME)
    with Library(root) as lib:  # restored, then one 18 s track: segments 31-36 again, other ones
        lib.save_track(_fields("/m/long.wav", duration_s=18.0, content_hash="long"), cfg=cfg, starts_of=window_starts)
        library_module._SEGMENTS.clear()
        assert len(lib.segments()["id"]) == 36 and _same_as_catalogue(lib)
