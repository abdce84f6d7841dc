"""Where shipped files live: in the repo or installed package, or inside a PyInstaller bundle."""

from __future__ import annotations

import sys
from pathlib import Path


def resources_dir() -> Path:
    """The ``resources`` folder: beside the packages (source checkout, editable install) or in a frozen bundle."""
    candidates = [Path(getattr(sys, "_MEIPASS", "")) / "resources", Path(__file__).resolve().parents[1] / "resources",
                  Path(sys.prefix) / "share" / "musicemb" / "resources"]
    for c in candidates:
        if c.is_dir():
            return c
    return candidates[1]


def default_model_dir() -> Path:
    return resources_dir() / "models" / "default"
