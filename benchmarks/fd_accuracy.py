"""How accurate are the finite differences, and do their error estimates hold? Prints a table per case.

For each smooth float64 case (the list below plus every built-in case whose
functions are all smooth), against the exact Jᵀv (SymPy, 40 digits):

* ``gradcheck``: central differences with torch.autograd.gradcheck's fixed
  step, eps = 1e-6, one element at a time: (g(x + eps) - g(x - eps)) / 2eps;
* ``richardson``: the new Richardson-extrapolated differences alone;
* ``new``: what the verifier uses (the complex step where the case allows
  it, else Richardson).

Each error is the case's max over elements of |fd - exact| / max|exact| (per
input, so an element whose exact value is ~0 does not divide by zero),
floored at 2^-53 ≈ 1.1e-16: float64 cannot resolve more. ``improvement`` is
gradcheck's error over the new one. ``bounded`` is the fraction of elements
where the new method's own error estimate is >= its true error.

Times: our finite differences (batched) and torch.autograd.gradcheck (slow
mode, which also builds the analytical Jacobian) on the same function and
input, in this run, and their ratio.

Run:  .venv/bin/python benchmarks/fd_accuracy.py [--builtin-only | --own-only] [--random N]
Targets (issue 4): median improvement >= 1000x; bounded >= 99%.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from verifier import make_case  # noqa: E402
from verifier.cases.loading import load_paths  # noqa: E402
from verifier.cases.registry import builtin_cases_dir  # noqa: E402
from verifier.exact import mirror
from verifier.exact.compiled import exact  # noqa: E402
from verifier.exact.symbolic import build  # noqa: E402
from verifier.fd.finite_diff import fd_options, finite_differences  # noqa: E402
from verifier.run.runner import _round  # noqa: E402
from verifier.torch_side.autograd import forward_float64, make_leaves, torch_callable  # noqa: E402

FLOOR = 2.0 ** -53
GRADCHECK_EPS = 1e-6

N = {"sample": "normal"}
POS = {"sample": "uniform", "low": 0.2, "high": 3.0, "domain": [0, float("inf")]}

# name, inputs, forward, grad_output
OWN_CASES = [
    ("softmax16", {"x": {"shape": [16], **N, "seed": 1}}, "F.softmax(x, dim=0)", "random"),
    ("log_softmax", {"x": {"shape": [4, 6], **N, "seed": 2}}, "F.log_softmax(x, dim=1)", "random"),
    ("logsumexp", {"x": {"shape": [24], **N, "seed": 3}}, "torch.logsumexp(x, dim=0)", None),
    ("exp", {"x": {"shape": [20], **N, "seed": 4}}, "torch.exp(x)", "random"),
    ("log", {"x": {"shape": [12], **POS, "seed": 5}}, "torch.log(x)", "random"),
    ("sqrt", {"x": {"shape": [12], **POS, "seed": 6}}, "torch.sqrt(x)", "random"),
    ("tanh", {"x": {"shape": [4, 5], **N, "seed": 7}}, "torch.tanh(x)", "random"),
    ("sigmoid_scaled", {"x": {"shape": [10], **N, "seed": 8}}, "torch.sigmoid(3 * x)", "random"),
    ("sin_cos", {"x": {"shape": [10], **N, "seed": 9}}, "torch.sin(x) * torch.cos(2 * x)", "random"),
    ("cubic", {"x": {"shape": [10], **N, "seed": 10}}, "(x**3 - 2 * x).sum()", None),
    ("matmul", {"a": {"shape": [4, 5], **N, "seed": 11}, "b": {"shape": [5, 3], **N, "seed": 12}}, "a @ b",
     "random"),
    ("det", {"a": {"shape": [4, 4], **N, "seed": 13}}, "torch.linalg.det(a)", None),
    ("inv", {"a": {"value": [[2.0, 0.3, -0.1], [0.2, 1.5, 0.4], [-0.3, 0.1, 1.8]]}}, "torch.linalg.inv(a)",
     "random"),
    ("gelu", {"x": {"shape": [12], **N, "seed": 14}}, "F.gelu(x)", "random"),
    ("softplus", {"x": {"shape": [12], **N, "seed": 15}}, "F.softplus(x)", "random"),
    ("erf", {"x": {"shape": [12], **N, "seed": 16}}, "torch.erf(x)", "random"),
    ("layer_norm", {"x": {"shape": [3, 8], **N, "seed": 17}}, "F.layer_norm(x, [8])", "random"),
    ("cosine_similarity", {"x": {"shape": [3, 6], **N, "seed": 18}, "y": {"shape": [3, 6], **N, "seed": 19}},
     "F.cosine_similarity(x, y, dim=1)", "random"),
    ("mse_loss", {"x": {"shape": [10], **N, "seed": 20}, "t": {"shape": [10], **N, "seed": 21,
                                                                "requires_grad": False}},
     "F.mse_loss(x, t)", None),
    ("cross_entropy", {"x": {"shape": [4, 5], **N, "seed": 22},
                       "k": {"value": [1, 0, 4, 2], "dtype": "int64"}}, "F.cross_entropy(x, k)", None),
    ("atan_asinh", {"x": {"shape": [10], **N, "seed": 23}}, "torch.atan(x) + torch.asinh(2 * x)", "random"),
    ("prod", {"x": {"shape": [6], "sample": "uniform", "low": 0.5, "high": 1.5, "seed": 24}}, "torch.prod(x)",
     None),
    ("cumprod", {"x": {"shape": [8], "sample": "uniform", "low": 0.5, "high": 1.5, "seed": 25}},
     "torch.cumprod(x, dim=0)", "random"),
    ("silu", {"x": {"shape": [12], **N, "seed": 26}}, "F.silu(x)", "random"),
    ("logaddexp", {"x": {"shape": [8], **N, "seed": 27}, "y": {"shape": [8], **N, "seed": 28}},
     "torch.logaddexp(x, y)", "random"),
    ("var", {"x": {"shape": [10], **N, "seed": 29}}, "torch.var(x)", None),
    ("rational", {"x": {"shape": [10], **N, "seed": 30}}, "x / (1 + x**2)", "random"),
    ("einsum_bilinear", {"x": {"shape": [4], **N, "seed": 31}, "a": {"shape": [4, 4], **N, "seed": 32},
                         "y": {"shape": [4], **N, "seed": 33}}, "torch.einsum('i,ij,j->', x, a, y)", None),
    ("tanhshrink", {"x": {"shape": [10], **N, "seed": 34}}, "F.tanhshrink(x)", "random"),
    ("exp_scaled", {"x": {"shape": [8], "sample": "uniform", "low": -1.0, "high": 1.0, "seed": 35}},
     "torch.exp(5 * x) / (1 + x**2)", "random"),
    ("log_near_zero", {"x": {"value": [1e-6, 1e-4, 0.01, 0.3, 2.0], "domain": [0, float("inf")]}},
     "torch.log(x)", "random"),
    ("acos_near_one", {"x": {"value": [0.999999, -0.99999, 0.5, 0.0], "domain": [-1, 1]}}, "torch.acos(x)",
     "random"),
    ("softmax256", {"x": {"shape": [256], **N, "seed": 36}}, "F.softmax(x, dim=0)", "random"),
    ("elementwise1000_tanh", {"x": {"shape": [1000], **N, "seed": 37}}, "torch.tanh(x) * x", "random"),
    ("elementwise1000_gelu", {"x": {"shape": [1000], **N, "seed": 38}}, "F.gelu(x) + F.softplus(2 * x)", "random"),
]

# --random N: smooth expressions composed at random (seeded), so the estimate's coverage is not only
# measured on hand-picked cases
_UNARY = ["torch.exp({})", "torch.tanh({})", "torch.sin({})", "torch.sigmoid({})", "F.softplus({})",
          "torch.atan({})", "({})**2", "1/(1+({})**2)", "F.gelu({})", "torch.erf({})", "F.silu({})",
          "torch.log(1+({})**2)", "torch.sqrt(1+({})**2)"]
_BINARY = ["({}) * ({})", "({}) + ({})", "({}) - 2*({})", "({}) / (2 + torch.tanh({}))"]
_OUTER = ["F.softmax({}, dim=0)", "({}).sum()", "torch.logsumexp({}, dim=0)", "{}", "torch.cumsum({}, dim=0)",
          "F.normalize({}, dim=0)"]


def random_cases(count: int) -> list:
    import random
    rnd = random.Random(2024)

    def expr(depth):
        if depth == 0:
            return rnd.choice(["x", "y", "0.7*x", "x*y"])
        if rnd.random() < 0.3:
            return rnd.choice(_BINARY).format(expr(depth - 1), expr(depth - 1))
        return rnd.choice(_UNARY).format(expr(depth - 1))

    out = []
    for k in range(count):
        n = rnd.choice([3, 5, 8, 12])
        inputs = {"x": {"shape": [n], **N, "std": rnd.choice([0.5, 1.0, 2.0]), "seed": 1000 + k},
                  "y": {"shape": [n], **N, "seed": 2000 + k}}
        out.append(make_case(f"random.{k}", inputs, forward=rnd.choice(_OUTER).format(expr(rnd.randint(1, 3))),
                             grad_output="random"))
    return out

# smooth, beyond the analytic ones: a built-in case calling only these is benchmarked too
SMOOTH = {"softmax", "log_softmax", "softmin", "gelu", "softplus", "erf", "erfc", "layer_norm", "normalize",
          "cosine_similarity", "mse_loss", "cross_entropy", "var", "std", "logsigmoid", "mish", "selu", "elu",
          "celu", "vector_norm", "norm", "linear", "binary_cross_entropy", "binary_cross_entropy_with_logits",
          "kl_div", "nll_loss"}
KINK_TAGS = {"kink", "kinks", "error", "errors", "semantics"}


def smooth(case) -> bool:
    used = getattr(case.torch_fn, "functions", None)
    if used is None or case.expect.error is not None or KINK_TAGS & set(case.tags):
        return False
    for name in used:
        try:
            entry = mirror.resolve(name)
        except Exception:
            return False
        if not (entry.analytic or entry.name in SMOOTH):
            return False
    return True


def gradcheck_style(f, point, wrt, weights):
    """torch.autograd.gradcheck's numerical rule: central differences, eps = 1e-6, one element at a time."""
    base = {k: torch.as_tensor(np.asarray(v, dtype=np.float64)) for k, v in point.items()}
    w = None if weights is None else torch.as_tensor(weights)

    def g(args):
        y = f(args).to(torch.float64)
        return float((y * w).sum() if w is not None else y.sum())

    out = {}
    for name in wrt:
        x = base[name]
        grad = np.empty(tuple(x.shape))
        for idx in np.ndindex(*x.shape):
            plus, minus = x.clone(), x.clone()
            plus[idx] += GRADCHECK_EPS
            minus[idx] -= GRADCHECK_EPS
            grad[idx] = (g({**base, name: plus}) - g({**base, name: minus})) / (2 * GRADCHECK_EPS)
        out[name] = grad
    return out


