"""Training: every strategy learns, cancel keeps a loadable model, resume continues, frozen layers stay put,
the losses equal hand computations, supervised training separates a toy set."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from musicemb_core.common.progress import CancelToken, drive
from musicemb_core.data.ingest import iter_ingest
from musicemb_core.data.library import Library
from musicemb_core.data.splits import split_by_track
from musicemb_core.models import ModelConfig
from musicemb_core.models import checkpoint as ckpt
from musicemb_core.training.config import TrainConfig
from musicemb_core.training.loop import iter_fit
from musicemb_core.training.strategies import nt_xent, zero_filtered_triplet_loss

SR = 16000
TINY = ModelConfig(arch="resnet18", width=8, dim=16)


def _song(freq: float, seconds: float, rng) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    y = 0.3 * np.sin(2 * np.pi * freq * t) * (1 + 0.5 * np.sin(2 * np.pi * 2 * t))
    return (y + 0.03 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.fixture(scope="module")
def toy_lib(tmp_path_factory):
    """Two clearly separable classes (low vs high tones), 6 tracks each of 6 s -> 2 segments per track."""
    root = tmp_path_factory.mktemp("toy")
    rng = np.random.default_rng(0)
    for label, base in (("low", 220.0), ("high", 3000.0)):
        (root / "audio" / label).mkdir(parents=True)
        for i in range(6):
            sf.write(root / "audio" / label / f"{label}{i}.wav", _song(base * (1 + 0.07 * i), 6.0, rng), SR)
    with Library(root / "lib", create=True) as lib:
        drive(iter_ingest(lib, [root / "audio"], labels="folders", jobs=1))
    return root / "lib"


def _fit(lib_dir, name, **kw):
    events = []
    model = kw.pop("model", TINY)
    cancel = kw.pop("cancel", None)
    resume = kw.pop("resume", False)
    on_event = kw.pop("on_event", None)

    def seen(e):
        events.append(e)
        if on_event:
            on_event(e)
    with Library(lib_dir) as lib:
        result = drive(iter_fit(lib, name=name, train=TrainConfig(**kw), model=model, resume=resume,
                                cancel=cancel), seen)
    return result, [e for e in events if e.stage == "train"]


@pytest.mark.parametrize("strategy", ["supervised", "triplet", "autoencoder", "contrastive"])
def test_each_strategy_lowers_its_loss(toy_lib, strategy):
    result, events = _fit(toy_lib, f"loss-{strategy}", strategy=strategy, epochs=6, batch_size=8, lr=3e-3,
                          patience=0, spec_augment=False)
    losses = [e.info["loss"] for e in events if "step" in e.info]
    assert len(losses) >= 12
    assert np.mean(losses[-3:]) < np.mean(losses[:3])
    assert result.status == "done" and len(result.history) == 6
    info = ckpt.read_info(result.folder)
    assert info.strategy == strategy and info.model == TINY and info.features.sr == 16000
    with Library(toy_lib) as lib:
        assert lib.runs(f"loss-{strategy}")[-1]["status"] == "done"
        assert len(lib.runs(f"loss-{strategy}")[-1]["history"]) == 6


def test_supervised_separates_a_toy_set(toy_lib):
    result, _ = _fit(toy_lib, "sup", strategy="supervised", epochs=8, batch_size=8, lr=3e-3, patience=0)
    assert result.best["val_acc"] > 0.9
    assert ckpt.read_info(result.folder).labels == ["high", "low"]


def test_validation_tracks_never_trained_on():
    track_ids = np.repeat(np.arange(20), 5)
    labels = np.repeat(np.arange(20) % 2, 5)
    tr, va = split_by_track(track_ids, labels, val_fraction=0.2, random_state=3)
    assert not set(track_ids[tr]) & set(track_ids[va])
    assert set(labels[va]) == {0, 1} and len(set(track_ids[va])) == 4
    assert np.array_equal(split_by_track(track_ids, labels, val_fraction=0.2, random_state=3)[1], va)


def test_cancel_keeps_a_loadable_model_and_resume_continues(toy_lib):
    token = CancelToken()
    seen = []
    with Library(toy_lib) as lib:
        gen = iter_fit(lib, name="cancelled", train=TrainConfig(strategy="supervised", epochs=3, batch_size=4,
                                                                patience=0), model=TINY, cancel=token)

        def on_event(e):
            seen.append(e)
            if e.stage == "train" and e.info.get("step") == 2 and e.info.get("epoch") == 2:
                token.cancel()
        best_weights = {}

        def on_event_keeping_best(e):
            if e.info.get("epoch_end"):  # the best model saved at the end of epoch 1
                best_weights.update(ckpt.read_tensors(f"{lib.root}/models/cancelled"))
            on_event(e)
        result = drive(gen, on_event_keeping_best)
        assert result.status == "cancelled"
        assert lib.runs("cancelled")[-1]["status"] == "cancelled"
    kept = ckpt.read_tensors(result.folder)  # the cancel mid-epoch-2 did not overwrite epoch 1's best weights
    assert best_weights and all(torch.equal(kept[k], v) for k, v in best_weights.items())
    encoder, info = ckpt.load_encoder(result.folder)  # safetensors + JSON, no pickle
    assert encoder(torch.zeros(1, 1, 64, 301)).shape == (1, 16)
    with open(f"{result.folder}/resume/state.json") as f:
        state = json.load(f)
    assert (state["epoch"], state["step"]) == (1, 2)  # epoch index 1 (the 2nd), 2 steps done in it

    resumed, events = _fit(toy_lib, "cancelled", strategy="supervised", epochs=3, batch_size=4, patience=0,
                           resume=True)
    steps = [(e.info["epoch"], e.info["step"]) for e in events if "step" in e.info]
    assert steps[0] == (2, 3)  # continues after the saved step, not from the start
    assert resumed.status == "done" and [h["epoch"] for h in resumed.history] == [1, 2, 3]


def test_resume_reproduces_an_uninterrupted_run(toy_lib):
    full, _ = _fit(toy_lib, "straight", strategy="supervised", epochs=2, batch_size=4, patience=0,
                   spec_augment=False)
    token = CancelToken()
    with Library(toy_lib) as lib:
        def stop_after_epoch_1(e):
            if e.info.get("epoch_end") and e.info["epoch"] == 1:
                token.cancel()
        drive(iter_fit(lib, name="split", train=TrainConfig(strategy="supervised", epochs=2, batch_size=4,
                                                            patience=0, spec_augment=False), model=TINY,
                       cancel=token), stop_after_epoch_1)
    split, _ = _fit(toy_lib, "split", strategy="supervised", epochs=2, batch_size=4, patience=0,
                    spec_augment=False, resume=True)
    assert split.history[-1]["loss"] == pytest.approx(full.history[-1]["loss"], rel=1e-4)


def test_transfer_freezes_all_but_fc_and_fits_an_svm(toy_lib):
    base, _ = _fit(toy_lib, "base", strategy="supervised", epochs=1, batch_size=8, patience=0)
    result, _ = _fit(toy_lib, "tuned", strategy="transfer", from_model="base", epochs=2, batch_size=8,
                     lr=1e-2, patience=0, model=None)
    before = ckpt.module_state(ckpt.read_tensors(base.folder), "encoder")
    after_all = ckpt.read_tensors(result.folder)
    after = ckpt.module_state(after_all, "encoder")
    changed = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"fc"}  # stem, layer1..4 (weights and BatchNorm statistics) bitwise unchanged
    assert after_all["svm.coef"].shape[1] == 16 and "svm_val_acc" in result.best


def test_a_transfer_cancelled_while_its_svm_head_is_fitted_says_cancelled(toy_lib):
    """Cancel was not checked while the SVM head's embeddings were computed (minutes on a large library), and the
    run was already marked done: now it stops there, marked cancelled, the best model kept without the head."""
    _fit(toy_lib, "base", strategy="supervised", epochs=1, batch_size=8, patience=0)
    token = CancelToken()
    result, _ = _fit(toy_lib, "tuned", strategy="transfer", from_model="base", epochs=1, batch_size=8, patience=0,
                     model=None, cancel=token, on_event=lambda e: "SVM head" in e.message and token.cancel())
    assert result.status == "cancelled" and "svm_val_acc" not in result.best
    assert "svm.coef" not in ckpt.read_tensors(result.folder)
    with Library(toy_lib) as lib:
        assert lib.runs("tuned")[-1]["status"] == "cancelled"


def test_zero_filtered_triplet_loss_by_hand():
    a = torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    p = torch.tensor([[1.0, 0.0], [0.0, 0.5], [1.0, 1.0]])
    n = torch.tensor([[3.0, 0.0], [0.0, 1.0], [1.0, 1.5]])
    # d(a,p) = 1, 0.5, 0; d(a,n) = 3, 1, 0.5; margin 1 -> losses max(0, -1), 0.5, 0.5 -> mean of non-zero = 0.5
    assert zero_filtered_triplet_loss(a, p, n, margin=1.0).item() == pytest.approx(0.5)
    # margin 0.4: every triplet satisfied (-2.6, -0.1, -0.1) -> no active triplet -> 0
    assert zero_filtered_triplet_loss(a, p, n, margin=0.4).item() == pytest.approx(0.0)
    # margin 2: losses 0, 1.5, 1.5 -> the zero is filtered out: 1.5 (a plain mean would give 1.0)
    assert zero_filtered_triplet_loss(a, p, n, margin=2.0).item() == pytest.approx(1.5)


def test_nt_xent_by_hand():
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z2 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    t = 0.5
    # row 0 (z1[0]): sims to [z1[1], z2[0], z2[1]] = [0, 1, 0] / t; target z2[0]
    expected = -np.log(np.exp(2) / (np.exp(0) + np.exp(2) + np.exp(0)))
    assert nt_xent(z1, z2, temperature=t).item() == pytest.approx(expected, rel=1e-5)


def test_bad_configs_are_clear_errors(toy_lib, tmp_path):
    from musicemb_core.common.errors import ConfigError

    with pytest.raises(ConfigError, match="strategy"):
        TrainConfig(strategy="magic")
    with pytest.raises(ConfigError, match="--from"):
        TrainConfig(strategy="transfer")
    sf.write(tmp_path / "x.wav", _song(440, 7.0, np.random.default_rng(1)), SR)
    with Library(tmp_path / "unlabelled", create=True) as lib:
        drive(iter_ingest(lib, [tmp_path / "x.wav"], jobs=1))
        with pytest.raises(ConfigError, match="labelled"):
            drive(iter_fit(lib, name="s", train=TrainConfig(strategy="supervised"), model=TINY))


def test_a_single_label_is_a_clear_error_before_training(tmp_path):
    """Tracks of one label: supervised "learnt" a loss of 0 and transfer crashed after training with an
    unexpected ValueError from the SVM head ("at least 2 classes"); now one line before any work."""
    from musicemb_core.common.errors import ConfigError

    for i in range(2):
        (tmp_path / "audio" / "house").mkdir(parents=True, exist_ok=True)
        sf.write(tmp_path / "audio" / "house" / f"{i}.wav", _song(300 + 200 * i, 6.0, np.random.default_rng(i)), SR)
    with Library(tmp_path / "lib", create=True) as lib:
        drive(iter_ingest(lib, [tmp_path / "audio"], labels="folders", jobs=1))
        with pytest.raises(ConfigError, match="at least 2 labels; every labelled track is 'house'"):
            drive(iter_fit(lib, name="s", train=TrainConfig(strategy="supervised", epochs=1), model=TINY))
        assert not (tmp_path / "lib" / "models" / "s").exists()


def test_resume_with_another_strategy_or_a_damaged_state_is_a_clear_error(toy_lib):
    """--resume under another --strategy was an unexpected RuntimeError (the saved heads did not fit); a truncated
    or hand-edited training state an unexpected SafetensorError / JSONDecodeError."""
    from musicemb_core.common.errors import ConfigError

    result, _ = _fit(toy_lib, "resumable", strategy="supervised", epochs=1, batch_size=8, patience=0)
    with pytest.raises(ConfigError, match="trained with the supervised strategy; resume it with --strategy supervised"):
        _fit(toy_lib, "resumable", strategy="contrastive", epochs=2, batch_size=8, resume=True)
    state = ckpt.read_tensors(result.folder)  # the model is left as it was
    weights = f"{result.folder}/resume/{ckpt.WEIGHTS}"
    with open(weights, "rb") as f:
        whole = f.read()
    with open(weights, "wb") as f:
        f.write(whole[:1000])
    with pytest.raises(ConfigError, match="resume: cannot read the training state"):
        _fit(toy_lib, "resumable", strategy="supervised", epochs=2, batch_size=8, resume=True)
    with open(weights, "wb") as f:
        f.write(whole)
    with open(f"{result.folder}/resume/state.json", "w") as f:
        f.write('{"epoch": 1')
    with pytest.raises(ConfigError, match="resume: cannot read the training state"):
        _fit(toy_lib, "resumable", strategy="supervised", epochs=2, batch_size=8, resume=True)
    assert all(torch.equal(v, ckpt.read_tensors(result.folder)[k]) for k, v in state.items())


def test_resume_from_a_state_without_its_counters_is_a_clear_error(toy_lib):
    """A state.json that is valid JSON but lacks a counter (or is no object) was an unexpected KeyError /
    TypeError; now the damaged state's one-line error."""
    from musicemb_core.common.errors import ConfigError

    result, _ = _fit(toy_lib, "counters", strategy="supervised", epochs=1, batch_size=8, patience=0)
    for text, why in (('{"step": 0, "history": [], "best": {}}', "state.json lacks epoch"),
                      ("[1, 2]", "state.json is no JSON object")):
        with open(f"{result.folder}/resume/state.json", "w") as f:
            f.write(text)
        with pytest.raises(ConfigError, match=rf"resume: cannot read the training state \({why}\); train again "
                                              "without --resume"):
            _fit(toy_lib, "counters", strategy="supervised", epochs=2, batch_size=8, resume=True)


