"""Where shipped files live: in a PyInstaller bundle, the source checkout, or an installed wheel's data files."""

from __future__ import annotations

import sys
from pathlib import Path


def resources_dir() -> Path:
    """The ``resources`` folder (icons, default model), the first of these that exists:

    1. a PyInstaller bundle: ``sys._MEIPASS/resources``, else (``sys.frozen`` without ``_MEIPASS``)
       ``<executable's folder>/_internal/resources`` or ``<executable's folder>/resources``;
    2. beside the packages: a source checkout or an editable install;
    3. an installed wheel's data files: ``<sys.prefix>/share/musicemb/resources``.

    When none exists, the checkout location is returned so that messages name a sensible path.
    """
    here = Path(__file__).resolve().parents[1] / "resources"
    candidates = []
    if getattr(sys, "_MEIPASS", None):
        candidates.append(Path(sys._MEIPASS) / "resources")
    if getattr(sys, "frozen", False):
        exe_dir = Path(sys.executable).resolve().parent
        candidates += [exe_dir / "_internal" / "resources", exe_dir / "resources"]
    candidates += [here, Path(sys.prefix) / "share" / "musicemb" / "resources"]
    return next((c for c in candidates if c.is_dir()), here)


def builtin_model_dir(name: str = "default") -> Path:
    """The folder of a model shipped in ``resources/models`` (``default``, ``similarity``, ``qbh-default``)."""
    return resources_dir() / "models" / name


def default_model_dir() -> Path:
    return builtin_model_dir("default")


def package_version() -> str:
    """The installed distribution's version (also inside a bundle, which carries its metadata), else the source's."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("musicemb")
    except PackageNotFoundError:
        from musicemb_core import __version__

        return __version__
