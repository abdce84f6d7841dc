"""Recipe of the built-in default model (resources/models/default): contrastive ResNet18-style encoder, width 32,
128-d, trained on the demo corpus plus two thirds of the shared dev recordings (the other third, grouped with
its sibling versions, is held out so that song identification can be measured on tracks the model never saw).

    .venv/bin/python bench/train_default.py --work /tmp/default-train [--epochs 12] [--device cpu|cuda]

Deterministic for a given seed on CPU. Writes the model and its README into resources/models/default/.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import manifest  # noqa: E402
from musicemb_core.common.progress import drive  # noqa: E402
from musicemb_core.data.ingest import iter_ingest  # noqa: E402
from musicemb_core.data.library import Library  # noqa: E402
from musicemb_core.models import ModelConfig  # noqa: E402
from musicemb_core.resources import default_model_dir  # noqa: E402
from musicemb_core.training.config import MODEL_FEATURES, TrainConfig  # noqa: E402
from musicemb_core.training.loop import iter_fit  # noqa: E402
from musicemb_core.workflows.demo import iter_build_demo  # noqa: E402


def held_out(track_id: str) -> bool:
    """One third of the dev tracks, chosen by a hash of the track's family (versions stay together)."""
    family = re.sub(r"(-old|-[12]p)$", "", track_id)
    return int(hashlib.blake2b(family.encode(), digest_size=4).hexdigest(), 16) % 3 == 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/musicemb-default-train"))
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=48)
    ap.add_argument("--steps-per-epoch", type=int)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--normalise", default="peak", help="log-mel normalisation (peak: gain-invariant)")
    ap.add_argument("--out", type=Path, default=default_model_dir())
    args = ap.parse_args()

    tracks = manifest("real_dev")
    train_tracks = [t for t in tracks if not held_out(t["track_id"])]
    lib_dir = args.work / "lib"
    t0 = time.time()
    drive(iter_build_demo(lib_dir))  # the demo songs, labelled by style
    with Library(lib_dir) as lib:
        drive(iter_ingest(lib, [t["abspath"] for t in train_tracks]))
        with lib.transaction() as c:  # label dev tracks by game, as the manifest does
            for t in train_tracks:
                c.execute("UPDATE tracks SET label=? WHERE path=?", (t["label"], str(Path(t["abspath"]).resolve())))
        summary = lib.summary()
        print(f"training library: {summary['tracks']} tracks, {summary['segments']} segments, "
              f"{summary['duration_s'] / 3600:.2f} h", file=sys.stderr)
        train = TrainConfig(strategy="contrastive", epochs=args.epochs, batch_size=args.batch_size, lr=2e-3,
                            seed=args.seed, steps_per_epoch=args.steps_per_epoch, patience=0, val_fraction=0.1,
                            device=args.device)
        model = ModelConfig(arch="resnet18", width=args.width, dim=128)

        def log(ev):
            if ev.info.get("epoch_end") or ev.done % 20 == 0:
                print(f"[{time.time() - t0:6.0f} s] {ev.message} step {ev.done}/{ev.total} "
                      + " ".join(f"{k}={v:.3f}" for k, v in ev.info.items() if isinstance(v, float)),
                      file=sys.stderr, flush=True)

        features = MODEL_FEATURES.replace(normalise=args.normalise)
        result = drive(iter_fit(lib, name="default", train=train, model=model, features=features), log)
    minutes = (time.time() - t0) / 60
    args.out.mkdir(parents=True, exist_ok=True)
    for f in ("model.safetensors", "config.json"):
        shutil.copy2(Path(result.folder) / f, args.out / f)
    held = sorted(t["track_id"] for t in tracks if held_out(t["track_id"]))
    (args.out / "training.json").write_text(json.dumps({
        "minutes": round(minutes, 1), "epochs": result.epochs_done, "best": result.best,
        "history": result.history, "train_tracks": sorted(t["track_id"] for t in train_tracks),
        "held_out_tracks": held, "demo_songs": summary["labels"], "segments": summary["segments"],
        "command": " ".join(sys.argv)}, indent=2))
    print(f"done in {minutes:.1f} min: {result.status}, best {result.best}", file=sys.stderr)


if __name__ == "__main__":
    main()