def test_without_a_labelled_validation_track_best_has_no_val_loss(tmp_path):
    """Supervised, every validation track unlabelled: the best epoch was reported with its training loss named
    ``val_loss``. Now it is chosen by training loss and reported as ``loss`` only."""
    rng = np.random.default_rng(0)
    (tmp_path / "audio").mkdir()
    for i, (name, freq) in enumerate((("lo", 220), ("hi", 3000), ("u0", 500), ("u1", 700), ("u2", 900))):
        sf.write(tmp_path / "audio" / f"{name}.wav", _song(freq * (1 + 0.01 * i), 6.0, rng), SR)
    with Library(tmp_path / "lib", create=True) as lib:
        drive(iter_ingest(lib, [tmp_path / "audio"], labels={"lo.wav": "low", "hi.wav": "high"}, jobs=1))
    result, _ = _fit(tmp_path / "lib", "unvalidated", strategy="supervised", epochs=2, batch_size=4, patience=0)
    assert all("val_loss" not in h for h in result.history)
    assert "val_loss" not in result.best and "val_loss" not in ckpt.read_info(result.folder).metrics["best"]
    assert result.best == min(result.history, key=lambda h: h["loss"])


@pytest.mark.parametrize("at", ["mid-epoch", "last-step"])
def test_a_resumed_epoch_reports_the_loss_of_all_its_steps(toy_lib, at):
    """A cancel mid-epoch, or on an epoch's last step (before its end), lost the losses of the steps done: the
    resumed epoch's loss was the mean of the remaining steps only, or None. Now the history equals a straight run's."""
    cfg = dict(strategy="supervised", epochs=2, batch_size=4, patience=0, spec_augment=False)
    full, events = _fit(toy_lib, f"whole-{at}", **cfg)
    per_epoch = max(e.info["step"] for e in events if "step" in e.info)
    stop_at = per_epoch if at == "last-step" else 2
    token = CancelToken()

    def stop(e):
        if e.stage == "train" and e.info.get("epoch") == 1 and e.info.get("step") == stop_at:
            token.cancel()
    cut, _ = _fit(toy_lib, f"cut-{at}", cancel=token, on_event=stop, **cfg)
    assert cut.status == "cancelled" and cut.history == []
    resumed, _ = _fit(toy_lib, f"cut-{at}", resume=True, **cfg)
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    for mine, straight in zip(resumed.history, full.history, strict=True):
        assert mine["loss"] == pytest.approx(straight["loss"], rel=1e-4)
        assert mine["acc"] == pytest.approx(straight["acc"], rel=1e-4)


