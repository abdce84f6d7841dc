"""Order a crate into a DJ set: each step a smooth transition (close in the similarity space, tempo within a few
percent with half/double time allowed, compatible key). Greedy nearest neighbour from the start track, then 2-opt.
Pure arrays and numbers: no audio, no catalogue.
"""

from __future__ import annotations

import numpy as np

from musicemb_core.features.camelot import Key, compatible

BPM_WEIGHT = 0.05  # cost per percent of tempo difference (6 % costs as much as a cosine distance of 0.3)
KEY_PENALTY = 0.5  # an incompatible key
UNKNOWN_PENALTY = 0.15  # a missing tempo or key (neither smooth nor clashing for sure)


def bpm_gap_percent(a: float, b: float) -> float:
    """Tempo difference of ``b`` from ``a`` in percent, half and double time allowed (120 vs 61 is 1.7 %)."""
    return float(min(abs(b * f - a) / a for f in (0.5, 1.0, 2.0)) * 100)


def transition_costs(vectors: np.ndarray | None, bpms: list[float | None], keys: list[Key | None], *,
                     bpm_weight: float = BPM_WEIGHT, key_penalty: float = KEY_PENALTY) -> np.ndarray:
    """(n, n) symmetric cost of playing track j after track i: cosine distance of the unit ``vectors`` (rows;
    None: 0) + ``bpm_weight`` x tempo difference in percent + ``key_penalty`` for incompatible keys."""
    n = len(bpms)
    C = np.zeros((n, n))
    if vectors is not None and len(vectors):
        V = np.asarray(vectors, np.float64)
        C += np.clip(1.0 - V @ V.T, 0.0, 2.0)
    for i in range(n):
        for j in range(i + 1, n):
            c = 0.0
            if bpms[i] and bpms[j]:
                c += bpm_weight * bpm_gap_percent(bpms[i], bpms[j])
            else:
                c += UNKNOWN_PENALTY
            if keys[i] is not None and keys[j] is not None:
                c += 0.0 if compatible(keys[i], keys[j]) else key_penalty
            else:
                c += UNKNOWN_PENALTY
            C[i, j] += c
            C[j, i] += c
    np.fill_diagonal(C, 0.0)
    return C


def path_cost(C: np.ndarray, order: list[int] | np.ndarray) -> float:
    """Sum of the costs of consecutive steps of ``order``."""
    order = list(order)
    return float(sum(C[a, b] for a, b in zip(order[:-1], order[1:], strict=True)))


def greedy_order(C: np.ndarray, start: int = 0) -> list[int]:
    """Nearest neighbour from ``start``."""
    n = len(C)
    order, left = [start], set(range(n)) - {start}
    while left:
        last = order[-1]
        nxt = min(left, key=lambda j: (C[last, j], j))
        order.append(nxt)
        left.remove(nxt)
    return order


def two_opt(C: np.ndarray, order: list[int], *, fixed_start: bool = True, max_rounds: int = 50) -> list[int]:
    """Improve an open path by reversing segments while that lowers :func:`path_cost` (the first track stays
    first with ``fixed_start``)."""
    order = list(order)
    n = len(order)
    first = 1 if fixed_start else 0
    for _ in range(max_rounds):
        improved = False
        for i in range(first, n - 1):
            for k in range(i + 1, n):
                a = order[i - 1] if i > 0 else None
                b, c = order[i], order[k]
                d = order[k + 1] if k + 1 < n else None
                before = (C[a, b] if a is not None else 0.0) + (C[c, d] if d is not None else 0.0)
                after = (C[a, c] if a is not None else 0.0) + (C[b, d] if d is not None else 0.0)
                if after < before - 1e-12:
                    order[i:k + 1] = order[i:k + 1][::-1]
                    improved = True
        if not improved:
            break
    return order


def order_set(C: np.ndarray, *, start: int | None = None, random_state: int = 0) -> dict:
    """The smooth order of the tracks costed by ``C``, with the given order's and a random order's costs.

    Returns {"order": [indices], "cost", "given_cost", "random_cost"} (the random order: mean over 20 shuffles).
    ``start``: the index to begin with; None tries every track as the start and keeps the best path.
    """
    n = len(C)
    if n == 0:
        return {"order": [], "cost": 0.0, "given_cost": 0.0, "random_cost": 0.0}
    starts = [start] if start is not None else list(range(n))
    best = None
    for s in starts:
        o = two_opt(C, greedy_order(C, s), fixed_start=start is not None)
        if best is None or path_cost(C, o) < path_cost(C, best) - 1e-12:
            best = o
    rng = np.random.default_rng(random_state)
    shuffles = [rng.permutation(n) for _ in range(20)]
    return {"order": [int(i) for i in best], "cost": round(path_cost(C, best), 4),
            "given_cost": round(path_cost(C, list(range(n))), 4),
            "random_cost": round(float(np.mean([path_cost(C, p) for p in shuffles])), 4)}
