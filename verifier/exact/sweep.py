"""Evaluate a :class:`~verifier.exact.tape.Tape` at one point in mpmath, and sweep it backwards.

The same two operations as :mod:`verifier.exact.evaluation` (every node's value
forward, then adjoints from the outputs to the leaves), but over integer
indices instead of SymPy objects: no hashing, no attribute look-ups, no
SymPy at all. That is what makes the exact side of an n = 1024 softmax cost
milliseconds rather than a large part of a second.

A node that cannot be evaluated (a pole, a log of zero) does not stop the
pass at once: it holds a :class:`Poison` with the reason, and the error is
raised only if that value is *used*, as an output or in a taken branch.
Piecewise branches that the point does not select may be undefined there.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import mpmath
import numpy as np

from ..errors import SymbolicError
from .evaluation import _dirac, _heaviside, _sign  # one definition of each jump function
from .mirror import special2
from .tape import ADD, AND, CONST, FUNC, MUL, NOT, OR, PIECEWISE, POW, REL, SYM, Tape, accumulate, adjoint_nodes


class Poison:
    """The value of a node that could not be evaluated, with the reason."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _sinc(x):
    # SymPy's sinc is the unnormalised sin(x)/x with sinc(0) = 1
    return mpmath.mpf(1) if x == 0 else mpmath.sin(x) / x


MP = {
    "exp": mpmath.exp, "log": mpmath.log, "sin": mpmath.sin, "cos": mpmath.cos, "tan": mpmath.tan,
    "asin": mpmath.asin, "acos": mpmath.acos, "atan": mpmath.atan, "sinh": mpmath.sinh,
    "cosh": mpmath.cosh, "tanh": mpmath.tanh, "asinh": mpmath.asinh, "acosh": mpmath.acosh,
    "atanh": mpmath.atanh, "erf": mpmath.erf, "erfc": mpmath.erfc, "Abs": abs, "sec": mpmath.sec,
    "csc": mpmath.csc, "cot": mpmath.cot, "atan2": mpmath.atan2, "gamma": mpmath.gamma,
    "loggamma": mpmath.loggamma, "polygamma": lambda n, x: mpmath.psi(int(n), x),
    "floor": mpmath.floor, "ceiling": mpmath.ceil, "sinc": _sinc, "sign": _sign,
    "Heaviside": _heaviside, "DiracDelta": _dirac, "Max": lambda *a: max(a), "Min": lambda *a: min(a),
    "erfinv": mpmath.erfinv, "besseli": mpmath.besseli, "zeta": mpmath.zeta,
    **{cls.__name__: f for cls, f in special2.NUMERIC.items()},     # igamma/igammac (mirror/special2.py)
}

