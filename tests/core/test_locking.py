"""One writer per library, with real processes: a second writer waits, then stops with one line naming the
holder; a dead holder's lock is taken over; readers never block; two processes creating a library at once;
a read-only library answers queries; findings keep their review across re-cuts."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from musicemb_core.common.errors import LibraryError
from musicemb_core.data import layout
from musicemb_core.data.library import Library
from tests.conftest import write_tone

MUSICEMB = Path(sys.executable).with_name("musicemb")
SR = 8000
BUSY = re.compile(r"library busy: `musicemb \w+` \(pid \d+\) since \d\d:\d\d:\d\d")


def tone(path: Path, freq: float, seconds: float = 5.0, seed: int = 0) -> Path:
    return write_tone(path, freq, seconds=seconds, sr=SR, seed=seed)


def _cmd() -> list[str]:
    return [str(MUSICEMB)] if MUSICEMB.exists() else [sys.executable, "-m", "musicemb_core.cli"]


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "MUSICEMB_TEST_KILL_AT"}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def musicemb(*args, timeout: float = 180, **env) -> subprocess.CompletedProcess:
    return subprocess.run([*_cmd(), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env=_env(**env))


def _start(*args, **env) -> subprocess.Popen:
    return subprocess.Popen([*_cmd(), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(**env))


def _one_line_or_ok(rc: int, err: str) -> bool:
    """A writer that lost a race either succeeded or said "library busy" in one line; never a traceback."""
    if "Traceback" in err:
        return False
    return rc == 0 or (rc == 1 and BUSY.search(err.strip().splitlines()[-1]) is not None)


@pytest.fixture(scope="module")
def music(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("music")
    for i, f in enumerate((220, 330, 440, 550)):
        tone(root / "ab"[i % 2] / f"t{i}.wav", f, seed=i)
    return root


@pytest.fixture(scope="module")
def base(tmp_path_factory, music) -> Path:
    """An imported, embedded, indexed library (copied by each test)."""
    lib = tmp_path_factory.mktemp("base") / "lib"
    for args in (("ingest", lib, music, "--labels-from-folders"), ("embed", lib, "--model", "default"),
                 ("index", lib, "--model", "default")):
        r = musicemb(*args, "-q")
        assert r.returncode == 0, r.stderr
    return lib


def _copy(base: Path, tmp_path: Path) -> Path:
    shutil.copytree(base, tmp_path / "lib")
    return tmp_path / "lib"


HOLD = textwrap.dedent("""
    import sys, time
    from musicemb_core.data import layout
    with layout.write_lock(sys.argv[1], sys.argv[2]):
        print("held", flush=True)
        time.sleep(float(sys.argv[3]))
""")


def _holder(lib: Path, command: str = "embed", seconds: float = 60) -> subprocess.Popen:
    """Another process holding the library's writer lock (its command line reads ``musicemb <command>``)."""
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(lib), command, str(seconds)], stdout=subprocess.PIPE,
                         text=True, env=_env())
    assert p.stdout.readline().strip() == "held"
    return p


# -- the lock itself ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("args", [("embed", "--model", "default"), ("index", "--model", "default"),
                                  ("ingest", "MUSIC"), ("map", "--model", "default", "--method", "pca"),
                                  ("inspect", "--model", "default"),
                                  ("train", "--strategy", "supervised", "--arch", "cnn2", "--epochs", "1")])
def test_a_second_writer_stops_with_one_line_naming_the_holder(base, music, tmp_path, args):
    lib = _copy(base, tmp_path)
    holder = _holder(lib, "embed")
    try:
        t0 = time.monotonic()
        argv = [music if a == "MUSIC" else a for a in args]
        r = musicemb(argv[0], lib, *argv[1:], "-q", MUSICEMB_LOCK_WAIT="0.5")
        waited = time.monotonic() - t0
    finally:
        holder.kill()
        holder.wait()
    if args[0] == "map":  # drawn, not kept while another process writes: said, not a path never written
        assert r.returncode == 1 and r.stdout == "" and r.stderr.splitlines() == [
            f"musicemb: error: {lib}: the pca map was drawn but not kept: the library was busy (another program "
            "writing to it); draw it again, or give --out FILE"], r.stderr
        with Library(lib) as L:
            assert L.summary()["maps"] == []
        return
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert BUSY.search(last) and f"(pid {holder.pid})" in last and "`musicemb embed`" in last, last
    assert waited >= 0.5


