"""The demo library: synthetic songs in several styles (labelled by style), rendered and imported."""

from __future__ import annotations

from pathlib import Path

from musicemb_core.common.paths import data_home
from musicemb_core.common.progress import CancelToken, JobGen, Progress
from musicemb_core.data.ingest import IngestReport, iter_ingest
from musicemb_core.data.library import Library
from musicemb_core.data.synthesis import STYLES, render_demo_corpus

N_PER_STYLE = 10
DURATION_S = 20.0


def default_demo_path() -> Path:
    return data_home() / "demo"


def iter_build_demo(root: str | Path | None = None, *, n_per_style: int = N_PER_STYLE,
                    duration_s: float = DURATION_S, cancel: CancelToken | None = None) -> JobGen[IngestReport]:
    """Render the demo songs (skipping those already on disk) and import them, labelled by style.

    Deterministic: the same songs every time. Returns the import's report.
    """
    root = Path(root) if root is not None else default_demo_path()
    yield Progress("demo", 0, None, f"rendering {len(STYLES) * n_per_style} songs in {len(STYLES)} styles")
    render_demo_corpus(root / "audio", n_per_style=n_per_style, duration_s=duration_s, random_state=0)
    with Library(root, create=True) as lib:
        return (yield from iter_ingest(lib, [root / "audio"], labels="folders", cancel=cancel))
