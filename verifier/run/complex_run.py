"""One complex case × dtype through the three sides (docs/complex.md).

The runner hands a case here when its dtype is complex or an input is
declared complex (``torch_side.complex_autograd.is_complex_run``). The
checks are the real route's, realified: the gradient (``|autograd − exact|``
per complex element), the forward value, leaf inputs, ``expect`` fields, and
for holomorphic functions the agreement of the exact gradient with
``Σ v·conj(∂f/∂z)``. Forward mode, double backward, kink detection and
``backward: {repeat}`` are not realified yet: they are reported as skipped
with that reason (never passed silently).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..cases.case import COMPLEX_DTYPES, Case
from ..errors import CaseError, SymbolicError
from ..exact.complex_exact import build_complex, exact_complex
from ..fd.complex_fd import complex_finite_differences
from ..torch_side.complex_autograd import (
    forward_double,
    input_dtypes,
    rounded,
    run_complex_autograd,
    tolerance_dtype,
)
from ..verdict.compare import DEFAULT_TOLERANCES
from ..verdict.complex_compare import complex_columns, complex_mismatches, complex_within
from .checks import Check

SKIPPED = "not checked on the complex route yet (docs/complex.md)"


def complex_values(spec, dtype_name: str) -> np.ndarray:
    """An input's values; a sampled complex input draws its real and imaginary parts from the same law."""
    if dtype_name not in COMPLEX_DTYPES:
        values = spec.values()
        if np.iscomplexobj(values):
            raise CaseError(f"input '{spec.name}' holds complex numbers but is real in this run",
                            hint="Give the case a complex dtype (dtypes: [complex64, complex128]) or the "
                                 "input `dtype: complex128`.")
        return values
    if spec.sample is None:
        return np.asarray(spec.values(), dtype=np.complex128)
    rng = np.random.default_rng(spec.seed)
    if spec.sample == "normal":
        draw = lambda: rng.normal(spec.params.get("mean", 0.0), spec.params.get("std", 1.0), spec.shape)  # noqa: E731
    else:
        low, high = spec.uniform_bounds()
        draw = lambda: rng.uniform(low, high, spec.shape)  # noqa: E731
    return draw() + 1j * draw()


def complex_weights(case: Case, shape: tuple[int, ...], complex_output: bool) -> np.ndarray | None:
    """v: ``ones`` is real ones, ``random`` draws real and imaginary parts for a complex output, or the literal."""
    go = case.grad_output
    if go is None:
        return None
    if go.kind == "random" and complex_output:
        rng = np.random.default_rng(go.seed)
        return rng.normal(size=shape) + 1j * rng.normal(size=shape)
    return go.values(shape)


def run_complex(case: Case, dtype: str, result_type: type, expected_error: Callable):
    """A ``result_type`` (the runner's CaseResult) for ``case`` at ``dtype``; ``expected_error`` judges expect.error."""
    if dtype == "complex32":
        raise CaseError("complex32 (torch.chalf) is not supported: torch's autograd lacks most complex32 "
                        "operations (no exp, sum, matmul backward on the CPU)",
                        hint="Drop complex32 from the case's dtypes; complex64 checks the same code in "
                             "single precision.")
    if case.expect.error is None and int(case.options.get("repeat", 1)) > 1:
        raise CaseError("backward: {repeat} is not supported for complex cases yet",
                        hint="Drop 'backward' from the complex case.")
    dtypes = input_dtypes(case, dtype)
    complex_inputs = {n for n, d in dtypes.items() if d in COMPLEX_DTYPES}
    values = {spec.name: complex_values(spec, dtypes.get(spec.name, "")) if spec.dtype is None else spec.values()
              for spec in case.inputs}
    point = {n: rounded(values[n], d) for n, d in dtypes.items()}
    structural = {spec.name: values[spec.name] for spec in case.inputs if spec.dtype is not None}
    ag = run_complex_autograd(case, {**values, **point}, dtypes,
                              lambda shape, cplx: _rounded_weights(case, shape, cplx, dtype))
    result = result_type(case, dtype, "pass", grad_fn=ag.grad_fn, autograd=ag)
    if case.expect.error is not None:
        return expected_error(result, ag, case.expect.error)
    if ag.error is not None:
        result.status = "error"
        result.message = f"torch raised in {ag.error_stage}: {type(ag.error).__name__}: {ag.error}"
        return result
    model = build_complex(case, complex_inputs, structural)
    if model.output.shape != ag.output_shape:
        raise SymbolicError(f"the symbolic output has shape {list(model.output.shape)} but torch's has "
                            f"{list(ag.output_shape)}", hint="The two readings must compute the same function.")
    ex = exact_complex(model, point, ag.weights)
    result.exact, result.route = ex, ex.route
    fd = complex_finite_differences(forward_double(case, dtypes, structural), point, model.wrt, complex_inputs,
                                    ag.weights)
    result.fd = fd
    tol_dtype = tolerance_dtype(case, dtype)
    tol = case.tolerance.get(dtype, DEFAULT_TOLERANCES[tol_dtype])
    columns = complex_columns(case, dtype, tol_dtype, ex.vjp, ag.grads, fd, tol, ex.magnitude)
    columns.update({"kink": False, "kink_left": np.nan, "kink_right": np.nan, "kink_rule": ""})
    result.columns = columns
    result.checks = _checks(case, columns, ag, ex, tol)
    if len(columns["abs_err"]):
        gradient = result.checks[0]
        gradient.max_abs_err = float(np.nanmax(columns["abs_err"]))
        gradient.max_rel_err = float(np.nanmax(columns["rel_err"]))
        gradient.elements = len(columns["abs_err"])
    failed = [c for c in result.checks if not c.ok]
    if failed:
        result.status = "non_finite" if all(c.non_finite for c in failed) else "fail"
        result.message = "; ".join(f"{c.name}: {c.detail}" for c in failed)
    else:
        result.message = _note(ex)
    return result