def test_a_dead_holders_lock_is_taken_over(base, tmp_path):
    lib = _copy(base, tmp_path)
    holder = _holder(lib, "index")
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert "index" in (lib / layout.LOCK_NAME).read_text()  # its note is still there; the lock is not
    r = musicemb("index", lib, "--model", "default", "-q", MUSICEMB_LOCK_WAIT="0")
    assert r.returncode == 0, r.stderr


def test_a_writer_waits_for_a_short_holder(base, tmp_path):
    lib = _copy(base, tmp_path)
    holder = _holder(lib, "ingest", seconds=1.0)
    r = musicemb("index", lib, "--model", "default", "--no-landmarks", "-q", MUSICEMB_LOCK_WAIT="30")
    holder.wait()
    assert r.returncode == 0, r.stderr


def test_readers_never_block_on_a_writer(base, music, tmp_path):
    lib = _copy(base, tmp_path)
    holder = _holder(lib, "embed")
    try:
        for args in (("info", lib, "--json"), ("identify", lib, music / "a" / "t0.wav", "--model", "default"),
                     ("search", lib, music / "b" / "t1.wav", "--model", "default")):
            r = musicemb(*args, MUSICEMB_LOCK_WAIT="0")
            assert r.returncode == 0, (args, r.stderr)
    finally:
        holder.kill()
        holder.wait()


def test_lock_is_reentrant_in_a_thread_and_exclusive_between_threads(tmp_path):
    lib = Library(tmp_path / "lib", create=True)
    with layout.write_lock(lib, "embed"), layout.write_lock(lib, "index"):  # nested jobs of one thread
        errors = []

        def other():
            try:
                with layout.write_lock(lib, "ingest", wait_s=0.2):
                    pass
            except LibraryError as e:
                errors.append(str(e))

        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert len(errors) == 1 and f"(pid {os.getpid()})" in errors[0]
    with layout.write_lock(lib, "ingest", wait_s=0):  # released
        pass
    lib.close()


def test_two_jobs_stepped_in_turn_hold_the_lock_until_the_last_one_ends(tmp_path):
    """Two write jobs of one thread (generators stepped in turn) may end in either order: the first to end let go of
    the lock while the second still wrote, and the second then failed with a KeyError."""
    lib = Library(tmp_path / "lib", create=True)

    def taken_by_another_thread() -> bool:
        got = []

        def other():
            try:
                with layout.write_lock(lib, "ingest", wait_s=0):
                    got.append(True)
            except LibraryError:
                got.append(False)

        t = threading.Thread(target=other)
        t.start()
        t.join()
        return got[0]

    first, second = layout.write_lock(lib, "inspect"), layout.write_lock(lib, "inspect")
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # the first job ends while the second still runs
    assert not taken_by_another_thread()
    second.__exit__(None, None, None)
    assert taken_by_another_thread()
    lib.close()


