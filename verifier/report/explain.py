"""``verifier explain NAME``: a case's derivation, in the seed lesson's order.

The symbolic output, the Jacobian of each input (up to ``JACOBIAN_SHOW``
entries), the weights v, the symbolic Jᵀv, the identity Jᵀv = ∂(Σ v⊙y)/∂x
(checked symbolically), then exact, autograd and finite-difference numbers
side by side.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import sympy as sp

from ..cases.case import Case
from ..run.runner import Runner

JACOBIAN_SHOW = 100      # entries; larger Jacobians are summarised
ELEMENTS_SHOW = 24       # output elements printed


def _fmt_array(arr: np.ndarray, limit: int = ELEMENTS_SHOW) -> str:
    flat = list(np.ndindex(*arr.shape)) if arr.shape else [()]
    lines = [f"  [{','.join(map(str, idx))}] = {sp.sstr(arr[idx])}" for idx in flat[:limit]]
    if len(flat) > limit:
        lines.append(f"  ... ({len(flat) - limit} more)")
    return "\n".join(lines)


def explain(case: Case, dtype: str | None = None) -> str:
    """The derivation as text (runs the case once at ``dtype``, default its first)."""
    dtype = dtype or case.dtypes[0]
    runner = Runner()
    out = [f"case {case.name} ({dtype})" + (f": {case.description}" if case.description else "")]
    out.append("inputs:")
    for spec in case.inputs:
        role = "differentiated" if spec.differentiated else ("index/mask" if spec.dtype else "constant")
        out.append(f"  {spec.name}: shape {list(spec.shape)}, {role}\n" +
                   "\n".join("    " + line for line in np.array2string(spec.values(), precision=6).splitlines()))
    out.append(f"torch side:    {case.torch_fn}")
    out.append(f"symbolic side: {case.sympy_fn}")
    if case.expect.error:
        result = runner.run(case, dtype)
        out.append(f"expected error: {case.expect.error!r}\nresult: {result.status}: {result.message}")
        return "\n".join(out)
    model = runner.model(case)
    y = model.output
    out.append(f"\nsymbolic output y (shape {list(y.shape)}):\n{_fmt_array(y)}")
    result = runner.run(case, dtype)
    if result.exact is None:
        out.append(f"\nresult: {result.status}: {result.message}")
        return "\n".join(out)
    weights = result.autograd.weights
    out.append("\nweights v: " + ("none: y.backward() (y must be a scalar)" if weights is None
                                  else np.array2string(weights, precision=6)))
    v = np.ones(y.shape) if weights is None else np.broadcast_to(weights, y.shape)
    v_exact = [sp.Rational(float(w)) for w in np.asarray(v).ravel()]
    if model.n_entries <= JACOBIAN_SHOW:
        jac = model.jacobian()
        scalar = sp.Add(*[w * e for w, e in zip(v_exact, y.ravel())])
        for name in model.wrt:
            syms = model.symbols[name]
            j = jac[name].reshape(y.size, syms.size)
            out.append(f"\nJacobian dy/d{name} ({y.size} x {syms.size}):")
            out.append("\n".join("  " + sp.sstr(list(row)) for row in j))
            jtv = [sp.Add(*[w * j[i, k] for i, w in enumerate(v_exact)]) for k in range(syms.size)]
            direct = [sp.diff(scalar, s) for s in syms.ravel()]
            same = all(sp.simplify(a - b) == 0 for a, b in zip(jtv, direct))
            out.append(f"symbolic J^T v for {name}:")
            out.append("\n".join(f"  {s} : {sp.sstr(e)}" for s, e in zip(syms.ravel(), jtv)))
            out.append(f"identity J^T v = d(sum v*y)/d{name}: " + ("holds symbolically" if same else "DOES NOT HOLD"))
    else:
        out.append(f"\nJacobian not printed: {model.n_entries} entries (over {JACOBIAN_SHOW}); "
                   f"exact J^T v by {result.route}.")
    cols = ["input", "index", "exact", "autograd", "finite_diff", "abs_err", "fd_abs_err", "ok"]
    with pd.option_context("display.precision", 12, "display.width", 160, "display.max_rows", 60):
        out.append("\nnumbers (exact | autograd | finite differences):\n" + result.rows[cols].to_string(index=False))
    out.append(f"\ngrad_fn of the output: {result.grad_fn}")
    out.append(f"result: {result.status}" + (f": {result.message}" if result.message else ""))
    return "\n".join(out)

