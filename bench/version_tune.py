"""Choose when ``similar`` calls a track another version of the query (``musicemb_core.search.versions``: shared
audio by landmarks) on the *tune* split: the similarity split's tune games (bench/similarity_data.py).

- Different real tracks of those games share no recording: every version found among them is a false one
  (the share of a query's landmarks that its best other track aligns is reported too);
- edits made of real tracks (30-90 s excerpts, 4 dB down, low-passed at 3-8 kHz, re-encoded as low-bitrate
  MP3 or Ogg, with the shared re-ID recipe's encoder), queried as files, must find their track.

    .venv/bin/python bench/version_tune.py [--edits 40] [--work /tmp/musicemb-version-tune]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import butter, sosfilt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import SHARED_BENCH, write_results  # noqa: E402
from bench.similarity_data import tracks  # noqa: E402
from musicemb_core.audio.decode import load  # noqa: E402
from musicemb_core.common.errors import AudioError  # noqa: E402
from musicemb_core.common.progress import drive  # noqa: E402
from musicemb_core.data.ingest import iter_ingest  # noqa: E402
from musicemb_core.data.library import Library  # noqa: E402
from musicemb_core.search import versions  # noqa: E402
from musicemb_core.search.fingerprints import iter_fingerprint, landmark_folder  # noqa: E402

sys.path.insert(0, str(SHARED_BENCH))
import make_reid  # noqa: E402

SHARES = (0.005, 0.01, 0.02, 0.05, 0.1)


def make_edit(y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A radio-edit-like copy of mono ``y`` at ``sr`` (= the re-ID recipe's rate)."""
    span = min(len(y), int(rng.uniform(30, 90) * sr))
    a = int(rng.integers(0, len(y) - span + 1))
    part = y[a:a + span] * 10 ** (-4 / 20)
    part = sosfilt(butter(4, rng.uniform(3000, 8000), fs=sr, output="sos"), part)
    codec, level = ("mp3", 0.9) if rng.random() < 0.5 else ("ogg", 1.0)
    return make_reid.codec_roundtrip(part, codec, level).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--edits", type=int, default=40)
    ap.add_argument("--work", type=Path, default=Path("/tmp/musicemb-version-tune"))
    args = ap.parse_args()
    rows = tracks("tune")
    sr = make_reid.SR
    rng = np.random.default_rng(5)
    originals = rng.choice(len(rows), min(args.edits, len(rows)), replace=False)
    edit_of = {}  # edit file -> its track's file
    (args.work / "edits").mkdir(parents=True, exist_ok=True)
    for k in originals:
        src = rows[int(k)]["abspath"]
        f = args.work / "edits" / f"edit-{rows[int(k)]['track_id']}.wav"
        if not f.exists():
            try:
                sf.write(f, make_edit(load(src, sr=sr)[0], sr, rng), sr)
            except AudioError as e:  # the import leaves such a file out too
                print(f"skipped: {e}", file=sys.stderr)
                continue
        edit_of[str(f.resolve())] = str(Path(src).resolve())
    with Library(args.work / "lib", create=True) as lib:
        drive(iter_ingest(lib, [r["abspath"] for r in rows] + list(edit_of)))
        drive(iter_fingerprint(lib))
        tid = {t.path: t.id for t in lib.tracks()}
        finder = versions.VersionFinder.open(landmark_folder(lib), {t.id: t.content_hash for t in lib.tracks()})
    pair = {tid[e]: tid[o] for e, o in edit_of.items()} | {tid[o]: tid[e] for e, o in edit_of.items()}
    edits = {tid[e] for e in edit_of}
    share, n_marks = {}, {}  # query -> {other track: share of the query's landmarks aligned at one offset}
    for path, t in tid.items():
        h, f = versions.query_landmarks(path)
        n_marks[t] = len(h)
        share[t] = {k: c / max(len(h), 1) for k, c in finder.index.match(h, f).items() if k != t}
    table = []
    for cut in SHARES:
        def found(t, cut=cut):
            return {k for k, v in share[t].items() if v >= cut and v * n_marks[t] >= versions.MIN_MATCHES}
        false = sum(bool(found(t) - {pair.get(t)}) for t in tid.values())
        hit_edit = sum(pair[t] in found(t) for t in pair if t not in edits)
        hit_orig = sum(pair[t] in found(t) for t in edits)
        table.append({"share of the query's landmarks": cut, "queries with a false version": f"{false}/{len(tid)}",
                      "tracks finding their edit": f"{hit_edit}/{len(edit_of)}",
                      "edits finding their track": f"{hit_orig}/{len(edit_of)}"})
    unrelated = [v for t in tid.values() for k, v in share[t].items() if k != pair.get(t)]
    related = [share[t].get(pair[t], 0.0) for t in pair]
    write_results("version_tune", table, notes=(
        f"Tune split: {len(rows)} real tracks of the tune games ({', '.join(sorted({r['label'] for r in rows}))}) "
        f"and {len(edit_of)} edits of them in one library; each query read as `similar` reads it "
        f"({versions.EXCERPTS} excerpts of {versions.EXCERPT_S:g} s). Best share aligned by an unrelated track: "
        f"max {max(unrelated, default=0):.4f}; by a track and its edit: min {min(related):.3f}, median "
        f"{np.median(related):.3f}. At least {versions.MIN_MATCHES} matches throughout; shipped share "
        f"{versions.SHARED}."))


if __name__ == "__main__":
    main()