# -- races: two real processes per writing command ---------------------------------------------------------------
@pytest.mark.parametrize("command", ["ingest-new", "ingest", "embed", "index", "map", "inspect"])
def test_two_writers_at_once_never_traceback_and_keep_the_catalogue_consistent(base, music, tmp_path, command):
    lib = tmp_path / "lib" if command == "ingest-new" else _copy(base, tmp_path)
    more = tmp_path / "more"
    for i in range(3):
        tone(more / f"m{i}.wav", 600 + 50 * i, seed=20 + i)
    args = {"ingest-new": ("ingest", lib, music), "ingest": ("ingest", lib, more),
            "embed": ("embed", lib, "--model", "default"), "index": ("index", lib, "--model", "default"),
            "map": ("map", lib, "--model", "default", "--method", "pca"),
            "inspect": ("inspect", lib, "--model", "default")}[command]
    if command == "embed":
        shutil.rmtree(lib / "embeddings")
    procs = [_start(*args, "-q", MUSICEMB_LOCK_WAIT="60" if i else "0") for i in range(2)]
    outs = [(p.wait(timeout=300), p.communicate()[1]) for p in procs]
    for rc, err in outs:
        assert _one_line_or_ok(rc, err), err
    assert any(rc == 0 for rc, _ in outs)
    assert "already exists" not in "".join(err for _, err in outs)
    with Library(lib) as L:
        tracks, seg, s = L.tracks(), L.segments(), L.summary()
        assert len({t.path for t in tracks}) == len(tracks) == (4 if command != "ingest" else 7)
        assert set(seg["track_id"].tolist()) == {t.id for t in tracks}
        assert all(not n.endswith((".old", ".tmp")) for n in s["embeddings"])
        if command != "ingest-new":
            from musicemb_core.stored_vectors import load_embeddings

            assert len(load_embeddings(L, "default").ids) == 8


