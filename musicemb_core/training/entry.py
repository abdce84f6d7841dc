"""The one training entry point of the CLI and the app: ``iter_train`` picks the trainer of a strategy.

The embedding strategies (supervised, transfer, triplet, autoencoder, contrastive) train on the library's segments
in :func:`~musicemb_core.training.loop.iter_fit`; ``qbh`` trains a query-by-humming model from the training melody
collections in :func:`~musicemb_core.training.qbh_fit.iter_fit_qbh`. Neither trainer imports the other.
"""

from __future__ import annotations

import torch

from musicemb_core.common.config import FeatureConfig
from musicemb_core.common.errors import ConfigError
from musicemb_core.common.names import check_model_name
from musicemb_core.common.progress import CancelToken, JobGen
from musicemb_core.data.library import Library
from musicemb_core.models import ModelConfig
from musicemb_core.models import checkpoint as ckpt
from musicemb_core.resources import builtin_model_dir
from musicemb_core.training.config import FitResult, TrainConfig
from musicemb_core.training.loop import iter_fit
from musicemb_core.training.qbh_fit import iter_fit_qbh


def out_of_memory(e: RuntimeError) -> bool:
    """Whether torch's ``e`` says an allocation failed (CPU, CUDA or MPS; torch raises no MemoryError)."""
    return isinstance(e, torch.OutOfMemoryError) or any(
        words in str(e) for words in ("can't allocate memory", "not enough memory", "out of memory"))


def iter_train(lib: Library, *, name: str, train: TrainConfig = TrainConfig(), model: ModelConfig | None = None,
               features: FeatureConfig | None = None, resume: bool = False, replace: bool = False,
               cancel: CancelToken | None = None) -> JobGen[FitResult]:
    """Train ``train.strategy`` and save the model as ``models/<name>`` of ``lib``; returns a :class:`FitResult`.

    ``model``, ``features`` and ``resume`` apply to the embedding strategies; ``qbh`` has its own networks
    (``model``/``features`` are ignored), trains on the CPU and cannot resume. The built-in models' names are refused: a library's
    own model of that name would take the built-in's place in every command, beside vectors the built-in made. A
    model already saved under ``name`` is trained again from scratch only with ``replace`` (its files are replaced
    once the new run saves its first epoch; a run cancelled or failed before that leaves them whole). A device out of
    memory is a :class:`ConfigError` saying what to lower.
    """
    if builtin_model_dir(check_model_name(name)).is_dir():
        raise ConfigError(f"--name {name!r} is a built-in model's; choose another name")
    folder = lib.root / "models" / name
    if not (resume or replace) and (folder / ckpt.CONFIG).exists():
        raise ConfigError(f"{folder}: a model {name!r} is already saved there; --replace trains it again from "
                          "scratch, --resume continues its run, or choose another --name")
    if train.strategy != "qbh":
        try:
            return (yield from iter_fit(lib, name=name, train=train, model=model, features=features, resume=resume,
                                        cancel=cancel))
        except RuntimeError as e:  # the model or a batch larger than the device's memory
            if not out_of_memory(e):
                raise
            raise ConfigError(f"{lib.root}: out of memory training {name!r} on device {train.device} (batch size "
                              f"{train.batch_size}): lower the batch size, or the model's width or dim; epochs saved "
                              "before are kept") from e
    if resume:
        raise ConfigError("--resume: the qbh strategy cannot resume a run; train again")
    if train.from_model:
        raise ConfigError("--from: the qbh strategy trains from scratch")
    if train.device not in ("auto", "cpu"):
        raise ConfigError(f"--device {train.device}: the qbh strategy trains on the CPU (about half an hour); "
                          "use --device cpu")
    return (yield from iter_fit_qbh(lib, name=name, train=train, cancel=cancel))
