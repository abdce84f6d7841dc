"""Train the built-in similarity model (resources/models/similarity) on the dev corpus's *train* games, choose
between objectives on the *tune* games, never look at the *check* games (bench_similarity does).

    .venv/bin/python bench/similarity_data.py          # describe every segment once (cached, ~15 min)
    .venv/bin/python bench/train_similarity.py         # fit, compare on tune, save the chosen model (~8 min)

Chosen on tune: the best sum of style 1-NN + precision@5 + half-track rank-1; candidates within 0.02 of it count
as equal, and then the one with the fewest fitted parameters wins. The MLP heads are measured for comparison.

Candidates, all over the same descriptors, standardised with the training games' statistics or (as `embed` does)
with the library's own (here: the tune games taken as one library):
- ``raw``: every descriptor group weighted 1;
- ``weights for style`` / ``weights for style + halves``: one weight per descriptor group (0-3), fitted on the
  *train* games by coordinate search on leave-one-out style 1-NN + precision@5 of their tracks (+ "the other half
  of the same track ranked first", standing in for versions of a piece, which the train and tune games lack);
- ``mlp track``: an MLP (512 hidden, 128-d) trained with NT-Xent, positives = two segments of the same track
  anywhere in it (seconds to minutes apart), each clean or augmented (speed, reverb, EQ, noise, gain): CLMR/COLA;
- ``mlp game``: the same MLP with supervised contrastive positives = segments of tracks of the same game.
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
from musicemb_core.analysis.track_vectors import (  # noqa: E402
    aggregate,
    library_tracks,
    relative_to_library,
    style_scores,
    version_ranks,
)
from musicemb_core.models import checkpoint as ckpt  # noqa: E402
from musicemb_core.models.config import ModelConfig  # noqa: E402
from musicemb_core.models.library_stats import library_statistics  # noqa: E402
from musicemb_core.models.similarity import (  # noqa: E402
    GROUPS,
    N_STATS,
    SIMILARITY_FEATURES,
    SimilarityEncoder,
)

OUT = ROOT / "resources" / "models" / "similarity"


def _batch_loss(z1, z2, game, objective: str, tau: float) -> torch.Tensor:
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


class MLP(torch.nn.Module):
    """The learned head that was tried: standardised descriptors -> MLP -> unit vectors."""

    def __init__(self, mean: np.ndarray, std: np.ndarray, width: int, dim: int, dropout: float):
        super().__init__()
        self.register_buffer("mean", torch.from_numpy(mean))
        self.register_buffer("std", torch.from_numpy(std))
        self.mlp = torch.nn.Sequential(torch.nn.Linear(len(mean), width), torch.nn.LayerNorm(width),
                                       torch.nn.GELU(), torch.nn.Dropout(dropout), torch.nn.Linear(width, dim))

    def head(self, stats: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.mlp(((stats - self.mean) / self.std).clamp(-8, 8)), dim=1)


def fit_mlp(data: dict, rows: list[dict], *, objective: str, steps: int, batch: int = 256, tau: float = 0.1,
            lr: float = 2e-3, width: int = 512, dim: int = 128, dropout: float = 0.1, seed: int = 0) -> MLP:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    games = sorted({r["label"] for r in rows})
    tids = [r["track_id"] for r in rows]
    game_of = np.array([games.index(r["label"]) for r in rows])
    views = [np.stack([data[t]["clean"], data[t]["aug"]]) for t in tids]  # (2, n_seg, N_STATS)
    mean, std = standardisation(data, rows)
    model = MLP(mean, std, width, dim, dropout)
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
        loss = _batch_loss(z1, z2, torch.from_numpy(game_of[pick]), objective, tau)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return model.eval()


def standardisation(data: dict, rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    clean = np.concatenate([data[r["track_id"]]["clean"] for r in rows])
    return clean.mean(0), clean.std(0) + 1e-6


def encoder(mean, std, weights: dict) -> SimilarityEncoder:
    enc = SimilarityEncoder(ModelConfig(arch="simstats", dim=N_STATS))
    enc.mean.copy_(torch.from_numpy(mean))
    enc.std.copy_(torch.from_numpy(std))
    enc.set_group_weights(weights)
    return enc.eval()


def segment_vectors(model, data: dict, rows: list[dict], *, library_std: bool = True):
    """(vectors, track index, half-track index) of ``rows``' segments, ``rows`` taken as one library."""
    X = np.concatenate([data[r["track_id"]]["clean"] for r in rows])
    n = [len(data[r["track_id"]]["clean"]) for r in rows]
    track = np.repeat(np.arange(len(rows)), n)
    half = np.concatenate([2 * i + (np.arange(k) >= k // 2) for i, k in enumerate(n)])
    with torch.inference_mode():
        if isinstance(model, SimilarityEncoder):
            Z = model.standardise(torch.from_numpy(X)).numpy()
            Z = model.finish(Z, *(library_statistics(Z) if library_std else library_statistics(Z[:0])))
        else:
            Z = model.head(torch.from_numpy(X)).numpy()
    return Z, track, half


def scores(model, data: dict, rows: list[dict], *, method: str = "mean+std", library_std: bool = True,
           relative: bool = False) -> dict:
    """Style 1-NN and precision@5 of the tracks (label = game), and "the other half of the same track ranked
    first" (the tune games have no versions of a piece: another part of the same piece stands in for one).
    ``relative``: track vectors relative to the library's tracks, as ``embed`` stores them for the similarity
    model (:func:`~musicemb_core.analysis.track_vectors.relative_to_library`)."""
    Z, track, half = segment_vectors(model, data, rows, library_std=library_std)

    def tracks_of(groups):
        V = aggregate(Z, groups, method=method)[1]
        return relative_to_library(V, *library_tracks(V)) if relative else V

    s = style_scores(tracks_of(track), np.array([r["label"] for r in rows]))
    ranks = version_ranks(tracks_of(half), np.repeat(np.arange(len(rows)).astype(str), 2).astype(object))
    return {"style_1nn": round(s["nn1"], 3), "p_at_5": round(s["p_at_k"], 3),
            "half_rank1": round(float((ranks == 1).mean()), 3)}


def total(s: dict) -> float:
    return s["style_1nn"] + s["p_at_5"] + s["half_rank1"]


def fit_group_weights(data: dict, rows: list[dict], mean, std, *, keys: tuple[str, ...],
                      values=(0, 0.25, 0.5, 1, 2, 3), rounds: int = 2) -> dict:
    """Per-group weights maximising the sum of ``keys`` of :func:`scores` over ``rows`` (coordinate search)."""
    enc = encoder(mean, std, {})
    weights = {g: 1.0 for g in GROUPS}

    def score(w):
        enc.set_group_weights(w)
        s = scores(enc, data, rows)
        return sum(s[k] for k in keys)

    best = score(weights)
    for _ in range(rounds):
        for g in GROUPS:
            for v in values:
                cand = weights | {g: float(v)}
                sc = score(cand)
                if sc > best + 1e-9:
                    best, weights = sc, cand
    return weights


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=3000, help="MLP training steps")
    ap.add_argument("--no-mlp", action="store_true", help="skip the MLP candidates (a quick run)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    train_rows, tune_rows = tracks("train"), tracks("tune")
    data = load_cache(train_rows + tune_rows)
    mean, std = standardisation(data, train_rows)
    candidates = {"raw": (encoder(mean, std, {}), 0, 0.0)}
    for name, keys in (("weights for style", ("style_1nn", "p_at_5")),
                       ("weights for style + halves", ("style_1nn", "p_at_5", "half_rank1"))):
        t0 = time.perf_counter()
        weights = fit_group_weights(data, train_rows, mean, std, keys=keys)
        print(f"{name}, fitted on the train games: {weights}", flush=True)
        candidates[name] = (encoder(mean, std, weights), len(GROUPS), time.perf_counter() - t0)
    if not args.no_mlp:
        for objective in ("track", "game"):
            t0 = time.perf_counter()
            model = fit_mlp(data, train_rows, objective=objective, steps=args.steps).eval()
            candidates[f"mlp {objective}"] = (model, sum(p.numel() for p in model.parameters()),
                                              time.perf_counter() - t0)
    results = []
    for name, (model, n_params, secs) in candidates.items():
        for library_std in ((False, True) if isinstance(model, SimilarityEncoder) else (False,)):
            for method in ("mean", "mean+std"):
                for relative in ((False, True) if library_std else (False,)):
                    s = scores(model, data, tune_rows, method=method, library_std=library_std, relative=relative)
                    row = {"candidate": name, "standardised on": "library" if library_std else "training music",
                           "aggregation": method, "track vectors": "relative" if relative else "as aggregated",
                           **{f"tune_{k}": v for k, v in s.items()}, "fitted_parameters": n_params,
                           "fit_s": round(secs, 1)}
                    results.append(row)
                    print(json.dumps(row), flush=True)
    # the best tune total; within 0.02 of it, the fewest fitted parameters (then the best total)
    top = max(total({k[5:]: v for k, v in r.items() if k.startswith("tune_")}) for r in results)
    near = [r for r in results if total({k[5:]: v for k, v in r.items() if k.startswith("tune_")}) >= top - 0.02
            and r["candidate"] in ("raw",) + tuple(n for n in candidates if n.startswith("weights"))
            and r["track vectors"] == "relative"]  # as embed stores them for a library-standardised model
    row = min(near, key=lambda r: (r["fitted_parameters"], -total({k[5:]: v for k, v in r.items()
                                                                    if k.startswith("tune_")})))
    model = candidates[row["candidate"]][0]
    print(f"chosen on tune: {json.dumps(row)}")
    if row["standardised on"] != "library":
        raise SystemExit("the chosen candidate is standardised on the training music: ship it by hand")
    info = ckpt.ModelInfo(
        name="similarity", model=model.config, features=SIMILARITY_FEATURES, window_s=3.0, strategy="similarity",
        train={"aggregation": row["aggregation"], "library_standardise": True,
               "group_weights": {g: float(model.weight[a]) for g, (a, _) in GROUPS.items()},
               "train_games": SPLITS["train"], "tune_games": SPLITS["tune"], "check_games": SPLITS["check"]},
        metrics={"tune": row, "candidates": results})
    ckpt.save_model(OUT, info, {"encoder": model})
    print(f"saved {OUT}")


if __name__ == "__main__":
    main()
