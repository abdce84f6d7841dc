"""Edge cases of today's changes, from a review: each test failed before its fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import musicemb_core.data.ingest as ingest_mod
from musicemb_core.common.config import SegmentConfig
from musicemb_core.common.progress import CancelToken, Progress, drive
from musicemb_core.data.ingest import IngestReport, iter_ingest
from musicemb_core.data.library import Library

SR = 8000
SEG1 = SegmentConfig(window_s=1.0, hop_s=1.0)


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("MUSICEMB_HOME", str(tmp_path / "home"))


def wav(path: Path, freq: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(SR // 2) / SR
    sf.write(path, (0.4 * np.sin(2 * np.pi * freq * t)).astype(np.float32), SR, subtype="PCM_16")
    return path


def run(lib: Library, paths, *, on_event=None, **kw) -> IngestReport:
    kw = {"segments": SEG1, "jobs": 1, "analyse": False} | kw
    return drive(iter_ingest(lib, [str(p) for p in paths], **kw), on_event)


def test_a_cancel_at_the_last_check_event_stores_nothing(tmp_path, monkeypatch):
    """The check of the last file reported, then Stop: the check's writes (labels given again, failures, a new
    segmenting) were made anyway, before the cancel was seen at the first file to read."""
    monkeypatch.setattr(ingest_mod, "TICK_S", 0.0)
    d = tmp_path / "crate"
    for i in range(4):
        wav(d / f"t{i}.wav", 200 + 20 * i)
    with Library(tmp_path / "lib", create=True) as lib:
        assert run(lib, [d]).added == 4
        (d / "zz.wav").symlink_to(tmp_path / "nowhere.wav")  # fails the check: recorded as a failure
        wav(d / "new.wav", 900)
        token = CancelToken()
        seen: list[Progress] = []

        def on_event(e: Progress) -> None:
            seen.append(e)
            if e.stage == "check" and e.done == e.total - 1:  # the last file's check
                token.cancel()

        report = run(lib, [d], cancel=token, on_event=on_event, labels="folders",
                     segments=SegmentConfig(window_s=0.5, hop_s=0.5))
        assert report.cancelled and "ingest" not in [e.stage for e in seen]
        assert {t.label for t in lib.tracks()} == {None} and lib.failures() == []
        assert lib.segment_config() == SEG1 and len(lib.tracks()) == 4


@pytest.fixture
def emptied_drive(tmp_path):
    """(library, music folder, a, b): a and music/drive/b imported, then b gone and its folder left empty."""
    music = tmp_path / "music"
    a = wav(music / "a.wav", 300)
    b = wav(music / "drive" / "b.wav", 500)
    with Library(tmp_path / "lib", create=True) as lib:
        assert run(lib, [music]).added == 2
        b.unlink()
        yield lib, music, a, b


def test_prune_from_a_folder_above_an_emptied_one_given_too(emptied_drive):
    """--prune MUSIC MUSIC/drive, the drive's folder emptied: its gone tracks were kept with a warning saying that
    a folder above it removes them, though that folder was given (--prune MUSIC alone removed them)."""
    lib, music, a, b = emptied_drive
    report = run(lib, [music, music / "drive"], prune=True)
    assert (report.missing, report.removed, report.warnings) == ([str(b)], 1, [])
    assert [t.path for t in lib.tracks()] == [str(a)]


def test_prune_keeps_the_tracks_of_an_emptied_folder_given_alone(emptied_drive):
    lib, music, a, b = emptied_drive
    report = run(lib, [music / "drive", a], prune=True)
    assert (report.missing, report.removed) == ([str(b)], 0)
    assert [w for w, _ in report.warnings] == [str(music / "drive")]
    assert len(lib.tracks()) == 2


def _damaged_snapshots(good: bytes) -> dict[str, bytes]:
    """Damage a snapshot's bytes as a bad sector or a flipped bit could, in ways :mod:`zipfile` and
    :func:`numpy.load` report with other exceptions than a broken zip."""
    import io
    import zipfile

    encrypted = bytearray(good)  # a member's "encrypted" flag set: RuntimeError, password required
    at = encrypted.index(b"PK\x01\x02")
    encrypted[at + 8] |= 1
    method = bytearray(good)  # an unknown compression method: NotImplementedError
    method[at + 10] = 99
    npy = io.BytesIO()
    np.save(npy, np.zeros(3))  # a plain .npy in its place: not an archive at all
    text = io.BytesIO()
    with zipfile.ZipFile(text, "w") as z:  # the right members, of the wrong kinds
        for name, value in (("created_at", np.array("x")), ("fingerprint", np.array(7)), ("cols", np.array(["a"]))):
            member = io.BytesIO()
            np.save(member, value)
            z.writestr(f"{name}.npy", member.getvalue())
    return {"encrypted": bytes(encrypted), "method": bytes(method), "npy": npy.getvalue(), "kinds": text.getvalue()}


def test_a_damaged_segments_snapshot_is_read_past(tmp_path):
    """A snapshot damaged so that reading it raised RuntimeError, NotImplementedError or TypeError stopped the
    library's segments (the app's open) instead of reading them from the catalogue."""
    import musicemb_core.data.library as library_module
    from musicemb_core.audio.segment import window_starts

    cfg = SegmentConfig(window_s=3.0, hop_s=3.0)
    root = tmp_path / "lib"
    with Library(root, create=True) as lib:
        for i in range(3):
            lib.save_track({"path": f"/m/{i}.wav", "content_hash": f"h{i}", "size": 1, "mtime": 1.0,
                            "duration_s": 9.0, "sample_rate": 8000, "channels": 1, "format": "WAV", "label": None,
                            "tags": {}, "warning": ""}, cfg=cfg, starts_of=window_starts)
        want = lib.segments()
        snapshot = root / library_module.SEGMENTS_SNAPSHOT
        good = snapshot.read_bytes()
        for why, damaged in _damaged_snapshots(good).items():
            snapshot.write_bytes(damaged)
            library_module._SEGMENTS.clear()  # as a new process
            got = lib.segments()
            assert all(np.array_equal(got[k], want[k]) for k in want), why
