"""Add the tagger (musicnn, ``resources/models/musicnn-msd``) to the built-in similarity model: its prior from the
*train* games, how many clips per track and its weight beside the descriptors chosen on the *tune* games; the
*check* games are not read (``bench_similarity.py`` measures them).

Every track of the train and tune games is read once: the tagger's values of 8 (train) or 20 (tune) clips spread
over it, cached in ``<similarity cache>/tagger/``. Candidates: descriptors alone (as shipped before), and descriptors + the tagger's
track vector at weight 0.5-1.5 from 8 or 20 clips; scored like ``train_similarity.py`` (style 1-NN + precision@5 +
"the other half of the track ranked first", the tune games taken as one library); among the candidates within 0.02
of the best sum the one with fewer clips (less import time), then the best sum, wins.

    .venv/bin/python bench/tag_similarity.py          # ~10 min on 2 cores; rewrites resources/models/similarity
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import write_results  # noqa: E402
from bench.similarity_data import cache_dir, load_cache, tracks  # noqa: E402
from bench.train_similarity import OUT, segment_vectors  # noqa: E402
from musicemb_core.analysis.track_vectors import (  # noqa: E402
    aggregate,
    library_tracks,
    relative_to_library,
    style_scores,
    tag_clip_rows,
    tag_statistics,
    tagged_track_vectors,
    version_ranks,
)
from musicemb_core.audio.decode import load  # noqa: E402
from musicemb_core.common.errors import AudioError  # noqa: E402
from musicemb_core.models import checkpoint as ckpt  # noqa: E402
from musicemb_core.models.musicnn import CLIP_SAMPLES, SR, load_tagger  # noqa: E402
from musicemb_core.resources import builtin_model_dir  # noqa: E402

TAGGER = "musicnn-msd"
CLIPS = (8, 20)
WEIGHTS = (0.5, 0.75, 1.0, 1.5)


def tagger_values(rows: list[dict], read_clips: int) -> dict[str, np.ndarray]:
    """{track id: (clips, TAG_DIM)} of ``read_clips`` 3 s clips spread over each track (cached)."""
    folder = cache_dir() / "tagger"
    folder.mkdir(parents=True, exist_ok=True)
    tagger, out = None, {}
    for i, r in enumerate(rows):
        path = folder / f"{r['track_id']}.npy"
        if not path.exists():
            tagger = tagger or load_tagger(builtin_model_dir(TAGGER))
            try:
                y, _ = load(r["abspath"], sr=SR)
            except AudioError as e:
                print(f"skipped: {e}", flush=True)
                continue
            n = len(y) // CLIP_SAMPLES
            if n == 0:
                continue
            clips = np.stack([y[k * CLIP_SAMPLES:(k + 1) * CLIP_SAMPLES] for k in tag_clip_rows(n, read_clips)])
            with torch.inference_mode():
                np.save(path, tagger(torch.from_numpy(clips)).numpy())
            print(f"{i + 1}/{len(rows)} {r['track_id']}", flush=True)
        out[r["track_id"]] = np.load(path)
    return out


def main() -> None:
    torch.set_num_threads(2)
    train_rows, tune_rows = tracks("train"), tracks("tune")
    tags = tagger_values(train_rows, min(CLIPS)) | tagger_values(tune_rows, max(CLIPS))
    train_tags = np.concatenate([tags[r["track_id"]][tag_clip_rows(len(tags[r["track_id"]]), 8)]
                                 for r in train_rows if r["track_id"] in tags])
    prior = (train_tags.mean(0).astype(np.float32), (train_tags.std(0) + 1e-6).astype(np.float32))
    rows = [r for r in tune_rows if r["track_id"] in tags]
    data = load_cache(train_rows + rows)
    info = ckpt.read_info(OUT)  # the shipped descriptors, whether or not their file has the tagger's prior yet
    model = ckpt.build_encoder(info.model.replace(weights=None))
    model.load_state_dict(ckpt.module_state(ckpt.read_tensors(OUT), "encoder"), strict=False)
    model.eval()
    Z, track, half = segment_vectors(model, data, rows)
    labels = np.array([r["label"] for r in rows])
    halves = np.repeat(np.arange(len(rows)).astype(str), 2).astype(object)

    def descriptor_tracks(groups):
        V = aggregate(Z, groups, method="mean+std")[1]
        return relative_to_library(V, *library_tracks(V))

    D, DH = descriptor_tracks(track), descriptor_tracks(half)
    results = []
    for clips in (0, *CLIPS):
        for weight in (WEIGHTS if clips else (0.0,)):
            if clips:
                raw, tt, th = [], [], []
                for i, r in enumerate(rows):
                    v = tags[r["track_id"]]
                    v = v[tag_clip_rows(len(v), clips)]
                    raw.append(v)
                    tt.append(np.full(len(v), i))
                    th.append(2 * i + (np.arange(len(v)) >= len(v) // 2))
                raw, tt, th = np.concatenate(raw), np.concatenate(tt), np.concatenate(th)
                A = tagged_track_vectors(D, np.arange(len(rows)), raw, tt, tag_statistics(raw, tt, prior),
                                         weight)
                H = tagged_track_vectors(DH, np.arange(2 * len(rows)), raw, th,
                                         tag_statistics(raw, th, prior), weight)
            else:
                A, H = D, DH
            s = style_scores(A, labels)
            half1 = float((version_ranks(H, halves) == 1).mean())
            row = {"clips": clips, "weight": weight, "tune_style_1nn": round(s["nn1"], 3),
                   "tune_p_at_5": round(s["p_at_k"], 3), "tune_half_rank1": round(half1, 3),
                   "tune_sum": round(s["nn1"] + s["p_at_k"] + half1, 3)}
            results.append(row)
            print(json.dumps(row), flush=True)
    top = max(r["tune_sum"] for r in results)
    chosen = min((r for r in results if r["tune_sum"] >= top - 0.02), key=lambda r: (r["clips"], -r["tune_sum"]))
    print(f"chosen on tune: {json.dumps(chosen)}")
    for r in results:
        r["chosen"] = r is chosen
    write_results("similarity_tagger_tune", results, notes=f"{len(rows)} tune-game tracks as one library; prior "
                  f"from {len(train_tags)} clips of the train games.")
    if chosen["clips"]:
        model.tag_mean.copy_(torch.from_numpy(prior[0]))
        model.tag_std.copy_(torch.from_numpy(prior[1]))
        info.train["tagger"] = {"model": TAGGER, "clips": chosen["clips"], "weight": chosen["weight"]}
    else:
        info.train.pop("tagger", None)
    info.metrics["tagger_tune"] = results
    ckpt.save_model(OUT, info, {"encoder": model})
    print(f"saved {OUT}")


if __name__ == "__main__":
    main()
