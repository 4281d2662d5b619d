"""Exact directional derivatives over SymPy expression graphs: J·u (tangent sweep) and H·w (reverse over tangent).

* :func:`tangent_sweep` pushes a direction u forward from the input symbols
  through the shared expression graph, node by node, in mpmath: every
  output's exact directional derivative Σ_j ∂y_i/∂x_j u_j in one pass
  (forward mode, the mirror image of ``evaluation.reverse_sweep``).
* :func:`symbolic_tangent` builds the same directional derivative as SymPy
  expressions in direction *symbols*; the reverse sweep (``evaluation.reverse_sweep``)
  of Σ v⊙(J·u) with respect to x is then H·u, the Hessian of Σ v⊙y times u,
  exactly.

The sweeps take ∂node/∂child from ``evaluation.local_partials``, the one
rule table, which ``evaluation.reverse_sweep`` (second order's H·u, the kink
detector's one-sided derivatives) uses too.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import mpmath
import numpy as np
import sympy as sp

from .evaluation import PIECEWISE_CONSTANT, PRECISION_DIGITS, Evaluator, fdiff, local_partials, real_value, topological


def _inert(node) -> bool:
    return node.is_Atom or node.is_Relational or node.is_Boolean


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
        elif isinstance(node, PIECEWISE_CONSTANT):
            dot[node] = zero
        else:
            dot[node] = sp.Add(*[fdiff(node, k) * dot[child] for k, child in enumerate(node.args, start=1)
                                 if not child.is_Number and dot.get(child, zero) != 0])
    return [dot.get(y, zero) if isinstance(y, sp.Basic) else zero for y in outputs]


def kinks(outputs: Sequence, ev: Evaluator, limit: int = 3) -> list[str]:
    """Where the graph sits exactly on a non-differentiable point (at most ``limit``), in words.

    An Abs, sign or Heaviside at 0, a Max/Min with a tie, or a Piecewise
    condition at equality. There the derivative is a convention (the mirror
    encodes reverse mode's), so a directional check has nothing exact to
    compare with.
    """
    found: list[str] = []
    for node in topological([y for y in outputs if isinstance(y, sp.Basic)]):
        if len(found) >= limit:
            break
        where = _kink(node, ev)
        if where:
            found.append(where)
    return found


def _kink(node, ev: Evaluator) -> str:
    if isinstance(node, (sp.Abs, sp.sign, sp.Heaviside)) and ev(node.args[0]) == 0:
        return f"{node.func.__name__}({node.args[0]}) at 0"
    if isinstance(node, (sp.Max, sp.Min)):
        values = [ev(a) for a in node.args]
        best = max(values) if isinstance(node, sp.Max) else min(values)
        if sum(1 for v in values if v == best) > 1:
            shown = ", ".join(map(str, node.args[:3])) + (", ..." if len(node.args) > 3 else "")
            return f"a tie in {node.func.__name__}({shown})"
    if isinstance(node, sp.Piecewise):
        for _, cond in node.args:
            for rel in ([cond] if isinstance(cond, sp.core.relational.Relational)
                        else list(cond.atoms(sp.core.relational.Relational)) if isinstance(cond, sp.Basic) else []):
                if ev(rel.lhs) == ev(rel.rhs):
                    return f"the boundary {rel.lhs} = {rel.rhs} of a piecewise definition"
    return ""


def symbol_values(model, point: Mapping[str, np.ndarray]) -> dict:
    """Every floating input symbol of ``model`` -> its float64 value at ``point``."""
    values = {}
    for name, syms in model.symbols.items():
        values.update(zip(syms.ravel().tolist(), np.asarray(point[name], dtype=np.float64).ravel().tolist()))
    return values


def at_kink(model, point: Mapping[str, np.ndarray], *, digits: int = PRECISION_DIGITS) -> str:
    """'' when the case's point is smooth, else where it sits on a kink (a non-differentiable point)."""
    with mpmath.workdps(digits):
        found = kinks(model.output.ravel().tolist(), Evaluator(symbol_values(model, point)))
    return "; ".join(found)


def exact_jvp(model, point: Mapping[str, np.ndarray], direction: Mapping[str, np.ndarray],
              *, digits: int = PRECISION_DIGITS) -> np.ndarray:
    """The exact J·u at ``point``, shaped like the output, rounded to float64."""
    with mpmath.workdps(digits):
        ev = Evaluator(symbol_values(model, point))
        tangents = {}
        for name in model.wrt:
            tangents.update(zip(model.symbols[name].ravel().tolist(),
                                np.asarray(direction[name], dtype=np.float64).ravel().tolist()))
        flat = tangent_sweep(model.output.ravel().tolist(), tangents, ev)
        return np.array([real_value(t, "J·u") for t in flat], dtype=np.float64).reshape(model.output.shape)
