"""Shared test helpers: tiny audio made in the test, written in any format (soundfile or PyAV)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# OpenMP threads (torch, faiss) sleep instead of spinning while they wait: on busy shared cores a spinning
# thread holds the core its partner needs, and a tiny training step took 10x as long (2.7 s -> 21-35 s).
# Set before torch loads; the CLI subprocesses inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def sine(freq: float = 440.0, *, sr: int = 16000, seconds: float = 1.0, amp: float = 0.5,
         channels: int = 1) -> np.ndarray:
    """float32 sine, shape (n,) or (n, channels) with each channel scaled differently."""
    t = np.arange(int(round(sr * seconds))) / sr
    y = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    if channels == 1:
        return y
    return np.stack([y * (1 - 0.1 * c) for c in range(channels)], axis=1)


def write_tone(path: Path, freq: float, *, seconds: float = 5.0, sr: int = 8000, seed: int = 0) -> Path:
    """A sine with a little noise (distinct content per seed) written as WAV; the folders are made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    y = 0.5 * np.sin(2 * np.pi * freq * t) + 0.01 * np.random.default_rng(seed).standard_normal(len(t))
    sf.write(path, y.astype(np.float32), sr)
    return path


def catalogued_tones(root: Path, music: Path, rows: list[dict]) -> Path:
    """``root``: a real catalogue of 1 s tones written in ``music`` and never decoded, track i catalogued with the
    fields of ``rows[i]`` (its file ``name``; ``tags``, ``bpm``, ``key``, ...: unknown when left out), 180 + i s
    long; no analysis, as after ``ingest --no-analysis``."""
    from musicemb_core.common.config import SegmentConfig
    from musicemb_core.data.library import Library

    with Library(root, create=True) as library:
        for i, row in enumerate(rows):
            path = write_tone(music / row["name"], 220.0 * (i + 1), seconds=1.0, seed=i)
            fields = {"path": str(path.resolve()), "content_hash": f"h{i}", "size": 1, "mtime": 1.0,
                      "duration_s": 180.0 + i, "sample_rate": 8000, "channels": 1, "format": "WAV", "label": None,
                      "tags": {}, "warning": "", "bpm": None, "bpm_confidence": None, "key": None,
                      "key_confidence": None, "analysis": {}}
            library.save_track({**fields, **{k: v for k, v in row.items() if k != "name"}}, cfg=SegmentConfig(),
                               starts_of=lambda d, cfg: [0.0])
    return root


def embedded_tones(root: Path, freqs=(440, 550, 660, 880)) -> Path:
    """``root/lib``: 9 s tones of ``freqs`` (3 segments each, in ``root/audio``), imported and embedded with the
    built-in spaces, no labels."""
    from musicemb_core.common.progress import drive
    from musicemb_core.data.ingest import iter_ingest
    from musicemb_core.data.library import Library
    from musicemb_core.inference import iter_embed

    for i, freq in enumerate(freqs):
        write_tone(root / "audio" / f"tone{freq}.wav", freq, seconds=9.0, sr=16000, seed=i)
    with Library(root / "lib", create=True) as lib:
        drive(iter_ingest(lib, [root / "audio"], jobs=1))
        drive(iter_embed(lib))
    return root / "lib"


def labelled_tones(root: Path) -> Path:
    """``root/lib``: four 6 s noisy tones (2 segments each, in ``root/audio``), imported, labelled "low" (220 and
    620 Hz) and "high"; not embedded."""
    from musicemb_core.common.progress import drive
    from musicemb_core.data.ingest import iter_ingest
    from musicemb_core.data.library import Library

    (root / "audio").mkdir(parents=True, exist_ok=True)
    labels, t = {}, np.arange(6 * 16000) / 16000
    for i in range(4):
        y = 0.3 * np.sin(2 * np.pi * (220 + 400 * i) * t) + 0.03 * np.random.default_rng(i).standard_normal(len(t))
        sf.write(root / "audio" / f"t{i}.wav", y.astype(np.float32), 16000)
        labels[f"t{i}.wav"] = "low" if i < 2 else "high"
    with Library(root / "lib", create=True) as lib:
        drive(iter_ingest(lib, [root / "audio"], labels=labels, jobs=1))
    return root / "lib"


def dominant_freq(y: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.fft.rfftfreq(len(y), 1 / sr)[np.argmax(spec)])


def write_av(path: Path, y: np.ndarray, sr: int, *, codec: str, fmt: str | None = None) -> Path:
    """Encode mono float ``y`` with FFmpeg (PyAV) using ``codec`` in container ``fmt``."""
    import av

    with av.open(str(path), "w", format=fmt) as out:
        st = out.add_stream(codec, rate=sr)
        st.layout = "mono"
        st.bit_rate = 64000
        sample_fmt = st.codec_context.codec.audio_formats[0].name
        if sample_fmt in ("s16", "s16p"):
            data = (np.clip(y, -1, 1) * 32767).astype(np.int16)
        elif sample_fmt in ("s32", "s32p"):
            data = (np.clip(y, -1, 1) * 2147483647).astype(np.int32)
        else:
            data = y.astype(np.float32)
        frame_size = {"wmav2": 2048, "libopus": 960}.get(codec, 1024)
        for i in range(0, len(data), frame_size):
            chunk = data[i:i + frame_size]
            frame = av.AudioFrame.from_ndarray(chunk[None, :], format=sample_fmt, layout="mono")
            frame.sample_rate = sr
            frame.pts = i
            for pkt in st.encode(frame):
                out.mux(pkt)
        for pkt in st.encode(None):
            out.mux(pkt)
    return path


def write_sf(path: Path, y: np.ndarray, sr: int, **kw) -> Path:
    sf.write(str(path), y, sr, **kw)
    return path


def no_worker_processes_left(timeout_s: float = 30.0) -> bool:
    """Whether every multiprocessing child has ended within ``timeout_s`` (a pool's own thread may reap them)."""
    deadline = time.monotonic() + timeout_s
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.1)
    return not multiprocessing.active_children()


def descendants(pid: int) -> set[int]:
    """The processes ``pid`` started, and theirs (Linux: from /proc)."""
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        try:
            kids = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        for k in map(int, kids):
            if k not in out:
                out.add(k)
                todo.append(k)
    return out


def orphans_left(pids, timeout_s: float = 15.0) -> list[int]:
    """Which of ``pids`` still run (not zombies) after up to ``timeout_s``; those are killed, so that a failing
    test leaves nothing behind."""
    def alive(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.2)
    left = [p for p in pids if alive(p)]
    for p in left:
        os.kill(p, signal.SIGKILL)
    return left


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Never touch the user's real data folder."""
    monkeypatch.setenv("MUSICEMB_HOME", str(tmp_path_factory.mktemp("home")))

pytest_plugins = ["tests.audio_device"]


@pytest.fixture
def decoded(monkeypatch) -> list[str]:
    """The files an import decodes (in this process: ``jobs=1``), in order."""
    import musicemb_core.data.ingest as ingest_mod

    paths: list[str] = []
    real = ingest_mod.scan
    monkeypatch.setattr(ingest_mod, "scan", lambda path, **kw: paths.append(str(path)) or real(path, **kw))
    return paths
