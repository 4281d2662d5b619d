"""What the report's heat maps cost per case, next to torch.autograd.gradcheck on the same size.

    .venv/bin/python benchmarks/heatmap_cost.py

For each gradient shape: the time to draw both heat maps (autograd, FD) from
that many detail rows, and the time of gradcheck (fast mode and slow mode) on
softmax of an input of that shape, in the same run. The ratio says how much a
report's heat maps add compared with checking the gradient at all.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch

from verifier.report import heatmap

SHAPES = [(16,), (32, 32), (64, 64), (300, 300)]


def detail_rows(shape) -> pd.DataFrame:
    """Detail rows as the runner writes them (values synthetic: only the drawing is timed)."""
    n = int(np.prod(shape))
    rng = np.random.default_rng(0)
    exact = rng.normal(size=n)
    err = np.abs(rng.normal(size=n)) * 1e-14
    return pd.DataFrame({"input": "x", "index": [str(i) for i in np.ndindex(*shape)], "exact": exact,
                         "autograd": exact + err, "finite_diff": exact + 100 * err, "abs_err": err,
                         "tolerance": 4e-13, "fd_abs_err": 100 * err, "ok": True, "fd_ok": True})


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    print(f"{'shape':>12} {'heat maps':>11} {'gradcheck fast':>15} {'ratio':>7} {'gradcheck slow':>15} {'ratio':>7}")
    for shape in SHAPES:
        rows = detail_rows(shape)
        heatmap.for_case(rows)                                    # warm-up
        maps = best_of(lambda: heatmap.for_case(rows), 5)
        x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
        f = lambda t: torch.softmax(t.reshape(-1), dim=0)   # noqa: E731
        fast = best_of(lambda: torch.autograd.gradcheck(f, (x,), fast_mode=True), 3)
        slow = best_of(lambda: torch.autograd.gradcheck(f, (x,)), 1) if np.prod(shape) <= 4096 else float("nan")
        print(f"{str(list(shape)):>12} {maps * 1e3:9.2f} ms {fast * 1e3:12.2f} ms {maps / fast:7.2f} "
              f"{slow * 1e3:12.1f} ms {maps / slow:7.3f}")


if __name__ == "__main__":
    main()
