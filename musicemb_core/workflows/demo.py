"""The demo library: synthetic songs in several styles (labelled by style), rendered and imported."""

from __future__ import annotations

from pathlib import Path

from musicemb_core.common.errors import LibraryError
from musicemb_core.common.paths import data_home
from musicemb_core.common.progress import CancelToken, JobGen, Progress
from musicemb_core.data.ingest import IngestReport, iter_ingest
from musicemb_core.data.library import Library
from musicemb_core.data.synthesis import STYLES, render_demo_corpus
from musicemb_core.resources import default_model_dir
from musicemb_core.workflows.ingest_embed import iter_ingest_embed, iter_search_indexes

N_PER_STYLE = 10
DURATION_S = 20.0


def default_demo_path() -> Path:
    return data_home() / "demo"


def _check_demo_folder(root: Path) -> None:
    """The demo is built in a new folder, an empty one or its own (songs rendered, library not yet made), never among
    other files, nor into a library of other tracks; a folder that cannot be made is a :class:`LibraryError` naming
    it."""
    if (root / "library.sqlite").exists():
        _check_demo_library(root)
        return
    if root.is_dir() and any(p.name != "audio" for p in root.iterdir()):
        raise LibraryError(f"{root}: a folder with other files, not a musicemb library; give a new or empty folder "
                           "for the demo")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise LibraryError(f"{root}: cannot make the demo folder ({e.strerror or e})") from e


def _check_demo_library(root: Path) -> None:
    """Refuse a library with tracks outside its ``audio`` folder: the demo songs would be mixed into them."""
    audio = (root / "audio").resolve()
    with Library(root) as lib:
        other = next((t.path for t in lib.tracks() if not Path(t.path).is_relative_to(audio)), None)
    if other is not None:
        raise LibraryError(f"{root}: a musicemb library of other tracks (e.g. {other}), not the demo; give a new or "
                           "empty folder for the demo")


def demo_built(root: str | Path) -> bool:
    """Whether the demo library at ``root`` holds every demo song (a build cancelled half-way left fewer: building
    again finishes it, skipping what is there)."""
    if not (Path(root) / "library.sqlite").exists():
        return False
    try:
        with Library(root) as lib:
            return len(lib.tracks()) >= len(STYLES) * N_PER_STYLE
    except LibraryError:
        return False


def iter_build_demo(root: str | Path | None = None, *, n_per_style: int = N_PER_STYLE,
                    duration_s: float = DURATION_S, with_embeddings: bool = True,
                    cancel: CancelToken | None = None) -> JobGen[IngestReport]:
    """Render the demo songs (skipping those already on disk), import them labelled by style, and embed them with
    the built-in models when they are present (so the app opens on a map), then build the melody index and the
    landmarks as an import with ``--embed`` does (the first hum is answered at once). Deterministic. Returns the
    import's report.
    """
    root = Path(root) if root is not None else default_demo_path()
    _check_demo_folder(root)
    yield Progress("demo", 0, None, f"rendering {len(STYLES) * n_per_style} songs in {len(STYLES)} styles")
    render_demo_corpus(root / "audio", n_per_style=n_per_style, duration_s=duration_s, random_state=0)
    with Library(root, create=True) as lib:
        if with_embeddings and (default_model_dir() / "config.json").exists():  # both spaces, in the import's decode
            report = (yield from iter_ingest_embed(lib, [root / "audio"], labels="folders", cancel=cancel)).ingest
            if not report.cancelled:
                yield from iter_search_indexes(lib, cancel=cancel)
            return report
        return (yield from iter_ingest(lib, [root / "audio"], labels="folders", cancel=cancel))
