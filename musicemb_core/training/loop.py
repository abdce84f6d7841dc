"""``iter_fit``: the one training loop. Yields progress per step, checkpoints, resumes, stops early, cancels.

The train/validation split is by track. After every epoch the best model so far (by validation loss, else by
training loss) is saved to ``models/<name>/`` and the latest state to ``models/<name>/resume/``; a cancel saves
the state reached at the current step, so a cancelled run keeps a loadable model and can be resumed.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from musicemb_core.common.config import FeatureConfig
from musicemb_core.common.errors import Cancelled, ConfigError
from musicemb_core.common.names import check_model_name
from musicemb_core.common.progress import CancelToken, EtaClock, JobGen, Progress
from musicemb_core.data import edits, layout
from musicemb_core.data.datasets import SegmentSet, iter_load_segments
from musicemb_core.data.library import Library
from musicemb_core.data.splits import split_by_track
from musicemb_core.features.logmel import LogMel
from musicemb_core.models import ENCODERS, ModelConfig, build_encoder
from musicemb_core.models import checkpoint as ckpt
from musicemb_core.models.device import pick_device
from musicemb_core.training.config import MODEL_FEATURES, FitResult, TrainConfig
from musicemb_core.training.strategies import STRATEGY_CLASSES, Strategy


def _standardise(features: FeatureConfig, data: SegmentSet, rng: np.random.Generator) -> FeatureConfig:
    """Fill a ``standard``/``peak`` feature config's mean/std from (a sample of) the training segments."""
    if features.normalise not in ("standard", "peak") or len(data) == 0:
        return features
    sample = data.window(rng.choice(len(data), min(len(data), 256), replace=False))
    with torch.inference_mode():
        S = LogMel(features.replace(mean=0.0, std=1.0))(torch.from_numpy(sample))
    return features.replace(mean=round(float(S.mean()), 4), std=round(float(S.std()), 4))


def _evaluate(strategy: Strategy, data: SegmentSet, cancel: CancelToken) -> dict:
    """Mean loss and metrics over the validation set, no augmentation, fixed batches."""
    if len(data) == 0:
        return {}
    for m in strategy.modules().values():
        m.eval()
    sums: dict[str, float] = {}
    n = 0
    with torch.no_grad():
        for batch in strategy.batches(data, np.random.default_rng(0), drop_last=False):  # every segment counts
            cancel.check()
            loss, metrics = strategy.loss(data, batch, None)
            for k, v in {"loss": loss.item(), **metrics}.items():
                sums[k] = sums.get(k, 0.0) + v * len(batch)
            n += len(batch)
    return {f"val_{k}": v / n for k, v in sums.items()} if n else {}


