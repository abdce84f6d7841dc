"""The similarity model's data: the shared dev corpus split by game, versions of a piece, and cached per-segment
descriptors (clean, plus one augmented view for the training games) and per-track MFCC-statistics baselines.

    .venv/bin/python bench/similarity_data.py        # fill the cache (~/.cache/musicemb-bench/similarity)
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import corpus_dir, manifest  # noqa: E402

SPLITS = {
    # versions of a piece (X / X-old, X_enhanced, X_revisited, X_chip) are all in the check games
    "check": ["wesnoth", "warzone2100", "nexuiz", "redeclipse", "extremetuxracer", "frozen-bubble", "lincity-ng",
              "powermanga", "asc"],
    "tune": ["hyperrogue", "singularity", "openclonk", "xmoto", "openarena", "marsshooter"],
    "train": ["0ad", "ufoai", "naev", "widelands", "colobot", "unknown-horizons", "megaglest", "pushover"],
}
VERSION_SUFFIX = re.compile(r"(-old|_enhanced|_revisited|_chip)$")
SR, WINDOW_S = 16000, 3.0


def split_of(label: str) -> str:
    for name, games in SPLITS.items():
        if label in games:
            return name
    raise KeyError(label)


def tracks(split: str | None = None) -> list[dict]:
    """Manifest rows (with ``split``), optionally of one split."""
    rows = manifest("real_dev")
    for r in rows:
        r["split"] = split_of(r["label"])
    return [r for r in rows if split is None or r["split"] == split]


def version_groups(rows: list[dict]) -> dict[str, str]:
    """track_id -> piece id, for tracks that have another version among ``rows`` (same game, name + suffix)."""
    ids = {r["track_id"] for r in rows}
    piece = {}
    for t in ids:
        base = VERSION_SUFFIX.sub("", t)
        if base != t and base in ids:
            piece[t] = piece[base] = base
    return piece


def cache_dir() -> Path:
    d = corpus_dir() / "similarity"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _segments(y: np.ndarray) -> np.ndarray:
    from musicemb_core.audio.segment import cut, window_starts
    from musicemb_core.common.config import SegmentConfig

    return cut(y, SR, window_starts(len(y) / SR, SegmentConfig(WINDOW_S, WINDOW_S)), window_s=WINDOW_S)


def _descriptors(clips: np.ndarray) -> np.ndarray:
    import torch

    from musicemb_core.features.logmel import LogMel
    from musicemb_core.models.similarity import SIMILARITY_FEATURES, descriptors

    lm = LogMel(SIMILARITY_FEATURES)
    out = []
    with torch.inference_mode():
        for a in range(0, len(clips), 64):
            out.append(descriptors(lm(torch.from_numpy(clips[a:a + 64]))).numpy())
    return np.concatenate(out).astype(np.float32)


def _one(row: dict) -> str:
    import torch

    torch.set_num_threads(1)
    from musicemb_core.audio.decode import load
    from musicemb_core.data.augment import default_views
    from musicemb_core.features.descriptors import describe

    out = cache_dir() / f"{row['track_id']}.npz"
    if out.exists():
        return row["track_id"]
    y, _ = load(row["abspath"], sr=SR)
    clips = _segments(y)
    arrays = {"clean": _descriptors(clips)}
    if row["split"] == "train":
        rng = np.random.default_rng(abs(hash(row["track_id"])) % 2**32)
        aug = default_views()
        arrays["aug"] = _descriptors(np.stack([aug(c, SR, rng) for c in clips]).astype(np.float32))
    else:
        y22, _ = load(row["abspath"], sr=22050)
        arrays["mfcc_stats"] = describe(y22, 22050).astype(np.float32)
    tmp = out.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, out)
    return row["track_id"]


def load_cache(rows: list[dict]) -> dict[str, dict[str, np.ndarray]]:
    return {r["track_id"]: dict(np.load(cache_dir() / f"{r['track_id']}.npz")) for r in rows}


def main() -> None:
    from concurrent.futures import ProcessPoolExecutor

    rows = tracks()
    todo = [r for r in rows if not (cache_dir() / f"{r['track_id']}.npz").exists()]
    print(f"{len(todo)} of {len(rows)} tracks to describe", file=sys.stderr)
    with ProcessPoolExecutor(int(os.environ.get("JOBS", "2"))) as pool:
        for i, tid in enumerate(pool.map(_one, todo), 1):
            if i % 20 == 0 or i == len(todo):
                print(f"{i}/{len(todo)} {tid}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
