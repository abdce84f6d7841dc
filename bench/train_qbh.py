"""Recipe of the shipped query-by-humming model (``resources/models/qbh-default``).

Renders songs and hums from melodies of the training collections only (ryansMammoth, German Essen, generated;
see DESIGN.md): each drawn melody once by the in-project synthesiser and once by FluidSynth with a General MIDI
soundfont (FluidR3_GM and MuseScore_General_Lite in turn; ``musicemb_core.data.soundfont_songs``), then trains
the melody extractor, then the hum and song encoders, on CPU. Deterministic for a seed (rendering and training),
up to thread scheduling in PyTorch reductions. Needs
``apt-get install -y fluidsynth fluid-soundfont-gm musescore-general-soundfont-small`` (TimGM6mb is refused:
reserved for evaluation).

    nice .venv/bin/python bench/train_qbh.py [--out resources/models/qbh-default] [--jobs 2] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from musicemb_core.common.progress import drive  # noqa: E402
from musicemb_core.data import soundfont_songs as sfs  # noqa: E402
from musicemb_core.resources import resources_dir  # noqa: E402
from musicemb_core.training.qbh_fit import QBHTrainConfig, iter_train_qbh  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=resources_dir() / "models" / "qbh-default")
    ap.add_argument("--jobs", type=int, default=2, help="processes rendering songs and hums")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--extractor-steps", type=int, default=4000, help="4000 (chosen on the tune split: "
                    "bench/qbh_tune.py) with the soundfont songs; 2000 without")
    ap.add_argument("--encoder-steps", type=int, default=QBHTrainConfig().encoder_steps)
    ap.add_argument("--soundfont-songs", type=int, default=1100, help="songs rendered by FluidSynth (0: none)")
    ap.add_argument("--poly-songs", type=int, default=600, help="more FluidSynth songs in the 'poly' figures: close "
                    "four-part chorales with moving inner voices, arpeggios crossing into the melody's register")
    ap.add_argument("--soundfonts", nargs="+", default=[str(p) for p in sfs.find_soundfonts()])
    args = ap.parse_args()
    if args.soundfont_songs and (not args.soundfonts or not sfs.fluidsynth_available()):
        raise SystemExit("the recipe renders with FluidSynth and " + ", ".join(sfs.TRAINING_SOUNDFONTS) + ": apt-get "
                         "install -y fluidsynth fluid-soundfont-gm musescore-general-soundfont-small")
    if args.soundfont_songs and len(args.soundfonts) < len(sfs.TRAINING_SOUNDFONTS):
        print(f"warning: the recipe renders with {', '.join(sfs.TRAINING_SOUNDFONTS)}; only {args.soundfonts} found",
              file=sys.stderr)
    tc = QBHTrainConfig(jobs=args.jobs, seed=args.seed, extractor_steps=args.extractor_steps,
                        encoder_steps=args.encoder_steps, n_soundfont_songs=args.soundfont_songs,
                        n_poly_songs=args.poly_songs,
                        soundfonts=tuple(args.soundfonts) if args.soundfont_songs else ())
    t0 = time.time()

    def log(ev):
        if ev.done % 100 == 0 or ev.done == ev.total:
            stats = " ".join(f"{k}={v:.3f}" for k, v in ev.info.items() if isinstance(v, float))
            print(f"[{time.time() - t0:6.0f} s] {ev.stage} {ev.message} {ev.done}/{ev.total} {stats}",
                  file=sys.stderr, flush=True)

    info = drive(iter_train_qbh(args.out, train=tc), log)
    print(f"done in {(time.time() - t0) / 60:.1f} min -> {args.out}: {info['metrics']} {info['minutes']}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
