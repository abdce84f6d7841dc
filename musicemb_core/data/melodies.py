"""Monophonic melodies from the music21 corpus, by collection, with the training/evaluation split enforced.

DESIGN.md ("Query by humming") fixes which collections may train models and which are kept for evaluation:
training uses ``ryansMammoth``, the German Essen folksongs and generated melodies; Bach chorales, O'Neill's
1850, Aird's Airs and every other Essen collection are reserved for evaluation (a model evaluated on melodies it
learnt from measures memory, not search). :func:`check_training` refuses anything else, and every training load
goes through it.

A melody is a :class:`Melody`: MIDI pitches with onsets and durations in beats (quarter notes); rests are the gaps
between notes. music21 parses about 30 tunes a second, so parsed collections are cached as ``.npz`` files.
"""

from __future__ import annotations

import fnmatch
import json
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicemb_core.common.errors import ConfigError
from musicemb_core.common.paths import atomic_path, data_home
from musicemb_core.common.progress import CancelToken, JobGen, Progress, drive

_GERMAN_ESSEN = ("altdeu", "ballad", "boehme", "dva", "erk", "kinder")
TRAINING_COLLECTIONS: tuple[str, ...] = (
    "ryansMammoth", *(f"essenFolksong/{p}" for p in _GERMAN_ESSEN), "generated")
"""Collections that models and the demo may learn from."""
RESERVED_COLLECTIONS: tuple[str, ...] = (
    "bach", "oneills1850", "airdsAirs", *(f"essenFolksong/{p}" for p in (
        "han", "lux", "fink", "zuccal", "irl", "lot", "folkHaydn", "variant")))
"""Collections kept for evaluation only (Essen: every non-German collection of the corpus)."""

_PATTERNS = {"ryansMammoth": "ryansMammoth/*.abc", "bach": "bach/bwv*", "oneills1850": "oneills1850/*.abc",
             "airdsAirs": "airdsAirs/*.abc"}
_CACHE_VERSION = 1


@dataclass(frozen=True)
class Melody:
    """One tune: ``pitch`` (n,) int MIDI, ``onset`` and ``duration`` (n,) float in beats, sorted by onset.

    ``name`` is ``collection/file#index`` (or ``generated#i``); ``title`` as the score gives it.
    """

    name: str
    title: str
    pitch: np.ndarray
    onset: np.ndarray
    duration: np.ndarray

    def __len__(self) -> int:
        return len(self.pitch)

    @property
    def beats(self) -> float:
        """Length in beats, from the first onset to the end of the last note."""
        return float(self.onset[-1] + self.duration[-1] - self.onset[0]) if len(self) else 0.0

    def as_sequence(self, *, transpose: int = 0) -> list[tuple[int, float]]:
        """(MIDI pitch, duration in beats) with rests as pitch -1: the ``melody`` argument of ``render_song``."""
        seq: list[tuple[int, float]] = []
        for i in range(len(self)):
            if i and (gap := self.onset[i] - self.onset[i - 1] - self.duration[i - 1]) > 1e-6:
                seq.append((-1, float(gap)))
            seq.append((int(self.pitch[i]) + transpose, float(self.duration[i])))
        return seq


def collection_of(relpath: str) -> str | None:
    """The collection of a corpus-relative path (``essenFolksong/han1.abc`` -> ``essenFolksong/han``), if any."""
    relpath = relpath.replace("\\", "/")
    for name in TRAINING_COLLECTIONS + RESERVED_COLLECTIONS:
        if fnmatch.fnmatch(relpath, _pattern(name)):
            return name
    return None


def is_reserved(relpath: str) -> bool:
    """True for a corpus file of a reserved collection, or any Essen file outside the German collections."""
    relpath = relpath.replace("\\", "/")
    coll = collection_of(relpath)
    if coll in RESERVED_COLLECTIONS:
        return True
    return relpath.startswith("essenFolksong/") and coll not in TRAINING_COLLECTIONS


def check_training(collections: Iterable[str]) -> list[str]:
    """Return ``collections`` as a list if every one may be used for training; raise :class:`ConfigError` if not."""
    out = list(collections)
    for c in out:
        if c in RESERVED_COLLECTIONS or (c not in TRAINING_COLLECTIONS and is_reserved(c)):
            raise ConfigError(f"melody collection {c!r} is reserved for evaluation (DESIGN.md, Query by humming); "
                              f"training may use: {', '.join(TRAINING_COLLECTIONS)}")
        if c not in TRAINING_COLLECTIONS:
            raise ConfigError(f"unknown training collection {c!r}; training may use: {', '.join(TRAINING_COLLECTIONS)}")
    return out


def _pattern(name: str) -> str:
    return _PATTERNS.get(name, f"{name}*.abc")


def corpus_root() -> Path:
    import music21

    return Path(music21.__file__).parent / "corpus"


def corpus_files(collection: str) -> list[str]:
    """Corpus-relative paths of a collection's files, sorted."""
    if collection not in TRAINING_COLLECTIONS + RESERVED_COLLECTIONS or collection == "generated":
        raise ConfigError(f"no corpus collection {collection!r}; known: "
                          f"{', '.join(c for c in TRAINING_COLLECTIONS + RESERVED_COLLECTIONS if c != 'generated')}")
    root = corpus_root()
    return sorted(p.relative_to(root).as_posix() for p in root.glob(_pattern(collection)) if p.is_file())


