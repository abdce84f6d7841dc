"""Training steps per second and embedding throughput per architecture on CPU, in one run.

    .venv/bin/python bench/bench_train.py [--seconds 3]

Embedding throughput counts 3 s segments at 16 kHz through log-mel + encoder (x real time = audio seconds per
wall second); training steps are supervised steps of batch 32 (forward, backward, AdamW) on the same input.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import write_results  # noqa: E402
from musicemb_core.features.logmel import LogMel  # noqa: E402
from musicemb_core.models import ClassifierHead, ModelConfig, build_encoder, count_parameters  # noqa: E402
from musicemb_core.training.config import MODEL_FEATURES  # noqa: E402

ARCHS = [("cnn2", ModelConfig(arch="cnn2", dim=16)), ("resnet18 w16", ModelConfig(width=16)),
         ("resnet18 w32 (default)", ModelConfig(width=32)), ("resnet18 w64 (full)", ModelConfig(width=64)),
         ("resnet18 w64 1024-d", ModelConfig(width=64, dim=1024)), ("vgg", ModelConfig(arch="vgg"))]


def rate(fn, seconds: float) -> float:
    """Calls per second of ``fn`` over about ``seconds`` (after one warm-up call)."""
    fn()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    torch.manual_seed(0)
    logmel = LogMel(MODEL_FEATURES)
    rows = []
    for name, cfg in ARCHS:
        enc = build_encoder(cfg)
        head = ClassifierHead(cfg.dim, 5)
        opt = torch.optim.AdamW([*enc.parameters(), *head.parameters()], lr=1e-3)
        audio = torch.randn(64, 3 * 16000) * 0.1
        labels = torch.randint(0, 5, (32,))

        def embed(enc=enc, audio=audio):
            with torch.inference_mode():
                enc.eval()
                return enc(logmel(audio).unsqueeze(1))

        def step(enc=enc, head=head, opt=opt, audio=audio, labels=labels):
            enc.train()
            loss = torch.nn.functional.cross_entropy(head(enc(logmel(audio[:32]).unsqueeze(1))), labels)
            opt.zero_grad()
            loss.backward()
            opt.step()

        seg_s = rate(embed, args.seconds) * 64
        rows.append({"encoder": name, "params": count_parameters(enc), "embed_segments_per_s": seg_s,
                     "embed_x_realtime": seg_s * 3.0, "train_steps_per_s (batch 32)": rate(step, args.seconds)})
        print(rows[-1], file=sys.stderr)
    base = next(r for r in rows if "full" in r["encoder"])
    for r in rows:
        r["embed_vs_full_resnet18"] = r["embed_segments_per_s"] / base["embed_segments_per_s"]
    write_results("train", rows, notes=f"CPU, {torch.get_num_threads()} torch threads; inputs 3 s at 16 kHz -> "
                  "64 mels x 301 frames; x_realtime = audio seconds embedded per wall second.")


if __name__ == "__main__":
    main()