def _rounded_weights(case: Case, shape, complex_output: bool, dtype: str):
    w = complex_weights(case, shape, complex_output)
    if w is None:
        return None
    real = COMPLEX_DTYPES.get(dtype, dtype)
    return rounded(w, dtype if complex_output and dtype in COMPLEX_DTYPES else
                   ({"float32": "complex64", "float64": "complex128"}.get(real, "complex128")
                    if complex_output else real))


def _note(ex) -> str:
    if getattr(ex, "holomorphic", False):
        return ("holomorphic at the point (∂f/∂z̄ = 0): the gradient was also checked as Σ v·conj(∂f/∂z); "
                "forward_mode, second_order: " + SKIPPED)
    return "forward_mode, second_order: " + SKIPPED


def _checks(case: Case, columns: dict, ag, ex, tol) -> list[Check]:
    ok = np.asarray(columns["ok"], dtype=bool)
    finite = np.isfinite(np.asarray(columns["abs_err"], dtype=float)) & np.isfinite(
        np.asarray(columns["tolerance"], dtype=float))
    checks = [Check("gradient", bool(np.all(ok | ~finite)), complex_mismatches({**columns, "ok": ok | ~finite}))]
    if not finite.all():
        checks.append(Check("non_finite", False, f"non-finite gradient values at {int((~finite).sum())} / "
                            f"{finite.size} elements: an overflow or a pole; move the point", non_finite=True))
    if ag.output is not None:
        out_ok, _, err = complex_within(ag.output, ex.output, tol, ex.output_magnitude)
        checks.append(Check("forward", bool(out_ok.all()), "" if out_ok.all() else
                            f"torch output differs from the exact output by up to {np.nanmax(err):.3g}"))
    if ex.route_gap is not None:
        scale = max([1.0] + [float(np.max(m)) for m in (ex.magnitude or {}).values() if np.size(m)])
        same = ex.route_gap <= 1e-25 * scale
        checks.append(Check("holomorphic", same, "" if same else
                            f"the exact gradient and Σ v·conj(∂f/∂z) differ by {ex.route_gap:.3g}: a bug in the "
                            "verifier's complex route; please report it"))
    for name, (is_leaf, grad_fn) in ag.leaves.items():
        if case.input(name).differentiated and (not is_leaf or grad_fn is not None):
            checks.append(Check("leaf", False, f"input '{name}' is not a leaf (grad_fn {grad_fn})"))
    expect = case.expect
    if expect.grad_fn is not None:
        checks.append(Check("expect.grad_fn", ag.grad_fn == expect.grad_fn,
                            f"expected grad_fn {expect.grad_fn}, got {ag.grad_fn}"))
    if expect.output is not None:
        stated = np.asarray(expect.output, dtype=np.complex128)
        good = stated.shape == ex.output.shape and bool(complex_within(ex.output, stated, tol)[0].all())
        checks.append(Check("expect.output", good, f"stated output {expect.output} but the exact output is "
                            f"{ex.output.tolist()}"))
    for name, stated in (expect.grad or {}).items():
        exact_grad = ex.vjp.get(name)
        stated = np.asarray(stated, dtype=np.complex128)
        good = exact_grad is not None and stated.shape == exact_grad.shape and bool(
            complex_within(exact_grad, stated, tol, (ex.magnitude or {}).get(name))[0].all())
        checks.append(Check(f"expect.grad[{name}]", good, f"stated {stated.tolist()} but the exact gradient is "
                            f"{None if exact_grad is None else exact_grad.tolist()}"))
    for name in ("forward_mode", "second_order"):
        if case.check_enabled(name):
            checks.append(Check(name, True, SKIPPED, skipped=True))
    return [c if not c.ok else Check(c.name, True, c.detail if c.skipped else "", skipped=c.skipped)
            for c in checks]
