"""Training on edge libraries and edge model files: short segments, labels left only in validation, a single track
for triplets, resumes whose saved state no longer fits, foreign weights, hand-edited metrics, failed runs."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import save_file

from musicemb_core.common.config import SegmentConfig
from musicemb_core.common.errors import ConfigError
from musicemb_core.common.progress import CancelToken, drive
from musicemb_core.data.ingest import iter_ingest
from musicemb_core.data.library import Library
from musicemb_core.models import ModelConfig
from musicemb_core.models import checkpoint as ckpt
from musicemb_core.training.config import TrainConfig
from musicemb_core.training.loop import iter_fit
from musicemb_core.workflows.models import validation_figure

SR = 16000
TINY = ModelConfig(arch="resnet18", width=8, dim=16)


def _library(root, tracks, segments=None):
    """``root/lib`` with one tone per ``(label or None, seconds)`` of ``tracks``."""
    (root / "audio").mkdir(parents=True)
    labels = {}
    for i, (label, seconds) in enumerate(tracks):
        t = np.arange(int(seconds * SR)) / SR
        y = 0.3 * np.sin(2 * np.pi * (200 + 150 * i) * t) + 0.03 * np.random.default_rng(i).standard_normal(len(t))
        sf.write(root / "audio" / f"t{i}.wav", y.astype(np.float32), SR)
        labels[f"t{i}.wav"] = label
    with Library(root / "lib", create=True) as lib:
        drive(iter_ingest(lib, [root / "audio"], labels=labels, segments=segments, jobs=1))
    return root / "lib"


def _fit(lib_dir, name, *, model=TINY, resume=False, cancel=None, on_event=None, **kw):
    with Library(lib_dir) as lib:
        return drive(iter_fit(lib, name=name, train=TrainConfig(**kw), model=model, resume=resume, cancel=cancel),
                     on_event)


def _cut(lib_dir, name, **kw):
    """A run cancelled at its first step."""
    token = CancelToken()
    result = _fit(lib_dir, name, cancel=token, on_event=lambda e: "step" in e.info and token.cancel(), **kw)
    assert result.status == "cancelled"


def test_an_autoencoder_on_segments_shorter_than_its_tiles_is_a_clear_error(tmp_path):
    """Segments of 0.5 s (51 frames) and 64-frame tiles: an unexpected RuntimeError from the loss (the decoder's
    tiles and the cut ones differ in size) at the first step; now one line before any run starts."""
    lib_dir = _library(tmp_path, [(None, 2.0), (None, 2.0)], SegmentConfig(window_s=0.5, hop_s=0.5))
    with pytest.raises(ConfigError, match="^the autoencoder strategy cuts tiles of 64 frames; the library's 0.5 s "
                                          "segments have 51: lower tile_frames"):
        _fit(lib_dir, "ae", strategy="autoencoder", epochs=1, batch_size=4)
    with Library(lib_dir) as lib:
        assert lib.runs() == []


@pytest.mark.parametrize("strategy", ["supervised", "transfer"])
def test_one_label_left_to_train_on_is_a_clear_error(tmp_path, strategy):
    """val_fraction 0.8 sent the one track of label a to validation: supervised learnt one class ("done", nothing
    to tell apart) and transfer failed after training, at its SVM head (an unexpected ValueError from sklearn)."""
    lib_dir = _library(tmp_path, [("a", 6.0), ("b", 6.0), ("b", 6.0), ("b", 6.0)])
    if strategy == "transfer":
        _fit(lib_dir, "base", strategy="supervised", epochs=1, batch_size=4, val_fraction=0.0)
    with pytest.raises(ConfigError, match="^only the label 'b' is left to train the .* strategy on \\(every track of "
                                          "the others is a validation track\\); lower val_fraction"):
        _fit(lib_dir, "one", strategy=strategy, epochs=1, batch_size=4, val_fraction=0.8,
             **({"from_model": "base", "model": None} if strategy == "transfer" else {}))


def test_triplets_from_a_single_track_are_a_clear_error(tmp_path):
    """Two tracks, one for validation (or a library of one): every "opposite" was a segment of the anchor's own
    track, and the run ended "done"; now one line before training."""
    lib_dir = _library(tmp_path, [(None, 9.0), (None, 9.0)])
    with pytest.raises(ConfigError, match="^the triplet strategy needs at least 2 tracks to train on besides the "
                                          "validation tracks, found 1"):
        _fit(lib_dir, "tri", strategy="triplet", epochs=1, batch_size=2)
    result = _fit(lib_dir, "tri", strategy="triplet", epochs=1, batch_size=2, val_fraction=0.0, steps_per_epoch=1)
    assert result.status == "done"


def test_resuming_with_another_freeze_until_is_a_clear_error(tmp_path):
    """A run cut with --freeze-until layer3 and resumed with layer4 (or without): an unexpected ValueError from
    torch (the saved optimizer state has other parameters)."""
    lib_dir = _library(tmp_path, [(None, 6.0), (None, 6.0), (None, 6.0)])
    _cut(lib_dir, "frozen", strategy="triplet", epochs=1, batch_size=2, freeze_until="layer3", val_fraction=0.0)
    with pytest.raises(ConfigError, match="^--freeze-until layer4: 'frozen' was trained with --freeze-until layer3; "
                                          "give it to resume"):
        _fit(lib_dir, "frozen", strategy="triplet", epochs=1, batch_size=2, freeze_until="layer4",
             val_fraction=0.0, resume=True)
    with pytest.raises(ConfigError, match="^--freeze-until \\(none\\): 'frozen' was trained with --freeze-until "
                                          "layer3"):
        _fit(lib_dir, "frozen", strategy="triplet", epochs=1, batch_size=2, val_fraction=0.0, resume=True)
    result = _fit(lib_dir, "frozen", strategy="triplet", epochs=1, batch_size=2, freeze_until="layer3",
                  val_fraction=0.0, steps_per_epoch=2, resume=True)
    assert result.status == "done"


def test_resuming_an_autoencoder_whose_labels_were_all_removed_is_a_clear_error(tmp_path):
    """Its auxiliary classifier is gone with the labels: the saved optimizer state has more parameters than the
    run (an unexpected ValueError from torch)."""
    lib_dir = _library(tmp_path, [("a", 6.0), ("b", 6.0), (None, 6.0)])
    _cut(lib_dir, "ae", strategy="autoencoder", epochs=1, batch_size=2, val_fraction=0.0)
    with Library(lib_dir) as lib:
        for t in lib.tracks():
            lib.set_label(t.id, None)
    with pytest.raises(ConfigError, match="^--resume: the saved optimizer state of 'ae' does not fit this run "
                                          ".*; train again without --resume"):
        _fit(lib_dir, "ae", strategy="autoencoder", epochs=1, batch_size=2, val_fraction=0.0, resume=True)


def test_nothing_to_resume_is_said_before_the_library_is_decoded(tmp_path):
    """--resume of a name without a saved state decoded the whole library (minutes) before saying so."""
    lib_dir = _library(tmp_path, [(None, 6.0), (None, 6.0)])
    events = []
    with pytest.raises(ConfigError, match="nothing to resume"):
        _fit(lib_dir, "never", strategy="contrastive", epochs=1, resume=True, on_event=events.append)
    assert [e for e in events if e.stage == "load"] == []


def test_weights_that_do_not_fit_are_a_clear_error_naming_the_file(tmp_path):
    """--from a model folder whose weights file holds other tensors (and a resume state replaced likewise): an
    unexpected many-line RuntimeError from torch; now one line naming the file and the keys."""
    lib_dir = _library(tmp_path, [("a", 6.0), ("b", 6.0), ("a", 6.0), ("b", 6.0)])
    base = _fit(lib_dir, "base", strategy="supervised", epochs=1, batch_size=4, val_fraction=0.0)
    foreign = lib_dir / "models" / "foreign"
    shutil.copytree(base.folder, foreign)
    save_file({"encoder.foo": torch.zeros(3)}, str(foreign / "model.safetensors"))
    config = json.loads((foreign / ckpt.CONFIG).read_text())
    (foreign / ckpt.CONFIG).write_text(json.dumps(config | {ckpt.WEIGHTS_KEY: "model.safetensors"}))
    pattern = "^" + str(foreign / "model.safetensors") + ": the weights do not fit config.json \\(Missing key"
    with pytest.raises(ConfigError, match=pattern):
        _fit(lib_dir, "tuned", strategy="transfer", from_model="foreign", model=None, epochs=1, batch_size=4)
    with pytest.raises(ConfigError, match=pattern):
        ckpt.load_encoder(foreign)
    save_file({"encoder.foo": torch.zeros(3)}, str(lib_dir / "models" / "base" / "resume" / ckpt.WEIGHTS))
    with pytest.raises(ConfigError, match="base/resume: the weights do not fit config.json \\(Missing key"):
        _fit(lib_dir, "base", strategy="supervised", epochs=2, batch_size=4, val_fraction=0.0, resume=True)


def test_hand_edited_metrics_show_no_figure():
    """``metrics.best`` (or ``tune``) that is no object in a model's config.json: an AttributeError listing the
    library's models (the app's model picker, ``musicemb models``)."""
    assert validation_figure({"best": [1], "tune": [2]}) == ""
    assert validation_figure({"best": {"val_acc": 0.5}, "tune": "x"}) == "val acc 0.500"


def test_a_failed_run_registers_the_best_model_it_kept(tmp_path, monkeypatch):
    """A run that failed after saving its best model (a NaN validation loss in epoch 2) kept that model but not its
    catalogue entry: the library's info listed no such model (or the one trained before under that name)."""
    from musicemb_core.training import loop

    lib_dir = _library(tmp_path, [(None, 6.0), (None, 6.0), (None, 6.0)])
    scores = iter([{"val_loss": 1.0}, {"val_loss": float("nan")}])
    monkeypatch.setattr(loop, "_evaluate", lambda *a: next(scores))
    with pytest.raises(ConfigError, match="in the validation of epoch 2"):
        _fit(lib_dir, "kept", strategy="contrastive", epochs=2, batch_size=2, steps_per_epoch=1,
             model=ModelConfig(arch="cnn2", dim=8))
    with Library(lib_dir) as lib:
        assert lib.runs("kept")[-1]["status"] == "failed"
        assert [(m["name"], m["arch"], m["dim"]) for m in lib.models()] == [("kept", "cnn2", 8)]
    assert ckpt.read_info(lib_dir / "models" / "kept").metrics["best"]["epoch"] == 1