@layout.writes_library("train")
def iter_fit(lib: Library, *, name: str, train: TrainConfig = TrainConfig(), model: ModelConfig | None = None,
             features: FeatureConfig | None = None, resume: bool = False,
             cancel: CancelToken | None = None) -> JobGen[FitResult]:
    """Train an embedding strategy on the library's segments and save the model as ``name`` (``qbh`` is trained
    by :func:`musicemb_core.training.entry.iter_train`).

    ``resume`` continues from ``models/<name>/resume`` with the saved configs (a ``model`` or an ``lr`` that differs
    is a :class:`ConfigError`). A model saved under ``name`` before is replaced once this run saves its first epoch:
    a run cancelled before that keeps nothing and leaves it whole. Returns a :class:`FitResult`.
    """
    cancel = cancel or CancelToken()
    if train.strategy not in STRATEGY_CLASSES:
        raise ConfigError(f"strategy {train.strategy!r} does not train on segments; use training.entry.iter_train")
    folder = lib.folder("models") / check_model_name(name)
    replacing = not resume and (folder / ckpt.CONFIG).exists()
    device = pick_device(train.device)
    torch.manual_seed(train.seed)
    base = saved = None
    if resume:  # the saved state is read (and checked) before the library is decoded
        state = ckpt.load_resume(folder, keys=("epoch", "step", "history", "best"))
        if state is None:
            raise ConfigError(f"{folder}: nothing to resume (no saved training state)")
    if resume and (folder / ckpt.CONFIG).exists():  # the saved run's configs, normalisation stats included
        saved = ckpt.read_info(folder)
        if saved.strategy != train.strategy:  # the saved heads are another strategy's
            raise ConfigError(f"--resume: {name!r} was trained with the {saved.strategy} strategy; resume it with "
                              f"--strategy {saved.strategy}")
        if saved.train.get("freeze_until") != train.freeze_until:  # the saved optimizer state fixes what trains
            was = saved.train.get("freeze_until")
            raise ConfigError(f"--freeze-until {train.freeze_until or '(none)'}: {name!r} was trained with "
                              + (f"--freeze-until {was}; give it to resume" if was else
                                 "no --freeze-until; leave it out to resume") + ", or train under another --name")
        _check_resumed_lr(saved, train, name)
        if model is not None and model != saved.model:  # the saved weights fix the shape
            key = next(k for k, v in model.to_dict().items() if v != saved.model.to_dict()[k])
            raise ConfigError(f"--{key} {getattr(model, key)}: {name!r} was trained with {key} "
                              f"{getattr(saved.model, key)}; leave out --{key} to resume it, or train under another "
                              "--name")
        model, features = saved.model, saved.features
    if train.from_model:
        base = ckpt.read_info(ckpt.find_model(lib.root / "models", train.from_model))
        if not getattr(ENCODERS.get(base.model.arch), "layer_names", ()):
            raise ConfigError(f"--from {train.from_model}: a {base.model.arch} model has no trained layers to start "
                              "from")
        shape = (base.model.arch, base.model.dim, base.model.width)
        if model is not None and (model.arch, model.dim, model.width) != shape:
            raise ConfigError(f"--from {train.from_model}: its weights are a {shape[0]} of dim {shape[1]}, width "
                              f"{shape[2]}; they cannot start a {model.arch} of dim {model.dim}, width {model.width} "
                              "(leave out --arch)")
        model = model or base.model.replace(weights=None)
        features = features or base.features
    model = model or ModelConfig(arch="resnet18", width=32, dim=128)
    features = features or (MODEL_FEATURES.replace(normalise="minmax") if train.strategy == "autoencoder"
                            else MODEL_FEATURES)
    seg_cfg = lib.segment_config()
    window_s = seg_cfg.window_s if seg_cfg else 3.0
    pad_s = train.shift_s if train.strategy == "contrastive" else 0.0
    # The base model's label order where it names every label of the library (a built-in's labels are another corpus')
    # (a resumed run's own label order likewise: its heads' rows)
    order = saved or base
    keep_order = order is not None and set(edits.label_names(lib)) <= set(order.labels)
    data = yield from iter_load_segments(lib, sr=features.sr, window_s=window_s, pad_s=pad_s,
                                         label_names=order.labels if keep_order else None, cancel=cancel)
    if len(data) < 2:
        raise ConfigError(f"{lib.root}: needs at least 2 segments to train, found {len(data)}")
    rng = np.random.default_rng(train.seed)
    tr_mask, va_mask = split_by_track(data.track_ids, data.labels, val_fraction=train.val_fraction,
                                      random_state=train.seed)
    tr, va = data.subset(np.flatnonzero(tr_mask)), data.subset(np.flatnonzero(va_mask))
    if len(tr) < 2:  # a batch of one trains no batch norm (and gives contrastive no other segment to tell apart)
        raise ConfigError(f"{lib.root}: needs at least 2 segments to train on besides the {len(va)} of the "
                          f"validation tracks, found {len(tr)}; import more audio")
    if base is None and not resume:
        features = _standardise(features, tr, rng)
    encoder = build_encoder(model)
    if base is not None:
        base_folder = ckpt.find_model(lib.root / "models", train.from_model)
        ckpt.load_module(encoder, ckpt.read_tensors(base_folder), "encoder", ckpt.weights_path(base_folder))
    if train.strategy == "transfer":
        encoder.freeze_until(train.freeze_until or encoder.layer_names[-2])
    elif train.freeze_until:
        encoder.freeze_until(train.freeze_until)
    strategy = STRATEGY_CLASSES[train.strategy](encoder, LogMel(features), data, train)
    for m in (*strategy.modules().values(), strategy.logmel):
        m.to(device)
    params = [p for m in strategy.modules().values() for p in m.parameters() if p.requires_grad]
    if not params:
        raise ConfigError(f"--freeze-until {train.freeze_until}: freezes every layer of the {train.strategy} "
                          "model; nothing is left to train")
    opt = torch.optim.AdamW(params, lr=train.lr, weight_decay=train.weight_decay)
    info = ckpt.ModelInfo(name, model, features, window_s, train.strategy, data.label_names, train.to_dict())

    history: list[dict] = []
    start_epoch, skip_steps, best, saved_run = 0, 0, {}, None  # best: the row of the best epoch (none yet)
    losses, sums = [], {}  # the current epoch's step losses and metric sums (a cancel saves them with the state)
    if resume:
        tensors, opt_state, counters = state
        if saved is not None:
            _check_resumed_labels(strategy, info, saved)
        for key, m in strategy.modules().items():
            ckpt.load_module(m, tensors, key, folder / "resume")
        try:
            opt.load_state_dict(opt_state)
        except ValueError as e:  # other parameters train now (an autoencoder's labels all removed: no classifier)
            raise ConfigError(f"--resume: the saved optimizer state of {name!r} does not fit this run ({e}); train "
                              "again without --resume") from e
        start_epoch, skip_steps = counters["epoch"], counters["step"]
        history, best = counters["history"], counters["best"]
        saved_run = counters.get("run", saved.metrics.get("run") if saved is not None else None)
        losses, sums = counters.get("losses", []), counters.get("sums", {})
    n_batches = sum(1 for _ in strategy.batches(tr, np.random.default_rng(0)))
    if n_batches == 0:  # supervised: every labelled track is a validation track
        raise ConfigError(f"{lib.root}: none of the {len(tr)} segments to train on (besides the validation tracks) "
                          f"is labelled; the {train.strategy} strategy needs labelled tracks to train on: lower "
                          "val_fraction or label more tracks")
    strategy.check_train_set(tr)
    run_id = _continued_run(lib, name, saved_run, history) or \
        lib.start_run(name, train.strategy, {"train": train.to_dict(), "model": model.to_dict(),
                                             "features": features.to_dict()})
    info.metrics = {"run": run_id}  # which run saved the model (its list says whether that run finished)
    steps_per_epoch = train.steps_per_epoch or n_batches
    total = train.epochs * steps_per_epoch
    remaining = total - (start_epoch * steps_per_epoch + skip_steps)
    # epochs since the best one: early stopping counts on across a resume as in an uninterrupted run
    clock, done_steps, status, bad_epochs = EtaClock(), 0, "done", len(history) - best.get("epoch", 0)
    epoch, step = start_epoch, skip_steps
    try:
        for epoch in range(start_epoch, train.epochs):
            ep_rng = np.random.default_rng([train.seed, epoch])
            for step, batch in enumerate(strategy.batches(tr, ep_rng)):
                if step >= steps_per_epoch:
                    break
                if step < skip_steps:  # resuming mid-epoch: the same batches in the same order, skipped
                    continue
                cancel.check()
                for m in strategy.modules().values():
                    m.train()
                loss, metrics = strategy.loss(tr, batch, _step_rng(train.seed, epoch, step))
                _check_finite(loss.item(), f"at epoch {epoch + 1}, step {step + 1}", train)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                losses.append(loss.item())
                for k, v in metrics.items():
                    sums[k] = sums.get(k, 0.0) + v
                done_steps += 1
                step += 1
                yield Progress("train", epoch * steps_per_epoch + step, total, f"epoch {epoch + 1}/{train.epochs}",
                               clock.eta(done_steps, remaining),
                               {"epoch": epoch + 1, "step": step, "loss": losses[-1], **metrics})
            cancel.check()
            row = {"epoch": epoch + 1, "loss": float(np.mean(losses)) if losses else None,
                   **{k: v / max(1, len(losses)) for k, v in sums.items()}, **_evaluate(strategy, va, cancel)}
            skip_steps, step, losses, sums = 0, 0, [], {}  # (a cancel in the evaluation resumes at it)
            history.append(row)
            score = row.get("val_loss", row["loss"])  # without a labelled validation segment, the training loss
            _check_finite(score, f"in the validation of epoch {epoch + 1}", train)
            if score is not None and score < best.get("val_loss", best.get("loss", math.inf)):
                best, bad_epochs = dict(row), 0
                if replacing and len(history) == 1:  # the replaced run's state must not outlive its model
                    ckpt.remove_resume(folder)
                ckpt.save_model(folder, _with_metrics(info, best, history), strategy.modules())
            else:
                bad_epochs += 1
            ckpt.save_resume(folder, strategy.modules(), opt,
                             {"epoch": epoch + 1, "step": 0, "history": history, "best": best, "run": run_id})
            lib.update_run(run_id, "running", history)
            yield Progress("train", (epoch + 1) * steps_per_epoch, total, f"epoch {epoch + 1} done", None,
                           {"epoch_end": True, **row})
            if train.patience and bad_epochs >= train.patience:
                status = "early-stopped"
                break
    except Cancelled:
        status = "cancelled"
        if replacing and "epoch" not in best:  # the model saved before stays whole, this run's state is not kept
            lib.update_run(run_id, status, history, finished=True)
            return FitResult(name, str(folder), status, 0)
        try:
            ckpt.save_resume(folder, strategy.modules(), opt,
                             {"epoch": epoch, "step": step, "history": history, "best": best, "losses": losses,
                              "sums": sums, "run": run_id})
            if "epoch" not in best:  # no best saved yet (cancelled in the first epoch): keep what was learnt
                ckpt.save_model(folder, _with_metrics(info, best, history), strategy.modules())  # else the best stays
        except BaseException:  # the state could not be saved (a full disk): the run failed
            _failed(lib, run_id, history, best, info)
            raise
    except BaseException:
        _failed(lib, run_id, history, best, info)
        raise
    if train.strategy == "transfer" and train.svm_head and status != "cancelled":
        yield Progress("train", total, total, "fitting the SVM head on frozen embeddings")
        try:
            _load_best(folder, strategy)
            tensors, metrics = _fit_svm(strategy, tr, va, cancel)
        except Cancelled:  # the best model stays, without its SVM head
            status = "cancelled"
        except BaseException:
            _failed(lib, run_id, history, best, info)
            raise
        else:
            best |= metrics
            ckpt.save_model(folder, _with_metrics(info, best, history), strategy.modules(), extra=tensors)
    lib.update_run(run_id, status, history, finished=True)
    lib.register_model(name, model.arch, train.strategy, model.dim, info.to_dict())
    return FitResult(name, str(folder), status, len(history), history, best)


