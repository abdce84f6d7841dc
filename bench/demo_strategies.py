"""Train supervised, triplet and contrastive encoders on the demo library for a few minutes each (CPU) and
report supervised validation accuracy and a linear probe (logistic, 5-fold grouped by track) on the embeddings
of every model, the built-in default included.

    .venv/bin/python bench/demo_strategies.py [--work /tmp/demo-strategies] [--epochs 8]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import write_results  # noqa: E402
from musicemb_core.analysis.probes import probe_scores  # noqa: E402
from musicemb_core.common.progress import drive  # noqa: E402
from musicemb_core.data.library import Library  # noqa: E402
from musicemb_core.inference import iter_embed  # noqa: E402
from musicemb_core.models import ModelConfig  # noqa: E402
from musicemb_core.stored_vectors import load_embeddings  # noqa: E402
from musicemb_core.training.config import TrainConfig  # noqa: E402
from musicemb_core.training.loop import iter_fit  # noqa: E402
from musicemb_core.workflows.demo import iter_build_demo  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/musicemb-demo-strategies"))
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--width", type=int, default=16)
    args = ap.parse_args()
    drive(iter_build_demo(args.work / "demo"))
    rows = []
    with Library(args.work / "demo") as lib:
        seg = lib.segments()
        tracks = {t.id: t for t in lib.tracks()}
        names = sorted({t.label for t in tracks.values()})
        labels = np.array([names.index(tracks[t].label) for t in seg["track_id"]])
        for strategy in ("supervised", "triplet", "contrastive", None):
            t0 = time.time()
            name = strategy or "default"
            row = {"model": name, "train_minutes": 0.0, "supervised_val_acc": ""}
            if strategy:
                result = drive(iter_fit(lib, name=name, train=TrainConfig(
                    strategy=strategy, epochs=args.epochs, batch_size=16, patience=0),
                    model=ModelConfig(width=args.width, dim=128)))
                row["train_minutes"] = (time.time() - t0) / 60
                if strategy == "supervised":
                    row["supervised_val_acc"] = result.best.get("val_acc", float("nan"))
            drive(iter_embed(lib, model=name))
            emb = load_embeddings(lib, name)
            assert np.array_equal(emb.ids, seg["id"])
            probe = probe_scores(np.asarray(emb.vectors), labels, seg["track_id"])
            row |= {"probe_accuracy": probe["accuracy"], "probe_macro_f1": probe["macro_f1"]}
            rows.append(row)
            print(row, file=sys.stderr)
    write_results("demo_strategies", rows, notes=f"demo library: 50 songs x 20 s, 5 styles, 3 s segments; "
                  f"resnet18 width {args.width}, {args.epochs} epochs, batch 16, CPU. Probe: logistic regression, "
                  "5 folds grouped by track (no track in both train and test). The supervised probe uses "
                  "embeddings of a model trained on these labels (its held-out figure is supervised_val_acc).")


if __name__ == "__main__":
    main()
