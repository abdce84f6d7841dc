"""Other versions of a track that share its audio (a radio edit or extended mix, a remaster or re-release, the
same piece cut from a longer mix), found by the library's landmark fingerprints
(:mod:`musicemb_core.search.fingerprints`, built by ``embed`` and ``index``).

The landmarks of :data:`EXCERPTS` short excerpts spread over the query (read at their place in it) are matched
against every track's; a track sharing audio aligns many of them at one time offset, unrelated music only a
few. A track is a version when its aligned matches reach :data:`SHARED` of the query's landmarks and at least
:data:`MIN_MATCHES`. Chosen on the tune split (``bench/version_tune.py``: 67
real tracks of the tune games and 39 edits of them, 30-90 s excerpts re-encoded, quieter, low-passed): an
unrelated track aligned at most 0.64 % of a query's landmarks, no query got a false version at 0.5-10 %; 38 of
39 tracks found their edit at 0.5-2 % (31 at 5 %), every edit its track.

A re-arrangement or cover that shares no audio is not found this way; a melody-based search was tried and not
kept (the project README says why).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from musicemb_core.audio.decode import info, load
from musicemb_core.common.errors import AudioError
from musicemb_core.features import landmarks as lm
from musicemb_core.search.fingerprints import LandmarkIndex

SHARED = 0.02      # share of the query's landmarks a version aligns at one offset
MIN_MATCHES = 50   # and at least this many (a few seconds of shared audio)
EXCERPTS, EXCERPT_S = 8, 5.0  # the query's excerpts (a whole query up to 40 s): an edit of a fifth of a track
# holds one of them; decoding them takes a third of the time of a 3-4 min track


def query_landmarks(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Landmark hashes and frames of :data:`EXCERPTS` excerpts of :data:`EXCERPT_S` spread evenly over the audio
    file ``path`` (all of it when it is short); frames count from the file's start."""
    duration = info(path).duration_s
    if duration <= EXCERPTS * EXCERPT_S:
        y, sr = load(path, sr=lm.SR)
        return lm.landmarks(y, sr)
    hashes, frames = [], []
    for start in np.linspace(0.0, duration - EXCERPT_S, EXCERPTS):
        y, sr = load(path, sr=lm.SR, offset=float(start), duration=EXCERPT_S)
        h, t = lm.landmarks(y, sr)
        hashes.append(h)
        frames.append(t + int(round(start / lm.frame_seconds())))
    return np.concatenate(hashes), np.concatenate(frames)


def shared_audio(index: LandmarkIndex, hashes: np.ndarray, frames: np.ndarray, *,
                 exclude: set[int] = frozenset()) -> dict[int, float]:
    """{track id: share of the query's landmarks it aligns} for the tracks sharing audio with a query's landmarks
    (``hashes``, ``frames``)."""
    if not len(hashes):
        return {}
    need = max(MIN_MATCHES, SHARED * len(hashes))
    return {t: c / len(hashes) for t, c in index.match(hashes, frames).items() if c >= need and t not in exclude}


class VersionFinder:
    """Versions of a query (a library track or any audio file) among the fingerprinted tracks in ``current``
    (those whose landmarks are of their present audio)."""

    def __init__(self, index: LandmarkIndex, current: set[int]):
        self.index = index
        self.current = current

    @classmethod
    def open(cls, folder: Path, content_hashes: dict[int, str]) -> VersionFinder | None:
        """The landmarks kept in ``folder`` (a library's ``fingerprints``) for tracks with these content hashes;
        None when there are none."""
        index = LandmarkIndex.load(folder)
        if index is None:
            return None
        return cls(index, index.current_tracks(content_hashes))

    def of_file(self, path: str | Path, *, exclude: set[int] = frozenset()) -> dict[int, float]:
        """Versions of the audio in ``path`` (:func:`query_landmarks`); {} when it cannot be read."""
        try:
            found = shared_audio(self.index, *query_landmarks(path), exclude=exclude)
        except AudioError:
            return {}
        return {t: v for t, v in found.items() if t in self.current}


def versions_first(ranked: list[int], versions: dict[int, float]) -> list[int]:
    """``ranked`` with the ``versions`` moved to the front, most shared audio first."""
    return sorted(versions, key=lambda t: -versions[t]) + [t for t in ranked if t not in versions]
