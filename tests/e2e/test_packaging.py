"""Packaging: the desktop entry and AppStream metainfo are valid and agree with the project, `--version` works,
resources are found in a checkout, an installed prefix and a PyInstaller bundle, and the GUI self-test passes.
The slow test builds the app folder with PyInstaller and runs both executables from it."""

from __future__ import annotations

import configparser
import importlib.util
import io
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import tomllib

from musicemb_core import resources

ROOT = Path(__file__).resolve().parents[2]
APP_ID = "io.github.musicemb.MusicEmb"
DESKTOP = ROOT / "packaging" / f"{APP_ID}.desktop"
METAINFO = ROOT / "packaging" / f"{APP_ID}.metainfo.xml"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (scripts/setup.sh installs it as root)")
    return path


# -- desktop entry and metainfo -------------------------------------------------------------------------------
def test_desktop_entry_has_the_required_keys_and_starts_the_gui():
    cp = configparser.ConfigParser(interpolation=None, strict=True)
    cp.optionxform = str  # keys are case-sensitive
    cp.read(DESKTOP, encoding="utf-8")
    entry = cp["Desktop Entry"]
    assert entry["Type"] == "Application"
    for key in ("Name", "Comment", "Exec", "Icon", "Categories"):
        assert entry.get(key, "").strip(), key
    assert entry["Exec"].split()[0] in PROJECT["gui-scripts"]
    assert entry["Icon"] == APP_ID  # installed by build.sh as share/icons/hicolor/NxN/apps/<APP_ID>.png
    assert entry["Terminal"] == "false"
    cats = entry["Categories"].split(";")
    assert cats[-1] == "" and {"AudioVideo", "Audio"} <= set(cats)


def test_desktop_entry_passes_desktop_file_validate():
    r = subprocess.run([_tool("desktop-file-validate"), str(DESKTOP)], capture_output=True, text=True)
    assert r.returncode == 0 and not r.stdout.strip(), r.stdout + r.stderr


def test_metainfo_agrees_with_the_project():
    root = ET.parse(METAINFO).getroot()
    assert root.tag == "component" and root.get("type") == "desktop-application"
    text = {tag: (root.findtext(tag) or "").strip() for tag in
            ("id", "name", "summary", "metadata_license", "project_license", "launchable")}
    assert text["id"] == APP_ID
    assert text["launchable"] == DESKTOP.name
    assert text["project_license"] == PROJECT["license"]["text"]
    assert text["metadata_license"] in ("CC0-1.0", "FSFAP", "MIT")
    assert text["name"] and 0 < len(text["summary"]) <= 80 and not text["summary"].endswith(".")
    assert root.find("description/p") is not None
    assert {b.text for b in root.findall("provides/binary")} == set(PROJECT["scripts"]) | set(PROJECT["gui-scripts"])
    assert root.find("releases/release").get("version") == PROJECT["version"]
    assert root.find("content_rating") is not None


