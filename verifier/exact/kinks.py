"""Kinks: the points where a case's function has no derivative, found symbolically.

At a kink (relu at 0, |x| at 0, clamp or hardtanh on a bound, a tie of max,
the 2-norm at the origin) the derivative does not exist, and torch returns a
*convention*. Three numbers are kept apart there:

* the **exact reference**, which is torch's convention: the mirror writes it
  into the expression (which branch of a Piecewise owns the boundary,
  sign(0) = 0 for Abs, ties of max split evenly; see ``verifier/exact/mirror``), so
  the ordinary gradient check compares autograd with it;
* the **one-sided derivatives** of g = Σ v⊙y along the element, computed here
  from the same expression;
* the **central finite difference**, which at a kink converges to neither: it
  tends to the midpoint (left + right)/2, with a first-order error

      D(h) = (left + right)/2 + (g''₊ − g''₋)·h/4 + O(h²).

  So at a kink the finite difference is judged against the midpoint, allowing
  the finite-difference tolerance plus |g''₊ − g''₋|·h/2 (twice the
  first-order term, so schemes that mix several steps ≤ h are covered too).

Detection walks the expression graph at the point (for a Piecewise: the
conditions up to the branch taken, and that branch). A *candidate* is an Abs,
sign or Heaviside whose argument is 0, a Max/Min with two arguments tied for
the extreme, or an inequality of a Piecewise condition that holds with
equality. For every input element a candidate depends on, g' is evaluated at
x ± δ·e_j (δ = 1e-30·max(1, |x_j|), 60 significant digits) with the reverse
sweep of :mod:`verifier.exact.evaluation`: the side decides the branch, and the
error is O(δ). Where left and right differ the element is at a kink; where
they agree the point is smooth after all (softsign at 0, Huber at |d| = δ),
and the exact reference must equal that common derivative.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import mpmath
import numpy as np
import sympy as sp

from ..errors import SymbolicError
from .evaluation import Evaluator, postorder, reverse_sweep

DIGITS = 60                        # significant digits of the one-sided evaluations
SHIFT = mpmath.mpf(10) ** -30      # δ, relative to max(1, |x_j|)
SAME = 1e-20                       # |left − right| below SAME·(1 + |left| + |right|): no kink
AGREE = 1e-12                      # how close the exact reference must be to a one-sided value

KINK_COLUMNS = ["kink", "kink_left", "kink_right", "kink_rule"]

_EXTREMA = (sp.Max, sp.Min)
_ZERO_ARGUMENT = (sp.Abs, sp.sign, sp.Heaviside)
_INEQUALITIES = (sp.StrictLessThan, sp.LessThan, sp.StrictGreaterThan, sp.GreaterThan)


@dataclass
class ElementKink:
    """The one-sided derivatives of g = Σ v⊙y along one input element that a candidate touches."""

    input: str
    index: tuple[int, ...]
    left: float
    right: float
    curvature_jump: float              # g''(x⁺) − g''(x⁻), for the finite-difference allowance
    sources: tuple[str, ...]           # the candidates this element moves
    # other input elements a candidate moving this element also moves (a coupled kink, e.g. a tie of
    # max or relu(a·x)): there [left, right] per element does not describe the generalized gradient
    coupled: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return _label(self.input, self.index)

    @property
    def midpoint(self) -> float:
        return (self.left + self.right) / 2

    @property
    def differentiable(self) -> bool:
        """Left and right derivatives agree (the candidate is not a kink along this element)."""
        return _same(self.left, self.right)

    def is_kink(self, exact: float) -> bool:
        """A kink here: the one-sided derivatives differ, or they agree but the exact reference
        (torch's conventions, chained) is not that derivative, as for relu(x) - relu(-x) at 0,
        where two kinks cancel and the chain rule still returns the conventions' 0."""
        if not self.differentiable:
            return True
        return abs(exact - self.left) > AGREE * (1 + abs(self.left))


@dataclass
class KinkReport:
    """What the detector found at one point: the candidates and the elements they move."""

    candidates: list[str] = field(default_factory=list)
    elements: list[ElementKink] = field(default_factory=list)


# --- finding candidates ------------------------------------------------------------


def _inequalities(cond) -> list:
    """The inequalities inside a Piecewise condition (Eq/Ne are tie indicators, not boundaries)."""
    if isinstance(cond, _INEQUALITIES):
        return [cond]
    if isinstance(cond, (sp.And, sp.Or, sp.Not)):
        return [rel for arg in cond.args for rel in _inequalities(arg)]
    return []


def candidates(outputs, ev: Evaluator) -> list[tuple[list, str]]:
    """(expressions whose symbols move the candidate, description) for each candidate at the point."""
    found, seen = [], set()
    stack = [y for y in outputs if isinstance(y, sp.Basic)]
    while stack:
        node = stack.pop()
        if node in seen or node.is_Atom:
            continue
        seen.add(node)
        if isinstance(node, sp.Piecewise):
            for branch, cond in node.args:
                stack.append(cond)                  # Abs/Max inside conditions are candidates too
                for rel in _inequalities(cond):
                    if ev(rel.lhs) == ev(rel.rhs):
                        found.append(([rel.lhs, rel.rhs], f"Piecewise boundary {_short(rel)} at equality"))
                if ev(cond):
                    stack.append(branch)            # later branches cannot be reached near the point
                    break
            continue
        if isinstance(node, _ZERO_ARGUMENT) and ev(node.args[0]) == 0:
            found.append(([node.args[0]], f"{node.func.__name__}({_short(node.args[0])}) at 0"))
        elif isinstance(node, _EXTREMA):
            values = [ev(a) for a in node.args]
            best = max(values) if isinstance(node, sp.Max) else min(values)
            tied = [a for a, v in zip(node.args, values) if v == best]
            if len(tied) > 1:
                found.append((tied, f"{node.func.__name__} tie of {len(tied)}: "
                                    + ", ".join(_short(a) for a in tied[:4])
                                    + (", ..." if len(tied) > 4 else "")))
        stack.extend(node.args)
    return found


def _short(expr, limit: int = 60) -> str:
    text = sp.sstr(expr)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _FreeSymbols:
    """Free symbols of DAG nodes, memoised (SymPy's own walk is a tree walk, exponential on DAGs)."""

    def __init__(self) -> None:
        self.memo: dict = {}

    def __call__(self, expr) -> frozenset:
        memo = self.memo
        return postorder(expr, memo, lambda node: frozenset().union(*(memo[a] for a in node.args)), self._symbol)

    def _symbol(self, node, stack) -> bool | None:
        if not node.is_Symbol:
            return None
        self.memo[node] = frozenset([node])
        return True


# --- one-sided derivatives ---------------------------------------------------------------


def detect(model, point: Mapping[str, np.ndarray], weights: np.ndarray | None) -> KinkReport:
    """Find the kinks of Σ v⊙y at ``point`` (float64 inputs by name) and their one-sided derivatives."""
    report = KinkReport()
    outputs = list(model.output.ravel())
    with mpmath.workdps(DIGITS):
        base = {}
        for name, syms in model.symbols.items():
            base.update(zip(syms.ravel().tolist(),
                            (mpmath.mpf(float(v)) for v in np.asarray(point[name], np.float64).ravel())))
        found = candidates(outputs, Evaluator(base))
        if not found:
            return report
        report.candidates = [text for _, text in found]
        where = {s: (name, idx) for name in model.wrt
                 for idx, s in np.ndenumerate(model.symbols[name])}
        order = {s: i for i, s in enumerate(where)}
        free = _FreeSymbols()
        moved: dict = {}
        partners: dict = {}
        for exprs, text in found:
            syms = [s for expr in exprs if isinstance(expr, sp.Basic) for s in free(expr) if s in where]
            syms = list(dict.fromkeys(syms))
            for s in syms:
                moved.setdefault(s, []).append(text)
                partners.setdefault(s, {}).update(dict.fromkeys(t for t in syms if t != s))
        v = np.ones(model.output.shape) if weights is None else np.broadcast_to(weights, model.output.shape)
        v_flat = [float(w) for w in np.asarray(v, dtype=np.float64).ravel()]
        for sym in sorted(moved, key=order.__getitem__):
            name, idx = where[sym]
            left, right, jump = _one_sided(outputs, v_flat, base, sym)
            report.elements.append(ElementKink(
                name, tuple(int(i) for i in idx), float(left), float(right), float(jump),
                tuple(dict.fromkeys(moved[sym])),
                tuple(_label(*where[t]) for t in sorted(partners.get(sym, ()), key=order.__getitem__))))
    return report


def _label(name: str, idx: tuple) -> str:
    return f"{name}{[int(i) for i in idx]}" if idx else name


def _one_sided(outputs, weights, base, sym):
    """(g'(x⁻), g'(x⁺), g''(x⁺) − g''(x⁻)) along ``sym``, from g' at x ± δ and x ± 2δ."""
    x = base[sym]
    delta = SHIFT * max(1, abs(x))

    def slope(offset):
        values = dict(base)
        values[sym] = x + offset
        try:
            return reverse_sweep(outputs, weights, [sym], Evaluator(values))[0]
        except (SymbolicError, ZeroDivisionError, ValueError):
            return mpmath.nan          # undefined on that side (a pole or the edge of a domain)

    r1, r2, l1, l2 = slope(delta), slope(2 * delta), slope(-delta), slope(-2 * delta)
    # g'(x ± δ) = g'(x±) ± g''(x±)·δ + O(δ²): extrapolate the limits and read the curvatures
    right, left = 2 * r1 - r2, 2 * l1 - l2
    jump = (r2 - r1) / delta - (l1 - l2) / delta
    return left, right, jump


def _same(a, b) -> bool:
    if np.isnan(float(a)) or np.isnan(float(b)):
        return False
    return abs(a - b) <= SAME * (1 + abs(a) + abs(b))


# --- naming what was found ---------------------------------------------------------------------------


def _index_text(idx: tuple[int, ...]) -> str:
    return str(tuple(idx))   # the detail rows' spelling: "(0, 1)", "(2,)", "()"


def rule(exact: float, left: float, right: float) -> str:
    """Which one-sided value the exact reference (torch's convention) equals."""
    tol = AGREE * (1 + abs(left) + abs(right))
    lo, hi = min(left, right), max(left, right)
    if abs(exact - left) <= tol:
        name = "left"
    elif abs(exact - right) <= tol:
        name = "right"
    elif abs(exact - (left + right) / 2) <= tol:
        name = "midpoint"
    elif lo - tol <= exact <= hi + tol:
        name = "between"
    else:
        return "outside [left, right]"
    nearest_zero = min(max(0.0, lo), hi)
    return name + (" (min-norm)" if abs(exact - nearest_zero) <= tol else "")


