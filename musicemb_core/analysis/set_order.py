"""Order a crate into a DJ set: each step a smooth transition (close in the similarity space, tempo within a few
percent with half/double time allowed, compatible key). Crates of up to :data:`EXACT_UP_TO` tracks get the cheapest
order there is (Held-Karp dynamic programming); larger ones greedy nearest neighbour from each start, then 2-opt.
Pure arrays and numbers: no audio, no catalogue.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from musicemb_core.analysis.checks import check_count
from musicemb_core.common.errors import ConfigError
from musicemb_core.common.progress import CancelToken, JobGen, Progress, drive
from musicemb_core.features.camelot import Key, compatible

BPM_WEIGHT = 0.05  # cost per percent of tempo difference (6 % costs as much as a cosine distance of 0.3)
KEY_PENALTY = 0.5  # an incompatible key
UNKNOWN_PENALTY = 0.15  # a missing tempo or key (neither smooth nor clashing for sure)
MAX_STARTS = 200  # first tracks tried when none is given
REFINE_WORK = MAX_STARTS * 500 ** 2  # 2-opt passes x tracks^2: every start's path refined up to 500 tracks
MIN_REFINED = 8  # greedy paths refined by 2-opt however long the crate (2,000 tracks: 12, 5,000: 8)
EXACT_UP_TO = 15  # crates this small are solved exactly: 2^15 x 15 states, 8 MB and milliseconds


def bpm_gap_percent(a: float, b: float) -> float:
    """Tempo difference of ``b`` from ``a`` in percent, half and double time allowed (120 vs 61 is 1.7 %)."""
    return float(min(abs(b * f - a) / a for f in (0.5, 1.0, 2.0)) * 100)


def transition_costs(vectors: np.ndarray | None, bpms: list[float | None], keys: list[Key | None], *,
                     bpm_weight: float = BPM_WEIGHT, key_penalty: float = KEY_PENALTY) -> np.ndarray:
    """(n, n) symmetric cost of playing track j after track i: cosine distance of the unit ``vectors`` (rows;
    None: 0) + ``bpm_weight`` x tempo difference in percent + ``key_penalty`` for incompatible keys. A tempo that
    is None, not positive or not finite (NaN) counts as unknown."""
    n = len(bpms)
    m = 0 if vectors is None else len(vectors)
    if len(keys) != n or m not in (0, n):
        raise ConfigError(f"vectors, bpms and keys must have one entry per track, got {m} vectors, {n} bpms, "
                          f"{len(keys)} keys")
    C = np.zeros((n, n))
    if vectors is not None and len(vectors):
        V = np.asarray(vectors, np.float64)
        C += np.clip(1.0 - V @ V.T, 0.0, 2.0)
    upper = _bpm_costs(bpms, bpm_weight)
    upper += _key_costs(keys, key_penalty)
    upper = np.triu(upper, 1)  # the cost from the earlier track of each pair, as bpm_gap_percent(earlier, later)
    C += upper
    C += upper.T
    np.fill_diagonal(C, 0.0)
    return C


def _bpm_costs(bpms: list[float | None], weight: float) -> np.ndarray:
    """(n, n): ``weight`` x :func:`bpm_gap_percent` (row's tempo, column's), :data:`UNKNOWN_PENALTY` where either
    is unknown."""
    b = np.array([x if x is not None and 0 < x < math.inf else np.nan for x in bpms], np.float64)
    with np.errstate(invalid="ignore"):  # in place: 5,000 tracks make 200 MB matrices
        gap = np.abs(b[None, :] - b[:, None])
        for f in (0.5, 2.0):
            np.minimum(gap, np.abs(b[None, :] * f - b[:, None]), out=gap)
        gap /= b[:, None]
    gap *= 100
    gap *= weight
    gap[np.isnan(gap)] = UNKNOWN_PENALTY
    return gap


def _key_costs(keys: list[Key | None], penalty: float) -> np.ndarray:
    """(n, n): 0 for compatible keys, ``penalty`` for others, :data:`UNKNOWN_PENALTY` where either is unknown."""
    codes = sorted({k for k in keys if k is not None})
    index = {k: i for i, k in enumerate(codes)}
    table = np.full((len(codes) + 1, len(codes) + 1), UNKNOWN_PENALTY)  # the last row and column: unknown
    for i, a in enumerate(codes):
        for j, b in enumerate(codes):
            table[i, j] = 0.0 if compatible(a, b) else penalty
    idx = np.array([index.get(k, len(codes)) if k is not None else len(codes) for k in keys], np.int64)
    return table[idx[:, None], idx[None, :]]


def path_cost(C: np.ndarray, order: list[int] | np.ndarray) -> float:
    """Sum of the costs of consecutive steps of ``order``."""
    order = list(order)
    return float(sum(C[a, b] for a, b in zip(order[:-1], order[1:], strict=True)))


def greedy_order(C: np.ndarray, start: int = 0) -> list[int]:
    """Nearest neighbour from ``start`` (the lower index on a tie)."""
    return [int(i) for i in _greedy(np.ascontiguousarray(C, dtype=np.float64), start)]


@numba.njit(cache=True, nogil=True)  # nogil: the app orders sets in a thread beside the window
def _greedy(C, start):  # pragma: no cover - compiled
    n = len(C)
    order = np.empty(n, np.int64)
    free = np.ones(n, np.bool_)
    order[0], free[start] = start, False
    for m in range(1, n):
        last, best = order[m - 1], -1
        for j in range(n):
            if free[j] and (best < 0 or C[last, j] < C[last, best]):
                best = j
        order[m], free[best] = best, False
    return order


def two_opt(C: np.ndarray, order: list[int], *, fixed_start: bool = True, max_rounds: int = 50) -> list[int]:
    """Improve an open path by reversing segments while that lowers :func:`path_cost` (the first track stays
    first with ``fixed_start``; ``C`` symmetric, as :func:`transition_costs` makes it)."""
    P = np.array(order, dtype=np.int64)
    _two_opt(np.ascontiguousarray(C, dtype=np.float64), P, 1 if fixed_start else 0, max_rounds)
    return [int(i) for i in P]


@numba.njit(cache=True, nogil=True)
def _two_opt(C, P, first, max_rounds):  # pragma: no cover - compiled
    # E[k]: the cost of the step after position k, kept along the path, so the inner loop reads the two rows of
    # the tracks around position i (in cache) rather than a row per k (C symmetric: a reversal keeps the steps')
    n = len(P)
    E = np.empty(max(n - 1, 0))
    for k in range(n - 1):
        E[k] = C[P[k], P[k + 1]]
    for _ in range(max_rounds):
        improved = False
        for i in range(first, n - 1):
            b = P[i]
            a = P[i - 1] if i > 0 else -1
            for k in range(i + 1, n):
                c = P[k]
                before, after = 0.0, 0.0
                if a >= 0:
                    before += E[i - 1]
                    after += C[a, c]
                if k + 1 < n:
                    before += E[k]
                    after += C[b, P[k + 1]]
                if after < before - 1e-12:
                    P[i:k + 1] = P[i:k + 1][::-1].copy()
                    E[i:k] = E[i:k][::-1].copy()
                    if a >= 0:
                        E[i - 1] = C[a, P[i]]
                    if k + 1 < n:
                        E[k] = C[P[k], P[k + 1]]
                    b = P[i]
                    improved = True
        if not improved:
            break


def exact_order(C: np.ndarray, start: int | None = None) -> list[int]:
    """The open path of least :func:`path_cost` through every track (from ``start``; None: from any), by dynamic
    programming over subsets: for small crates only (time and memory grow as 2^n)."""
    n = len(C)
    if n > 20:
        raise ValueError(f"exact ordering of {n} tracks would need 2^{n} states; use order_set")
    return [int(i) for i in _held_karp(np.ascontiguousarray(C, dtype=np.float64), -1 if start is None else start)]


@numba.njit(cache=True, nogil=True)
def _held_karp(C, start):  # pragma: no cover - compiled
    n = len(C)
    full = 1 << n
    D = np.full((full, n), np.inf)  # D[mask, j]: cheapest path through the tracks in mask, ending at j
    back = np.full((full, n), -1, np.int64)
    for j in range(n):
        if start < 0 or j == start:
            D[1 << j, j] = 0.0
    for mask in range(1, full):
        for j in range(n):
            d = D[mask, j]
            if d == np.inf:
                continue
            for k in range(n):
                if not (mask >> k) & 1:
                    m2 = mask | (1 << k)
                    if d + C[j, k] < D[m2, k] - 1e-12:
                        D[m2, k], back[m2, k] = d + C[j, k], j
    order = np.empty(n, np.int64)
    mask, j = full - 1, int(np.argmin(D[full - 1]))
    for m in range(n - 1, -1, -1):
        order[m] = j
        j, mask = back[mask, j], mask & ~(1 << j)
    return order


def order_set(C: np.ndarray, *, start: int | None = None, random_state: int = 0) -> dict:
    """:func:`iter_order_set` run to the end."""
    return drive(iter_order_set(C, start=start, random_state=random_state))


def iter_order_set(C: np.ndarray, *, start: int | None = None, random_state: int = 0,
                   cancel: CancelToken | None = None) -> JobGen[dict]:
    """The smooth order of the tracks costed by ``C``, with the given order's and a random order's costs; a
    progress event after each path tried (``cancel`` checked between them).

    Returns {"order": [indices], "cost", "given_cost", "random_cost"} (the random order: mean over 20 shuffles,
    each from ``start`` when one is given).
    ``C``: square, without NaN. ``start``: the index to begin with (0..n-1); None: any. Up to :data:`EXACT_UP_TO`
    tracks the order is the cheapest there is; above, every track is tried as the start (at most
    :data:`MAX_STARTS`, spread over the crate) and the best path kept (:func:`_refined_best`).
    """
    C = np.asarray(C, np.float64)
    n = len(C)
    if C.size and (C.shape != (n, n) or np.isnan(C).any()):
        raise ConfigError(f"C must be a square matrix of costs without NaN, got shape {C.shape}"
                          + (" with NaN" if np.isnan(C).any() else ""))
    if start is not None and check_count(start, "start", least=0) >= n:
        raise ConfigError(f"start must be a track index below {n}, got {start}")
    if n == 0:
        return {"order": [], "cost": 0.0, "given_cost": 0.0, "random_cost": 0.0}
    starts = [start] if start is not None else sorted({int(i) for i in np.linspace(0, n - 1, min(n, MAX_STARTS))})
    if n <= EXACT_UP_TO:
        best = exact_order(C, start)
    else:
        best = yield from _refined_best(C, starts, fixed_start=start is not None, cancel=cancel or CancelToken())
    rng = np.random.default_rng(random_state)
    rest = np.array([i for i in range(n) if i != start])
    shuffles = [([start] if start is not None else []) + rng.permutation(rest).tolist() for _ in range(20)]
    return {"order": [int(i) for i in best], "cost": round(path_cost(C, best), 4),
            "given_cost": round(path_cost(C, list(range(n))), 4),
            "random_cost": round(float(np.mean([path_cost(C, p) for p in shuffles])), 4)}


def _refined_best(C: np.ndarray, starts: list[int], *, fixed_start: bool, cancel: CancelToken) -> JobGen[list[int]]:
    """The cheapest of the greedy paths from ``starts`` after 2-opt: all of them while the crate is small, the
    cheapest greedy ones as :data:`REFINE_WORK` allows when it is long (2-opt costs n^2 a pass: refining 200
    paths of 2,000 tracks took 86 s)."""
    refine = max(MIN_REFINED, REFINE_WORK // max(1, len(C)) ** 2)
    steps = len(starts) + min(refine, len(starts))
    paths = []
    for s in starts:
        cancel.check()
        paths.append(greedy_order(C, s))
        yield Progress("set", len(paths), steps, f"ordering {len(C)} tracks: greedy paths")
    if refine < len(paths):
        cheapest = set(np.argsort([path_cost(C, o) for o in paths], kind="stable")[:refine].tolist())
        paths = [o for i, o in enumerate(paths) if i in cheapest]
    best = None
    for i, o in enumerate(paths, len(starts) + 1):
        cancel.check()
        o = two_opt(C, o, fixed_start=fixed_start)
        if best is None or path_cost(C, o) < path_cost(C, best) - 1e-12:
            best = o
        yield Progress("set", i, steps, f"ordering {len(C)} tracks: refining the best paths")
    return best
