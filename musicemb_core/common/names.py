"""Model names are names, never paths.

``check_model_name`` validates a name given by the user (``--name``, a model to store); ``model_key`` maps what
the user gave as ``--model`` (a name, or the path of a model folder used read-only) to the validated name under
which the library stores everything derived from that model (``embeddings/<key>``, ``index/<key>.faiss``,
``maps/<key>-<method>.npy``). Outputs are never written at a path the user gave as a model.
"""

from __future__ import annotations

import os
import re
import unicodedata

from musicemb_core.common.errors import ConfigError
from musicemb_core.common.paths import user_path

MAX_NAME = 100
#: Endings of the library's work and leftover entries beside an artefact (``embeddings/<model>.tmp``,
#: ``.shards``...): a model name never ends with one, or publishing model ``v1`` would sweep ``v1.old``'s files.
RESERVED_SUFFIXES = (".old", ".tmp", ".shards", ".build")
_ALLOWED = re.compile(r"\w([\w.+=@ -]*[\w.+=@-])?")
#: A model folder holds this file (see ``models/checkpoint.py``).
MODEL_CONFIG = "config.json"


def check_model_name(name: str, *, what: str = "model name") -> str:
    """``name`` unchanged if it is a plain name (letters, digits, spaces inside, ``_ - . + = @``; starting with a
    letter, digit or ``_``; no ``/``, ``\\``, ``..``; at most 100 characters), else :class:`ConfigError` saying why."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{what} is empty")
    reason = None
    if "/" in name or "\\" in name or os.path.isabs(name):
        reason = "contains a path separator (a name, not a path)"
    elif ".." in name:
        reason = "contains '..'"
    elif name.startswith("."):
        reason = "starts with '.'"
    elif name.lower().endswith(RESERVED_SUFFIXES):
        reason = f"ends with {name[name.rindex('.'):]!r} (kept for the library's work files)"
    elif len(name) > MAX_NAME:
        reason = f"is longer than {MAX_NAME} characters"
    elif not _ALLOWED.fullmatch(name):
        reason = "may hold only letters, digits, inner spaces and _ - . + = @, starting with a letter, digit or _"
    if reason:
        raise ConfigError(f"{what} {name!r} {reason}")
    return name


_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"))  # soft hyphen, zero-width ones
_BLANKS = re.compile(r"[\s\x00-\x1f\x7f]+")


def clean_label(text: str | None) -> str | None:
    """A label as stored: Unicode NFC (macOS folder names spell accents in two code points, and "Électro" must
    be one label whichever way it came), control characters and runs of white space one space, zero-width
    characters dropped, trimmed; None when nothing is left."""
    if text is None:
        return None
    s = _BLANKS.sub(" ", unicodedata.normalize("NFC", str(text)).translate(_INVISIBLE)).strip()
    return s or None


def is_path_like(name: str) -> bool:
    """Whether ``name`` was meant as a path (has a separator, is absolute, or starts with ``.``/``~``)."""
    return ("/" in name or "\\" in name or os.path.isabs(name) or name.startswith((".", "~")))


def model_key(model: str) -> str:
    """The validated name under which outputs derived from ``model`` are stored in a library.

    ``model`` is a model name (returned unchanged once validated) or the path of an existing model folder
    (one holding ``config.json``), which is read-only input: its key is the folder's base name, validated.
    Raises :class:`ConfigError` for anything else (``..``, a path that is not a model folder, an empty name).
    """
    if isinstance(model, str) and model and is_path_like(model):
        folder = user_path(model)
        try:
            is_model = (folder / MODEL_CONFIG).is_file()
        except OSError as e:  # a name too long, a folder without permission: not told by is_file
            raise ConfigError(f"{model}: cannot look for a model folder there ({e.strerror or e})") from None
        if not is_model:
            raise ConfigError(f"{model}: not a model folder (no {MODEL_CONFIG} there) and not a model name")
        base = folder.resolve().name
        try:
            return check_model_name(base)
        except ConfigError as e:
            raise ConfigError(f"{model}: the model folder's name cannot name its outputs: {e}") from e
    return check_model_name(model)
