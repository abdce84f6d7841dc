"""The tagger the similarity model reads (musicnn, MSD): the torch rebuild gives what the original network gives,
and its values tell kinds of music apart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from musicemb_core.data.synthesis import render_song
from musicemb_core.models.musicnn import CLIP_SAMPLES, SR, TAG_DIM, load_tagger
from musicemb_core.resources import builtin_model_dir

REFERENCE = Path(__file__).parent / "data" / "musicnn_tf_reference.npy"


def _tagger():
    return load_tagger(builtin_model_dir("musicnn-msd"))


def test_torch_rebuild_matches_the_checkpoint_run_by_tensorflow():
    """The reference: the original checkpoint's penultimate layer computed with TensorFlow's own operations (its
    'same' padding and flattening) on the log-mel of these three clips (bench/convert_musicnn.py converted it)."""
    rng = np.random.default_rng(0)
    y = (rng.standard_normal((3, CLIP_SAMPLES)) * 0.1).astype(np.float32)
    y[1] = np.sin(2 * np.pi * 440 * np.arange(CLIP_SAMPLES) / SR) * 0.3
    with torch.inference_mode():
        got = _tagger()(torch.from_numpy(y)).numpy()
    ref = np.load(REFERENCE)
    assert got.shape == ref.shape == (3, TAG_DIM)
    assert np.abs(got - ref).max() < 1e-4


def test_tagger_values_group_kinds_of_music():
    """Two rock songs are closer to each other than to an ambient pad, in the tagger's standardised values."""
    songs = [render_song(style, seed=seed, duration_s=3.0, sr=SR)[:CLIP_SAMPLES]
             for style, seed in (("rock", 1), ("rock", 2), ("ambient", 3))]
    with torch.inference_mode():
        v = _tagger()(torch.from_numpy(np.stack(songs).astype(np.float32))).numpy()
    v = (v - v.mean(0)) / (v.std(0) + 1e-6)
    d = lambda a, b: float(np.linalg.norm(v[a] - v[b]))  # noqa: E731
    assert d(0, 1) < d(0, 2) and d(0, 1) < d(1, 2)
