"""The numbers behind docs/numerics.md's "The allowance": old global-scale rule against rtol·M + atol.

    .venv/bin/python benchmarks/allowance_examples.py

For each example: the elements' exact value, autograd's error, the rounding
bound M, the new allowance rtol·M + atol and the old one
rtol·|exact| + atol·max(1, max|exact|), and both verdicts.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from corpus.elementwise import CubeThirdPlusOne  # noqa: E402  (x³/3 whose backward returns g·(x² + 1))

from verifier import Runner, make_case  # noqa: E402
from verifier.torch_side.second_order import exact_hvp  # noqa: E402
from verifier.verdict.compare import tolerance_for  # noqa: E402

OFF = {"forward_mode": False, "second_order": False}
EXAMPLES = [
    ("x^3/3, backward x^2+1 (bug), beside 2000", "float32",
     dict(inputs={"x": [0.5, -1.0, 1.5, 2000.0]}, torch=CubeThirdPlusOne.apply, sympy="x**3 / 3", checks=OFF)),
    ("x^3/3, backward x^2+1 (bug), beside 2e13", "float64",
     dict(inputs={"x": [0.5, -1.0, 1.5, 2e13]}, torch=CubeThirdPlusOne.apply, sympy="x**3 / 3", checks=OFF)),
    ("(sum(x) - sum(x))*x + 3x, large x", "float32",
     dict(inputs={"x": [1e6, 2e6, -3e6]}, forward="(x.sum() - x.sum()) * x + 3 * x")),
    ("softmax, logits ~1000, v = ones (exact 0)", "float32",
     dict(inputs={"x": [1000.0, 1001.0, 999.5, 1000.25]}, forward="F.softmax(x, dim=0)")),
    ("softmax, logits ~1000, v = ones (exact 0)", "float64",
     dict(inputs={"x": [1000.0, 1001.0, 999.5, 1000.25]}, forward="F.softmax(x, dim=0)")),
    ("sigmoid saturated (torch: y(1-y))", "float32",
     dict(inputs={"x": [17.0, 20.0, -3.0]}, forward="torch.sigmoid(x)")),
    ("sigmoid saturated (torch: y(1-y))", "float64",
     dict(inputs={"x": [37.0, 40.0, -3.0]}, forward="torch.sigmoid(x)")),
]


#: main's defaults before the allowance (float32's rtol was 3e-5; the others are unchanged)
OLD_RTOL = {"float64": 4e-11, "float32": 3e-5}


def old_allowance(exact: np.ndarray, rtol: float, atol: float) -> np.ndarray:
    return rtol * np.abs(exact) + atol * max(1.0, float(np.max(np.abs(exact))))


def main() -> None:
    torch.manual_seed(0)
    for title, dtype, fields in EXAMPLES:
        case = make_case("doc.example", grad_output="ones", dtypes=[dtype], **fields)
        result = Runner(cache=False).run(case, dtype)
        rows, tol = result.rows, tolerance_for(case, dtype)
        old = old_allowance(rows["exact"].to_numpy(), OLD_RTOL[dtype], tol.atol)
        mag = np.concatenate([result.exact.magnitude[k].ravel() for k in result.exact.vjp])
        print(f"\n{title} [{dtype}]: new {result.status}, old "
              f"{'pass' if (rows['abs_err'].to_numpy() <= old).all() else 'fail'}")
        print(f"  {'exact':>12} {'abs_err':>10} {'M':>10} {'new allow':>10} {'old allow':>10} {'ulp_err':>8}")
        for (_, r), m, o in zip(rows.iterrows(), mag, old):
            print(f"  {r.exact:12.4g} {r.abs_err:10.3g} {m:10.3g} {r.tolerance:10.3g} {o:10.3g} {r.ulp_err:8.3g}")
    for xs in ([[0.01, -0.02, 0.003]], [[1e-3, -2e-3, 3e-3]]):
        case = make_case("doc.normalize", {"x": xs}, forward="F.normalize(x, p=0.5, dim=0)",
                         grad_output="random", dtypes=["float64"])
        runner = Runner(cache=False)
        result = runner.run(case, "float64")
        so = result.second_order
        point = {"x": np.array(xs)}
        bound = exact_hvp(runner.model(case), point, result.autograd.weights, so.direction)["M:x"]
        allowed = tolerance_for(case, "float64").rtol * bound + tolerance_for(case, "float64").atol
        print(f"\nF.normalize(x, p=0.5, dim=0), x = {xs} [float64] second order: {so.status}; "
              f"exact H·w {so.exact['x'].ravel()}, torch {so.torch['x'].ravel()}, M {bound.ravel()}, "
              f"allowance {allowed.ravel()} (old: 4e-13)")


if __name__ == "__main__":
    main()