_REL = {">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b}


def constant(text: str):
    """An mpmath value (or bool) for a tape constant, at the working precision."""
    if text == "true" or text == "false":
        return text == "true"
    if text in ("zoo", "nan"):
        raise SymbolicError(f"the expression holds an undefined value ({text}) at the point")
    if "/" in text:
        p, q = text.split("/")
        return mpmath.mpf(int(p)) / int(q)
    named = {"pi": mpmath.pi, "E": mpmath.e, "oo": mpmath.inf, "-oo": -mpmath.inf,
             "EulerGamma": mpmath.euler, "Catalan": mpmath.catalan, "GoldenRatio": mpmath.phi}
    return +named[text]


def forward(tape: Tape, leaf_values: Sequence) -> list:
    """Every node's value (mpmath numbers, bools or :class:`Poison`) given the leaves' values."""
    ops, args, extra = tape.ops, tape.args, tape.extra
    vals: list = [None] * len(ops)
    fsum, fprod, power = mpmath.fsum, mpmath.fprod, mpmath.power
    consts: dict = {}
    for i, op in enumerate(ops):
        a = args[i]
        try:
            if op == SYM:
                vals[i] = leaf_values[int(extra[i])]
            elif op == ADD:
                vals[i] = fsum([vals[j] for j in a])
            elif op == MUL:
                vals[i] = vals[a[0]] * vals[a[1]] if len(a) == 2 else fprod([vals[j] for j in a])
            elif op == CONST:
                text = extra[i]
                vals[i] = consts[text] if text in consts else consts.setdefault(text, constant(text))
            elif op == POW:
                b, e = vals[a[0]], vals[a[1]]
                if b == 0 and e < 0:
                    vals[i] = Poison(f"division by zero (0 to the power {e})")
                else:
                    vals[i] = power(b, e)
            elif op == FUNC:
                vals[i] = MP[extra[i]](*[vals[j] for j in a])
            elif op == PIECEWISE:
                vals[i] = _piecewise([vals[j] for j in a])
            elif op == REL:
                vals[i] = bool(_REL[extra[i]](vals[a[0]], vals[a[1]]))
            elif op == AND:
                vals[i] = all(_truth(vals[j]) for j in a)
            elif op == OR:
                vals[i] = any(_truth(vals[j]) for j in a)
            elif op == NOT:
                vals[i] = not _truth(vals[a[0]])
        except SymbolicError as exc:
            vals[i] = Poison(exc.message)
        except (TypeError, ValueError, ZeroDivisionError, ArithmeticError) as exc:
            vals[i] = _first_poison([vals[j] for j in a]) or Poison(f"{type(exc).__name__}: {exc}")
    return vals


def _truth(value) -> bool:
    if isinstance(value, Poison):
        raise TypeError("poisoned condition")
    return bool(value)


def _first_poison(values) -> Poison | None:
    return next((v for v in values if isinstance(v, Poison)), None)


def _piecewise(values: list):
    """Value of the first branch whose condition holds (args are branch, cond, branch, cond...)."""
    for k in range(0, len(values), 2):
        cond = values[k + 1]
        if isinstance(cond, Poison):
            return cond
        if cond:
            return values[k]
    return Poison("no branch of a Piecewise holds at the point")


def active_branch(tape: Tape, vals: list, i: int) -> int:
    """The argument node of Piecewise node ``i`` that the point selects."""
    a = tape.args[i]
    for k in range(0, len(a), 2):
        if vals[a[k + 1]] is True:
            return a[k]
    raise SymbolicError("no branch of a Piecewise holds at the point")


def value(vals: list, i: int, what: str):
    """``vals[i]``, or the clear error its poison stands for."""
    v = vals[i]
    if isinstance(v, Poison):
        raise SymbolicError(f"the exact {what} cannot be evaluated at the point: {v.reason}",
                            hint="Sample the input inside the function's domain.")
    return v


def active_nodes(tape: Tape, wrt) -> list[bool]:
    """Which nodes depend on a leaf of an input in ``wrt``: only those need adjoints.

    A constant input's elements are leaves too (x @ w with w fixed); pushing
    adjoints into them is half the work of a matmul's sweep, for nothing.
    """
    wrt = set(wrt)
    ops, args = tape.ops, tape.args
    act = [False] * len(ops)
    for i, op in enumerate(ops):
        if op == SYM:
            act[i] = tape.leaves[int(tape.extra[i])][0] in wrt
        elif op == PIECEWISE:
            act[i] = any(act[j] for j in args[i][0::2])   # conditions carry no adjoint
        elif op in (ADD, MUL, POW, FUNC):
            act[i] = any(act[j] for j in args[i])
    return act


def backward(tape: Tape, vals: list, seeds: Mapping[int, object], active: list[bool] | None = None) -> list:
    """Adjoint of every leaf: Σ seed·∂root/∂leaf, seeds keyed by root node index.

    With ``active`` (from :func:`active_nodes`), adjoints flow only into
    active nodes; the other leaves get 0.
    """
    ops = tape.ops
    skip = [not a for a in active] if active is not None else [op == CONST for op in ops]
    adj: list = [None] * len(ops)
    for i, w in seeds.items():
        if w != 0:
            adj[i] = w if adj[i] is None else adj[i] + w
    top = max((i for i in seeds), default=-1)
    out = [mpmath.mpf(0)] * len(tape.leaves)
    for i, op, kids, a in adjoint_nodes(tape, adj, top, out):
        for child, partial in local_partials(tape, vals, i, op):
            if not skip[child]:
                accumulate(adj, child, a, partial)
    return out


def local_partials(tape: Tape, vals: list, i: int, op: int, products: list | None = None) -> list:
    """``[(child, ∂i/∂child)]`` at the point (``None`` for a sum's 1); sums and products of two inline.

    ``products``: other values for the two-factor products (the bounds' floats).
    """
    kids = tape.args[i]
    if op == ADD:
        return [(j, None) for j in kids]
    if op == MUL and len(kids) == 2:
        j, k = kids
        vs = vals if products is None else products
        return [(j, vs[k]), (k, vs[j])]
    return _partials(tape, vals, i, op)


def _partials(tape: Tape, vals: list, i: int, op: int):
    a = tape.args[i]
    try:
        if op == ADD:
            one = mpmath.mpf(1)
            return [(j, one) for j in a]
        if op == MUL:
            vs = [vals[j] for j in a]
            prefix, out = [mpmath.mpf(1)], []
            for v in vs[:-1]:
                prefix.append(prefix[-1] * v)
            suffix = mpmath.mpf(1)
            for k in range(len(vs) - 1, -1, -1):
                out.append((a[k], prefix[k] * suffix))
                suffix *= vs[k]
            return out
        if op == POW:
            b, e = vals[a[0]], vals[a[1]]
            pairs = [(a[0], e * mpmath.power(b, e - 1))]
            if tape.ops[a[1]] != CONST:
                pairs.append((a[1], vals[i] * mpmath.log(b)))
            return pairs
        if op == PIECEWISE:
            return [(active_branch(tape, vals, i), mpmath.mpf(1))]
        if i in tape.dargs:
            return [(j, value(vals, d, "derivative")) for j, d in zip(a, tape.dargs[i]) if d >= 0]
        return _rule(tape.extra[i], [vals[j] for j in a], vals[i], a)
    except (TypeError, ValueError, ZeroDivisionError, ArithmeticError) as exc:
        poison = _first_poison([vals[j] for j in a] + [vals[i]])
        reason = poison.reason if poison else f"{type(exc).__name__}: {exc}"
        raise SymbolicError(f"the exact gradient cannot be evaluated at the point: {reason}",
                            hint="Sample the input inside the function's domain.") from None


def _rule(name: str, xs: list, y, a: tuple):
    """(child, ∂f/∂child) for the functions in ``tape.RULES``."""
    x = xs[0]
    if name == "exp":
        d = y
    elif name == "log":
        d = 1 / x
    elif name == "sin":
        d = mpmath.cos(x)
    elif name == "cos":
        d = -mpmath.sin(x)
    elif name == "tan":
        d = 1 + y * y
    elif name == "sinh":
        d = mpmath.cosh(x)
    elif name == "cosh":
        d = mpmath.sinh(x)
    elif name == "tanh":
        d = 1 - y * y
    elif name == "asin":
        d = 1 / mpmath.sqrt(1 - x * x)
    elif name == "acos":
        d = -1 / mpmath.sqrt(1 - x * x)
    elif name == "atan":
        d = 1 / (1 + x * x)
    elif name == "asinh":
        d = 1 / mpmath.sqrt(1 + x * x)
    elif name == "acosh":
        d = 1 / (mpmath.sqrt(x - 1) * mpmath.sqrt(x + 1))
    elif name == "atanh":
        d = 1 / (1 - x * x)
    elif name == "erf":
        d = 2 / mpmath.sqrt(mpmath.pi) * mpmath.exp(-x * x)
    elif name == "erfc":
        d = -2 / mpmath.sqrt(mpmath.pi) * mpmath.exp(-x * x)
    elif name == "atan2":          # atan2(y, x): the first argument is y
        yy, xx = xs
        r2 = xx * xx + yy * yy
        return [(a[0], xx / r2), (a[1], -yy / r2)]
    else:  # pragma: no cover - compile_tape gives every other function fdiff nodes
        raise SymbolicError(f"no derivative rule for {name}")
    return [(a[0], d)]


def leaf_values(tape: Tape, point: Mapping[str, np.ndarray]) -> list:
    """The leaves' values as exact mpmath numbers (float64 inputs are exact binary fractions)."""
    flat = {name: np.asarray(arr, dtype=np.float64).ravel().tolist() for name, arr in point.items()}
    return [mpmath.mpf(flat[name][k]) for name, k in tape.leaves]


_ZERO_AT_KINK = ("Abs", "sign", "Heaviside")
_INEQUALITY = ("<", "<=", ">", ">=")
_TIE = mpmath.mpf(10) ** -30


def kink_free(tape: Tape, vals: list, roots: Sequence[int], relations: tuple[str, ...] = _INEQUALITY) -> bool:
    """True when no node under ``roots`` can be a kink at the point, so the kink detector can be skipped.

    Conservative (a superset of :func:`verifier.exact.kinks.candidates`): an Abs,
    sign or Heaviside whose argument is within 1e-30 of 0, a Max/Min whose two
    extreme arguments are that close, or an inequality anywhere (every
    Piecewise branch, not only the one taken) that holds that nearly with
    equality. Any such node, or a value that could not be computed, says
    "maybe" and the full detector runs. ``relations``: which comparisons
    count (forward mode also treats a Piecewise ``Eq`` at equality as a kink).
    """
    ops, args, extra = tape.ops, tape.args, tape.extra

    def step(i):               # the node's arguments, or None when it may be a kink
        op, a = ops[i], args[i]
        try:
            if op == FUNC and extra[i] in _ZERO_AT_KINK:
                if abs(vals[a[0]]) <= _TIE:
                    return None
            elif op == FUNC and extra[i] in ("Max", "Min") and len(a) > 1:
                best = sorted((vals[j] for j in a), reverse=extra[i] == "Max")
                if abs(best[0] - best[1]) <= _TIE * (1 + abs(best[0])):
                    return None
            elif op == REL and extra[i] in relations:
                lhs, rhs = vals[a[0]], vals[a[1]]
                if abs(lhs - rhs) <= _TIE * (1 + abs(lhs) + abs(rhs)):
                    return None
        except TypeError:          # a poisoned or complex value: let the full detector decide
            return None
        return a

    return _walk(roots, step) is not None


def _walk(roots: Sequence[int], step) -> set | None:
    """Visit every node under ``roots`` once; ``step(i)`` gives the nodes to visit next, or None to stop (-> None)."""
    seen, stack = set(), list(roots)
    while stack:
        i = stack.pop()
        if i in seen:
            continue
        seen.add(i)
        nxt = step(i)
        if nxt is None:
            return None
        stack.extend(nxt)
    return seen


def tangent(tape: Tape, vals: list, leaf_tangents: Sequence, roots: Sequence[int]) -> list:
    """Forward-mode derivatives: Σ_leaf ∂root/∂leaf · leaf_tangents[leaf] for each root (J·u).

    Only nodes the roots reach through the branches the point takes are
    visited, so an undefined value in an untaken branch does not matter.
    """
    ops = tape.ops
    t: dict = {}
    for i in _needed(tape, vals, roots):
        op = ops[i]
        if op == SYM:
            t[i] = leaf_tangents[int(tape.extra[i])]
            continue
        if op not in (ADD, MUL, POW, FUNC, PIECEWISE):
            continue
        if all(t.get(j) is None for j in tape.args[i]):
            continue
        pairs = local_partials(tape, vals, i, op)
        acc = None
        for j, partial in pairs:
            tj = t.get(j)
            if tj is None:
                continue
            inc = tj if partial is None else tj * partial
            acc = inc if acc is None else acc + inc
        t[i] = acc
    zero = mpmath.mpf(0)
    return [t.get(r) if t.get(r) is not None else zero for r in roots]


def _needed(tape: Tape, vals: list, roots: Sequence[int]) -> list[int]:
    """The nodes ``roots`` reach through the branches the point takes, ascending."""
    ops, args = tape.ops, tape.args
    return sorted(_walk(roots, lambda i: [active_branch(tape, vals, i)] if ops[i] == PIECEWISE
                        else args[i] if ops[i] in (ADD, MUL, POW, FUNC) else ()))
