"""max/min/amax over all elements (issue 12 item 10): cold time against n, and against gradcheck.

    python benchmarks/extrema.py                    # n = 10, 25, 50, 100, 200, 400
    python benchmarks/extrema.py --sizes 25,1000 --forward "torch.amax(x)"

For each n: our full check cold (no cache: SymPy builds the graph, exact Jᵀv
in 40 digits, finite differences, backward, comparison), CPU seconds of the
process (steadier than wall time on a shared machine), and gradcheck(fast_mode=False)
on the same function and input in float64, with the ratio. Before the fix
this took 0.6 s at n = 10, 20 s at 25 and over 120 s at 50 (Max's SymPy
derivative rebuilt an (n-1)-argument Max per element). Up to about 85
elements both symbolic routes run (the symbolic Jacobian is quadratic in n,
like every function's); beyond that the reverse sweep alone, linear in n.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from verifier.cases.loading import case_from_mapping  # noqa: E402
from verifier.run.runner import Runner  # noqa: E402


def ours(forward: str, n: int) -> tuple[float, str, str]:
    case = case_from_mapping({"name": f"bench.extrema_{n}", "forward": forward,
                              "inputs": {"x": {"shape": [n], "sample": "normal", "seed": 1}}})
    start = time.process_time()
    result = Runner(cache=None).run(case, "float64")
    return time.process_time() - start, result.status, result.route


def gradcheck(n: int) -> float:
    x = torch.randn(n, dtype=torch.float64, generator=torch.Generator().manual_seed(1), requires_grad=True)
    start = time.process_time()
    torch.autograd.gradcheck(lambda t: t.max(), (x,), fast_mode=False)
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,25,50,100,200,400")
    parser.add_argument("--forward", default="x.max()")
    args = parser.parse_args()
    torch.set_num_threads(1)
    ours(args.forward, 3)              # imports and first-call costs out of the table
    print(f"{'n':>6} {'ours s':>8} {'gradcheck s':>12} {'ratio':>8}  status  route")
    for n in (int(v) for v in args.sizes.split(",")):
        t, status, route = ours(args.forward, n)
        g = gradcheck(n)
        print(f"{n:>6} {t:>8.2f} {g:>12.4f} {t / g:>8.0f}  {status:6s}  {route}", flush=True)


if __name__ == "__main__":
    main()
