"""A cancel while a file's clips are embedded (:func:`~musicemb_core.inference.embed_clips`): no model runs on
after it, the tagger (the costliest, run once the clips are embedded) included."""

from __future__ import annotations

import numpy as np
import pytest

from musicemb_core.common.errors import Cancelled
from musicemb_core.common.progress import CancelToken, Progress, drive
from musicemb_core.inference import embed_clips

SR = 1000


class Models:
    """An embedder with a tagger that counts what runs: each batch embedded (``batches``, ``on_batch(n)`` called
    while the n-th runs) and the tagger (``tagged``)."""

    window_s, has_tagger, tag_clips = 1.0, True, 4

    def __init__(self, on_batch=lambda n: None):
        self.batches, self.tagged, self.on_batch = 0, 0, on_batch

    def __call__(self, clips: np.ndarray) -> np.ndarray:
        self.batches += 1
        self.on_batch(self.batches)
        return np.zeros((len(clips), 2), np.float32)

    def tag(self, clips: np.ndarray) -> np.ndarray:
        self.tagged += 1
        return np.zeros((len(clips), 3), np.float32)


def clips(models: Models, cancel: CancelToken, step=None):
    """Ten 1 s clips of a 10 s file, in batches of 4 (3 batches)."""
    return embed_clips(models, np.zeros(10 * SR, np.float32), SR, np.arange(10.0), 4, cancel, step)


def test_all_batches_then_the_tagger_without_a_cancel():
    models = Models()
    vecs, tags = drive(clips(models, CancelToken()))
    assert [len(v) for v in vecs] == [4, 4, 2] and tags.shape == (4, 3)
    assert (models.batches, models.tagged) == (3, 1)


def test_a_cancel_during_the_last_batch_does_not_run_the_tagger():
    """The tagger ran on the file's clips after a cancel asked while its last batch was embedded."""
    token = CancelToken()
    models = Models(lambda n: n == 3 and token.cancel())
    with pytest.raises(Cancelled):
        drive(clips(models, token))
    assert (models.batches, models.tagged) == (3, 0)


def test_a_cancel_asked_at_a_step_runs_no_batch_more():
    """The batch after the step the cancel was asked at was still embedded."""
    token = CancelToken()
    models = Models()

    def step(done: int) -> Progress:
        token.cancel()  # the job's Cancel, pressed as the progress is shown
        return Progress("embed", done, 10)
    with pytest.raises(Cancelled):
        drive(clips(models, token, step))
    assert (models.batches, models.tagged) == (1, 0)
