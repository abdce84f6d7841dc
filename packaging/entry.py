"""Entry point of the app bundle: one executable, also linked as ``musicemb-gui``; the name it was started as
(``argv[0]``, which keeps the link's name) picks the program."""

import multiprocessing
import sys
from pathlib import Path

if __name__ == "__main__":
    multiprocessing.freeze_support()  # ingest decodes in spawned processes, which re-run this executable
    if Path(sys.argv[0]).name.startswith("musicemb-gui"):
        from musicemb_gui.app import main
    else:
        from musicemb_core.cli import main
    sys.exit(main())