@pytest.mark.parametrize("strategy", ["supervised", "triplet"])
def test_validation_counts_every_segment(strategy, monkeypatch):
    """Validation dropped a last, smaller batch as training does: of 5 validation segments in batches of 4, the
    validation loss and accuracy saw 4."""
    from musicemb_core.data.datasets import SegmentSet
    from musicemb_core.features.logmel import LogMel
    from musicemb_core.models import build_encoder
    from musicemb_core.training import loop
    from musicemb_core.training.config import MODEL_FEATURES
    from musicemb_core.training.strategies import STRATEGY_CLASSES

    n = 5
    data = SegmentSet(np.arange(n), np.arange(n), np.zeros(n), np.array([0, 1, 0, 1, 0]), ["a", "b"], SR, 1.0,
                      np.random.default_rng(0).standard_normal((n, SR)).astype(np.float32))
    cls = STRATEGY_CLASSES[strategy]
    seen = []
    loss = cls.loss
    monkeypatch.setattr(cls, "loss", lambda self, d, batch, rng: seen.append(len(batch)) or loss(self, d, batch, rng))
    s = cls(build_encoder(TINY), LogMel(MODEL_FEATURES), data, TrainConfig(strategy=strategy, batch_size=4))
    assert set(loop._evaluate(s, data, CancelToken())) >= {"val_loss"}
    assert sum(seen) == n
