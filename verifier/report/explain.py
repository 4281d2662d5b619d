"""``verifier explain NAME``: a case's derivation, in the seed lesson's order.

The symbolic output, the Jacobian of each input (up to ``JACOBIAN_SHOW``
entries), the weights v, the symbolic Jᵀv, the identity Jᵀv = ∂(Σ v⊙y)/∂x
(checked symbolically), the exact forward value y and the scalar Σ v⊙y, the
route that derived Jᵀv and the gap between the two routes, then exact,
autograd and finite-difference numbers side by side (``NUMBERS_SHOWN`` rows
unless ``full``). Numbers are decimals with 17 significant digits (every digit
a float64 has); ``rationals=True`` writes the weights in the symbolic formulas
as the exact rationals they are. The dtype defaults to float64 when the case
runs in it.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd
import sympy as sp

from ..cases.case import Case
from ..cases.python_files import resolve
from ..exact.complex_exact import build_complex
from ..run.jacobian import jacobian_at
from ..run.runner import CaseResult, Runner, _round
from ..run.worker import describe_exception
from ..torch_side.complex_autograd import input_dtypes, is_complex_run

JACOBIAN_SHOW = 100      # entries; larger Jacobians are summarised
JACOBIAN_CSV = 10_000    # entries evaluated for --jacobian (beyond it the Jacobian is not built)
ELEMENTS_SHOW = 24       # output elements printed
NUMBERS_SHOWN = 24       # rows of the numbers table unless full


def _fmt_array(arr: np.ndarray, limit: int = ELEMENTS_SHOW) -> str:
    flat = list(np.ndindex(*arr.shape)) if arr.shape else [()]
    lines = [f"  [{','.join(map(str, idx))}] = {sp.sstr(arr[idx])}" for idx in flat[:limit]]
    if len(flat) > limit:
        lines.append(f"  ... ({len(flat) - limit} more)")
    return "\n".join(lines)


def _decimals(values, limit: int = ELEMENTS_SHOW) -> str:
    flat = np.asarray(values, dtype=np.float64).ravel()
    text = ", ".join(f"{v:.17g}" for v in flat[:limit])
    return f"[{text}{', ...' if flat.size > limit else ''}]" + (f" ({flat.size} values)" if flat.size > limit else "")


def default_dtype(case: Case) -> str:
    return "float64" if "float64" in case.dtypes else case.dtypes[0]


def explain(case: Case, dtype: str | None = None, *, full: bool = False, rationals: bool = False) -> str:
    """The derivation as text (runs the case once at ``dtype``)."""
    return explain_result(case, dtype, full=full, rationals=rationals)[0]


def explain_result(case: Case, dtype: str | None = None, *, full: bool = False, rationals: bool = False,
                   jacobian_csv: str | Path | None = None) -> tuple[str, CaseResult]:
    """The derivation and the result it ran (its status is the command's exit code)."""
    # a Python case file's stand-in: the file is imported here, in the worker; the result goes back to the
    # parent with the stand-in (plain data), not with the file's callables, which only this process can import
    text, result = _explain(resolve(case), dtype, full=full, rationals=rationals, jacobian_csv=jacobian_csv)
    if result.case is not case:
        result.case = case
        if result.autograd is not None and isinstance(result.autograd.error, BaseException):
            result.autograd.error = describe_exception(result.autograd.error)
    return text, result


def _explain(case: Case, dtype: str | None, *, full: bool, rationals: bool,
             jacobian_csv: str | Path | None) -> tuple[str, CaseResult]:
    dtype = dtype or default_dtype(case)
    runner = Runner()
    out = [f"case {case.name} ({dtype})" + (f": {case.description}" if case.description else "")]
    if case.source:
        out.append(f"source: {case.source}")
    out.append("inputs:")
    for spec in case.inputs:
        role = "differentiated" if spec.differentiated else ("index/mask" if spec.dtype else "constant")
        out.append(f"  {spec.name}: shape {list(spec.shape)}, {role}\n" +
                   "\n".join("    " + line for line in np.array2string(spec.values(), precision=6,
                                                                       threshold=ELEMENTS_SHOW).splitlines()))
    out.append(f"torch side:    {case.torch_fn}")
    out.append(f"symbolic side: {case.sympy_fn}")
    for name, origin in (case.functions or {}).items():
        out.append(f"function:      {name} → {origin}")
    result = runner.run(case, dtype)
    if case.expect.error:
        out.append(f"expected error: {case.expect.error!r}\nresult: {result.status}: {result.message}")
        return "\n".join(out), result
    if result.exact is None:
        out.append(f"\nresult: {result.status}: {result.message}")
        return "\n".join(out), result
    if is_complex_run(case, dtype):
        return _complex(case, dtype, result, out, full), result
    model = runner.model(case)
    numeric = getattr(model, "kind", None) == "numeric"     # no SymPy output (docs/numeric-exact.md)
    y = np.asarray(result.exact.output) if numeric else model.output
    out.append(f"\nno symbolic output (shape {list(y.shape)}): the numeric-exact route, docs/numeric-exact.md"
               if numeric else f"\nsymbolic output y (shape {list(y.shape)}):\n{_fmt_array(y)}")
    weights = result.autograd.weights
    out.append("\nweights v: " + ("none: y.backward() (y must be a scalar)" if weights is None
                                  else _decimals(weights)))
    v = np.ones(y.shape) if weights is None else np.broadcast_to(weights, y.shape)
    v_exact = [sp.Rational(float(w)) if rationals else sp.Float(float(w), 17) for w in np.asarray(v).ravel()]
    if numeric:
        pass
    elif model.n_entries <= JACOBIAN_SHOW:
        out += _symbolic(model, y, v_exact)
    else:
        out.append(f"\nJacobian not printed: {model.n_entries} entries (over {JACOBIAN_SHOW}).")
    ex = result.exact
    value = np.asarray(ex.output, dtype=np.float64)
    out.append(f"\nforward value y (exact, {dtype} point): {_decimals(value)}")
    out.append(f"scalar Σ v⊙y = {float(np.sum(np.broadcast_to(v, value.shape) * value)):.17g}")
    routes = ("per-operation and per-element graphs" if "per-element graphs" in (result.route or "")
              else "Jacobian·v and ∂(Σ v⊙y)/∂x")
    gap = "" if ex.route_gap is None else f"; the two routes ({routes}) differ by {ex.route_gap:.3g}"
    out.append(f"exact J^T v by {result.route}{gap}")
    for name, g in ex.vjp.items():
        out.append(f"exact J^T v for {name}: {_decimals(g)}")
    if jacobian_csv is not None:
        out.append("--jacobian: no symbolic Jacobian on the numeric-exact route" if numeric
                   else write_jacobian(model, result, jacobian_csv))
    _numbers(out, result, full)
    return "\n".join(out), result


def _numbers(out: list[str], result: CaseResult, full: bool) -> None:
    rows = result.rows
    cols = [c for c in ["input", "index", "exact", "exact_imag", "autograd", "autograd_imag", "finite_diff",
                        "finite_diff_imag", "abs_err", "tolerance", "fd_abs_err", "ok"] if c in rows]
    shown = rows if full else rows.head(NUMBERS_SHOWN)
    with pd.option_context("display.float_format", lambda x: f"{x:.17g}", "display.width", 200,
                           "display.max_rows", None, "display.max_columns", None):
        out.append("\nnumbers (exact | autograd | finite differences):\n" + shown[cols].to_string(index=False))
    if len(shown) < len(rows):
        bad = int((~rows["ok"].astype(bool)).sum())
        out.append(f"... {len(rows) - len(shown)} more rows ({bad} mismatching in all); --full prints every row")
    out.append(f"\ngrad_fn of the output: {result.grad_fn}")
    out.append(f"result: {result.status}" + (f": {result.message}" if result.message else ""))


def _complex(case: Case, dtype: str, result: CaseResult, out: list[str], full: bool) -> str:
    """The complex route's derivation (docs/complex.md): the realified output, complex v, z.grad, the numbers."""
    dtypes = input_dtypes(case, dtype)
    model = build_complex(case, {n for n, d in dtypes.items() if d.startswith("complex")},
                          {s.name: s.values() for s in case.inputs if s.dtype is not None})
    out.append("\nrealified: each complex element is re(z)[i] + I*im(z)[i] over real symbols; torch's z.grad is "
               "dL/dx + i*dL/dy for L = sum Re(conj(v)*y) (docs/complex.md)")
    out.append(f"symbolic output y (shape {list(model.output.shape)}):\n{_fmt_array(model.output)}")
    weights = result.autograd.weights
    flat = lambda a: ", ".join(f"{complex(v):.17g}" for v in np.ravel(a)[:ELEMENTS_SHOW])  # noqa: E731
    out.append("\nweights v: " + ("none: y.backward() (y must be a real scalar)" if weights is None
                                  else f"[{flat(weights)}]"))
    ex = result.exact
    out.append(f"\nforward value y (exact, {dtype} point): [{flat(ex.output)}]")
    gap = "" if ex.route_gap is None else f"; the two routes differ by {ex.route_gap:.3g}"
    out.append(f"exact .grad by {result.route}{gap}")
    for name, g in ex.vjp.items():
        out.append(f"exact {name}.grad: [{flat(g)}]")
    _numbers(out, result, full)
    return "\n".join(out)


def _symbolic(model, y, v_exact) -> list[str]:
    out = []
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
    return out


def write_jacobian(model, result: CaseResult, path: str | Path) -> str:
    """The exact Jacobian at the case's point as CSV (input, output index, input index, value)."""
    if model.n_entries > JACOBIAN_CSV:
        return (f"\nJacobian not written: {model.n_entries} entries (over {JACOBIAN_CSV}); the exact J^T v above "
                f"was derived without it.")
    point = {}
    for spec in result.case.inputs:
        if spec.name in model.symbols:
            values = np.asarray(spec.values(), dtype=np.float64)
            point[spec.name] = _round(values, result.dtype) if spec.dtype is None else values
    jac = jacobian_at(model, point)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["input", "output_index", "input_index", "value"])
    out_index = list(np.ndindex(*model.output.shape)) if model.output.shape else [()]
    for name in model.wrt:
        syms = model.symbols[name]
        in_index = list(np.ndindex(*syms.shape)) if syms.shape else [()]
        for a, oi in enumerate(out_index):
            for b, ii in enumerate(in_index):
                writer.writerow([name, str(oi), str(ii), f"{jac[name][a, b]:.17g}"])
    Path(path).write_text(buffer.getvalue(), encoding="utf-8")
    return f"\nJacobian written to {path} ({model.n_entries} entries)"
