"""An import's scan (folders searched, files checked against the library): progress from the start, a cancel
stopping it with nothing stored, and copies of known tracks told apart by their import's workers, not before."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
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


@pytest.fixture
def every_step(monkeypatch):
    """A progress event at every folder and file of the scan (not at most one per 0.2 s)."""
    monkeypatch.setattr(ingest_mod, "TICK_S", 0.0)


def wav(path: Path, freq: float) -> Path:
    """0.5 s at 8 kHz, 16-bit (every one the same size), distinct audio per ``freq``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(SR // 2) / SR
    sf.write(path, (0.4 * np.sin(2 * np.pi * freq * t)).astype(np.float32), SR, subtype="PCM_16")
    return path


@dataclass(frozen=True)
class CountingTap:
    """Leaves a file in ``folder`` for each file decoded, in whichever process (picklable for the workers)."""

    folder: str

    def start(self, sr: int) -> CountingTap:
        Path(self.folder, uuid.uuid4().hex).touch()
        return self

    def __call__(self, mono: np.ndarray) -> None:
        pass

    def result(self, starts: np.ndarray) -> None:
        return None


def run(lib: Library, paths, *, on_event=None, **kw) -> IngestReport:
    kw = {"segments": SEG1, "jobs": 1, "analyse": False} | kw
    return drive(iter_ingest(lib, [str(p) for p in paths], **kw), on_event)


def test_progress_while_the_folders_are_searched_and_the_files_checked(tmp_path, every_step):
    """Nothing was reported until every folder was searched and every file looked up in the library (minutes on a
    slow drive, with a job that looked frozen)."""
    top = tmp_path / "field"
    for i in range(20):
        wav(top / f"day{i:02d}" / "rec.wav", 200 + 20 * i)
    events: list[Progress] = []
    with Library(tmp_path / "lib", create=True) as lib:
        report = run(lib, [top], on_event=events.append)
    stages = [e.stage for e in events]
    scan = [e for e in events if e.stage == "scan"]
    check = [e for e in events if e.stage == "check"]
    assert stages.index("scan") < stages.index("check") < stages.index("ingest")
    assert [e.done for e in scan] == sorted(e.done for e in scan) and scan[-1].done < 20  # while searching
    assert all(e.total is None for e in scan) and "audio files in" in scan[-1].message
    assert [(e.done, e.total) for e in check] == [(i, 20) for i in range(20)]  # before each file is checked
    assert report.added == 20 and next(e for e in events if e.stage == "ingest").message.startswith("20 files found")


def test_a_cancel_while_searching_stops_there(tmp_path, every_step):
    top = tmp_path / "field"
    for i in range(20):
        wav(top / f"day{i:02d}" / "rec.wav", 200 + 20 * i)
    token = CancelToken()
    events: list[Progress] = []

    def on_event(e: Progress) -> None:
        events.append(e)
        if e.stage == "scan" and e.done == 5:
            token.cancel()

    with Library(tmp_path / "lib", create=True) as lib:
        report = run(lib, [top], cancel=token, on_event=on_event)
        assert report.cancelled and report.added == 0
        assert events[-1].stage == "scan" and events[-1].done == 5  # not one folder more
        assert lib.tracks() == [] and lib.segment_config() is None
        assert run(lib, [top]).added == 20


def test_a_cancel_while_checking_stores_nothing(tmp_path, every_step):
    """The check wrote as it went (labels given again, unreadable files, a new segmenting): a cancel there kept
    half of it."""
    d = tmp_path / "crate"
    for i in range(10):
        wav(d / f"t{i}.wav", 200 + 20 * i)
    with Library(tmp_path / "lib", create=True) as lib:
        assert run(lib, [d]).added == 10
        (d / "zz.wav").symlink_to(tmp_path / "nowhere.wav")  # fails the check: recorded as a failure
        token = CancelToken()
        seen: list[str] = []

        def on_event(e: Progress) -> None:
            seen.append(e.stage)
            if e.stage == "check" and e.done == 8:
                token.cancel()

        new = {"labels": "folders", "segments": SegmentConfig(window_s=0.5, hop_s=0.5)}
        report = run(lib, [d], cancel=token, on_event=on_event, **new)
        assert report.cancelled and seen[-1] == "check" and "ingest" not in seen
        assert {t.label for t in lib.tracks()} == {None} and lib.failures() == []
        assert lib.segment_config() == SEG1

        report = run(lib, [d], **new)
        assert (report.unchanged, report.relabelled, report.recut, report.cancelled) == (10, 10, 10, False)
        assert [f["path"] for f in lib.failures()] == [str(d / "zz.wav")]


@pytest.mark.parametrize("isolate", [False, True])  # read in this process, or by a worker process
def test_copies_of_known_tracks_are_told_by_the_workers_hash(tmp_path, monkeypatch, isolate):
    """New files of a known track's size were hashed one by one before the first progress event, then hashed again
    by their workers. Now only the worker hashes them: a byte copy is a duplicate, not decoded; another file of that
    size is decoded and added. Same report as before."""
    a = wav(tmp_path / "m" / "a.wav", 300)
    with Library(tmp_path / "lib", create=True) as lib:
        run(lib, [a.parent])
        other = tmp_path / "elsewhere"
        copy = other / "copy of a.wav"
        other.mkdir()
        copy.write_bytes(a.read_bytes())
        b = wav(other / "b.wav", 500)
        assert b.stat().st_size == a.stat().st_size
        log: list[str] = []
        real = ingest_mod.content_hash
        monkeypatch.setattr(ingest_mod, "content_hash", lambda p, **kw: log.append(f"hash {Path(p).name}")
                            or real(p, **kw))
        (tmp_path / "decodes").mkdir()
        report = run(lib, [a.parent, other], isolate=isolate, tap=CountingTap(str(tmp_path / "decodes")),
                     on_event=lambda e: log.append(e.stage))
        assert (report.added, report.unchanged, report.duplicates) == (1, 1, [(str(copy), str(a))])
        assert len(list((tmp_path / "decodes").iterdir())) == 1  # b.wav's: the copy is told by its bytes
        assert log.index("ingest") < min((i for i, x in enumerate(log) if x.startswith("hash")), default=len(log))
        assert [t.path for t in lib.tracks()] == [str(a), str(b)]


def test_a_copy_of_a_track_that_changed_meanwhile_is_decoded(tmp_path, decoded):
    """A new file's bytes are a track's as the import starts, but that track takes another file's bytes before
    it is stored (a.flac, its audio moved and re-encoded, comes first): it is decoded after all, and is a
    duplicate of the track's audio, as before."""
    a = wav(tmp_path / "m" / "a.wav", 300)
    with Library(tmp_path / "lib", create=True) as lib:
        run(lib, [a.parent])
        decoded.clear()
        new = tmp_path / "new"
        new.mkdir()
        data, sr = sf.read(a, dtype="int16")
        sf.write(new / "a.flac", data, sr, subtype="PCM_16")
        (new / "b.wav").write_bytes(a.read_bytes())
        a.unlink()
        report = run(lib, [new])
        assert (report.moved, report.added, report.duplicates) == (1, 0, [(str(new / "b.wav"), str(new / "a.flac"))])
        assert decoded == [str(new / "a.flac"), str(new / "b.wav")]