def test_metainfo_passes_appstreamcli_validate():
    r = subprocess.run([_tool("appstreamcli"), "validate", "--no-net", str(METAINFO)], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "E:" not in r.stdout and "W:" not in r.stdout, r.stdout


def test_icons_are_rendered_at_every_size():
    from PIL import Image  # matplotlib's dependency

    for n in (16, 24, 32, 48, 64, 128, 256, 512):
        with Image.open(ROOT / "resources" / "icons" / f"musicemb-{n}.png") as im:
            assert im.size == (n, n) and im.mode == "RGBA"
            alpha = np.asarray(im)[..., 3]
        assert alpha[0, 0] == 0 and alpha[n // 2, n // 2] == 255  # transparent corner, opaque middle


def _pruning():
    spec = importlib.util.spec_from_file_location("pruning", ROOT / "packaging" / "pruning.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_libraries_only_a_dropped_plugin_needed_are_dropped_with_it():
    """On a desktop with GTK the GTK theme plugin (dropped) brings libgtk-3 and libgdk-3, which link to cairo
    (dropped): they go too, down the chain, instead of stopping the build; a kept plugin, extension or needed
    library that links to a dropped one still stops it."""
    pruning = _pruning()
    links = {"gtk3": {"libgtk-3.so.0", "libgdk-3.so.0"}, "gtk": {"libgdk-3.so.0", "libcairo.so.2"},
             "gdk": {"libcairo.so.2", "libpango-1.0.so.0"}, "cairo": set(), "xcb": {"libxcb.so.1"}, "xcblib": set()}
    binaries = [("PySide6/Qt/plugins/platformthemes/libqgtk3.so", "gtk3", "BINARY"),
                ("libgtk-3.so.0", "gtk", "BINARY"), ("libgdk-3.so.0", "gdk", "BINARY"),
                ("libcairo.so.2", "cairo", "BINARY"), ("PySide6/Qt/plugins/platforms/libqxcb.so", "xcb", "BINARY"),
                ("libxcb.so.1", "xcblib", "BINARY")]
    drop = ["*/plugins/platformthemes/libqgtk3.so", "libcairo.so*"]
    kept = pruning.prune(binaries, drop, links.__getitem__)
    assert [b[0] for b in kept] == ["PySide6/Qt/plugins/platforms/libqxcb.so", "libxcb.so.1"]
    links["xcb"] = {"libxcb.so.1", "libgdk-3.so.0"}  # a kept plugin needs libgdk-3, which needs cairo
    with pytest.raises(pruning.BrokenLink, match=r"libgdk-3.so.0 links to dropped \['libcairo.so.2'\]"):
        pruning.prune(binaries, drop, links.__getitem__)
    links["xcb"] = {"libxcb.so.1", "libcairo.so.2"}  # a plugin is never dropped for a link: the build stops
    with pytest.raises(pruning.BrokenLink, match="libqxcb.so links to dropped"):
        pruning.prune(binaries, drop, links.__getitem__)


def test_the_package_extra_pins_pyinstaller():
    assert any(r.startswith("pyinstaller==") for r in PROJECT["optional-dependencies"]["package"])


# -- version and resources ------------------------------------------------------------------------------------
def test_version_flags_print_the_project_version():
    for exe in ("musicemb", "musicemb-gui"):
        r = subprocess.run([str(BIN / exe), "--version"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == f"{exe} {PROJECT['version']}"


def test_resources_found_in_the_checkout():
    assert resources.resources_dir() == ROOT / "resources"
    assert (resources.default_model_dir() / "config.json").is_file()


def _layout(folder: Path) -> Path:
    res = folder / "resources"
    (res / "icons").mkdir(parents=True)
    return res


def test_resources_found_in_a_frozen_bundle(tmp_path, monkeypatch):
    internal = tmp_path / "musicemb" / "_internal"
    res = _layout(internal)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(internal), raising=False)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "musicemb" / "musicemb-gui"))
    assert resources.resources_dir() == res  # before the checkout, which also exists
    assert resources.default_model_dir() == res / "models" / "default"
    monkeypatch.delattr(sys, "_MEIPASS")  # frozen without _MEIPASS: found beside the executable
    assert resources.resources_dir() == res


def test_resources_found_in_an_installed_prefix(tmp_path, monkeypatch):
    site = tmp_path / "lib" / "python3" / "site-packages" / "musicemb_core"
    site.mkdir(parents=True)
    monkeypatch.setattr(resources, "__file__", str(site / "resources.py"))
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    assert resources.resources_dir() == site.parent / "resources"  # none yet: the package's own location
    res = _layout(tmp_path / "share" / "musicemb")
    assert resources.resources_dir() == res


# -- self-test ------------------------------------------------------------------------------------------------
def _env(tmp_path: Path) -> dict:
    return {**os.environ, "MUSICEMB_HOME": str(tmp_path / "home"), "QT_QPA_PLATFORM": "offscreen"}


@pytest.fixture
def small_library(tmp_path):
    """Eight one-label tracks of 6 s, imported and embedded with the default model."""
    from musicemb_core.common.progress import drive
    from musicemb_core.data.ingest import iter_ingest
    from musicemb_core.data.library import Library
    from musicemb_core.inference import iter_embed

    sr, t = 16000, np.arange(6 * 16000) / 16000
    for i in range(8):
        label = ("low", "high")[i % 2]
        (tmp_path / "audio" / label).mkdir(parents=True, exist_ok=True)
        f0 = (110.0 if label == "low" else 1760.0) * (1 + 0.05 * i)
        sf.write(tmp_path / "audio" / label / f"t{i}.wav", 0.3 * np.sin(2 * np.pi * f0 * t * (1 + 0.02 * t)), sr)
    with Library(tmp_path / "lib", create=True) as lib:
        drive(iter_ingest(lib, [tmp_path / "audio"], labels="folders", jobs=1))
        drive(iter_embed(lib))
    return tmp_path / "lib"


def test_gui_selftest_passes_on_a_library(small_library, tmp_path, monkeypatch, qapp):
    """In this process (the `--selftest` flag itself is run as a command below and from the built folder)."""
    from musicemb_gui.selftest import run_selftest

    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    out = io.StringIO()
    assert run_selftest(small_library, out=out) == 0, out.getvalue()
    lines = out.getvalue().splitlines()
    for name in ("version", "resources", "library", "window", "map", "click", "neighbours", "spectrum", "embed"):
        assert any(line.startswith(f"selftest: ok   {name}") for line in lines), (name, out.getvalue())
    assert "pca map of 16 segments" in out.getvalue()  # 8 tracks x 2 windows of 3 s
    assert lines[-1] == "selftest: all checks passed"


def test_gui_selftest_fails_on_a_folder_that_is_not_a_library(tmp_path):
    pytest.importorskip("PySide6")
    r = subprocess.run([str(BIN / "musicemb-gui"), "--selftest", str(tmp_path)], capture_output=True, text=True,
                       timeout=120, env=_env(tmp_path))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "selftest: FAIL library" in r.stdout and r.stdout.splitlines()[-1] == "selftest: FAILED: library"


# -- the built folder (slow: PyInstaller takes minutes) -------------------------------------------------------
@pytest.mark.slow
@pytest.mark.timeout(3600)  # the build alone takes 8 minutes on 2 busy cores
def test_built_folder_runs_the_cli_and_the_gui_selftest(tmp_path):
    pytest.importorskip("PyInstaller")
    r = subprocess.run(["bash", str(ROOT / "packaging" / "build.sh")], capture_output=True, text=True, cwd=ROOT,
                       timeout=3600)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    app = ROOT / "dist" / "musicemb"
    env = _env(tmp_path)
    for exe in ("musicemb", "musicemb-gui"):  # one executable; the name it is started as picks the program
        v = subprocess.run([str(app / exe), "--version"], capture_output=True, text=True, env=env, timeout=120)
        assert v.returncode == 0 and v.stdout.strip() == f"{exe} {PROJECT['version']}", v.stdout + v.stderr
    # the demo library is built by the bundle itself (synthesis, ingest in spawned processes, embedding)
    s = subprocess.run([str(app / "musicemb-gui"), "--selftest"], capture_output=True, text=True, env=env,
                       timeout=600)
    assert s.returncode == 0, s.stdout + s.stderr
    assert "selftest: ok   demo" in s.stdout and "bundle" in s.stdout
    assert s.stdout.splitlines()[-1] == "selftest: all checks passed"
    sr = 22050
    sf.write(tmp_path / "tone.wav", 0.3 * np.sin(2 * np.pi * 440 * np.arange(2 * sr) / sr), sr)
    f = subprocess.run([str(app / "musicemb"), "features", str(tmp_path / "tone.wav"), "--out",
                        str(tmp_path / "f.csv")], capture_output=True, text=True, env=env, timeout=300)
    assert f.returncode == 0 and (tmp_path / "f.csv").read_text().count("\n") == 2, f.stdout + f.stderr  # librosa
    i = subprocess.run([str(app / "install.sh"), str(tmp_path / "prefix")], capture_output=True, text=True,
                       timeout=300)
    assert i.returncode == 0, i.stdout + i.stderr
    desktop = tmp_path / "prefix" / "share" / "applications" / DESKTOP.name
    assert f"Exec={tmp_path / 'prefix' / 'lib' / 'musicemb' / 'musicemb-gui'}" in desktop.read_text()
    assert (tmp_path / "prefix" / "share" / "icons" / "hicolor" / "256x256" / "apps" / f"{APP_ID}.png").is_file()
    for exe in ("musicemb", "musicemb-gui"):
        v = subprocess.run([str(tmp_path / "prefix" / "bin" / exe), "--version"], capture_output=True, text=True)
        assert v.returncode == 0 and v.stdout.strip() == f"{exe} {PROJECT['version']}", v.stdout + v.stderr
