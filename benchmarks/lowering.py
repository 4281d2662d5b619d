"""Cold cost of the lowering rules of verifier/exact/lowering_ops.py and lowering_struct.py (issue 14).

    python benchmarks/lowering.py                                  # the default rows, then softmax_16's floor
    python benchmarks/lowering.py --rows conv2d_F_3to8_16x16 --repeats 3

For each row of benchmarks/cold.py: CPU seconds of one cold run (fresh cache dir, first-order check,
float64, torch at 1 thread) *before* (the new rules taken out of ``lowering._RULES``: those functions
go through SymPy fragments again) and *after*, the best of ``--repeats``, and gradcheck's slow mode on
the same function and the ratio after / gradcheck. Then the small case's fixed costs: softmax over 16
elements split into the pieces a cold run adds to a warm one (CPU ms, best of 30).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cold  # noqa: E402  (benchmarks/cold.py: the rows)

ROWS = "conv2d_F_3to8_16x16,norm_huber_64x64,mlp_ce_d64,cross_entropy_linear"


def _best(f, n):
    best = float("inf")
    for _ in range(n):
        start = time.process_time()
        f()
        best = min(best, time.process_time() - start)
    return best


def rows(names, repeats):
    import torch

    from verifier.exact import lowering, lowering_ops
    from verifier.exact.cache import Cache
    from verifier.run.runner import Runner
    from verifier.torch_side.autograd import make_leaves, torch_callable
    saved = dict(lowering._RULES)

    def run(case):
        with tempfile.TemporaryDirectory() as tmp:
            res = Runner(cache=Cache(tmp, values=False), forward_mode=False, second_order=False).run(case, "float64")
        assert res.status == "pass", res.message
    for name in names:
        case = cold._case(name)
        times = {}
        for mode in ("before", "after"):
            lowering._RULES.clear()
            lowering._RULES.update(saved)
            if mode == "before":
                for k in lowering_ops.RULES:
                    lowering._RULES.pop(k, None)
            times[mode] = _best(lambda: run(case), repeats)
        lowering._RULES.clear()
        lowering._RULES.update(saved)
        leaves = tuple(make_leaves(case, {s.name: s.values() for s in case.inputs}, "float64"))
        fn = torch_callable(case)
        gc = _best(lambda: torch.autograd.gradcheck(fn, leaves, fast_mode=False), repeats)
        print(f"{name:26s} cold before {times['before']:7.3f} CPU s   after {times['after']:7.3f} CPU s   "
              f"gradcheck {gc:7.3f} CPU s   after/gradcheck {times['after'] / gc:5.2f}x", flush=True)


def floor():
    import torch

    from verifier.exact import compiled, lowering
    from verifier.exact.cache import Cache, case_key
    from verifier.exact.symbolic import build
    from verifier.exact.tape import compile_tape, symbol_leaves
    from verifier.run.runner import Runner
    case = cold._case("softmax_16")
    ms = lambda f, n=30: 1e3 * _best(f, n)              # noqa: E731
    model = compiled._lowered(case)
    point, v = {"x": case.input("x").values()}, np.ones(16)
    sym = build(case)
    parts = {
        "the cache key (fingerprints)": ms(lambda: case_key(case, "tape")),
        "lowering.lower": ms(lambda: lowering.lower(case)),
        "second route: per-element SymPy model": ms(lambda: build(case)),
        "second route: its tape": ms(lambda: compile_tape(sym.output.ravel().tolist(), symbol_leaves(sym.symbols))),
        "exact: both sweeps": ms(lambda: compiled.exact(model, point, v)),
    }
    warm_dir = tempfile.mkdtemp()
    runner = lambda d: Runner(cache=Cache(d, values=False), forward_mode=False, second_order=False)   # noqa: E731
    runner(warm_dir).run(case, "float64")

    def cold_run():
        with tempfile.TemporaryDirectory() as tmp:
            runner(tmp).run(case, "float64")
    parts["runner, cold"] = ms(cold_run, 15)
    parts["runner, warm (tape cached)"] = ms(lambda: runner(warm_dir).run(case, "float64"), 15)
    leaves = (torch.tensor(case.input("x").values(), dtype=torch.float64, requires_grad=True),)
    parts["gradcheck slow mode"] = ms(lambda: torch.autograd.gradcheck(lambda x: torch.softmax(x, 0), leaves,
                                                                        fast_mode=False), 15)
    print("softmax_16, CPU ms (best of 30 / 15):")
    for k, val in parts.items():
        print(f"  {k:40s} {val:7.2f}")
    print(f"  cold / gradcheck {parts['runner, cold'] / parts['gradcheck slow mode']:.2f}x, "
          f"warm / gradcheck {parts['runner, warm (tape cached)'] / parts['gradcheck slow mode']:.2f}x")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default=ROWS)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--no-floor", action="store_true")
    args = parser.parse_args()
    # torch's huber_loss under vmap (the batched finite differences) warns about resized outputs each call
    warnings.filterwarnings("ignore", message="An output with one or more elements was resized")
    import torch

    from verifier.exact.cache import Cache
    from verifier.run.runner import Runner
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        cold._warm_up(Runner(cache=Cache(tmp, values=False), forward_mode=False, second_order=False).run)
    rows([n for n in args.rows.split(",") if n], args.repeats)
    if not args.no_floor:
        floor()


if __name__ == "__main__":
    main()
