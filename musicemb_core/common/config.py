"""Configuration dataclasses, validated on creation, round-tripping through dicts, JSON and TOML."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, TypeVar

import tomllib

from musicemb_core.common.errors import ConfigError

C = TypeVar("C", bound="Config")


@dataclasses.dataclass(frozen=True)
class Config:
    """Base: ``to_dict``/``from_dict`` (unknown keys are an error, naming the key) and file helpers."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls: type[C], d: dict[str, Any]) -> C:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        return cls(**d)

    @classmethod
    def load(cls: type[C], path: str | Path) -> C:
        """Read a ``.json`` or ``.toml`` file."""
        path = Path(path)
        try:
            text = path.read_text("utf-8")
            d = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        except (OSError, ValueError) as e:
            raise ConfigError(f"{path}: cannot read configuration: {e}") from e
        return cls.from_dict(d)

    def replace(self: C, **changes: Any) -> C:
        return dataclasses.replace(self, **changes)


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ConfigError(f"{name} must be > 0, got {value!r}")


NORMALISATIONS = ("none", "minmax", "standard", "peak")


@dataclasses.dataclass(frozen=True)
class FeatureConfig(Config):
    """Log-mel parameters; saved with every model so training and querying cannot drift.

    ``normalise``: ``none`` (dB), ``minmax`` (each segment scaled to [0, 1]), ``standard``
    (``(dB - mean) / std`` with the global ``mean``/``std`` stored here) or ``peak`` (dB relative to the
    segment's loudest bin, then ``(x - mean) / std``: invariant to the recording's gain).
    ``precision``: the STFT's float type. ``float32`` is about 5x faster and within about 1e-3 dB of librosa
    (the float32 FFT's rounding shows in bins near the ``top_db`` floor); ``float64`` matches librosa to 1e-5 dB.
    """

    sr: int = 22050
    n_fft: int = 2048
    hop_length: int = 512
    win_length: int | None = None
    n_mels: int = 128
    fmin: float = 0.0
    fmax: float | None = None
    htk: bool = False
    power: float = 2.0
    top_db: float | None = 80.0
    normalise: str = "none"
    mean: float = 0.0
    std: float = 1.0
    precision: str = "float32"

    def __post_init__(self) -> None:
        for name in ("sr", "n_fft", "hop_length", "n_mels", "power", "std"):
            _positive(name, getattr(self, name))
        if self.win_length is not None and not 0 < self.win_length <= self.n_fft:
            raise ConfigError(f"win_length must be in (0, n_fft={self.n_fft}], got {self.win_length}")
        fmax = self.sr / 2 if self.fmax is None else self.fmax
        if not 0 <= self.fmin < fmax <= self.sr / 2:
            raise ConfigError(f"need 0 <= fmin < fmax <= sr/2, got fmin={self.fmin}, fmax={self.fmax}, sr={self.sr}")
        if self.normalise not in NORMALISATIONS:
            raise ConfigError(f"normalise must be one of {NORMALISATIONS}, got {self.normalise!r}")
        if self.precision not in ("float32", "float64"):
            raise ConfigError(f"precision must be float32 or float64, got {self.precision!r}")

    def n_frames(self, n_samples: int) -> int:
        """Frames produced (centred STFT) for ``n_samples`` samples."""
        return 1 + n_samples // self.hop_length


@dataclasses.dataclass(frozen=True)
class SegmentConfig(Config):
    """How tracks are cut into segments: ``window_s`` long, every ``hop_s`` seconds.

    A track shorter than a window gives one short segment; a tail of at least ``min_tail`` of a window
    gets a last window aligned to the track's end.
    """

    window_s: float = 3.0
    hop_s: float = 3.0
    min_tail: float = 0.5

    def __post_init__(self) -> None:
        _positive("window_s", self.window_s)
        _positive("hop_s", self.hop_s)
        if not 0 <= self.min_tail <= 1:
            raise ConfigError(f"min_tail must be in [0, 1], got {self.min_tail}")
