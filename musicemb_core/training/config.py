"""Training configuration (the strategy and its knobs, saved with every run and model) and outcome."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from musicemb_core.common.config import Config, FeatureConfig
from musicemb_core.common.errors import ConfigError

STRATEGIES = ("supervised", "transfer", "triplet", "autoencoder", "contrastive", "qbh")

#: Log-mel the encoders see by default: 16 kHz, 10 ms hop, 64 mels (3 s -> 64 x 301).
MODEL_FEATURES = FeatureConfig(sr=16000, n_fft=512, hop_length=160, n_mels=64, normalise="standard")


@dataclasses.dataclass(frozen=True)
class TrainConfig(Config):
    """How to train. ``patience`` 0 disables early stopping; ``steps_per_epoch`` None = one pass over the data;
    ``songs`` (``qbh`` only): melodies of the training collections rendered as songs, plus a tenth as many (at
    least 2) generated melodies."""

    strategy: str = "contrastive"
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    val_fraction: float = 0.2
    patience: int = 5
    seed: int = 0
    steps_per_epoch: int | None = None
    max_per_class: int = 10000
    from_model: str | None = None
    freeze_until: str | None = None
    svm_head: bool = True
    margin: float = 1.0
    neighbour_s: float = 10.0
    temperature: float = 0.1
    shift_s: float = 0.75
    tile_frames: int = 64
    recon_weight: float = 1.0
    aux_weight: float = 0.005
    spec_augment: bool = True
    songs: int = 1000
    device: str = "auto"

    def __post_init__(self) -> None:
        self.check_types()  # epochs=1.5 failed only after the library was read
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"unknown strategy {self.strategy!r}; choose one of {', '.join(STRATEGIES)}")
        for name in ("epochs", "batch_size", "lr", "temperature", "tile_frames", "max_per_class", "margin",
                     "neighbour_s", *(("steps_per_epoch",) if self.steps_per_epoch is not None else ())):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("weight_decay", "patience", "shift_s", "recon_weight", "aux_weight", "songs"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if not 0 <= self.val_fraction < 1:  # 1: no track left to train on
            raise ConfigError(f"val_fraction must be in [0, 1), got {self.val_fraction!r}")
        if self.strategy == "transfer" and not self.from_model:
            raise ConfigError('the transfer strategy needs a model to start from ("from model"; on the command line '
                              '--from MODEL)')
        if self.batch_size < 2 and self.strategy in ("contrastive", "triplet"):
            raise ConfigError(f"{self.strategy} needs batch_size >= 2")


@dataclass
class FitResult:
    """Outcome of a run: where the model is, its history (one dict per epoch) and how it ended."""

    name: str
    folder: str
    status: str
    epochs_done: int
    history: list[dict] = field(default_factory=list)
    best: dict = field(default_factory=dict)