def test_one_segment_left_to_train_on_is_a_clear_error(tmp_path):
    """Two tracks of one segment: one is kept for validation and contrastive training crashed on its batch of one
    (an unexpected ValueError from the projection head's batch norm)."""
    from musicemb_core.common.errors import ConfigError

    for i in range(2):
        sf.write(tmp_path / f"{i}.wav", _song(300 + 400 * i, 3.5, np.random.default_rng(i)), SR)
    with Library(tmp_path / "lib", create=True) as lib:
        drive(iter_ingest(lib, [tmp_path / "0.wav", tmp_path / "1.wav"], jobs=1))
        with pytest.raises(ConfigError, match="needs at least 2 segments to train on besides the 1 of the validation "
                                              "tracks, found 1"):
            drive(iter_fit(lib, name="c", train=TrainConfig(strategy="contrastive", epochs=1), model=TINY))


def test_freezing_every_layer_of_a_headless_strategy_is_a_clear_error(toy_lib):
    """Triplet training has no head: --freeze-until fc left the optimizer nothing (an unexpected ValueError)."""
    from musicemb_core.common.errors import ConfigError

    with pytest.raises(ConfigError, match="--freeze-until fc: freezes every layer of the triplet model"):
        _fit(toy_lib, "frozen", strategy="triplet", freeze_until="fc", epochs=1)