def _continued_run(lib: Library, name: str, run: object, history: list[dict]) -> int | None:
    """The saved run a resume goes on with (its row marked running again, as an uninterrupted run's would be), so
    that the model it saved is that of a finished run once the resume ends; None (a new run is started) when
    ``run`` is none of ``name``'s runs (no run recorded, or a catalogue restored from before it)."""
    if not isinstance(run, int) or isinstance(run, bool) or run not in {r["id"] for r in lib.runs(name)}:
        return None
    lib.update_run(run, "running", history)
    return run


def _failed(lib: Library, run_id: int, history: list[dict], best: dict, info: ckpt.ModelInfo) -> None:
    """Mark the run failed; a best model it saved stays, and is registered as the model of its name."""
    lib.update_run(run_id, "failed", history, finished=True)
    if "epoch" in best:
        lib.register_model(info.name, info.model.arch, info.strategy, info.model.dim, info.to_dict())


def _step_rng(seed: int, epoch: int, step: int) -> np.random.Generator:
    """The augmentation draws of one step (and torch's, for dropout), fixed by its place in the run: a run resumed
    mid-epoch draws what an uninterrupted run draws at that step."""
    rng = np.random.default_rng([seed, epoch, step])
    torch.manual_seed(int(rng.integers(2**62)))
    return rng


