"""musicemb core: audio -> embeddings -> search, maps and analysis. Never imports Qt.

Imported before torch and faiss (as the CLI and the app do), it makes their OpenMP threads sleep rather than spin
while they wait (``OMP_WAIT_POLICY=PASSIVE``, unless set already): on two busy cores a spinning thread held the
core its partner or the app's window needed, and a small training step took 10x as long; on an idle machine the
two are level (a ResNet batch: 44-47 ms either way)."""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