def _cut_and_resume(lib_dir, name, cancel_when, **cfg):
    """A run cancelled at the first event ``cancel_when`` accepts, then resumed to its end."""
    token = CancelToken()

    def stop(e):
        if cancel_when(e):
            token.cancel()
    cut, _ = _fit(lib_dir, name, cancel=token, on_event=stop, **cfg)
    assert cut.status == "cancelled"
    resumed, _ = _fit(lib_dir, name, resume=True, **cfg)
    return cut, resumed


def test_a_run_resumed_mid_epoch_draws_the_augmentations_of_an_uninterrupted_run(toy_lib):
    """The steps after a mid-epoch resume drew their augmentations (views, SpecAugment masks) from the epoch's
    generator in the state of its first step: the same batches, but other views than an uninterrupted run's."""
    cfg = dict(strategy="contrastive", epochs=2, batch_size=4, patience=0)
    full, _ = _fit(toy_lib, "views-whole", **cfg)
    _, resumed = _cut_and_resume(toy_lib, "views-cut", lambda e: (e.info.get("epoch"), e.info.get("step")) == (1, 2),
                                 **cfg)
    for mine, straight in zip(resumed.history, full.history, strict=True):
        assert mine["loss"] == pytest.approx(straight["loss"], rel=1e-4)


