"""The kink verdict: detail rows at a kink judged against the one-sided derivatives.

:mod:`verifier.exact.kinks` finds the kinks and their one-sided derivatives;
this module adds the kink columns to the detail rows, judges autograd and the
finite difference there, and checks the kink facts against the case's
``kink:`` declaration and ``strict_kinks``.

**Autograd at a kink** is right when it lies in the generalized (Clarke)
gradient of g = Σ v⊙y. Where every candidate that moves an element moves
that element alone (relu(x[1]), |x[0]|, clamp on a bound), the kinks lie on
coordinate hyperplanes and the generalized gradient is the box of
one-sided intervals: on each orthant g is smooth, and flipping the side of
x_j changes only the j-th component of the gradient (g is continuous across
x_j = c), so each component takes its left or its right value
independently and the convex hull of those vertices is
Π_j [min(left_j, right_j), max(left_j, right_j)]. So the element passes
when autograd lies in its interval, widened by the case's tolerance
(rtol·max(|left|, |right|) + atol·scale). Where a candidate couples several
elements (a tie of max, relu(a·x), the norm at the origin) the generalized
gradient is a convex hull that per-element intervals do not describe
(|x₀ − x₁| at a tie: (1, 1) has both components in [−1, 1] but is not in
{t·(1, −1)}); there the verifier does not decide membership: autograd must
equal torch's documented convention (the exact reference), and an undeclared
coupled kink fails, saying so.

A kink the case declares (``kink:``) also accepts torch's convention where it
lies outside the interval (relu(x) − relu(−x) at 0: the chain of conventions
gives 0, the function's derivative is 1). ``strict_kinks`` (the case field or
``verifier run --strict-kinks``) makes every undeclared kink fail, as
before this rule.
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd

from ..cases.case import Tolerance
from ..exact.kinks import KinkReport, _index_text, rule
from .attribution import full_column
from .compare import FD_TOLERANCE


def annotate(rows: pd.DataFrame, report: KinkReport) -> pd.DataFrame:
    """Add the kink columns to the detail rows and judge finite differences there against the midpoint.

    Every element a candidate moves gets its one-sided derivatives; ``kink``
    marks those that are kinks (:meth:`ElementKink.is_kink`). The finite
    difference of every such element is judged against the midpoint of the
    one-sided derivatives, allowing for the curvature jump (module docstring):
    a function that is only once differentiable there (softsign at 0) has the
    same first-order error as a kink.
    """
    return rows.assign(**kink_columns({c: rows[c].to_numpy() for c in _READS}, report, len(rows)))


_READS = ("input", "index", "exact", "fd_step", "finite_diff", "fd_ok", "autograd", "ok")


def kink_columns(columns: Mapping[str, object], report: KinkReport, n: int, tol: Tolerance | None = None,
                 declared: bool = False) -> dict[str, np.ndarray]:
    """:func:`annotate`'s new columns (and the rejudged ``fd_ok`` and ``ok``) from the detail columns, ``n`` rows.

    ``columns`` holds at least ``input``, ``index``, ``exact``, ``fd_step``,
    ``finite_diff`` and ``fd_ok``, each an array of ``n`` or one value for all;
    with ``tol`` (the case's tolerance at its dtype) also ``autograd`` and
    ``ok``, and ``ok`` is rejudged at the kinks by the module's rule
    (``declared``: the case declares a kink, so torch's convention is accepted).
    """
    def full(name, dtype=None):
        return np.asarray(full_column(columns[name], n), dtype=dtype)

    out = {"kink": np.zeros(n, dtype=bool), "kink_left": np.full(n, np.nan), "kink_right": np.full(n, np.nan),
           "kink_rule": np.full(n, "", dtype=object), "fd_ok": np.array(full("fd_ok", bool), dtype=bool)}
    if tol is not None:
        out["ok"] = np.array(full("ok", bool), dtype=bool)
    if n == 0 or not report.elements:
        return out
    inputs, index = full("input"), full("index")
    exact, step, fd = (np.asarray(full(c), dtype=np.float64) for c in ("exact", "fd_step", "finite_diff"))
    autograd = np.asarray(full("autograd"), dtype=np.float64) if tol is not None else None
    for el in report.elements:
        hits = np.flatnonzero((inputs == el.input) & (index == _index_text(el.index)))
        if not hits.size:
            continue
        i = int(hits[0])
        scale = max(1.0, float(np.max(np.abs(exact[inputs == el.input]))))
        h = float(step[i]) if np.isfinite(step[i]) else 0.0
        allowed = (FD_TOLERANCE.rtol * abs(el.midpoint) + FD_TOLERANCE.atol * scale
                   + abs(el.curvature_jump) * h / 2)
        kink = el.is_kink(float(exact[i]))
        out["kink"][i] = kink
        out["kink_left"][i], out["kink_right"][i] = el.left, el.right
        out["kink_rule"][i] = rule(float(exact[i]), el.left, el.right) if kink else "differentiable"
        out["fd_ok"][i] = bool(np.isfinite(fd[i]) and abs(fd[i] - el.midpoint) <= allowed)
        if autograd is not None and kink:
            convention = bool(out["ok"][i])        # autograd within its tolerance of torch's convention
            inside = in_generalized_gradient(float(autograd[i]), el, tol, scale)
            out["ok"][i] = convention if el.coupled else (inside or (declared and convention))
    return out


def in_generalized_gradient(value: float, el, tol: Tolerance, scale: float) -> bool:
    """``value`` in [min(left, right), max(left, right)], widened by the tolerance (a one-element kink only).

    An undefined side (NaN: a pole or a domain edge) leaves nothing to be inside.
    """
    if el.coupled or not (np.isfinite(el.left) and np.isfinite(el.right) and np.isfinite(value)):
        return False
    lo, hi = min(el.left, el.right), max(el.left, el.right)
    allowed = tol.rtol * max(abs(lo), abs(hi)) + tol.atol * scale
    return lo - allowed <= value <= hi + allowed


@dataclass
class KinkVerdict:
    """The kink check of one run: whether it holds, why not, and the facts for the report."""

    ok: bool
    detail: str
    note: str


_VERDICT_FIELDS = ("input", "index", "ok", "autograd", "exact", "kink_left", "kink_right", "kink_rule", "finite_diff")
_KinkRow = namedtuple("_KinkRow", _VERDICT_FIELDS)


def verdict(declared: str | None, report: KinkReport, rows: pd.DataFrame, strict: bool = False) -> KinkVerdict | None:
    """Check the kink facts (``annotate``d rows) against the case's declaration; None: nothing to say.

    ``strict``: an undeclared kink fails even where autograd is right there.
    """
    at = (np.flatnonzero(rows["kink"].to_numpy(dtype=bool)) if "kink" in rows and not rows.empty
          else np.zeros(0, dtype=int))
    if not declared and not at.size:
        return None             # the common case
    columns = [rows[c].to_numpy()[at] for c in _VERDICT_FIELDS] if at.size else []
    at_kink = [_KinkRow(*values) for values in zip(*columns)]
    elements = {(el.input, _index_text(el.index)): el for el in report.elements}
    coupled = [row for row in at_kink if elements[(row.input, row.index)].coupled]
    problems = []
    if at_kink and not declared and strict:
        problems.append(f"the point is a kink ({_describe(at_kink[:3], report)}) but the case does not "
                        f"declare one; add `kink:` naming the point and torch's convention, or move the point "
                        f"(strict kinks: an undeclared kink fails even where autograd is right)")
    elif coupled and not declared:
        first = coupled[0]
        partners = ", ".join(elements[(first.input, first.index)].coupled[:4])
        problems.append(f"the point is a kink that couples several elements ({_label(first.input, first.index)} "
                        f"with {partners}: {_describe(coupled[:2], report)}); the generalized gradient there is a "
                        f"convex hull the "
                        f"verifier does not decide membership in, so it cannot call autograd right; add `kink:` "
                        f"to accept torch's convention there, or move the point")
    if declared and not at_kink:
        problems.append("the case declares a kink, but the function is differentiable at the point "
                        + ("(" + "; ".join(report.candidates[:3]) + ": equal one-sided derivatives)"
                           if report.candidates else "(no Abs, Max/Min or Piecewise boundary is at its kink)"))
    for row in at_kink:
        if row.ok:
            continue
        el = elements[(row.input, row.index)]
        if el.coupled:
            problems.append(f"at the kink {_label(row.input, row.index)} (coupled with {', '.join(el.coupled[:4])}) "
                            f"torch gives {row.autograd:.17g}, torch's convention is {row.exact:.17g} (left "
                            f"{row.kink_left:.6g}, right {row.kink_right:.6g})")
        else:
            problems.append(f"at the kink {_label(row.input, row.index)} torch gives {row.autograd:.17g}, outside "
                            f"the generalized gradient [{min(row.kink_left, row.kink_right):.17g}, "
                            f"{max(row.kink_left, row.kink_right):.17g}] (torch's convention is {row.exact:.17g})"
                            + (" and not torch's convention, which the case's `kink:` accepts" if declared else
                               "; if this is torch's documented convention, declare it with `kink:`"))
    more = f" (+{len(at_kink) - 3} more)" if len(at_kink) > 3 else ""
    note = f"kink: {_describe(at_kink[:3], report)}{more}" if at_kink else ""
    if at_kink and not declared and not problems:
        note += "; undeclared, passed as at_kink (autograd is in the generalized gradient; --strict-kinks fails it)"
    return KinkVerdict(not problems, "; ".join(problems), note)


def _label(name: str, index_text: str) -> str:
    inner = index_text.strip("()").rstrip(",")
    return f"{name}[{inner}]" if inner else name


def _describe(at_kink: list, report: KinkReport) -> str:
    sources = {(el.input, _index_text(el.index)): el.sources[0] for el in report.elements}
    parts = []
    for row in at_kink:
        taken = rule(float(row.autograd), float(row.kink_left), float(row.kink_right))
        parts.append(f"{_label(row.input, row.index)} left {row.kink_left:.6g}, right {row.kink_right:.6g}, "
                     f"exact (torch's convention) {row.exact:.6g} = {row.kink_rule}, autograd {row.autograd:.6g}"
                     f" = {taken}, "
                     f"FD {row.finite_diff:.6g} vs midpoint {(row.kink_left + row.kink_right) / 2:.6g} "
                     f"[{sources.get((row.input, row.index), '')}]")
    return "; ".join(parts)