# -- SQLite ------------------------------------------------------------------------------------------------------
def test_a_catalogue_locked_by_another_process_is_waited_for_not_a_traceback(tmp_path, monkeypatch):
    import musicemb_core.data.library as library

    lib = Library(tmp_path / "lib", create=True)
    code = textwrap.dedent("""
        import sqlite3, sys, time
        c = sqlite3.connect(sys.argv[1], isolation_level=None)
        c.execute("BEGIN IMMEDIATE")
        print("locked", flush=True)
        time.sleep(float(sys.argv[2]))
        c.execute("COMMIT")
    """)
    p = subprocess.Popen([sys.executable, "-c", code, str(lib.root / "library.sqlite"), "1.5"],
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "locked"
    monkeypatch.setattr(library, "BUSY_TIMEOUT_S", 0.2)
    lib.conn.execute("PRAGMA busy_timeout=200")
    with lib.transaction() as c:  # waits past SQLite's own timeout, then succeeds
        c.execute("INSERT OR REPLACE INTO meta VALUES ('probe', '1')")
    p.wait()
    p = subprocess.Popen([sys.executable, "-c", code, str(lib.root / "library.sqlite"), "5"],
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "locked"
    monkeypatch.setattr(library, "BUSY_RETRY_S", 0.5)
    with pytest.raises(LibraryError, match="library busy"), lib.transaction() as c:
        c.execute("INSERT OR REPLACE INTO meta VALUES ('probe', '2')")
    p.kill()
    p.wait()
    lib.close()


def _read_only_mount(src: Path, dst: Path) -> list[str] | None:
    """A command prefix running its command with ``src`` mounted read-only at ``dst`` in a private mount
    namespace (a mounted backup); None where this machine cannot (no unshare, no privileges)."""
    if not shutil.which("unshare") or not sys.platform.startswith("linux"):
        return None
    script = 'mount --bind -o ro "$1" "$2" && shift 2 && exec "$@"'
    for ns in (["unshare", "--mount"], ["unshare", "--user", "--map-root-user", "--mount"]):
        prefix = [*ns, "sh", "-c", script, "sh", str(src), str(dst)]
        probe = subprocess.run([*prefix, "sh", "-c", f'test -r "{dst}/{DB}" && ! touch "{dst}/probe"'],
                               capture_output=True, timeout=30)
        if probe.returncode == 0:
            return prefix
    return None


DB = "library.sqlite"


def test_a_read_only_library_answers_queries(base, music, tmp_path):
    """The library on a read-only mount: ``info``, ``identify``, ``search`` answer; a writer says why not."""
    src, dst = tmp_path / "src", tmp_path / "mnt"
    shutil.copytree(base, src)
    dst.mkdir()
    prefix = _read_only_mount(src, dst)
    if prefix is None:
        pytest.skip("cannot mount read-only here (needs unshare and mount privileges)")
    q = music / "a" / "t2.wav"
    for args in (("info", dst, "--json"), ("identify", dst, q, "--model", "default"),
                 ("search", dst, q, "--model", "default")):
        r = subprocess.run([*prefix, *_cmd(), *map(str, args)], capture_output=True, text=True, timeout=180,
                           env=_env())
        assert r.returncode == 0 and "Traceback" not in r.stderr, (args, r.stderr)
        if args[0] == "identify":
            assert "t2.wav" in r.stdout.splitlines()[1]
    r = subprocess.run([*prefix, *_cmd(), "embed", str(dst), "--model", "default", "-q"], capture_output=True,
                       text=True, timeout=180, env=_env())
    assert r.returncode == 1 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_a_read_only_library_with_a_stale_index_is_searched_from_memory(base, music, tmp_path):
    src, dst = tmp_path / "src", tmp_path / "mnt"
    shutil.copytree(base, src)
    shutil.rmtree(src / "index")
    dst.mkdir()
    prefix = _read_only_mount(src, dst)
    if prefix is None:
        pytest.skip("cannot mount read-only here (needs unshare and mount privileges)")
    r = subprocess.run([*prefix, *_cmd(), "identify", str(dst), str(music / "b" / "t3.wav"), "--model", "default"],
                       capture_output=True, text=True, timeout=180, env=_env())
    assert r.returncode == 0 and "t3.wav" in r.stdout.splitlines()[1], r.stderr
    assert not (src / "index").exists()


# -- findings ----------------------------------------------------------------------------------------------------
def test_findings_keep_their_review_across_a_re_cut(tmp_path):
    from musicemb_core.audio.segment import window_starts
    from musicemb_core.common.config import SegmentConfig

    lib = Library(tmp_path / "lib", create=True)
    cfg = SegmentConfig(window_s=3.0, hop_s=3.0)
    lib.set_segment_config(cfg, window_starts)
    fields = {"path": "/x/a.wav", "content_hash": "h", "size": 1, "mtime": 0.0, "duration_s": 12.0,
              "sample_rate": SR, "channels": 1, "format": "WAV", "label": "a", "tags": {}, "warning": ""}
    tid = lib.save_track(fields, cfg=cfg, starts_of=window_starts)

    def rows():
        seg = lib.segments()
        out = [{"kind": "clipping", "segment_id": int(s), "track_id": tid, "start_s": float(a),
                "end_s": float(a + d), "score": 1.0, "reason": "clipped"}
               for s, a, d in zip(seg["id"], seg["start_s"], seg["duration_s"], strict=True)]
        return out + [{"kind": "clipping", "segment_id": None, "track_id": tid, "start_s": 0.0, "end_s": 12.0,
                       "score": 1.0, "reason": "whole track"}]

    lib.replace_findings(rows(), kinds=["clipping"])
    by_start = {(f["segment_id"] is None, f["start_s"]): f for f in lib.findings()}
    lib.set_finding_status(by_start[(False, 3.0)]["id"], "dismissed")
    lib.set_finding_status(by_start[(False, 9.0)]["id"], "accepted")
    lib.set_segment_config(SegmentConfig(window_s=3.0, hop_s=1.5), window_starts)  # re-cut: new segment ids
    kept = [f for f in lib.findings() if f["status"] != "open"]
    assert sorted((f["start_s"], f["status"]) for f in kept) == [(3.0, "dismissed"), (9.0, "accepted")]
    lib.replace_findings(rows(), kinds=["clipping"])  # inspect again on the new segments
    status = {(f["segment_id"] is None, f["start_s"]): f["status"] for f in lib.findings()}
    assert status[(False, 3.0)] == "dismissed" and status[(False, 9.0)] == "accepted"
    assert status[(False, 1.5)] == status[(False, 4.5)] == "open"  # neighbours overlapping by half: not taken
    assert status[(True, 0.0)] == "open"
    lib.close()