def test_a_cancel_during_validation_stops_there_and_resumes_there(toy_lib):
    """A cancel during an epoch's validation waited for it to end; a cancel there saved step 0, so the resumed run
    trained the epoch again over the losses kept. Now it stops at once and resumes at the validation."""
    from musicemb_core.training.strategies import Supervised

    cfg = dict(strategy="supervised", epochs=1, batch_size=2, patience=0, spec_augment=False)
    full, _ = _fit(toy_lib, "val-whole", **cfg)
    token = CancelToken()
    train_loss = Supervised.loss

    def loss(self, data, batch, rng):  # the first validation batch cancels the run
        if rng is None:
            token.cancel()
        return train_loss(self, data, batch, rng)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Supervised, "loss", loss)
        cut, _ = _fit(toy_lib, "val-cut", cancel=token, **cfg)
    assert cut.status == "cancelled" and cut.history == []
    resumed, events = _fit(toy_lib, "val-cut", resume=True, **cfg)
    assert not [e for e in events if "step" in e.info]  # every step was done before the cancel
    assert resumed.history[0]["loss"] == pytest.approx(full.history[0]["loss"], rel=1e-4)
    assert resumed.history[0]["val_loss"] == pytest.approx(full.history[0]["val_loss"], rel=1e-4)


def test_early_stopping_counts_the_epochs_before_a_resume(toy_lib, monkeypatch):
    """A resumed run counted the epochs without improvement from 0 again: it stopped later than an uninterrupted
    run would have (or never)."""
    from musicemb_core.training import loop

    monkeypatch.setattr(loop, "_evaluate", lambda *a: {"val_loss": 1.0})  # epoch 1 is the best, then no progress
    cfg = dict(strategy="supervised", epochs=5, batch_size=8, patience=2, spec_augment=False)
    full, _ = _fit(toy_lib, "patient-whole", **cfg)
    assert full.status == "early-stopped" and len(full.history) == 3
    _, resumed = _cut_and_resume(toy_lib, "patient-cut", lambda e: e.info.get("epoch") == 3, **cfg)
    assert resumed.status == "early-stopped" and len(resumed.history) == 3


