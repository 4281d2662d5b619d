"""The checks of one case run beside the gradient: forward value, leaf inputs, expect fields, accumulation.

:class:`Check` is one named check with its verdict; :func:`case_checks` makes
the list for one case × dtype from the detail columns (the gradient check,
which excuses elements at a kink and non-finite ones to their own checks),
torch's side and the exact side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..cases.case import Case
from ..exact.symbolic import ExactResult
from ..torch_side.autograd import AutogradResult
from ..verdict.compare import first_mismatches, non_finite, non_finite_detail, within


@dataclass
class Check:
    """One named check of a case run: the gradient, an expect field, a semantic rule."""

    name: str
    ok: bool
    detail: str = ""
    skipped: bool = False                         # did not run (the detail says why); never fails a case
    max_abs_err: float | None = None
    max_rel_err: float | None = None
    elements: int | None = None
    non_finite: bool = False                      # failed only because a value is inf or nan (not a wrong number)

    @property
    def status(self) -> str:
        return "skip" if self.skipped else ("pass" if self.ok else "non_finite" if self.non_finite else "fail")



def case_checks(case: Case, dtype: str, columns: dict, ag: AutogradResult,
            ex: ExactResult, tol) -> list[Check]:
    accept = "non_finite" in case.accept
    unfinished = "" if accept else non_finite_detail(columns)
    ok_col = np.asarray(columns["ok"], dtype=bool)
    # elements at a kink are judged by the kink check (the generalized gradient), non-finite ones by the
    # non_finite check; the gradient check judges the rest
    excused = np.broadcast_to(np.asarray(columns.get("kink", False), dtype=bool), ok_col.shape).copy()
    if unfinished:
        excused |= non_finite(np.asarray(columns["autograd"], dtype=np.float64),
                              np.asarray(columns["exact"], dtype=np.float64),
                              np.asarray(columns["tolerance"], dtype=np.float64))
    ok = bool(np.all(ok_col | excused))
    checks = [Check("gradient", ok, "" if ok else first_mismatches(pd.DataFrame(columns)[~excused]))]
    if unfinished:
        checks.append(Check("non_finite", False, unfinished, non_finite=True))
    if ag.output is not None:
        ok, allowed = within(ag.output, ex.output, tol, ex.output_magnitude, accept_non_finite=accept)
        out_bad = non_finite(np.asarray(ag.output, dtype=np.float64), ex.output, allowed)
        if not accept and out_bad.any():
            checks.append(Check("forward", False, non_finite_detail(
                {"exact": ex.output.ravel(), "autograd": np.asarray(ag.output, dtype=np.float64).ravel(),
                 "tolerance": np.broadcast_to(allowed, ex.output.shape).ravel()}, "output"), non_finite=True))
        else:
            with np.errstate(invalid="ignore"):      # max over a non-empty gap: an element failed
                checks.append(Check("forward", bool(ok.all()), "" if ok.all() else
                                    f"torch output differs from the exact output by up to "
                                    f"{np.max(np.abs(ag.output - ex.output)):.3g}"))
            if not ok.all():      # its largest errors (a torch fact explains only errors of its own size)
                _errors(checks[-1], np.asarray(ag.output, dtype=np.float64), ex.output)
    for name, (is_leaf, grad_fn) in ag.leaves.items():
        spec = case.input(name)
        if spec.differentiated and (not is_leaf or grad_fn is not None):
            checks.append(Check("leaf", False, f"input '{name}' is not a leaf (grad_fn {grad_fn})"))
    expect = case.expect
    if expect.grad_fn is not None:
        checks.append(Check("expect.grad_fn", ag.grad_fn == expect.grad_fn,
                            f"expected grad_fn {expect.grad_fn}, got {ag.grad_fn}"))
    if getattr(expect, "leaf", False):
        checks.append(Check("expect.leaf", ag.grad_fn is None,
                            f"expected a leaf output (no grad_fn), got grad_fn {ag.grad_fn}"))
    if expect.output is not None:
        stated = np.asarray(expect.output, float)
        ok = stated.shape == ex.output.shape and within(ex.output, stated, tol, ex.output_magnitude)[0]
        checks.append(_errors(Check("expect.output", bool(np.all(ok)), f"stated output {expect.output} but the "
                                    f"exact output is {ex.output.tolist()}"), stated, ex.output))
    for name, stated in (expect.grad or {}).items():
        exact_grad = ex.vjp.get(name)
        same_shape = exact_grad is not None and np.shape(stated) == exact_grad.shape
        mag = (ex.magnitude or {}).get(name)
        ok = same_shape and bool(within(exact_grad, np.asarray(stated, float), tol, mag)[0].all())
        checks.append(_errors(Check(f"expect.grad[{name}]", ok, f"stated {stated} but the exact gradient is "
                                    f"{None if exact_grad is None else exact_grad.tolist()}"), stated, exact_grad))
    if ag.accumulated:
        repeat = int(case.options.get("repeat", 1))
        for name, total in ag.accumulated.items():
            mag = (ex.magnitude or {}).get(name)
            ok = bool(within(total, repeat * ex.vjp[name], tol, None if mag is None else repeat * mag,
                             accept_non_finite=accept)[0].all())
            checks.append(Check("accumulation", ok,
                                f"after {repeat} backward calls .grad of '{name}' should be {repeat}x the "
                                f"gradient; got {total.tolist()}"))
    return [c if not c.ok else Check(c.name, True, "", max_abs_err=c.max_abs_err, max_rel_err=c.max_rel_err,
                                      elements=c.elements) for c in checks]


def _errors(check: Check, stated, exact) -> Check:
    """An expect check with its own largest errors (stated against exact), when the shapes agree."""
    stated, exact = np.asarray(stated, float), None if exact is None else np.asarray(exact, float)
    if exact is not None and stated.shape == exact.shape and stated.size:
        err = np.abs(stated - exact)
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(err == 0, 0.0, err / np.abs(exact))
        check.max_abs_err, check.max_rel_err, check.elements = float(err.max()), float(rel.max()), int(err.size)
    return check
