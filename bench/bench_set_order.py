"""Set ordering speed (``musicemb set``, the app's Build set): the compiled greedy + 2-opt against the same
algorithm in pure Python (the code before it), on random transition costs, in one run.

    .venv/bin/python bench/bench_set_order.py [--sizes 50 200 500 2000] [--python-up-to 200]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from musicemb_core.analysis.set_order import order_set, path_cost  # noqa: E402


def python_order(C: np.ndarray) -> list[int]:
    """The pure-Python reference: nearest neighbour from every track, then first-improvement 2-opt."""
    n, best = len(C), None
    for s in range(n):
        order, left = [s], set(range(n)) - {s}
        while left:
            nxt = min(left, key=lambda j, last=order[-1]: (C[last, j], j))
            order.append(nxt)
            left.remove(nxt)
        for _ in range(50):
            improved = False
            for i in range(0, n - 1):
                for k in range(i + 1, n):
                    a, d = (order[i - 1] if i else None), (order[k + 1] if k + 1 < n else None)
                    b, c = order[i], order[k]
                    before = (C[a, b] if a is not None else 0.0) + (C[c, d] if d is not None else 0.0)
                    after = (C[a, c] if a is not None else 0.0) + (C[b, d] if d is not None else 0.0)
                    if after < before - 1e-12:
                        order[i:k + 1] = order[i:k + 1][::-1]
                        improved = True
            if not improved:
                break
        if best is None or path_cost(C, order) < path_cost(C, best) - 1e-12:
            best = order
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[50, 200, 500, 2000])
    ap.add_argument("--python-up-to", type=int, default=200, help="largest crate the pure-Python baseline orders")
    args = ap.parse_args()
    order_set(np.ones((3, 3)))  # compile (cached on disk after the first run)
    print("| tracks | compiled s | cost | pure Python s | cost | speed-up |\n|---|---|---|---|---|---|")
    for n in args.sizes:
        X = np.random.default_rng(n).normal(size=(n, 8))
        C = np.linalg.norm(X[:, None] - X[None], axis=2)
        t = time.perf_counter()
        cost = order_set(C)["cost"]
        fast = time.perf_counter() - t
        row = f"| {n} | {fast:.2f} | {cost:.1f} |"
        if n <= args.python_up_to:
            t = time.perf_counter()
            ref = path_cost(C, python_order(C))
            slow = time.perf_counter() - t
            row += f" {slow:.2f} | {ref:.1f} | {slow / fast:.0f}x |"
        else:
            row += " | | |"
        print(row, flush=True)


if __name__ == "__main__":
    main()