def test_a_diverging_loss_is_a_clear_error_and_no_model(tmp_path):
    """A NaN loss (lr far too high) trained on: no epoch was ever the best, so no model was saved, yet the run
    ended "done" and the name was registered as a model without files."""
    from musicemb_core.common.errors import ConfigError

    lib_dir = _two_labels(tmp_path)
    with pytest.raises(ConfigError, match=r"the supervised loss became (nan|inf) (at|in the validation of) epoch "
                                          r"\d+(, step \d+)?: training diverged; lower lr \(now 1e\+12\)"):
        _fit(lib_dir, "wild", strategy="supervised", epochs=2, batch_size=4, lr=1e12, patience=0)
    with Library(lib_dir) as lib:
        assert lib.runs("wild")[-1]["status"] == "failed" and not lib.models()
    assert not (lib_dir / "models" / "wild" / ckpt.CONFIG).exists()


def _two_labels(root, labels=("low", "high"), per_label=2):
    """``root/lib`` with ``per_label`` tracks of each of ``labels`` (folders of ``root/audio``) imported in it."""
    for label in labels:
        (root / "audio" / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_label):
            seed = int.from_bytes(label.encode(), "little") % 1000 + i
            sf.write(root / "audio" / label / f"{i}.wav", _song(200 + seed * 7, 6.0, np.random.default_rng(seed)), SR)
    with Library(root / "lib", create=True) as lib:
        drive(iter_ingest(lib, [root / "audio"], labels="folders", jobs=1))
    return root / "lib"


def _cut_in_epoch_1(lib_dir, name, **cfg):
    token = CancelToken()
    cut, _ = _fit(lib_dir, name, strategy="supervised", epochs=1, batch_size=2, cancel=token,
                  on_event=lambda e: "step" in e.info and token.cancel(), **cfg)
    assert cut.status == "cancelled"


