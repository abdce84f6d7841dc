"""``musicemb-gui [LIB]``: start the app on LIB, else on the last library opened, else on the demo library."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from musicemb_core.data.demo import default_demo_path
    from musicemb_gui.main_window import MainWindow

    parser = argparse.ArgumentParser(prog="musicemb-gui", description="musicemb desktop app")
    parser.add_argument("lib", nargs="?", help="library folder to open")
    args, qt_args = parser.parse_known_args(argv)
    app = QApplication.instance() or QApplication([sys.argv[0], *qt_args])
    settings = QSettings("musicemb", "musicemb")
    win = MainWindow(settings)
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
