"""Train the built-in similarity model (resources/models/similarity) on the dev corpus's *train* games, choose
the objective and its settings on the *tune* games, never look at the *check* games (bench_similarity does).

    .venv/bin/python bench/similarity_data.py          # describe every segment once (cached)
    .venv/bin/python bench/train_similarity.py         # compare objectives on tune, save the best

Objectives (all on the same MLP over the same descriptors):
- ``track``: NT-Xent, positives = two segments of the same track, anywhere in it (seconds to minutes apart),
  each clean or augmented (speed, reverb, EQ/low-pass, noise, gain); CLMR/COLA-style.
- ``game``: supervised contrastive, positives = segments of other tracks of the same game (style).
- ``track+game``: the sum.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.similarity_data import SPLITS, load_cache, tracks  # noqa: E402
from musicemb_core.analysis.track_vectors import aggregate, style_scores  # noqa: E402
from musicemb_core.models import checkpoint as ckpt  # noqa: E402
from musicemb_core.models.config import ModelConfig  # noqa: E402
from musicemb_core.models.similarity import SIMILARITY_FEATURES, SimilarityEncoder  # noqa: E402

OUT = ROOT / "resources" / "models" / "similarity"


def _batch_loss(z1, z2, track, game, objective: str, tau: float) -> torch.Tensor:
    z = torch.cat([z1, z2])
    n = len(z1)
    sim = z @ z.T / tau
    sim.fill_diagonal_(-1e9)
    loss = torch.zeros((), dtype=z.dtype)
    if "track" in objective:
        target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
        loss = loss + F.cross_entropy(sim, target)
    if "game" in objective:
        g = torch.cat([game, game])
        pos = (g[:, None] == g[None, :]).float()
        pos.fill_diagonal_(0)
        logp = sim.log_softmax(1)
        has = pos.sum(1) > 0
        loss = loss - ((logp * pos).sum(1)[has] / pos.sum(1)[has]).mean()
    return loss


def fit(data: dict, rows: list[dict], *, objective: str, steps: int, batch: int, tau: float, lr: float,
        width: int, dim: int, dropout: float, seed: int) -> SimilarityEncoder:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    games = sorted({r["label"] for r in rows})
    tids = [r["track_id"] for r in rows]
    game_of = np.array([games.index(r["label"]) for r in rows])
    views = [np.stack([data[t]["clean"], data[t]["aug"]]) for t in tids]  # (2, n_seg, N_STATS)
    clean = np.concatenate([data[t]["clean"] for t in tids])
    model = SimilarityEncoder(ModelConfig(arch="simstats", dim=dim, width=width, dropout=dropout))
    model.mean.copy_(torch.from_numpy(clean.mean(0)))
    model.std.copy_(torch.from_numpy(clean.std(0) + 1e-6))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    model.train()
    for _step in range(steps):
        pick = rng.choice(len(tids), size=min(batch, len(tids)), replace=False)
        a, b = [], []
        for i in pick:
            v = views[i]
            s = rng.integers(0, v.shape[1], size=2)
            a.append(v[rng.integers(2), s[0]])
            b.append(v[rng.integers(2), s[1]])
        z1 = model.head(torch.from_numpy(np.stack(a)))
        z2 = model.head(torch.from_numpy(np.stack(b)))
        loss = _batch_loss(z1, z2, torch.arange(len(pick)), torch.from_numpy(game_of[pick]), objective, tau)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return model.eval()


def embed_tracks(model: SimilarityEncoder | None, data: dict, rows: list[dict], *, method: str):
    X, g = [], []
    for i, r in enumerate(rows):
        d = data[r["track_id"]]["clean"]
        X.append(d)
        g.append(np.full(len(d), i))
    X, g = np.concatenate(X), np.concatenate(g)
    if model is None:  # the descriptors themselves, standardised on these tracks
        Z = (X - X.mean(0)) / (X.std(0) + 1e-6)
    else:
        with torch.inference_mode():
            Z = model.head(torch.from_numpy(X)).numpy()
    return aggregate(Z, g, method=method)[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--quick", action="store_true", help="fewer variants (a smoke run)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    train_rows, tune_rows = tracks("train"), tracks("tune")
    data = load_cache(train_rows + tune_rows)
    labels = np.array([r["label"] for r in tune_rows])
    results = []
    raw = {m: style_scores(embed_tracks(None, data, tune_rows, method=m), labels) for m in ("mean", "mean+std")}
    print(f"tune, raw descriptors: {raw}", flush=True)
    base = {"objective": "track", "steps": args.steps, "batch": 256, "tau": 0.1, "lr": 2e-3, "width": 512,
            "dim": 128, "dropout": 0.1, "seed": 0}
    variants = [{"objective": o} for o in ("track", "game", "track+game")]
    if not args.quick:
        variants += [{"objective": "track+game", "tau": 0.2}, {"objective": "track+game", "tau": 0.05},
                     {"objective": "track+game", "width": 1024, "dropout": 0.3}]
    best = None
    for v in variants:
        params = base | v
        t0 = time.perf_counter()
        model = fit(data, train_rows, **params)
        secs = time.perf_counter() - t0
        for method in ("mean", "mean+std"):
            s = style_scores(embed_tracks(model, data, tune_rows, method=method), labels)
            row = params | {"aggregation": method, "tune_nn1": round(s["nn1"], 3),
                            "tune_p_at_5": round(s["p_at_k"], 3), "fit_s": round(secs, 1)}
            results.append(row)
            print(json.dumps(row), flush=True)
            key = (s["nn1"] + s["p_at_k"], -len(results))
            if best is None or key > best[0]:
                best = (key, params, method, model, row)
    _, params, method, model, row = best
    print(f"chosen on tune: {json.dumps(row)}")
    info = ckpt.ModelInfo(
        name="similarity", model=model.config, features=SIMILARITY_FEATURES, window_s=3.0,
        strategy=f"similarity:{params['objective']}",
        train=params | {"aggregation": method, "train_games": SPLITS["train"], "tune_games": SPLITS["tune"],
                        "check_games": SPLITS["check"]},
        metrics={"tune": {"nn1": row["tune_nn1"], "p_at_5": row["tune_p_at_5"]}, "raw_descriptors_tune": raw,
                 "variants": results})
    ckpt.save_model(OUT, info, {"encoder": model})
    print(f"saved {OUT}")


if __name__ == "__main__":
    main()
