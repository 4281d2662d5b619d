"""The kink verdict: detail rows at a kink judged against the one-sided derivatives.

:mod:`verifier.exact.kinks` finds the kinks and their one-sided derivatives;
this module adds the kink columns to the detail rows, judges the finite
difference there against the midpoint (allowing for the curvature jump), and
checks the kink facts against the case's ``kink:`` declaration.
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd

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


_READS = ("input", "index", "exact", "fd_step", "finite_diff", "fd_ok")


def kink_columns(columns: Mapping[str, object], report: KinkReport, n: int) -> dict[str, np.ndarray]:
    """:func:`annotate`'s new columns (and the rejudged ``fd_ok``) from the detail columns, ``n`` rows.

    ``columns`` holds at least ``input``, ``index``, ``exact``, ``fd_step``,
    ``finite_diff`` and ``fd_ok``, each an array of ``n`` or one value for all.
    """
    def full(name, dtype=None):
        return np.asarray(full_column(columns[name], n), dtype=dtype)

    out = {"kink": np.zeros(n, dtype=bool), "kink_left": np.full(n, np.nan), "kink_right": np.full(n, np.nan),
           "kink_rule": np.full(n, "", dtype=object), "fd_ok": np.array(full("fd_ok", bool), dtype=bool)}
    if n == 0 or not report.elements:
        return out
    inputs, index = full("input"), full("index")
    exact, step, fd = (np.asarray(full(c), dtype=np.float64) for c in ("exact", "fd_step", "finite_diff"))
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
    return out


@dataclass
class KinkVerdict:
    """The kink check of one run: whether it holds, why not, and the facts for the report."""

    ok: bool
    detail: str
    note: str


_VERDICT_FIELDS = ("input", "index", "ok", "autograd", "exact", "kink_left", "kink_right", "kink_rule", "finite_diff")
_KinkRow = namedtuple("_KinkRow", _VERDICT_FIELDS)


def verdict(declared: str | None, report: KinkReport, rows: pd.DataFrame) -> KinkVerdict | None:
    """Check the kink facts (``annotate``d rows) against the case's declaration; None: nothing to say."""
    at = (np.flatnonzero(rows["kink"].to_numpy(dtype=bool)) if "kink" in rows and not rows.empty
          else np.zeros(0, dtype=int))
    if not declared and not at.size:
        return None             # the common case
    columns = [rows[c].to_numpy()[at] for c in _VERDICT_FIELDS] if at.size else []
    at_kink = [_KinkRow(*values) for values in zip(*columns)]
    problems = []
    if at_kink and not declared:
        problems.append(f"the point is a kink ({_describe(at_kink[:3], report)}) but the case does not "
                        f"declare one; add `kink:` naming the point and torch's convention, or move the point")
    if declared and not at_kink:
        problems.append("the case declares a kink, but the function is differentiable at the point "
                        + ("(" + "; ".join(report.candidates[:3]) + ": equal one-sided derivatives)"
                           if report.candidates else "(no Abs, Max/Min or Piecewise boundary is at its kink)"))
    for row in at_kink:
        if not row.ok:
            problems.append(f"at the kink {_label(row.input, row.index)} torch gives {row.autograd:.17g}, the convention "
                            f"is {row.exact:.17g} (left {row.kink_left:.6g}, right {row.kink_right:.6g})")
    more = f" (+{len(at_kink) - 3} more)" if len(at_kink) > 3 else ""
    note = f"kink: {_describe(at_kink[:3], report)}{more}" if at_kink else ""
    return KinkVerdict(not problems, "; ".join(problems), note)


def _label(name: str, index_text: str) -> str:
    inner = index_text.strip("()").rstrip(",")
    return f"{name}[{inner}]" if inner else name


def _describe(at_kink: list, report: KinkReport) -> str:
    sources = {(el.input, _index_text(el.index)): el.sources[0] for el in report.elements}
    parts = []
    for row in at_kink:
        parts.append(f"{_label(row.input, row.index)} left {row.kink_left:.6g}, right {row.kink_right:.6g}, "
                     f"exact (torch's convention) {row.exact:.6g} = {row.kink_rule}, autograd {row.autograd:.6g}, "
                     f"FD {row.finite_diff:.6g} vs midpoint {(row.kink_left + row.kink_right) / 2:.6g} "
                     f"[{sources.get((row.input, row.index), '')}]")
    return "; ".join(parts)
