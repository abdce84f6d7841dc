"""Log-mel throughput (ours in float32/float64 vs librosa, same audio, same run) and import throughput on the
shared dev corpus of real recordings. Run: .venv/bin/python bench/bench_features.py [--tracks N]"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import librosa
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import best_of, manifest, write_results  # noqa: E402
from musicemb_core.audio import load  # noqa: E402
from musicemb_core.common.config import FeatureConfig  # noqa: E402
from musicemb_core.common.progress import drive  # noqa: E402
from musicemb_core.data.ingest import iter_ingest  # noqa: E402
from musicemb_core.data.library import Library  # noqa: E402
from musicemb_core.features.logmel import log_mel  # noqa: E402


def bench_logmel(y30: np.ndarray, rows: list[dict]) -> None:
    for name, cfg in [("librosa defaults (22.05 kHz, n_fft 2048, 128 mels)", FeatureConfig()),
                      ("model-style (16 kHz, n_fft 512, hop 160, 64 mels)",
                       FeatureConfig(sr=16000, n_fft=512, hop_length=160, n_mels=64))]:
        y = librosa.resample(y30, orig_sr=22050, target_sr=cfg.sr) if cfg.sr != 22050 else y30
        secs = len(y) / cfg.sr

        def ref(y=y, cfg=cfg):
            return librosa.power_to_db(librosa.feature.melspectrogram(
                y=y, sr=cfg.sr, n_fft=cfg.n_fft, hop_length=cfg.hop_length, n_mels=cfg.n_mels), top_db=80)

        t_ref = best_of(ref)
        batch = y[: len(y) // 10 * 10].reshape(10, -1)  # ten 3 s segments, as embedding sees them
        for label, c, x in [("ours float32, one 30 s clip", cfg, y), ("ours float64, one 30 s clip",
                            cfg.replace(precision="float64"), y), ("ours float32, batch of 10 x 3 s", cfg, batch)]:
            t = best_of(lambda c=c, x=x: log_mel(x, c))
            err = np.abs(log_mel(y, c) - ref()).max()
            rows.append({"task": f"log-mel {name}", "method": label, "x_realtime": secs / t,
                         "vs_librosa": t_ref / t, "max_abs_dB_vs_librosa": float(err)})
        rows.append({"task": f"log-mel {name}", "method": "librosa (baseline)", "x_realtime": secs / t_ref,
                     "vs_librosa": 1.0, "max_abs_dB_vs_librosa": 0.0})


def bench_ingest(tracks: list[dict], rows: list[dict]) -> None:
    hours = sum(float(r["duration_s"]) for r in tracks) / 3600
    tmp = Path(tempfile.mkdtemp(prefix="musicemb-bench-"))
    try:
        for jobs in (1, 2):
            lib_dir = tmp / f"lib{jobs}"
            t0 = time.perf_counter()
            with Library(lib_dir, create=True) as lib:
                report = drive(iter_ingest(lib, [r["abspath"] for r in tracks], jobs=jobs))
                n_seg = lib.summary()["segments"]
            dt = time.perf_counter() - t0
            assert report.added == len(tracks), report.failed
            rows.append({"task": f"ingest {len(tracks)} real tracks ({hours:.2f} h ogg)", "method": f"{jobs} process(es)",
                         "x_realtime": hours * 3600 / dt, "vs_librosa": "", "max_abs_dB_vs_librosa": "",
                         "seconds": dt, "segments": n_seg})
            t0 = time.perf_counter()
            with Library(lib_dir) as lib:
                again = drive(iter_ingest(lib, [r["abspath"] for r in tracks], jobs=jobs))
            rows.append({"task": "re-ingest, nothing changed", "method": f"{jobs} process(es)",
                         "x_realtime": hours * 3600 / (time.perf_counter() - t0), "vs_librosa": "",
                         "max_abs_dB_vs_librosa": "", "seconds": time.perf_counter() - t0,
                         "segments": again.unchanged})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tracks", type=int, default=0, help="ingest only the first N dev tracks (0 = all 44)")
    args = ap.parse_args()
    tracks = manifest("real_dev")
    tracks = tracks[: args.tracks] if args.tracks else tracks
    y30, _ = load(tracks[1]["abspath"], sr=22050, offset=10.0, duration=30.0)
    rows: list[dict] = []
    bench_logmel(y30, rows)
    bench_ingest(tracks, rows)
    for r in rows:
        r.setdefault("seconds", "")
        r.setdefault("segments", "")
    write_results("features", rows, notes="x_realtime = seconds of audio per wall second; vs_librosa = our speed / "
                  "librosa's in the same run (median of 5). Ingest = hash + full decode + checks + catalogue.")


if __name__ == "__main__":
    main()
