"""Model files: weights in safetensors, everything else in JSON; loading never unpickles arbitrary objects.
Kept in the models layer so that training and inference (siblings) can both use it. Reading a model's config,
finding it and digesting its files import no torch (commands on stored vectors start without it); what reads or
writes tensors imports it.

A model folder holds a weights file (encoder and head tensors, keys prefixed ``encoder.``/``<head>.``) and
``config.json`` (model, feature and training configs, label map, strategy, metrics). Models that are not log-mel
encoders (query by humming) use the same files with ``model``/``features`` null and their own ``settings``.
During training a ``resume/`` subfolder keeps the latest state (weights, optimizer tensors, step counters).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from safetensors import SafetensorError, safe_open

from musicemb_core.common.config import FeatureConfig
from musicemb_core.common.errors import ConfigError, LibraryError
from musicemb_core.common.names import is_path_like, model_key
from musicemb_core.common.paths import atomic_write_text, user_path
from musicemb_core.common.store import fsync_dir, kill_point
from musicemb_core.models.config import ModelConfig
from musicemb_core.models.registry import build_encoder
from musicemb_core.resources import builtin_model_dir

if TYPE_CHECKING:
    import torch

WEIGHTS, CONFIG = "model.safetensors", "config.json"
FORMAT = 1
"""The version of the model files this code writes and the newest it reads (``format`` in ``config.json``; absent:
1)."""


@dataclass
class ModelInfo:
    """What ``config.json`` holds. ``settings``: the configuration of a model that is no log-mel encoder (a
    query-by-humming model's ``QBHConfig``); such a model has ``model`` and ``features`` None."""

    name: str
    model: ModelConfig | None
    features: FeatureConfig | None
    window_s: float
    strategy: str = ""
    labels: list[str] = field(default_factory=list)
    train: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = {"name": self.name, "model": None if self.model is None else self.model.to_dict(),
             "features": None if self.features is None else self.features.to_dict(), "window_s": self.window_s,
             "strategy": self.strategy, "labels": self.labels, "train": self.train, "metrics": self.metrics,
             "format": FORMAT}
        return d | ({"settings": self.settings} if self.settings else {})

    @classmethod
    def from_dict(cls, d: dict) -> ModelInfo:
        """Schema-checked: a missing key or a value of the wrong type is a :class:`ConfigError` naming it."""
        if not isinstance(d, dict):
            raise ConfigError(f"expected a JSON object, got {type(d).__name__}")
        fmt = d.get("format", 1)
        if isinstance(fmt, bool) or not isinstance(fmt, int) or fmt < 1:
            raise ConfigError(f"format must be a positive integer, got {fmt!r}"[:200])
        if fmt > FORMAT:
            raise ConfigError(f"written by a newer musicemb (model file format {fmt}; this version reads up to "
                              f"{FORMAT}); update musicemb to use this model")
        missing = [k for k in ("name", "model", "features", "window_s") if k not in d]
        if missing:
            raise ConfigError(f"missing key(s) {', '.join(missing)}")
        for key, kind, what in (("name", str, "a string"), ("strategy", str, "a string"),
                                ("labels", list, "a list of strings"), ("train", dict, "an object"),
                                ("metrics", dict, "an object"), ("settings", dict, "an object")):
            if key in d and not isinstance(d[key], kind):
                raise ConfigError(f"{key} must be {what}, got {d[key]!r}"[:200])
        if not all(isinstance(v, str) for v in d.get("labels", [])):
            raise ConfigError("labels must be a list of strings")
        w = d["window_s"]
        if isinstance(w, bool) or not isinstance(w, int | float) or not 0 < w <= 3600:
            raise ConfigError(f"window_s must be a number of seconds in (0, 3600], got {w!r}")
        settings = d.get("settings", {})
        if not settings and (d["model"] is None or d["features"] is None):
            raise ConfigError("model and features may be null only in a model with settings")
        return cls(d["name"], None if d["model"] is None else ModelConfig.from_dict(d["model"]),
                   None if d["features"] is None else FeatureConfig.from_dict(d["features"]), float(w),
                   d.get("strategy", ""), list(d.get("labels", [])), d.get("train", {}), d.get("metrics", {}),
                   settings)


def _flat_state(modules: dict[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v.detach().cpu().contiguous()
            for prefix, m in modules.items() for k, v in m.state_dict().items()}


WEIGHTS_KEY = "weights_file"
"""The key of ``config.json`` naming the weights file that belongs to it (absent in older folders: ``WEIGHTS``)."""


def save_model(folder: str | Path, info: ModelInfo, modules: dict[str, torch.nn.Module],
               extra: dict[str, torch.Tensor] | None = None) -> None:
    """Publish a model: its weights go to a new file named by their digest, then ``config.json``, naming that file,
    replaces the old config in one atomic step, so a kill at any moment leaves the old model or the new one
    whole; weights files no config names any more are then removed. ``extra`` tensors (e.g. an SVM head) go in
    the weights file."""
    from safetensors.torch import save_file

    folder = Path(folder)
    tensors = _flat_state(modules) | {k: v.detach().cpu().contiguous() for k, v in (extra or {}).items()}
    tmp = folder / f".weights-{os.getpid()}.tmp"
    with _saving(folder, "the model", tmp):
        folder.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(tmp))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        digest = hashlib.blake2b(tmp.read_bytes(), digest_size=8).hexdigest()
        name = f"model-{digest}.safetensors"
        os.replace(tmp, folder / name)
        kill_point("publish")
        atomic_write_text(folder / CONFIG, json.dumps(info.to_dict() | {WEIGHTS_KEY: name}, indent=2))
    kill_point("publish")
    for old in [*folder.glob("model-*.safetensors"), folder / WEIGHTS, *folder.glob(".weights-*.tmp")]:
        if old.name != name:
            old.unlink(missing_ok=True)


@contextlib.contextmanager
def _saving(folder: Path, what: str, tmp: Path) -> Iterator[None]:
    """Remove ``tmp`` (a file or folder) if the block fails; a failed write (disk full, file too large) is a
    :class:`LibraryError` naming ``folder``: what was saved before stays the current one."""
    try:
        yield
    except BaseException as e:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        if isinstance(e, OSError | SafetensorError):
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise LibraryError(f"{folder}: cannot save {what} ({reason}); what was saved before is kept") from e
        raise


def weights_path(folder: str | Path) -> Path:
    """The weights file that ``folder``'s ``config.json`` names (``model.safetensors`` in older folders); a
    config that cannot be read, or names no plain file, is a :class:`ConfigError` naming it."""
    path = Path(folder) / CONFIG
    try:
        config = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: not a readable model config ({e})") from e
    name = config.get(WEIGHTS_KEY, WEIGHTS) if isinstance(config, dict) else None
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name.startswith("."):
        raise ConfigError(f"{path}: bad model config: {WEIGHTS_KEY} must name a file beside it, got {name!r}"[:300])
    return path.parent / name


def read_info(folder: str | Path, *, encoder: bool = True) -> ModelInfo:
    """``folder``'s config; with ``encoder`` (the default) it must be a log-mel encoder's (``model`` set)."""
    path = Path(folder) / CONFIG
    try:
        info = ModelInfo.from_dict(json.loads(path.read_text("utf-8")))
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: not a readable model config ({e})") from e
    except ConfigError as e:
        raise ConfigError(f"{path}: bad model config: {e}") from e
    if encoder and info.model is None:
        raise ConfigError(f"{path}: a {info.strategy or 'special'} model, not a segment encoder")
    return info


def read_tensors(folder: str | Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    path = weights_path(folder)
    try:
        tensors = load_file(str(path))
    except Exception as e:  # safetensors raises several kinds for missing/corrupt files
        raise ConfigError(f"{path}: cannot read model weights ({e})") from e
    _check_digest(path)
    return tensors


def _check_digest(path: Path) -> None:
    """A weights file named by its digest (:func:`save_model`) must still have it: bytes overwritten in place
    load as other weights, without an error."""
    named = re.fullmatch(r"model-([0-9a-f]{16})\.safetensors", path.name)
    if named and hashlib.blake2b(path.read_bytes(), digest_size=8).hexdigest() != named[1]:
        raise ConfigError(f"{path}: damaged model weights (their digest is not the one in the file's name); "
                          "train the model again")


def check_files(folder: str | Path) -> ModelInfo:
    """``folder``'s config, once its weights file was checked without reading the tensors: a :class:`ConfigError`
    naming the file when it is missing, truncated or no safetensors, or (an encoder's) its tensors' shapes do not
    fit the config. A check that passed is not made again while the weights file and the model shape stay the same
    (the app lists the models each time its picker opens)."""
    info, path = read_info(folder, encoder=False), weights_path(folder)
    try:
        st = path.stat()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read model weights ({e.strerror or e})") from e
    _check_weights_file(str(path), st.st_size, st.st_mtime_ns,
                        None if info.model is None else json.dumps(info.model.to_dict(), sort_keys=True))
    return info


@functools.lru_cache(maxsize=64)
def _check_weights_file(path: str, _size: int, _mtime_ns: int, model: str | None) -> None:
    """:func:`check_files`'s check of one weights file (as of its size and modification time) against the model
    config ``model`` (JSON; None: no encoder to fit); only checks that passed are kept."""
    try:
        with safe_open(path, framework="pt") as f:
            shapes = {k[len("encoder."):]: tuple(f.get_slice(k).get_shape()) for k in f.keys()  # noqa: SIM118 (not a dict)
                      if k.startswith("encoder.")}
    except (OSError, SafetensorError) as e:
        raise ConfigError(f"{path}: cannot read model weights ({e})") from e
    if model is not None:
        import torch

        with torch.device("meta"):  # the shapes alone, no memory
            cfg = ModelConfig.from_dict(json.loads(model)).replace(weights=None)
            want = {k: tuple(v.shape) for k, v in build_encoder(cfg).state_dict().items()}
        if bad := sorted(k for k in want.keys() | shapes.keys() if want.get(k) != shapes.get(k)):
            k = bad[0]
            raise ConfigError(f"{path}: the weights do not fit {CONFIG} ({len(bad)} tensors differ, e.g. {k}: "
                              f"{shapes.get(k, 'missing')} in the weights, {want.get(k, 'none')} in the model)")


def module_state(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    p = prefix + "."
    return {k[len(p):]: v for k, v in tensors.items() if k.startswith(p)}


def load_module(module: torch.nn.Module, tensors: dict[str, torch.Tensor], prefix: str, path: str | Path) -> None:
    """Load the ``prefix`` tensors into ``module``; tensors that do not fit it (missing or unexpected keys, other
    shapes) are a :class:`ConfigError` naming ``path``, the file they came from."""
    try:
        module.load_state_dict(module_state(tensors, prefix))
    except RuntimeError as e:
        reason = " ".join(line.strip() for line in str(e).strip().splitlines()[1:])[:200]  # line 0: a header
        raise ConfigError(f"{path}: the weights do not fit {CONFIG} ({reason})") from e


def load_encoder(folder: str | Path) -> tuple[torch.nn.Module, ModelInfo]:
    """The encoder of a saved model, in eval mode, and its config."""
    info = read_info(folder)
    encoder = build_encoder(info.model.replace(weights=None))
    load_module(encoder, read_tensors(folder), "encoder", weights_path(folder))
    return encoder.eval(), info


def save_resume(folder: str | Path, modules: dict[str, torch.nn.Module], optimizer: torch.optim.Optimizer,
                state: dict) -> None:
    """Latest training state for ``resume``: weights, optimizer (safetensors + JSON, no pickle) and
    counters. Written to a temp folder then swapped in, so a kill leaves the previous state intact."""
    from safetensors.torch import save_file

    folder = Path(folder)
    tmp, final, old = folder / "resume.tmp", folder / "resume", folder / "resume.old"
    shutil.rmtree(tmp, ignore_errors=True)
    with _saving(folder, "the training state", tmp):
        tmp.mkdir(parents=True)
        save_file(_flat_state(modules), str(tmp / WEIGHTS))
        save_optimizer_state(optimizer.state_dict(), tmp)
        (tmp / "state.json").write_text(json.dumps(state))
        _flush_folder(tmp)
        if final.exists():  # else resume.old may be the only state left (killed between the renames)
            shutil.rmtree(old, ignore_errors=True)
            final.rename(old)
        tmp.rename(final)
        fsync_dir(folder)
    shutil.rmtree(old, ignore_errors=True)


def _flush_folder(folder: Path) -> None:
    """Flush ``folder``'s files and names to disk, so that a power cut after it is renamed into place does not
    leave the names with empty or partial files."""
    for path in folder.iterdir():
        with open(path, "rb+") as f:
            os.fsync(f.fileno())
    fsync_dir(folder)


def remove_resume(folder: str | Path) -> None:
    """Remove the saved training state: moved aside in one rename first, so a kill while it is removed leaves no
    half-removed state that ``--resume`` would read."""
    folder = Path(folder)
    tmp = folder / "resume.tmp"
    shutil.rmtree(folder / "resume.old", ignore_errors=True)
    shutil.rmtree(tmp, ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        (folder / "resume").rename(tmp)
    shutil.rmtree(tmp, ignore_errors=True)


def load_resume(folder: str | Path,
                keys: tuple[str, ...] = ()) -> tuple[dict[str, torch.Tensor], dict, dict] | None:
    """(tensors, optimizer state, counters) of the latest training state, or None if there is none; counters
    that are no JSON object or lack one of ``keys`` are a damaged state."""
    from safetensors.torch import load_file

    final = Path(folder) / "resume"
    if not (final / "state.json").exists():
        old = Path(folder) / "resume.old"  # killed between the two renames
        final = old if (old / "state.json").exists() else None
        if final is None:
            return None
    opt = load_optimizer_state(final)
    try:
        tensors, counters = load_file(str(final / WEIGHTS)), json.loads((final / "state.json").read_text())
        if not isinstance(counters, dict):
            raise ValueError("state.json is no JSON object")
        if missing := [k for k in keys if k not in counters]:
            raise ValueError(f"state.json lacks {', '.join(missing)}")
        return tensors, opt, counters
    except Exception as e:  # missing, truncated or hand-edited files
        raise ConfigError(f"{final}: cannot read the training state ({e}); train again without --resume") from e


OPT_TENSORS, OPT_JSON = "optimizer.safetensors", "optimizer.json"


def _encode(obj, key: str, tensors: dict[str, torch.Tensor]):
    """JSON-able form of an optimizer state dict: tensors moved to ``tensors`` under their key path (replaced by
    ``{"tensor": key}``), tuples and dicts with non-string keys tagged so they come back as they were."""
    import torch

    if isinstance(obj, torch.Tensor):
        tensors[key] = obj.detach().cpu().contiguous().clone()
        return {"tensor": key}
    if isinstance(obj, dict):
        return {"items": [[k, _encode(v, f"{key}.{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"tuple": [_encode(v, f"{key}.{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, f"{key}.{i}", tensors) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    raise ConfigError(f"optimizer state holds a {type(obj).__name__} at {key}, which cannot be saved without pickle")


def _decode(obj, tensors: dict[str, torch.Tensor]):
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if isinstance(obj, dict):
        if "tensor" in obj:
            return tensors[obj["tensor"]]
        if "tuple" in obj:
            return tuple(_decode(v, tensors) for v in obj["tuple"])
        return {k: _decode(v, tensors) for k, v in obj["items"]}
    return obj


def save_optimizer_state(state: dict, folder: str | Path) -> None:
    """An optimizer's ``state_dict()`` as ``optimizer.safetensors`` (its tensors, keyed by their path in the
    dict, e.g. ``state.0.exp_avg``) and ``optimizer.json`` (the rest of the structure): no pickle."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    structure = _encode(state, "opt", tensors)
    save_file(tensors, str(Path(folder) / OPT_TENSORS))
    (Path(folder) / OPT_JSON).write_text(json.dumps({"format": 1, "state_dict": structure}))


def load_optimizer_state(folder: str | Path) -> dict:
    """The state dict written by :func:`save_optimizer_state`, exactly (types, tuples, integer keys, tensors)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    try:
        meta = json.loads((folder / OPT_JSON).read_text("utf-8"))
        tensors = load_file(str(folder / OPT_TENSORS)) if (folder / OPT_TENSORS).exists() else {}
        return _decode(meta["state_dict"], tensors)
    except Exception as e:  # missing, truncated or hand-edited files
        if (folder / "optimizer.pt").exists() and not (folder / OPT_JSON).exists():
            raise ConfigError(f"{folder}: the training state was saved by an older version (optimizer.pt, "
                              "a pickle, is no longer read); train again without --resume") from e
        raise ConfigError(f"{folder / OPT_JSON}: cannot read the optimizer state ({e})") from e


BUILTIN_ENCODERS = ("default", "similarity")  # the fingerprint and similarity spaces shipped in resources/models


def find_model(models_dir: Path, name: str, builtin: tuple[str, ...] = BUILTIN_ENCODERS) -> Path:
    """The folder of model ``name``: ``models_dir/<name>`` (a library's own), else the built-in one of that name
    (among ``builtin``); or, for a path (``/``, ``.``, ``~``), that model folder (used read-only)."""
    model_key(name)  # a valid name, or a path to a model folder
    if is_path_like(name):
        folder = user_path(name)
        if (folder / CONFIG).exists():
            return folder
        raise ConfigError(f"no model folder at {folder} (it has no {CONFIG})")
    own = models_dir / name
    if (own / CONFIG).exists() or own.is_symlink() or (own / CONFIG).is_symlink():  # a broken link: said on read
        return own
    if name in builtin and (builtin_model_dir(name) / CONFIG).exists():
        return builtin_model_dir(name)
    names = sorted(p.name for p in models_dir.glob("*") if (p / CONFIG).exists())
    raise ConfigError(f"no model {name!r} in {models_dir}; built-in: {', '.join(builtin)}; this library's: "
                      f"{', '.join(names) or 'none (train one with `musicemb train`)'}"
                      + (f"; the built-in model is missing at {builtin_model_dir(name)}" if name in builtin else ""))


VECTOR_SETTINGS = ("model", "features", "window_s", "settings")
"""The parts of a model's ``config.json`` that shape its vectors (with the training recipe's ``aggregation``)."""


def settings_digest(folder: Path) -> str:
    """A digest of the settings in a model's ``config.json`` that shape its outputs (network, log-mel, window,
    track aggregation, a QBH model's settings): what was stored before a hand edit of them is recomputed, as after
    new weights."""
    return file_digest(folder / CONFIG, _settings_digest, "the model's settings")


def file_digest(path: Path, digest, what: str) -> str:
    """``digest(path, size, mtime_ns)`` (an ``lru_cache``'d function: a file is read once per version of it, though
    the app asks on every refresh); a file that cannot be read is a :class:`ConfigError` saying ``what`` it holds."""
    try:
        st = path.stat()
        return digest(str(path), st.st_size, st.st_mtime_ns)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read {what} ({e.strerror or e})") from e


@functools.lru_cache(maxsize=64)
def _settings_digest(path: str, size: int, mtime_ns: int) -> str:
    try:
        cfg = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ConfigError(f"{path}: damaged model settings ({e})") from e
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: damaged model settings (not a JSON object)")
    train = cfg.get("train") if isinstance(cfg.get("train"), dict) else {}
    part = {k: cfg.get(k) for k in VECTOR_SETTINGS} | {"aggregation": train.get("aggregation")}
    return hashlib.blake2b(json.dumps(part, sort_keys=True).encode(), digest_size=12).hexdigest()