def rel_error(values, exact_vjp) -> float:
    worst = 0.0
    for name, ex in exact_vjp.items():
        scale = max(float(np.max(np.abs(ex))), 1e-300) if ex.size else 1.0
        worst = max(worst, float(np.max(np.abs(values[name] - ex))) / scale)
    return max(worst, FLOOR)


def gradcheck_seconds(case, point, values, weights) -> float:
    fn = torch_callable(case)
    tensors = make_leaves(case, {**values, **point}, "float64")
    diff = [i for i, spec in enumerate(case.inputs) if spec.differentiated]

    def only_diff(*xs):
        args = list(tensors)
        for i, x in zip(diff, xs):
            args[i] = x
        y = fn(*args)
        return y if weights is None else y * torch.as_tensor(weights)

    start = time.perf_counter()
    # raise_exception=False: near a domain bound gradcheck's own differences leave the domain and it
    # reports a mismatch; here only its time is wanted
    torch.autograd.gradcheck(only_diff, tuple(tensors[i] for i in diff), eps=GRADCHECK_EPS, fast_mode=False,
                             raise_exception=False)
    return time.perf_counter() - start


def measure(case) -> dict:
    model = build(case)
    values = {spec.name: spec.values() for spec in case.inputs}
    point = {spec.name: _round(values[spec.name], "float64") for spec in case.inputs if spec.dtype is None}
    weights = None if case.grad_output is None else case.grad_output.values(model.output.shape)
    ex = exact(model, point, weights)
    f = forward_float64(case, model.structural)
    opts = fd_options(case)
    start = time.perf_counter()
    new = finite_differences(f, point, model.wrt, weights, **opts)
    ours = time.perf_counter() - start
    rich = finite_differences(f, point, model.wrt, weights, **{**opts, "complex_step": False})
    central = gradcheck_style(f, point, model.wrt, weights)
    total = sum(int(ex.vjp[n].size) for n in model.wrt)
    bounded = sum(int(np.sum(np.abs(new.values[n] - ex.vjp[n]) <= new.error_estimate[n])) for n in model.wrt)
    rich_bounded = sum(int(np.sum(np.abs(rich.values[n] - ex.vjp[n]) <= rich.error_estimate[n]))
                       for n in model.wrt)
    return {
        "case": case.name, "n": total, "method": new.method,
        "gradcheck": rel_error(central, ex.vjp), "richardson": rel_error(rich.values, ex.vjp),
        "new": rel_error(new.values, ex.vjp), "bounded": bounded, "rich_bounded": rich_bounded,
        "ours_s": ours, "gradcheck_s": gradcheck_seconds(case, point, values, weights),
    }


