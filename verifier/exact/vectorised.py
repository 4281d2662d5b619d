"""Evaluate a small :class:`~verifier.exact.tape.Tape` over whole arrays of points at once (numpy).

An elementwise template (:mod:`verifier.exact.formulas`) is one scalar expression
``f(x, y, ...)``; its tape has a handful of nodes, and each node's value here
is an array with one entry per output element. Arithmetic runs in the numpy
dtype ``real``: float64 by default (numpy's exp/log/sin... are accurate to a
few ulp), or ``numpy.longdouble`` (x87 80-bit on x86-64 Linux: 64-bit
mantissa, ~19 digits) when asked for, at 10-30x the cost of transcendental
functions. Functions numpy lacks (erf, erfc, gamma, loggamma) come from
Python's ``math`` module in float64, accurate to about one ulp.

Unlike :mod:`verifier.exact.sweep`, every Piecewise branch is computed for every
element and the condition picks one; values outside a branch's domain only
produce NaN where that branch is not taken.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Mapping, Sequence

import mpmath
import numpy as np

from ..errors import SymbolicError
from . import magnitude
from .mirror import special2
from .tape import ADD, AND, CONST, FUNC, MUL, NOT, OR, PIECEWISE, POW, REL, SYM, Tape, accumulate, adjoint_nodes


def _from_math(fn):
    ufunc = np.frompyfunc(fn, 1, 1)
    return lambda x: ufunc(np.asarray(x, dtype=np.float64)).astype(np.asarray(x).dtype)


def _from_mpmath(fn, arity=1):
    """A function numpy and math lack (special functions), per element through mpmath, to float64."""
    ufunc = np.frompyfunc(lambda *a: float(fn(*a)), arity, 1)
    return lambda *x: ufunc(*[np.asarray(v, dtype=np.float64) for v in x]).astype(np.asarray(x[-1]).dtype)


def _heaviside(x, h0=0.5):
    return np.where(x > 0, 1.0, np.where(x < 0, 0.0, h0)).astype(np.asarray(x).dtype)


def _dirac(x, *k):
    if np.any(x == 0):
        raise SymbolicError("the derivative is a Dirac delta at the point (a kink or a jump)",
                            hint="Move the input off the non-differentiable point or mark the case as a kink.")
    return np.zeros_like(x)


def _sinc(x):
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(x == 0, 1.0, np.sin(x) / x).astype(np.asarray(x).dtype)


NP = {
    "exp": np.exp, "log": np.log, "sin": np.sin, "cos": np.cos, "tan": np.tan, "asin": np.arcsin,
    "acos": np.arccos, "atan": np.arctan, "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh,
    "asinh": np.arcsinh, "acosh": np.arccosh, "atanh": np.arctanh, "Abs": np.abs,
    "sec": lambda x: 1 / np.cos(x), "csc": lambda x: 1 / np.sin(x), "cot": lambda x: 1 / np.tan(x),
    "atan2": np.arctan2, "floor": np.floor, "ceiling": np.ceil, "sinc": _sinc, "sign": np.sign,
    "erf": _from_math(math.erf), "erfc": _from_math(math.erfc), "gamma": _from_math(math.gamma),
    "loggamma": _from_math(math.lgamma), "Heaviside": _heaviside, "DiracDelta": _dirac,
    "Max": lambda *a: np.maximum.reduce(np.broadcast_arrays(*a)),
    "Min": lambda *a: np.minimum.reduce(np.broadcast_arrays(*a)),
    "polygamma": _from_mpmath(lambda n, x: mpmath.psi(int(n), x), 2), "erfinv": _from_mpmath(mpmath.erfinv),
    "besseli": _from_mpmath(mpmath.besseli, 2), "zeta": _from_mpmath(mpmath.zeta, 2),
    **{cls.__name__: _from_mpmath(f, 2) for cls, f in special2.NUMERIC.items()},     # mirror/special2.py
}

_REL = {">": np.greater, ">=": np.greater_equal, "<": np.less, "<=": np.less_equal,
        "==": np.equal, "!=": np.not_equal}

_NAMED = {"pi": "3.14159265358979323846264338327950288", "E": "2.71828182845904523536028747135266250",
          "EulerGamma": "0.577215664901532860606512090082402431",
          "Catalan": "0.915965594177219015054603514932384110",
          "GoldenRatio": "1.61803398874989484820458683436563812"}


def constant(text: str, real=np.float64):
    """A ``real`` scalar (or bool) for a tape constant, correctly rounded."""
    if text in ("true", "false"):
        return np.bool_(text == "true")
    if text in ("zoo", "nan"):
        return real(np.nan)
    if text in ("oo", "-oo"):
        return real(np.inf if text == "oo" else -np.inf)
    if text in _NAMED:
        return real(_NAMED[text])
    p, q = (int(s) for s in text.split("/"))
    if real is np.float64:
        return real(Fraction(p, q))     # float(Fraction) rounds correctly
    import mpmath
    with mpmath.workdps(30):
        return real(mpmath.nstr(mpmath.mpf(p) / q, 25))


def forward(tape: Tape, leaves: Sequence[np.ndarray]) -> tuple[list, dict]:
    """Every node's value over the arrays ``leaves`` (one per tape leaf, same length).

    Returns the values and, per Piecewise node, the masks of the elements
    each branch was taken for (the backward pass needs them).
    """
    ops, args, extra = tape.ops, tape.args, tape.extra
    real = leaves[0].dtype.type if leaves else np.float64
    vals: list = [None] * len(ops)
    active: dict[int, list] = {}
    with np.errstate(all="ignore"):
        for i, op in enumerate(ops):
            a = [vals[j] for j in args[i]]
            if op == SYM:
                vals[i] = leaves[int(extra[i])]
            elif op == CONST:
                vals[i] = constant(extra[i], real)
            elif op == ADD:
                vals[i] = _sum(a)
            elif op == MUL:
                vals[i] = _prod(a)
            elif op == POW:
                vals[i] = _power(a[0], a[1], tape.extra[args[i][1]] if ops[args[i][1]] == CONST else None)
            elif op == FUNC:
                vals[i] = NP[extra[i]](*a)
            elif op == PIECEWISE:
                conds = [np.asarray(c, dtype=bool) for c in a[1::2]]
                taken, chosen = [], np.zeros(np.broadcast(*conds).shape, dtype=bool)
                for c in conds:
                    taken.append(c & ~chosen)
                    chosen = chosen | c
                active[i] = taken
                vals[i] = np.select(taken, [np.broadcast_to(b, chosen.shape) for b in a[0::2]],
                                    default=real(np.nan)) if chosen.shape else _scalar_select(taken, a[0::2])
            elif op == REL:
                vals[i] = _REL[extra[i]](a[0], a[1])
            elif op == AND:
                vals[i] = np.logical_and.reduce(a)
            elif op == OR:
                vals[i] = np.logical_or.reduce(a)
            elif op == NOT:
                vals[i] = np.logical_not(a[0])
    return vals, active


def _scalar_select(taken, branches):
    for t, b in zip(taken, branches):
        if t:
            return b
    return np.nan


def _sum(a):
    out = a[0]
    for x in a[1:]:
        out = out + x
    return out


def _prod(a):
    out = a[0]
    for x in a[1:]:
        out = out * x
    return out


def _power(b, e, exponent_text: str | None):
    # sqrt and reciprocals are correctly rounded; a general pow of longdouble may not be
    if exponent_text == "1/2":
        return np.sqrt(b)
    if exponent_text == "-1/2":
        return 1 / np.sqrt(b)
    if exponent_text is not None and exponent_text.endswith("/1"):
        k = int(exponent_text[:-2])
        if k == -1:
            return 1 / b
        if 0 <= k <= 4:
            return _prod([b] * k) if k else np.ones_like(b)
    return np.power(b, e)


def backward(tape: Tape, values: tuple[list, dict], seed: np.ndarray, root: int) -> list:
    """Per-element adjoints of every leaf for ``seed * ∂root/∂leaf`` (arrays; 0 for unused leaves)."""
    ops = tape.ops
    adj: list = [None] * len(ops)
    adj[root] = seed
    out: list = [0] * len(tape.leaves)
    with np.errstate(all="ignore"):
        for i, op, a, g in adjoint_nodes(tape, adj, root, out):
            for j, partial in local_partials(tape, values, i, op, seed.dtype):
                if ops[j] != CONST:
                    accumulate(adj, j, g, partial)
    return out


def local_partials(tape: Tape, values: tuple[list, dict], i: int, op: int, real=np.float64) -> list:
    """``[(child, ∂i/∂child)]`` as arrays over the elements (``None`` for a sum's 1)."""
    ops, extra, dargs = tape.ops, tape.extra, tape.dargs
    vals, active = values
    a = tape.args[i]
    with np.errstate(all="ignore"):
        if op == ADD:
            return [(j, None) for j in a]
        if op == MUL:
            return [(j, _prod([vals[k] for n, k in enumerate(a) if n != m])) for m, j in enumerate(a)]
        if op == POW:
            b, e = vals[a[0]], vals[a[1]]
            pairs = [(a[0], e * _power(b, e - 1, _minus_one(extra[a[1]]) if ops[a[1]] == CONST else None))]
            if ops[a[1]] != CONST:
                pairs.append((a[1], vals[i] * np.log(b)))
            return pairs
        if op == PIECEWISE:
            return [(j, mask.astype(real)) for j, mask in zip(a[0::2], active[i])]
        if i in dargs:
            return [(j, vals[d]) for j, d in zip(a, dargs[i]) if d >= 0]
        return _rule(extra[i], [vals[j] for j in a], vals[i], a)


def bounds(tape: Tape, values: tuple[list, dict], seed_abs: np.ndarray, root: int) -> tuple[list, list]:
    """(per-node forward error bounds ``E``, per-leaf rounding bounds ``M`` of ``|seed|·∂root/∂leaf``), as arrays.

    The numpy twin of :func:`verifier.exact.sweep.bounds` (rules in :mod:`verifier.exact.magnitude`).
    """
    part = lambda i, op: local_partials(tape, values, i, op, seed_abs.dtype)      # noqa: E731
    with np.errstate(all="ignore"):
        errs = magnitude.forward_errors(tape, values[0], part)
        return errs, magnitude.sweep_bounds(tape, values[0], errs, {root: np.abs(seed_abs)}, part, np, root)


def _minus_one(text: str) -> str | None:
    p, q = (int(s) for s in text.split("/"))
    return f"{p - q}/{q}"


def _rule(name: str, xs: list, y, a: tuple):
    x = xs[0]
    if name == "atan2":
        yy, xx = xs
        r2 = xx * xx + yy * yy
        return [(a[0], xx / r2), (a[1], -yy / r2)]
    two_over_sqrt_pi = np.asarray(x).dtype.type("1.12837916709551257389615890312154517")
    d = {
        "exp": lambda: y, "log": lambda: 1 / x, "sin": lambda: np.cos(x), "cos": lambda: -np.sin(x),
        "tan": lambda: 1 + y * y, "sinh": lambda: np.cosh(x), "cosh": lambda: np.sinh(x),
        "tanh": lambda: 1 - y * y, "asin": lambda: 1 / np.sqrt(1 - x * x),
        "acos": lambda: -1 / np.sqrt(1 - x * x), "atan": lambda: 1 / (1 + x * x),
        "asinh": lambda: 1 / np.sqrt(1 + x * x), "acosh": lambda: 1 / (np.sqrt(x - 1) * np.sqrt(x + 1)),
        "atanh": lambda: 1 / (1 - x * x), "erf": lambda: two_over_sqrt_pi * np.exp(-x * x),
        "erfc": lambda: -two_over_sqrt_pi * np.exp(-x * x),
    }[name]()
    return [(a[0], d)]


def leaf_arrays(tape: Tape, columns: Mapping[str, np.ndarray], real=np.float64) -> list:
    """The leaves' value arrays (each input's broadcast, flattened chunk) as ``real``."""
    return [np.asarray(columns[name], dtype=real) for name, _ in tape.leaves]


def kink_free(tape: Tape, values: tuple[list, dict], root: int, slack: float = 1e-12,
              relations: tuple[str, ...] = ("<", "<=", ">", ">=")) -> bool:
    """True when no element is near a kink of the template (see :func:`verifier.exact.sweep.kink_free`).

    Values are float64 here, so "near" is within ``slack`` relative: an exact
    kink computed with rounding still counts, and a false alarm only means the
    full (slow) detector runs.
    """
    vals = values[0]
    ops, args, extra = tape.ops, tape.args, tape.extra
    seen, stack = set(), [root]
    with np.errstate(all="ignore"):
        while stack:
            i = stack.pop()
            if i in seen:
                continue
            seen.add(i)
            a = args[i]
            if ops[i] == FUNC and extra[i] in ("Abs", "sign", "Heaviside"):
                near = ~(np.abs(vals[a[0]]) > slack)                    # NaN counts as near
            elif ops[i] == FUNC and extra[i] in ("Max", "Min") and len(a) > 1:
                stacked = np.sort(np.stack(np.broadcast_arrays(*[vals[j] for j in a])), axis=0)
                first, second = (stacked[-1], stacked[-2]) if extra[i] == "Max" else (stacked[0], stacked[1])
                near = ~(np.abs(first - second) > slack * (1 + np.abs(first)))
            elif ops[i] == REL and extra[i] in relations:
                lhs, rhs = vals[a[0]], vals[a[1]]
                near = ~(np.abs(lhs - rhs) > slack * (1 + np.abs(lhs) + np.abs(rhs)))
            else:
                near = False
            if np.any(near):
                return False
            stack.extend(a)
    return True
