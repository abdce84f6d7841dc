"""``musicemb-gui [LIB]``: start the app on LIB, else on the last library opened, else on the demo library."""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from pathlib import Path


def _install_excepthook(win) -> None:
    """An exception in a GUI slot is a bug: log it, show it, keep the app running."""
    def hook(etype, value, tb):
        text = "".join(traceback.format_exception(etype, value, tb))
        logging.getLogger("musicemb.gui").error("uncaught: %s", text)
        win._job_failed("the app", f"{etype.__name__}: {value}", text)
    sys.excepthook = hook


def main(argv: list[str] | None = None) -> int:
    from PySide6.QtCore import QSettings
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from musicemb_core.resources import resources_dir
    from musicemb_core.workflows.demo import default_demo_path
    from musicemb_gui.main_window import MainWindow, log_path

    parser = argparse.ArgumentParser(prog="musicemb-gui", description="musicemb desktop app")
    parser.add_argument("lib", nargs="?", help="library folder to open")
    args, qt_args = parser.parse_known_args(argv)
    log_path().parent.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(filename=log_path(), level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = QApplication.instance() or QApplication([sys.argv[0], *qt_args])
    app.setApplicationName("musicemb")
    app.setWindowIcon(QIcon(str(resources_dir() / "icons" / "musicemb.svg")))
    settings = QSettings("musicemb", "musicemb")
    win = MainWindow(settings)
    _install_excepthook(win)
    win.show()
    if args.lib:
        win.open_library(args.lib)  # a bad folder is reported in a message box
    else:
        for lib in (settings.value("last_library"), str(default_demo_path())):
            if lib and (Path(lib) / "library.sqlite").exists():
                win.open_library(lib)
                break
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
