"""Peak memory and time of the per-track work of the melody (QBH) index and the landmark index vs file length.

Each (length, index) runs in a fresh process: it decodes a synthetic 48 kHz 24-bit stereo WAV (tones + noise) as
the builds do, then computes the track's melody, top voice and song vectors (``qbh``) or its landmarks
(``landmarks``). Reported: the peak RSS above the level after start-up (imports, model, a warm-up on a short clip),
from the kernel's high-water mark (reset after the warm-up), and the wall time; plus each length's ratio to the
shortest.

    .venv/bin/python bench/bench_long_files.py [--minutes 10 60] [--work /tmp/musicemb-long]

The WAVs are written into ``--work`` and deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import write_results  # noqa: E402

SR = 48000


def write_wav(path: Path, minutes: float, seed: int = 0) -> Path:
    """Notes of a few partials (a new pitch every 0.4 s), a low drone and noise, 48 kHz 24-bit stereo, written a
    minute at a time."""
    rng = np.random.default_rng(seed)
    note = int(0.4 * SR)
    with sf.SoundFile(path, "w", SR, 2, subtype="PCM_24") as f:
        for m in range(int(np.ceil(minutes))):
            n = int(min(60.0, (minutes - m) * 60) * SR)
            t = (m * 60 * SR + np.arange(n)) / SR
            midi = rng.integers(55, 80, size=n // note + 1).repeat(note)[:n]
            f0 = 440.0 * 2.0 ** ((midi - 69) / 12)
            y = sum(0.25 / h * np.sin(2 * np.pi * h * f0 * t) for h in range(1, 4))
            y += 0.1 * np.sin(2 * np.pi * 110.0 * t) + 0.02 * rng.standard_normal(n)
            f.write(np.stack([y, 0.9 * y], axis=1).astype(np.float32))
    return path


def _rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(which: str, path: str) -> None:
    """One measurement (in its own process): prints {peak_mb, seconds}."""
    import torch

    from musicemb_core.audio.decode import load
    from musicemb_core.features import landmarks as lm
    from musicemb_core.models.qbh import QBHModel
    from musicemb_core.search.qbh import qbh_model_folder, track_melody

    torch.set_num_threads(1)
    net = QBHModel.load(qbh_model_folder(None))

    def work(y: np.ndarray) -> None:
        if which == "qbh":
            track_melody(net, y, np.arange(0.0, max(len(y) / net.cfg.sr - 3.0, 0.0), 3.0))
        else:
            lm.landmarks(y, lm.SR)

    sr = net.cfg.sr if which == "qbh" else lm.SR
    work(np.random.default_rng(0).standard_normal(10 * sr).astype(np.float32) * 0.1)  # warm-up
    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark
    start = _rss_mb("VmRSS")
    t0 = time.perf_counter()
    y, _ = load(path, sr=sr)
    work(y)
    print(json.dumps({"peak_mb": _rss_mb("VmHWM") - start, "seconds": time.perf_counter() - t0}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, nargs="+", default=[10, 60])
    ap.add_argument("--which", nargs="+", default=["qbh", "landmarks"])
    ap.add_argument("--work", type=Path, default=Path("/tmp/musicemb-long"))
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(*a.child)
    a.work.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for minutes in a.minutes:
            path = write_wav(a.work / f"long-{minutes:g}min.wav", minutes)
            for which in a.which:
                out = subprocess.run([sys.executable, __file__, "--child", which, str(path)], check=True,
                                     capture_output=True, text=True).stdout
                r = json.loads(out.strip().splitlines()[-1])
                rows.append({"index": which, "minutes": minutes, "peak_mb": round(r["peak_mb"], 1),
                             "seconds": round(r["seconds"], 1)})
                print(rows[-1], flush=True)
            path.unlink()
    finally:
        shutil.rmtree(a.work, ignore_errors=True)
    for r in rows:
        base = next(b for b in rows if b["index"] == r["index"])
        r["peak_ratio"] = round(r["peak_mb"] / max(base["peak_mb"], 1e-9), 2)
        r["time_ratio"] = round(r["seconds"] / max(base["seconds"], 1e-9), 2)
    write_results("long_files", rows, notes="Peak RSS above the level after start-up; ratios to the shortest file.")


if __name__ == "__main__":
    main()
