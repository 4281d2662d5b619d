"""Evaluate SymPy expression graphs at a point, in high precision, and sweep them backwards.

Two operations on the DAG that SymPy's hash-consing already shares:

* :func:`evaluate` computes every node's value once (memoised), in mpmath at
  ``PRECISION_DIGITS`` significant digits. Inputs are exact binary floats, so
  the only rounding is mpmath's, far below float64's.
* :func:`reverse_sweep` pushes adjoints from the outputs (seeded with the
  weights ``v``) to the leaf symbols: the exact chain rule applied to the
  expression graph, i.e. ∂(Σ v⊙y)/∂x in one pass instead of one symbolic
  derivative per element (DESIGN, idea 2).

Both walk the graph iteratively, so deep chains (cumprod over 1000 elements)
do not hit Python's recursion limit.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import mpmath
import sympy as sp

from ..errors import SymbolicError
from .mirror import special2

PRECISION_DIGITS = 40   # decimal digits used for every exact evaluation

_MP_FUNCS = {
    sp.exp: mpmath.exp, sp.log: mpmath.log, sp.sin: mpmath.sin, sp.cos: mpmath.cos,
    sp.tan: mpmath.tan, sp.asin: mpmath.asin, sp.acos: mpmath.acos, sp.atan: mpmath.atan,
    sp.sinh: mpmath.sinh, sp.cosh: mpmath.cosh, sp.tanh: mpmath.tanh, sp.asinh: mpmath.asinh,
    sp.acosh: mpmath.acosh, sp.atanh: mpmath.atanh, sp.erf: mpmath.erf, sp.erfc: mpmath.erfc,
    sp.Abs: abs, sp.sec: mpmath.sec, sp.csc: mpmath.csc, sp.cot: mpmath.cot,
    sp.atan2: mpmath.atan2, sp.gamma: mpmath.gamma, sp.loggamma: mpmath.loggamma,
    sp.floor: mpmath.floor, sp.ceiling: mpmath.ceil, sp.sinc: lambda x: mpmath.sinc(x),
    # special functions of the mirror (verifier/exact/mirror/special.py)
    sp.polygamma: lambda n, x: mpmath.psi(int(n), x), sp.erfinv: mpmath.erfinv,
    sp.besseli: mpmath.besseli, sp.zeta: mpmath.zeta,
    **special2.NUMERIC,     # igamma/igammac (mirror/special2.py)
}


def _sign(x):
    return mpmath.mpf(0) if x == 0 else mpmath.mpf(1 if x > 0 else -1)


def _heaviside(x, h0=mpmath.mpf(0.5)):
    if x == 0:
        return h0
    return mpmath.mpf(1 if x > 0 else 0)


def _dirac(x, *k):
    if x == 0:
        raise SymbolicError("the derivative is a Dirac delta at the point (a kink or a jump)",
                            hint="Move the input off the non-differentiable point or mark the case as a kink.")
    return mpmath.mpf(0)


_MP_FUNCS.update({sp.sign: _sign, sp.Heaviside: _heaviside, sp.DiracDelta: _dirac,
                  sp.Max: lambda *a: max(a), sp.Min: lambda *a: min(a)})

_RELATIONS = {
    sp.StrictGreaterThan: lambda a, b: a > b, sp.GreaterThan: lambda a, b: a >= b,
    sp.StrictLessThan: lambda a, b: a < b, sp.LessThan: lambda a, b: a <= b,
    sp.Equality: lambda a, b: a == b, sp.Unequality: lambda a, b: a != b,
}


def _number(node: sp.Basic):
    if node.is_Integer:
        return mpmath.mpf(int(node))
    if node.is_Rational:
        return mpmath.mpf(int(node.p)) / int(node.q)
    if node.is_Float:
        return mpmath.mpf(node._as_mpf_val(mpmath.mp.prec))
    if node is sp.pi:
        return +mpmath.pi
    if node is sp.E:
        return +mpmath.e
    if node is sp.oo:
        return mpmath.inf
    if node is sp.S.NegativeInfinity:
        return -mpmath.inf
    if node is sp.true or node is sp.false:
        return bool(node)
    if node.is_NumberSymbol:
        return mpmath.mpf(node.evalf(PRECISION_DIGITS + 5)._as_mpf_val(mpmath.mp.prec))
    raise SymbolicError(f"cannot evaluate the number {node!r}")


def real_value(value, what: str = "value") -> float:
    """A high-precision value as a float64, refusing a complex one (the point is outside the domain)."""
    if isinstance(value, mpmath.mpc):
        if abs(value.imag) > 1e-30 * (1 + abs(value.real)):
            raise SymbolicError(f"the exact {what} is complex ({value}) at the point",
                                hint="Sample the inputs inside the function's domain.")
        value = value.real
    return float(value)


def postorder(expr, memo: dict, apply, special=None):
    """``memo[expr]``, filling ``memo[node] = apply(node)`` children first, without recursion (graphs are deep).

    ``special(node, stack)``, when given, may take a node over: None goes on
    as usual; True means ``memo[node]`` is set; False means it pushed what
    it needs first and wants to be asked again.
    """
    stack = [expr]
    while stack:
        node = stack[-1]
        if node in memo:
            stack.pop()
            continue
        if special is not None:
            done = special(node, stack)
            if done is not None:
                if done:
                    stack.pop()
                continue
        pending = [a for a in node.args if a not in memo]
        if pending:
            stack.extend(pending)
            continue
        stack.pop()
        memo[node] = apply(node)
    return memo[expr]


class Evaluator:
    """Memoised high-precision values of expression nodes at one point."""

    def __init__(self, point: Mapping[sp.Symbol, object]) -> None:
        self.memo: dict = {sym: mpmath.mpf(val) for sym, val in point.items()}

    def __call__(self, expr):
        if not isinstance(expr, sp.Basic):
            return mpmath.mpf(expr) if not isinstance(expr, bool) else expr
        memo = self.memo
        if expr in memo:
            return memo[expr]
        return postorder(expr, memo, self._apply,
                         lambda node, stack: self._piecewise(node, stack) if isinstance(node, sp.Piecewise) else None)

    def _piecewise(self, node, stack) -> bool:
        """Evaluate conditions in order, then only the branch taken."""
        for branch, cond in node.args:
            if cond not in self.memo:
                stack.append(cond)
                return False
            if self.memo[cond]:
                if branch not in self.memo:
                    stack.append(branch)
                    return False
                self.memo[node] = self.memo[branch]
                return True
        raise SymbolicError(f"no branch of {node} holds at the point")

    def active_branch(self, node: sp.Piecewise):
        for branch, cond in node.args:
            if self(cond):
                return branch
        raise SymbolicError(f"no branch of {node} holds at the point")

    def _apply(self, node):
        memo = self.memo
        if node.is_Symbol:
            raise SymbolicError(f"the symbol {node} has no value at the point")
        if node.is_Atom:
            return _number(node)
        args = [memo[a] for a in node.args]
        if node.is_Add:
            return mpmath.fsum(args)
        if node.is_Mul:
            return mpmath.fprod(args)
        if node.is_Pow:
            base, exp = args
            if base == 0 and exp < 0:
                raise SymbolicError(f"division by zero evaluating {node}",
                                    hint="Sample the input away from the pole.")
            return mpmath.power(base, exp)
        func = node.func
        if func in _MP_FUNCS:
            return _MP_FUNCS[func](*args)
        if func in _RELATIONS:
            return bool(_RELATIONS[func](*args))
        if isinstance(node, sp.And):
            return all(args)
        if isinstance(node, sp.Or):
            return any(args)
        if isinstance(node, sp.Not):
            return not args[0]
        raise SymbolicError(f"cannot evaluate '{func.__name__}' numerically",
                            hint="Add it to verifier/exact/evaluation.py's function table.")


def topological(roots: Iterable[sp.Basic]) -> list:
    """Nodes reachable from ``roots``, children before parents (conditions excluded)."""
    order, seen = [], set()
    for root in roots:
        if not isinstance(root, sp.Basic) or root in seen:
            continue
        stack = [(root, False)]
        while stack:
            node, done = stack.pop()
            if done:
                order.append(node)
                continue
            if node in seen:
                continue
            seen.add(node)
            stack.append((node, True))
            if isinstance(node, sp.Piecewise):
                children = [branch for branch, _ in node.args]
            elif node.is_Atom or node.is_Relational or node.is_Boolean:
                children = []
            else:
                children = node.args
            stack.extend((c, False) for c in children if c not in seen)
    return order


def reverse_sweep(outputs, weights, wrt: Iterable[sp.Symbol], ev: Evaluator) -> list:
    """Σ_i weights[i]·∂outputs[i]/∂s for each symbol s in ``wrt`` (high-precision values)."""
    adj: dict = {}
    roots = []
    for y, w in zip(outputs, weights):
        if isinstance(y, sp.Basic) and w != 0:
            adj[y] = adj.get(y, 0) + mpmath.mpf(w)
            roots.append(y)
    for node in reversed(topological(roots)):
        a = adj.pop(node, None)
        if a is None or node.is_Atom or node.is_Relational or node.is_Boolean:
            if node.is_Symbol and a is not None:
                adj[node] = a   # leaves keep their adjoint
            continue
        for child, partial in local_partials(node, ev):
            if not child.is_Number:   # constants collect no adjoint
                adj[child] = adj.get(child, 0) + a * partial
    zero = mpmath.mpf(0)
    return [adj.get(s, zero) for s in wrt]


# Functions that are constant between their jumps: derivative 0 away from them (at a jump the
# callers skip or shift the point, see kinks.py). SymPy's fdiff of sign is an unevaluated Derivative.
PIECEWISE_CONSTANT = (sp.sign, sp.Heaviside, sp.floor, sp.ceiling)


def local_partials(node, ev: Evaluator) -> list:
    """(child, ∂node/∂child at the point) for each child of ``node`` that can carry a derivative."""
    if isinstance(node, PIECEWISE_CONSTANT):
        return []
    if node.is_Add:
        one = mpmath.mpf(1)
        return [(c, one) for c in node.args]
    if node.is_Mul:
        vals = [ev(c) for c in node.args]
        prefix, out = [mpmath.mpf(1)], []
        for v in vals[:-1]:
            prefix.append(prefix[-1] * v)
        suffix = mpmath.mpf(1)
        for i in range(len(vals) - 1, -1, -1):     # product of the others, without dividing by zero
            out.append((node.args[i], prefix[i] * suffix))
            suffix *= vals[i]
        return out
    if node.is_Pow:
        base, exp = node.args
        vb, ve = ev(base), ev(exp)
        pairs = [(base, ve * mpmath.power(vb, ve - 1))]
        if not exp.is_Number:
            pairs.append((exp, ev(node) * mpmath.log(vb)))
        return pairs
    if isinstance(node, sp.Piecewise):
        return [(ev.active_branch(node), mpmath.mpf(1))]
    pairs = []
    for k, child in enumerate(node.args, start=1):
        if child.is_Number:
            continue
        pairs.append((child, ev(fdiff(node, k))))
    return pairs


def fdiff(node, k: int):
    """SymPy's derivative of ``node`` in its k-th argument, or a SymbolicError saying there is none."""
    try:
        return node.fdiff(k)
    except Exception as exc:   # SymPy raises ArgumentIndexError and friends
        raise SymbolicError(f"no derivative rule for {node.func.__name__}: {exc}") from None
