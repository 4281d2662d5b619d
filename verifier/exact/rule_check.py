"""The sweep's hand-written derivative rules checked against SymPy's derivatives, at the point.

The reverse sweep (:mod:`verifier.exact.sweep`) differentiates exp, tanh,
``a ** b`` and the other functions of ``tape.RULES`` by built-in rules. A
small case used to check them on every element with the symbolic Jacobian
(SymPy's ``diff`` of every output by every input: n² derivatives, ~0.3 s cold
for a softmax over 16 elements). Small cases built per operation instead
check each rule once per case: for every distinct function (and ``**`` with
a non-constant exponent) on the tape, one node's partial derivatives from
the sweep are compared with SymPy's derivative of that function (``diff``
once per function and process, evaluated in mpmath at the node's own
arguments). Structure (which node feeds which) is checked by the second
graph, built per element (:func:`verifier.exact.compiled.exact`).
"""

from __future__ import annotations

import mpmath
import sympy as sp

from ..errors import SymbolicError
from . import sweep
from .tape import CONST, FUNC, FUNCTIONS, POW, RULES, Tape

_DERIVATIVES: dict = {}        # function name (or "**") -> mpmath callable of its partial derivatives


def _derivative(name: str):
    hit = _DERIVATIVES.get(name)
    if hit is None:
        ts = sp.symbols("t0 t1", real=True)
        if name == "**":
            expr = ts[0] ** ts[1]
        else:
            arity = 2 if name == "atan2" else 1
            ts = ts[:arity]
            expr = FUNCTIONS[name](*ts)
        hit = sp.lambdify(ts, [sp.diff(expr, t) for t in ts], "mpmath")
        _DERIVATIVES[name] = hit
    return hit


def check_rules(tape: Tape, vals: list, digits: int) -> None:
    """Raise SymbolicError when a built-in rule disagrees with SymPy's derivative at a node of ``tape``."""
    seen: set = set()
    for i, op in enumerate(tape.ops):
        if op == FUNC and tape.extra[i] in RULES and i not in tape.dargs:
            name = tape.extra[i]
        elif op == POW and tape.ops[tape.args[i][1]] != CONST:
            name = "**"
        else:
            continue
        if name in seen or len(set(tape.args[i])) != len(tape.args[i]):
            continue
        seen.add(name)
        args = [vals[j] for j in tape.args[i]]
        if not all(isinstance(v, mpmath.mpf) for v in args) or (name == "**" and args[0] <= 0):
            seen.discard(name)       # a value this check cannot take (a poison, a non-positive base): the next
            continue
        try:
            want = _derivative(name)(*args)
        except (ValueError, ZeroDivisionError, ArithmeticError):
            seen.discard(name)
            continue
        got = dict(sweep._partials(tape, vals, i, op))
        for j, w in zip(tape.args[i], want):
            if j not in got:
                continue
            g = got[j]
            if abs(g - w) > (1 + abs(w)) * mpmath.mpf(10) ** (-(digits // 2)):
                raise SymbolicError(f"the reverse sweep's rule for {name} gives {g} where SymPy's derivative "
                                    f"gives {w}", hint="This is a bug in the symbolic engine; please report the case.")
