"""``musicemb-gui [LIB]``: start the app on LIB, else on the last library opened, else on the demo library."""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import traceback
from pathlib import Path


def _install_excepthook(win) -> None:
    """An exception in a GUI slot is a bug: log it, show it, keep the app running."""
    def hook(etype, value, tb):
        text = "".join(traceback.format_exception(etype, value, tb))
        logging.getLogger("musicemb.gui").error("uncaught: %s", text)
        win._job_failed("the app", f"{etype.__name__}: {value}", text)
    sys.excepthook = hook


def _load_models_soon() -> None:
    """Import what runs the models (torch: 1.5-2 s) on a thread once the window is up: the window no longer waits
    for it, and the first spectrogram, embed or hum does not either (the window's longest pause meanwhile: 0.3 s)."""
    def load() -> None:
        try:
            import musicemb_core.inference  # noqa: F401
        except Exception:  # noqa: BLE001 - a broken install: the job that needs it says so
            logging.getLogger("musicemb.gui").exception("loading the models' code")

    threading.Thread(target=load, name="musicemb-load-models", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    from musicemb_core.resources import package_version

    parser = argparse.ArgumentParser(prog="musicemb-gui", description="musicemb desktop app")
    parser.add_argument("lib", nargs="?", help="library folder to open")
    parser.add_argument("--demo", action="store_true",
                        help="open the demo library, building it first (as a job, with progress) if absent")
    parser.add_argument("--version", action="version", version=f"musicemb-gui {package_version()}")
    parser.add_argument("--selftest", action="store_true",
                        help="open the window offscreen on LIB (default: the demo library, built if absent), click "
                             "the map, embed a second of audio; print the checks, exit 0 when all pass")
    args, qt_args = parser.parse_known_args(argv)
    if args.selftest:
        from musicemb_gui.selftest import run_selftest

        return run_selftest(args.lib)

    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from musicemb_core.resources import resources_dir
    from musicemb_core.workflows.demo import default_demo_path, demo_built
    from musicemb_gui.main_window import MainWindow, log_path

    log_path().parent.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(filename=log_path(), level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = QApplication.instance() or QApplication([sys.argv[0], *qt_args])
    app.setApplicationName("musicemb")
    app.setDesktopFileName("io.github.musicemb.MusicEmb")  # Wayland: match the menu entry and its icon
    icon = QIcon()
    for png in sorted((resources_dir() / "icons").glob("musicemb-*.png")):  # PNGs: no SVG plugin needed
        icon.addFile(str(png))
    app.setWindowIcon(icon)
    settings = QSettings("musicemb", "musicemb")
    win = MainWindow(settings)
    _install_excepthook(win)
    win.show()
    QTimer.singleShot(1500, _load_models_soon)
    if args.demo:
        demo = Path(args.lib) if args.lib else default_demo_path()
        if demo_built(demo):
            win.open_library(demo)
        else:
            win.build_demo(demo)
    elif args.lib:
        win.open_library(args.lib)  # a bad folder is reported in a message box
    else:
        for lib in (settings.value("last_library"), str(default_demo_path())):
            if lib and (Path(lib) / "library.sqlite").exists():
                win.open_library(lib)
                break
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
