"""The models a library can show its segments with, and the one it uses: the built-in spaces and the models
trained in it (with strategy, date, validation figure, whether training finished, and what is wrong with its files
if they are damaged), and the active model remembered in the catalogue."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

from musicemb_core.common.errors import ConfigError, MusicEmbError
from musicemb_core.data import layout
from musicemb_core.data.library import Library
from musicemb_core.models import checkpoint as ckpt
from musicemb_core.resources import builtin_model_dir
from musicemb_core.stored_vectors import DEFAULT_MODEL, SIMILARITY_MODEL, builtin_models

ACTIVE_KEY = "active_model"
BUILTIN_ROLES = {DEFAULT_MODEL: "built-in fingerprint (identify)",
                 SIMILARITY_MODEL: "built-in similarity (maps, neighbours)"}
UNFINISHED = ("cancelled", "failed", "running")  # run statuses that leave a model partly trained


@dataclass(frozen=True)
class ModelEntry:
    name: str
    strategy: str
    created_at: float | None  # None for a built-in model
    validation: str           # the best validation figure its config stores ("val acc 0.912"), "" if none
    embedded: bool            # the library has vectors of it
    partial: str              # why training did not finish ("cancelled after 1 of 200 epochs"), "" if it did
    problem: str = ""         # why its files cannot be used (one line naming the file), "" if they can

    @property
    def builtin(self) -> bool:
        return self.created_at is None


def validation_figure(metrics: dict) -> str:
    """The headline validation number of a model's stored metrics."""
    best, tune = (v if isinstance(v, dict) else {} for v in (metrics.get("best"), metrics.get("tune")))
    for key, name in (("val_acc", "val acc"), ("svm_val_acc", "SVM val acc"), ("val_loss", "val loss")):
        if isinstance(best.get(key), int | float):
            return f"{name} {best[key]:.3f}"
    return f"style 1-NN {tune['tune_style_1nn']:.3f}" if isinstance(tune.get("tune_style_1nn"), float) else ""


def _partial(lib: Library, name: str, info: ckpt.ModelInfo) -> str:
    """Why the run that saved the model did not finish ("" if it did): the run its metrics name, else (a model saved
    before they named it) the last run of its name; a later run that saved nothing (cancelled, failed) is not it."""
    runs = lib.runs(name)
    run = next((r for r in runs if r["id"] == info.metrics.get("run")), runs[-1] if runs else None)
    if run is None or run["status"] not in UNFINISHED:
        return ""
    status, done, planned = run["status"], len(run["history"]), info.train.get("epochs")
    if status == "running":
        return f"training not finished ({done} of {planned} epochs)"
    return f"{status} after {done} of {planned} epochs" if planned else status


def list_models(lib: Library) -> list[ModelEntry]:
    """The built-in spaces, then the library's own models oldest first (query-by-humming models, which embed
    hums rather than segments, are left out); a model whose files are damaged is listed with its ``problem``."""
    embedded = set(layout.embedding_models(lib))
    builtin = [ModelEntry(n, BUILTIN_ROLES.get(n, "built-in"), None, "", n in embedded, "")
               for n in builtin_models() if (builtin_model_dir(n) / ckpt.CONFIG).exists()]
    created = {m["name"]: m["created_at"] for m in lib.models()}
    own = []
    for folder in (p for p in (lib.root / "models").glob("*") if (p / ckpt.CONFIG).exists()):
        if folder.name in builtin_models():
            continue
        when = created.get(folder.name) or (folder / ckpt.CONFIG).stat().st_mtime
        try:
            info = ckpt.read_info(folder, encoder=False)
            if info.strategy != "qbh":
                ckpt.check_files(folder)
        except MusicEmbError as e:
            if not _older_qbh(folder):
                own.append(ModelEntry(folder.name, "?", when, "", folder.name in embedded, "", str(e)))
            continue
        if info.strategy == "qbh":
            continue
        own.append(ModelEntry(folder.name, info.strategy, when, validation_figure(info.metrics),
                              folder.name in embedded, _partial(lib, folder.name, info)))
    return builtin + sorted(own, key=lambda e: (e.created_at, e.name))


def _older_qbh(folder: Path) -> bool:
    """Whether ``folder`` is a query-by-humming model in the older layout (``{"kind": "qbh"}``)."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        return json.loads((folder / ckpt.CONFIG).read_text("utf-8")).get("kind") == "qbh"
    return False


def active_model(lib: Library) -> str:
    """The model the library was last shown with (the similarity space when none was chosen, or it is gone or
    damaged)."""
    name = lib.get_meta(ACTIVE_KEY)
    return name if name and any(e.name == name and not e.problem for e in list_models(lib)) else SIMILARITY_MODEL


def set_active_model(lib: Library, name: str) -> ModelEntry:
    """Remember ``name`` as the library's model (where its catalogue is writable); a :class:`ConfigError` for a
    model it does not have, or whose files are damaged."""
    entry = next((e for e in list_models(lib) if e.name == name), None)
    if entry is None:
        raise ConfigError(f"no model {name!r} in {lib.root / 'models'}")
    if entry.problem:
        raise ConfigError(entry.problem)
    if not lib.read_only:
        lib.set_meta(ACTIVE_KEY, name)
    return entry