def _check_finite(loss: float | None, where: str, train: TrainConfig) -> None:
    """A NaN or infinite loss stops the run before it spoils the weights or the best model so far (which stays)."""
    if loss is not None and not math.isfinite(loss):
        raise ConfigError(f"the {train.strategy} loss became {loss} {where}: training diverged; lower lr (now "
                          f"{train.lr:g}) and train again")


def _check_resumed_lr(saved: ckpt.ModelInfo, train: TrainConfig, name: str) -> None:
    """Another ``lr`` than the saved run's is a :class:`ConfigError`: the saved optimizer state steps with its own
    (``--resume --lr`` trained on at the old rate while the model's config recorded the new one)."""
    was = saved.train.get("lr")
    if isinstance(was, int | float) and not isinstance(was, bool) and was != train.lr:
        raise ConfigError(f"--lr {train.lr:g}: {name!r} was trained with --lr {was:g}; give it to resume, or "
                          "train under another --name (--from it to start from its weights)")


def _check_resumed_labels(strategy: Strategy, info: ckpt.ModelInfo, saved: ckpt.ModelInfo) -> None:
    """A classifier resumed keeps the labels of its rows: labels the library has gained since the run was saved
    (added, or renamed) are a :class:`ConfigError` (the segments are loaded in the saved order otherwise)."""
    if "classifier" in strategy.heads and info.labels != saved.labels:
        new = sorted(set(info.labels) - set(saved.labels))
        raise ConfigError(f"--resume: {info.name!r} was trained with the labels {', '.join(saved.labels) or '(none)'}"
                          f"; the library now has {', '.join(new)} too; train again without --resume (or under "
                          "another --name)")


