"""Choose the ``comb`` tempo estimator's prior (centre, width) and fastest tempo on *tune* songs only.

Two tune sets, both different songs from ``bench_tempo_key.py``'s checks: FluidSynth songs (``fluid_songs.py``,
seeds 40000.., through FluidR3 and sf_GMbank only: TimGM6mb is reserved for evaluation and MuseScore General stays
unseen) and the in-project synthesiser's tune split (seeds 0..59, as ``bench_tempo_key.py``). Every candidate is
scored by tempo Acc1 with the estimator always answering; the table ranks them by the sum over both sets.

    .venv/bin/python bench/tempo_prior.py [--fluid 200]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.bench_tempo_key import acc, rendered, songs  # noqa: E402
from bench.common import write_results  # noqa: E402
from bench.fluid_songs import available, fluid_songs  # noqa: E402
from musicemb_core.features import tempo_key as tk  # noqa: E402

TUNE_FONTS = (Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"), Path("/usr/share/sounds/sf2/sf_GMbank.sf2"))
CENTRES = (110.0, 120.0, 130.0, 140.0, 150.0, 160.0)
WIDTHS = (1.25, 1.5, 1.75, 2.0, 2.5)
MAX_BPMS = (200.0, 220.0, 240.0)


def envelopes(split) -> list[tuple[float, np.ndarray]]:
    return [(s["bpm"], tk.onset_envelope(tk.resample_to_analysis(y, sr))) for s, y, sr in split]


def acc1(envs: list[tuple[float, np.ndarray]], **comb) -> float:
    hits = [acc(tk._interp_bpm(env, tk.comb_tempo(env, **comb), tk.SR)[0], bpm)[0] for bpm, env in envs]
    return float(np.mean(hits))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fluid", type=int, default=200, help="FluidSynth tune songs")
    args = ap.parse_args()
    if not available():
        sys.exit("fluidsynth and FluidR3 are needed: apt-get install -y fluidsynth fluid-soundfont-gm")
    with tempfile.TemporaryDirectory() as tmp:
        sets = {"fluidsynth tune": envelopes(fluid_songs(args.fluid, 40_000, Path(tmp), soundfonts=TUNE_FONTS)),
                "synthesiser tune": envelopes(rendered(songs(60, 0)))}
    rows = []
    for hi in MAX_BPMS:
        for centre in CENTRES:
            for width in WIDTHS:
                row = {"max_bpm": hi, "prior_bpm": centre, "prior_octaves": width}
                row |= {name: round(acc1(e, hi=hi, prior_bpm=centre, prior_octaves=width), 3)
                        for name, e in sets.items()}
                row["sum"] = round(sum(row[name] for name in sets), 3)
                rows.append(row)
                print(row, flush=True)
    rows.sort(key=lambda r: -r["sum"])
    shipped = (tk.COMB_MAX_BPM, tk.COMB_PRIOR_BPM, tk.COMB_PRIOR_OCTAVES)
    for r in rows:
        r["shipped"] = (r["max_bpm"], r["prior_bpm"], r["prior_octaves"]) == shipped
    print(write_results("tempo_prior", rows, notes=f"Tempo Acc1 of `comb` (always answering) on {args.fluid} "
                        "FluidSynth tune songs (FluidR3, sf_GMbank) and 60 synthesiser tune songs, best sum first."))


if __name__ == "__main__":
    main()