def parse_file(path: str | Path, *, relpath: str = "") -> list[Melody]:
    """Melodies of one score file (every tune of an ABC opus): the soprano or first part, ties merged, chords reduced to
    their top note, grace notes dropped."""
    import music21

    try:
        parsed = music21.converter.parse(str(path))
    except Exception as e:  # music21 raises many kinds on malformed files
        raise ConfigError(f"{path}: music21 cannot parse it ({e})") from e
    scores = list(parsed.scores) if isinstance(parsed, music21.stream.Opus) else [parsed]
    out = []
    for i, score in enumerate(scores):
        parts = list(score.parts) or [score]
        sopranos = [p for p in parts if "soprano" in (p.partName or "").lower()]
        events: dict[float, tuple[int, float]] = {}
        for el in (sopranos or parts)[0].stripTies().flatten().notes:
            if isinstance(el, music21.harmony.Harmony) or el.quarterLength <= 0:
                continue
            top = max(p.midi for p in el.pitches)
            t = float(el.offset)
            if t not in events or top > events[t][0]:
                events[t] = (top, float(el.quarterLength))
        if not events:
            continue
        onsets = np.array(sorted(events), dtype=np.float32)
        pitch = np.array([events[t][0] for t in sorted(events)], dtype=np.int16)
        dur = np.array([events[t][1] for t in sorted(events)], dtype=np.float32)
        dur[:-1] = np.minimum(dur[:-1], np.diff(onsets))  # overlapping voices: cut at the next onset
        title = (score.metadata.title if score.metadata and score.metadata.title else "") or ""
        out.append(Melody(f"{relpath or Path(path).name}#{i}", title, pitch, onsets - onsets[0], dur))
    return out


def _cache_path(collection: str, cache_dir: Path | None) -> Path:
    folder = Path(cache_dir) if cache_dir is not None else data_home() / "cache" / "melodies"
    return folder / f"{collection.replace('/', '_')}.npz"


def _save(path: Path, melodies: list[Melody]) -> None:
    lengths = np.array([len(m) for m in melodies], dtype=np.int64)
    meta = {"version": _CACHE_VERSION, "names": [m.name for m in melodies], "titles": [m.title for m in melodies]}
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, lengths=lengths, meta=np.array(json.dumps(meta)),
                            pitch=np.concatenate([m.pitch for m in melodies]) if melodies else np.zeros(0, np.int16),
                            onset=np.concatenate([m.onset for m in melodies]) if melodies else np.zeros(0, np.float32),
                            duration=np.concatenate([m.duration for m in melodies]) if melodies
                            else np.zeros(0, np.float32))


def _load(path: Path) -> list[Melody] | None:
    """The melodies cached at ``path``; None when it is of another version or damaged (parsed again)."""
    try:
        with np.load(path) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("version") != _CACHE_VERSION:
                return None
            bounds = np.concatenate([[0], np.cumsum(z["lengths"])])
            p, o, d = z["pitch"], z["onset"], z["duration"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, zlib.error):  # bytes overwritten: bad CRC, bad data
        return None
    return [Melody(n, t, p[a:b], o[a:b], d[a:b]) for n, t, a, b in
            zip(meta["names"], meta["titles"], bounds[:-1], bounds[1:], strict=True)]


def iter_load_collection(collection: str, *, purpose: str = "train", cache_dir: str | Path | None = None,
                         min_notes: int = 8, cancel: CancelToken | None = None) -> JobGen[list[Melody]]:
    """Melodies of one collection with at least ``min_notes`` notes, parsed once and then read from the cache.

    ``purpose``: ``"train"`` (reserved collections refused) or ``"evaluate"`` (any corpus collection).
    """
    if purpose not in ("train", "evaluate"):
        raise ConfigError(f"purpose must be 'train' or 'evaluate', got {purpose!r}")
    if purpose == "train":
        check_training([collection])
    if collection == "generated":
        raise ConfigError("generated melodies are made by generated_melodies(), not loaded from the corpus")
    cancel = cancel or CancelToken()
    path = _cache_path(collection, Path(cache_dir) if cache_dir else None)
    melodies = _load(path) if path.exists() else None
    if melodies is None:
        files = corpus_files(collection)
        melodies = []
        for k, rel in enumerate(files):
            cancel.check()
            if purpose == "train" and is_reserved(rel):
                raise ConfigError(f"{rel}: reserved for evaluation; refusing to train on it")
            yield Progress("melodies", k, len(files), rel)
            melodies += parse_file(corpus_root() / rel, relpath=rel)
        _save(path, melodies)
        yield Progress("melodies", len(files), len(files), f"{len(melodies)} melodies cached in {path}")
    return [m for m in melodies if len(m) >= min_notes]


def load_collections(collections: Iterable[str], *, purpose: str = "train", cache_dir: str | Path | None = None,
                     min_notes: int = 8) -> list[Melody]:
    """Melodies of several collections (see :func:`iter_load_collection`); ``generated`` is not a corpus one."""
    out: list[Melody] = []
    for c in collections:
        out += drive(iter_load_collection(c, purpose=purpose, cache_dir=cache_dir, min_notes=min_notes))
    return out


def generated_melodies(n: int, *, n_notes: int = 32, random_state: int = 0) -> list[Melody]:
    """``n`` random-walk melodies from :func:`musicemb_core.data.synthesis.generate_melody` (training material)."""
    from musicemb_core.data.synthesis import generate_melody

    out = []
    for i in range(n):
        rng = np.random.default_rng([random_state, i])
        scale = str(rng.choice(["major", "minor", "dorian", "mixolydian"]))
        seq = generate_melody(rng, n_notes=n_notes, scale=scale)
        dur = np.array([d for _, d in seq], dtype=np.float32)
        onset = np.concatenate([[0.0], np.cumsum(dur)[:-1]]).astype(np.float32)
        out.append(Melody(f"generated#{i}", "", np.array([p for p, _ in seq], np.int16), onset, dur))
    return out
