"""Exact directional derivatives over SymPy expression graphs: J·u (tangent sweep) and H·w (reverse over tangent).

* :func:`tangent_sweep` pushes a direction u forward from the input symbols
  through the shared expression graph, node by node, in mpmath: every
  output's exact directional derivative Σ_j ∂y_i/∂x_j u_j in one pass
  (forward mode, the mirror image of ``evaluation.reverse_sweep``).
* :func:`symbolic_tangent` builds the same directional derivative as SymPy
  expressions in direction *symbols*; the reverse sweep of Σ v⊙(J·u) with
  respect to x is then H·u, the Hessian of Σ v⊙y times u, exactly.

Both need ∂node/∂child for every node kind. ``evaluation.py`` has a private
rule table for its reverse sweep; it is re-stated here (``local_partials``)
rather than imported, so the two modules stay free to change apart.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import mpmath
import sympy as sp

from .errors import SymbolicError
from .evaluation import Evaluator, topological


def _inert(node) -> bool:
    return node.is_Atom or node.is_Relational or node.is_Boolean


def local_partials(node, ev: Evaluator) -> list:
    """(child, ∂node/∂child at the point) for each child of ``node`` that can carry a derivative."""
    if node.is_Add:
        return [(c, mpmath.mpf(1)) for c in node.args]
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
        pairs.append((child, ev(_fdiff(node, k))))
    return pairs


def _fdiff(node, k: int):
    try:
        return node.fdiff(k)
    except Exception as exc:   # SymPy raises ArgumentIndexError and friends
        raise SymbolicError(f"no derivative rule for {node.func.__name__}: {exc}") from None


#: A product of more factors than this gets its "product of the others" from shared prefix and
#: suffix chains (O(k) nodes) instead of k fresh products of k-1 factors each (O(k²)).
CHAIN_FACTORS = 8


def _product_rule(factors: tuple, dot: Mapping) -> sp.Basic:
    """Σ_i (Π_{j≠i} f_j) · dot[f_i], as an expression."""
    active = [i for i, f in enumerate(factors) if dot[f] != 0]
    if len(factors) <= CHAIN_FACTORS:
        return sp.Add(*[sp.Mul(*(factors[:i] + factors[i + 1:])) * dot[factors[i]] for i in active])
    # unevaluated binary products: SymPy would otherwise flatten each chain back into one big Mul
    prefix, suffix = [sp.S.One], [sp.S.One]
    for f in factors[:-1]:
        prefix.append(sp.Mul(prefix[-1], f, evaluate=False))
    for f in reversed(factors[1:]):
        suffix.append(sp.Mul(f, suffix[-1], evaluate=False))
    suffix.reverse()                           # suffix[i] = product of factors[i+1:]
    return sp.Add(*[sp.Mul(prefix[i], suffix[i], dot[factors[i]], evaluate=False) for i in active])


def tangent_sweep(outputs: Sequence, direction: Mapping[sp.Symbol, object], ev: Evaluator) -> list:
    """Σ_j ∂y/∂x_j · direction[x_j] for each y in ``outputs`` (high-precision values)."""
    zero = mpmath.mpf(0)
    dot: dict = {sym: mpmath.mpf(val) for sym, val in direction.items()}
    for node in topological([y for y in outputs if isinstance(y, sp.Basic)]):
        if node in dot:
            continue
        if _inert(node):
            dot[node] = zero
            continue
        total = zero
        for child, partial in local_partials(node, ev):
            t = dot.get(child, zero)
            if t:
                total += partial * t
        dot[node] = total
    return [dot.get(y, zero) if isinstance(y, sp.Basic) else zero for y in outputs]


def symbolic_tangent(outputs: Sequence, direction: Mapping[sp.Symbol, sp.Basic]) -> list:
    """The directional derivative of each output along ``direction`` (symbol -> expression), as expressions."""
    zero = sp.S.Zero
    dot: dict = {}
    for node in topological([y for y in outputs if isinstance(y, sp.Basic)]):
        if node.is_Symbol:
            dot[node] = direction.get(node, zero)
        elif _inert(node):
            dot[node] = zero
        elif node.is_Add:
            dot[node] = sp.Add(*[dot[c] for c in node.args])
        elif node.is_Mul:
            dot[node] = _product_rule(node.args, dot)
        elif node.is_Pow:
            base, exp = node.args
            if exp.is_Number:
                dot[node] = exp * base ** (exp - 1) * dot[base]
            else:
                dot[node] = node * (dot[exp] * sp.log(base) + exp * dot[base] / base)
        elif isinstance(node, sp.Piecewise):
            dot[node] = sp.Piecewise(*[(dot[branch], cond) for branch, cond in node.args])
        else:
            dot[node] = sp.Add(*[_fdiff(node, k) * dot[child] for k, child in enumerate(node.args, start=1)
                                 if not child.is_Number and dot.get(child, zero) != 0])
    return [dot.get(y, zero) if isinstance(y, sp.Basic) else zero for y in outputs]