def cases(which: str, random_count: int = 0) -> list:
    out = random_cases(random_count)
    if which != "builtin":
        for name, inputs, forward, grad_output in OWN_CASES:
            fields = {} if grad_output is None else {"grad_output": grad_output}
            out.append(make_case(f"bench.{name}", inputs, forward=forward, **fields))
    if which != "own":
        loaded = load_paths([builtin_cases_dir()])
        out.extend(c for c in loaded.cases if smooth(c))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--builtin-only", action="store_const", dest="which", const="builtin")
    group.add_argument("--own-only", action="store_const", dest="which", const="own")
    parser.add_argument("--random", type=int, default=0, metavar="N",
                        help="also N randomly composed smooth cases (seeded)")
    args = parser.parse_args()
    which = args.which or "all"
    rows = []
    head = (f"{'case':38s} {'n':>4s} {'gradcheck':>9s} {'richards.':>9s} {'new':>9s} {'improv.':>8s} "
            f"{'bounded':>8s} {'ours ms':>8s} {'gc ms':>8s} {'ratio':>6s}  method")
    print(head)
    print("-" * len(head))
    for case in cases(which, args.random):
        try:
            r = measure(case)
        except Exception as exc:   # report, keep going
            print(f"{case.name:38s} skipped: {type(exc).__name__}: {exc}")
            continue
        rows.append(r)
        print(f"{r['case'][:38]:38s} {r['n']:4d} {r['gradcheck']:9.1e} {r['richardson']:9.1e} {r['new']:9.1e} "
              f"{r['gradcheck'] / r['new']:7.0f}x {r['bounded']:4d}/{r['n']:<3d} {r['ours_s'] * 1e3:8.1f} "
              f"{r['gradcheck_s'] * 1e3:8.1f} {r['ours_s'] / r['gradcheck_s']:6.2f}  {r['method']}")
    if not rows:
        print("no cases")
        return 1
    improvement = statistics.median(r["gradcheck"] / r["new"] for r in rows)
    rich_improvement = statistics.median(r["gradcheck"] / r["richardson"] for r in rows)
    elements = sum(r["n"] for r in rows)
    bounded = sum(r["bounded"] for r in rows) / elements
    rich_bounded = sum(r["rich_bounded"] for r in rows) / elements
    ours, theirs = sum(r["ours_s"] for r in rows), sum(r["gradcheck_s"] for r in rows)
    print("-" * len(head))
    print(f"{len(rows)} smooth float64 cases, {elements} gradient elements")
    print(f"median improvement over gradcheck-style central differences: new {improvement:.0f}x "
          f"(target >= 1000x), Richardson alone {rich_improvement:.0f}x")
    print(f"error estimate bounds the true error on {100 * bounded:.2f}% of elements (target >= 99%); "
          f"Richardson alone {100 * rich_bounded:.2f}%")
    print(f"finite-difference time: ours {ours:.3f} s, torch.autograd.gradcheck (slow mode) {theirs:.3f} s, "
          f"ratio {ours / theirs:.2f}")
    return 0 if improvement >= 1000 and bounded >= 0.99 else 1


if __name__ == "__main__":
    raise SystemExit(main())