@pytest.mark.parametrize("change", ["added", "renamed"])
def test_resuming_after_labels_were_added_is_a_clear_error(tmp_path, change):
    """A label added or renamed between a cancel and --resume: an unexpected RuntimeError (size mismatch of the
    classifier's weights), or, renamed, a resumed run whose classifier rows had moved to other labels."""
    from musicemb_core.common.errors import ConfigError

    lib_dir = _two_labels(tmp_path)
    _cut_in_epoch_1(lib_dir, "grown")
    if change == "added":
        _two_labels(tmp_path, labels=("mid",))
    else:
        with Library(lib_dir) as lib:
            for t in lib.tracks():
                if t.label == "high":
                    lib.set_label(t.id, "mid")
    with pytest.raises(ConfigError, match="^--resume: 'grown' was trained with the labels high, low; the library now "
                                          "has mid too; train again without --resume"):
        _fit(lib_dir, "grown", strategy="supervised", epochs=1, batch_size=2, resume=True)


def test_resuming_after_a_label_was_removed_keeps_the_saved_label_order(tmp_path):
    """A label gone from the library between a cancel and --resume: an unexpected RuntimeError (the classifier has
    a row more than labels); now the saved label order is kept, the row of the label gone unused."""
    lib_dir = _two_labels(tmp_path, labels=("a", "b", "c"))
    _cut_in_epoch_1(lib_dir, "shrunk", val_fraction=0.0)
    with Library(lib_dir) as lib:
        for t in lib.tracks():
            if t.label == "a":
                lib.set_label(t.id, None)
    resumed, _ = _fit(lib_dir, "shrunk", strategy="supervised", epochs=1, batch_size=2, val_fraction=0.0,
                      resume=True)
    assert ckpt.read_info(resumed.folder).labels == ["a", "b", "c"]


def test_cancelled_in_the_first_epoch_reports_no_best_figure(toy_lib):
    """Cancelled before an epoch ended, the run's best (shown by the app and the CLI, stored in the model's
    config) was ``val_loss inf`` (JSON ``Infinity``)."""
    token = CancelToken()
    result, _ = _fit(toy_lib, "early-cut", strategy="supervised", epochs=1, batch_size=4, cancel=token,
                     on_event=lambda e: "step" in e.info and token.cancel())
    assert result.status == "cancelled" and result.best == {}
    with open(f"{result.folder}/{ckpt.CONFIG}") as f:
        assert "Infinity" not in f.read()


@pytest.mark.parametrize("field, value", [("max_per_class", 0), ("steps_per_epoch", -1), ("patience", -1),
                                          ("val_fraction", 1.0), ("weight_decay", -0.1), ("margin", 0.0)])
def test_out_of_range_training_numbers_are_clear_errors(field, value):
    """Typed in the app's form: max_per_class 0 or steps_per_epoch -1 trained nothing and saved no model (or an
    untrained one) as "done"; patience -1 stopped after one epoch; val_fraction 1 failed only after the whole
    library was decoded; weight_decay -0.1 was a ValueError from torch."""
    from musicemb_core.common.errors import ConfigError

    with pytest.raises(ConfigError, match=f"^{field} must be "):
        TrainConfig(strategy="supervised", **{field: value})


def test_no_labelled_track_left_to_train_on_is_a_clear_error(tmp_path):
    """One labelled track per label and val_fraction 0.6: every labelled track went to validation; supervised
    training had no batch, saved no model and ended "done"."""
    from musicemb_core.common.errors import ConfigError

    lib_dir = _two_labels(tmp_path, per_label=1)
    for i in range(3):
        sf.write(tmp_path / f"u{i}.wav", _song(500 + 150 * i, 6.0, np.random.default_rng(i)), SR)
    with Library(lib_dir) as lib:
        drive(iter_ingest(lib, [tmp_path / f"u{i}.wav" for i in range(3)], jobs=1))
    with pytest.raises(ConfigError, match="none of the .* segments to train on .* is labelled"):
        _fit(lib_dir, "unlabelled", strategy="supervised", epochs=1, val_fraction=0.6)
