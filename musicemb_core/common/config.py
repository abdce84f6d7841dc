"""Configuration dataclasses, validated on creation, round-tripping through dicts, JSON and TOML."""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import tomllib

from musicemb_core.common.errors import ConfigError

C = TypeVar("C", bound="Config")


MAX_QUERY_S = 1800.0
"""The longest audio accepted as a query (identify, classify, search, similar): longer files are imported instead."""
MAX_HUM_S = 600.0
"""The longest hum (a file or a recording) searched by humming."""

@dataclasses.dataclass(frozen=True)
class Config:
    """Base: ``to_dict``/``from_dict`` (unknown keys are an error, naming the key) and file helpers."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls: type[C], d: dict[str, Any]) -> C:
        """Build from untrusted data (a file): unknown keys and values of the wrong type (``"dim": true``,
        ``"sr": "22050"``, a non-finite float) are a :class:`ConfigError` naming the key."""
        if not isinstance(d, dict):
            raise ConfigError(f"{cls.__name__}: expected a table of settings, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        hints = typing.get_type_hints(cls)
        checked = {}
        for key, value in d.items():
            try:
                checked[key] = _conform(hints.get(key, Any), value)
            except TypeError:
                raise ConfigError(f"{cls.__name__}.{key} must be {_describe(hints.get(key, Any))}, "
                                  f"got {value!r}"[:300]) from None
        try:
            return cls(**checked)
        except TypeError as e:  # a required field missing
            raise ConfigError(f"{cls.__name__}: {e}") from None

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

    def check_types(self) -> None:
        """A :class:`ConfigError` naming the first field whose value is not of its type, as :meth:`from_dict`
        checks them (a numpy scalar counts as its Python number)."""
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value, hint = getattr(self, f.name), hints.get(f.name, Any)
            try:
                _conform(hint, value.item() if hasattr(value, "item") and not isinstance(value, Config) else value)
            except (TypeError, ValueError):
                raise ConfigError(f"{f.name} must be {_describe(hint)}, got {value!r}"[:300]) from None


def _conform(hint: Any, value: Any) -> Any:
    """``value`` if it has type ``hint`` (lists become tuples for tuple fields), else TypeError. Booleans are
    not numbers; floats must be finite; integers are accepted for floats (kept as they are)."""
    if hint is Any:
        return value
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for h in args:
            try:
                return _conform(h, value)
            except TypeError:
                pass
        raise TypeError(hint)
    if hint is type(None):
        if value is None:
            return value
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return value
    elif hint is str:
        if isinstance(value, str):
            return value
    elif origin is tuple or hint is tuple:
        if isinstance(value, list | tuple):
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(_conform(args[0], v) for v in value)
            if args and len(args) == len(value):
                return tuple(_conform(h, v) for h, v in zip(args, value, strict=True))
            if not args:
                return tuple(value)
    elif origin is not None:
        if isinstance(value, origin):
            return value
    elif isinstance(hint, type):
        if isinstance(value, hint):
            return value
    else:
        return value
    raise TypeError(hint)


def _describe(hint: Any) -> str:
    names = {int: "an integer", float: "a finite number", str: "a string", bool: "true or false",
             type(None): "null"}
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_describe(h) for h in typing.get_args(hint))
    if hint in names:
        return names[hint]
    if typing.get_origin(hint) is tuple or hint is tuple:
        return "a list"
    return getattr(hint, "__name__", str(hint))


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
        for name, top in (("sr", 384_000), ("n_fft", 1 << 16), ("n_mels", 1024)):  # beyond: a typo that would
            if getattr(self, name) > top:  # ask for gigabytes ("out of memory" named no config)
                raise ConfigError(f"{name} must be at most {top:,}, got {getattr(self, name)!r}"[:200])
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
