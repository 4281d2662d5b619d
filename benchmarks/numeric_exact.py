"""Cost of the numeric-exact route (docs/numeric-exact.md) against torch.autograd.gradcheck.

For each case of cases/linalg_numeric.yaml (or those matching -k): the verifier's gradient check
in float64 (forward-mode and second-order checks off, no cache: the 60-digit forward, the
Richardson columns, the gauge flips, torch's backward and float64 finite differences) and
torch.autograd.gradcheck on the same torch function and inputs (float64, slow mode: the full
Jacobian; its verdict is not used: on symmetric-structured inputs it compares a
one-triangle Jacobian with torch's symmetric gradient), best of ``--repeat`` runs each; prints the seconds and their ratio.

    .venv/bin/python benchmarks/numeric_exact.py [-k eigh] [--repeat 1]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from heatmap_cost import best_of  # benchmarks/ is on the path when a script runs

from verifier import Runner, load_paths

CASES = Path(__file__).resolve().parent.parent / "cases" / "linalg_numeric.yaml"


def _gradcheck(case) -> None:
    inputs = [torch.tensor(spec.values(), dtype=torch.float64, requires_grad=spec.differentiated)
              for spec in case.inputs]
    fn = case.torch_fn if callable(case.torch_fn) and not hasattr(case.torch_fn, "evaluate") else None
    if fn is None:
        from verifier.torch_side.autograd import torch_callable
        fn = torch_callable(case)
    # raise_exception=False: on `structure: symmetric` inputs gradcheck compares torch's symmetric gradient with
    # the one-triangle numerical Jacobian and reports a mismatch; only its time is measured here
    torch.autograd.gradcheck(fn, tuple(inputs), fast_mode=False, raise_exception=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", default="", help="only cases whose name contains this")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    runner = Runner(forward_mode=False, second_order=False, cache=False)
    cases = [c for c in load_paths([CASES]).cases if args.k in c.name]
    print(f"{'case':40} {'verifier s':>10} {'gradcheck s':>11} {'ratio':>8}  status")
    for case in cases:
        status = []
        ours = best_of(lambda: status.append(runner.run(case, "float64").status), args.repeat)
        theirs = best_of(lambda: _gradcheck(case), args.repeat)
        print(f"{case.name:40} {ours:10.2f} {theirs:11.4f} {ours / theirs:8.0f}  {status[-1]}")


if __name__ == "__main__":
    main()
