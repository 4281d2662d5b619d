"""What the numerics cost per case: finite differences, forward mode and second order, against gradcheck.

For every case under the given paths (default: the built-in cases/) that
runs in float64, on the same function and input in this run:

* ``fd``: the verifier's finite differences (batched; complex step or
  Richardson; sampled above ``--max-elements``);
* ``fwd``, ``2nd``: the forward-mode and second-order checks (exact side
  and torch side together);
* ``gradcheck``: torch.autograd.gradcheck in its default slow mode on the
  same function, for scale.

Prints one line per case and the totals with their ratios to gradcheck.

Run:  .venv/bin/python benchmarks/fd_cost.py [PATH ...] [--max-elements N] [-k SUBSTRING]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from verifier.cases.loading import load_paths  # noqa: E402
from verifier.cases.registry import builtin_cases_dir  # noqa: E402
from verifier.exact.symbolic import build  # noqa: E402
from verifier.fd.finite_diff import fd_options, finite_differences  # noqa: E402
from verifier.run.runner import FD_MAX_ELEMENTS, _round  # noqa: E402
from verifier.torch_side.autograd import forward_float64, make_leaves, torch_callable  # noqa: E402
from verifier.torch_side.forward_mode import check_forward_mode  # noqa: E402
from verifier.torch_side.second_order import check_second_order  # noqa: E402
from verifier.verdict.compare import tolerance_for  # noqa: E402


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def gradcheck_seconds(case, values, weights) -> float:
    fn = torch_callable(case)
    tensors = make_leaves(case, values, "float64")
    diff = [i for i, spec in enumerate(case.inputs) if spec.differentiated]

    def only_diff(*xs):
        args = list(tensors)
        for i, x in zip(diff, xs):
            args[i] = x
        y = fn(*args)
        return y if weights is None else y * torch.as_tensor(weights)

    _, seconds = timed(lambda: torch.autograd.gradcheck(only_diff, tuple(tensors[i] for i in diff),
                                                        raise_exception=False))
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", default=[str(builtin_cases_dir())])
    parser.add_argument("--max-elements", type=int, default=FD_MAX_ELEMENTS)
    parser.add_argument("-k", default="", help="only cases whose name contains this")
    args = parser.parse_args()
    warnings.simplefilter("ignore")          # vmap's "no batching rule" performance notes
    # torch sets forward AD up on its first use in a process (about a second here): time it apart
    import torch.autograd.forward_ad as fwad
    with fwad.dual_level():
        _, setup = timed(lambda: fwad.unpack_dual((fwad.make_dual(torch.ones(2), torch.ones(2)) * 2).mean()))
    print(f"one-time forward-AD setup in this process: {setup:.2f} s (not in the per-case times)")
    loaded = load_paths(args.paths)
    totals = {"fd": 0.0, "fwd": 0.0, "2nd": 0.0, "gradcheck": 0.0}
    count = 0
    print(f"{'case':44s} {'n':>6s} {'fd ms':>8s} {'fwd ms':>8s} {'2nd ms':>8s} {'gc ms':>8s}  fd method")
    for case in loaded.cases:
        if args.k not in case.name or case.expect.error is not None or "float64" not in case.dtypes:
            continue
        try:
            model = build(case)
            values = {spec.name: spec.values() for spec in case.inputs}
            point = {spec.name: _round(values[spec.name], "float64") for spec in case.inputs if spec.dtype is None}
            weights = None if case.grad_output is None else case.grad_output.values(model.output.shape)
            tol = tolerance_for(case, "float64")
            f = forward_float64(case, model.structural)
            fd, t_fd = timed(lambda: finite_differences(f, point, model.wrt, weights, **fd_options(case),
                                                        max_elements=args.max_elements))
            fwd, t_fwd = timed(lambda: check_forward_mode(case, model, values, point, "float64", tol))
            snd, t_2nd = timed(lambda: check_second_order(case, model, values, point, weights, "float64", tol))
            t_gc = gradcheck_seconds(case, {**values, **point}, weights)
        except Exception as exc:   # a case that cannot run is reported by `verifier run`; skip it here
            print(f"{case.name[:44]:44s} skipped: {type(exc).__name__}: {str(exc)[:80]}")
            continue
        n = sum(int(model.symbols[name].size) for name in model.wrt)
        print(f"{case.name[:44]:44s} {n:6d} {t_fd * 1e3:8.1f} {t_fwd * 1e3:8.1f} {t_2nd * 1e3:8.1f} "
              f"{t_gc * 1e3:8.1f}  {fd.method} ({fwd.status}/{snd.status})")
        for key, value in (("fd", t_fd), ("fwd", t_fwd), ("2nd", t_2nd), ("gradcheck", t_gc)):
            totals[key] += value
        count += 1
    if not count:
        print("no float64 cases")
        return 1
    gc = totals["gradcheck"]
    print(f"{count} cases (float64): finite differences {totals['fd']:.2f} s ({totals['fd'] / gc:.2f}x gradcheck), "
          f"forward mode {totals['fwd']:.2f} s ({totals['fwd'] / gc:.2f}x), second order {totals['2nd']:.2f} s "
          f"({totals['2nd'] / gc:.2f}x), torch.autograd.gradcheck {gc:.2f} s; "
          f"per case {1e3 * totals['fd'] / count:.1f} / {1e3 * totals['fwd'] / count:.1f} / "
          f"{1e3 * totals['2nd'] / count:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