def _with_metrics(info: ckpt.ModelInfo, best: dict, history: list[dict]) -> ckpt.ModelInfo:
    info.metrics |= {"best": best, "epochs": len(history)}
    return info


def _load_best(folder, strategy: Strategy) -> None:
    tensors = ckpt.read_tensors(folder)
    for key, m in strategy.modules().items():
        ckpt.load_module(m, tensors, key, ckpt.weights_path(folder))


def embed_arrays(strategy: Strategy, data: SegmentSet, *, batch_size: int = 64,
                 cancel: CancelToken | None = None) -> np.ndarray:
    """Encoder outputs for every segment of ``data`` (no augmentation), shape (n, dim) float32; ``cancel`` is
    checked between batches."""
    strategy.encoder.eval()
    out = []
    with torch.no_grad():
        for a in range(0, len(data), batch_size):
            if cancel is not None:
                cancel.check()
            rows = np.arange(a, min(a + batch_size, len(data)))
            out.append(strategy.encoder(strategy.features(data.window(rows))).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, strategy.encoder.dim), np.float32)


def _fit_svm(strategy: Strategy, tr: SegmentSet, va: SegmentSet,
             cancel: CancelToken) -> tuple[dict[str, torch.Tensor], dict]:
    """A linear SVM on frozen embeddings: the transfer strategy's second head, stored as plain tensors."""
    from sklearn.svm import LinearSVC

    known = tr.labels >= 0
    X = embed_arrays(strategy, tr, cancel=cancel)[known].astype(np.float64)
    mean, scale = X.mean(axis=0), X.std(axis=0) + 1e-6  # standardised, liblinear converges (raw embeddings of
    svm = LinearSVC(C=1.0, max_iter=5000, random_state=0).fit((X - mean) / scale, tr.labels[known])  # a built-in
    coef = np.atleast_2d(svm.coef_) / scale  # model did not); the scaling is folded into the stored weights, which
    intercept = np.atleast_1d(svm.intercept_) - coef @ mean  # apply to raw embeddings
    metrics = {}
    if len(va) and (va.labels >= 0).any():
        kv = va.labels >= 0
        metrics["svm_val_acc"] = float((svm.predict((embed_arrays(strategy, va, cancel=cancel)[kv] - mean) / scale)
                                        == va.labels[kv]).mean())
    return {"svm.coef": torch.from_numpy(coef.astype(np.float32)),
            "svm.intercept": torch.from_numpy(intercept.astype(np.float32)),
            "svm.classes": torch.from_numpy(svm.classes_.astype(np.int64))}, metrics
