"""Rounding bounds over a tape: how large the rounding error of each exact value may be in a float dtype.

The allowance for an autograd element is ``rtol·M_i + atol`` (see
``verifier/verdict/compare.py`` and ``docs/numerics.md``), where ``M_i`` is a
first-order *running error bound* (Wilkinson's, Higham ch. 3) of the same
computation done in floating point, in units of the dtype's unit roundoff:
every operation ``z = op(a, b)`` is off by at most ``u·|z|``, and errors of its
arguments are carried by the local partials. Three quantities per node:

* ``E[i]`` — the forward error bound of node i's value:
  ``E[i] = |val_i| + Σ_c |∂i/∂c|·E[c]`` (inputs are exact: ``E = 0`` at a leaf;
  a constant is rounded: ``E = |c|``). A sum of large terms that cancels keeps
  the size of its terms (``sum(x) - sum(x)``), where its value is 0.
* ``D(p)`` — the error bound of a local partial ``p`` as computed from the
  rounded forward values (a product's partial is the other factor, with that
  factor's ``E``; ``f'(x)`` is off by ``|f''(x)|·E[x]`` plus the rounding of
  the derivative formula, ``1 - y²`` for tanh).
* the adjoints as pairs ``(A, B)``: ``A`` the magnitude ``Σ|adjoint·partial|``
  (the sweep with absolute values, ``(|J|ᵀ|v|)``), ``B`` the error bound
  ``Σ (B·|p| + A·D(p)) + A`` (the incoming adjoint's error, the partial's
  error, the rounding of the product and of the accumulation).

``B`` at a leaf is ``M_i``: at least ``(|J|ᵀ|v|)_i ≥ |Jᵀv|_i``, and bigger
exactly where the computation carries terms much larger than its result. The
same rules give the bound of a J·u (forward mode: tangents as pairs) and of an
output (``E`` of the root). The rules are written once here, over
``mpmath`` numbers (:mod:`verifier.exact.sweep`) or numpy arrays
(:mod:`verifier.exact.vectorised`): the caller passes the partial values and
the math namespace.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Callable, Sequence

import numpy as np

from .tape import ADD, CONST, FUNC, MUL, PIECEWISE, POW, SYM, Tape

#: The math namespace for bounds in Python floats (mpmath and numpy have these names too).
FLOATS = SimpleNamespace(sin=math.sin, cos=math.cos, sinh=math.sinh, cosh=math.cosh, sqrt=math.sqrt, power=pow)

# Which node kinds carry values (relations and logic are bools: no error bound).
_VALUED = (SYM, CONST, ADD, MUL, POW, FUNC, PIECEWISE)


def scaled(p, e):
    """``|p|·e``, 0 where ``p`` is 0 (an untaken branch, a zero factor: its ``e`` may be inf or nan)."""
    if p is None:
        return e
    if isinstance(p, np.ndarray) or isinstance(e, np.ndarray):
        with np.errstate(invalid="ignore", over="ignore"):
            return np.where(np.asarray(p) == 0, 0.0, np.abs(p) * e)
    return 0 if p == 0 else abs(p) * e


def forward_errors(tape: Tape, vals: list, partials: Callable[[int, int], list], upto: int | None = None) -> list:
    """``E`` per node (``None`` for relations, logic, and values that could not be computed).

    ``partials(i, op)`` gives ``[(child, ∂i/∂child)]`` (``None`` for 1), as
    the engine's backward sweep computes them. Only nodes below ``upto`` are
    bounded (a small case's symbolic Jacobian, appended last, needs none).
    """
    ops, extra = tape.ops, tape.extra
    errs: list = [None] * len(ops)
    for i in range(len(ops) if upto is None else upto):
        op = ops[i]
        if op not in _VALUED:
            continue
        if op == SYM:
            errs[i] = 0 * abs(vals[i]) if isinstance(vals[i], np.ndarray) else 0
            continue
        try:
            own = abs(vals[i]) if op != PIECEWISE else 0
            if op == CONST:
                errs[i] = own if extra[i] not in ("true", "false") else None
                continue
            kids = tape.args[i]
            if op == ADD and len(kids) > 2:     # a pairwise sum of k terms rounds log2(k) times per term
                total = own + (_levels(len(kids)) - 1) * sum_abs([vals[j] for j in kids])
            elif op == MUL and len(kids) > 2:   # k factors: k - 1 roundings
                total = own * (len(kids) - 1)
            else:
                total = own
            if op == ADD:
                for child in kids:
                    total = total + errs[child]      # None (unbounded child): TypeError, no bound
                errs[i] = total
                continue
            for child, p in partials(i, op):
                e = errs[child]
                if e is None:
                    if p is not None and not isinstance(p, np.ndarray) and p == 0:
                        continue
                    raise TypeError("unbounded child")
                total = total + scaled(p, e)
            errs[i] = total
        except Exception:      # a poisoned value (a pole in an untaken branch): no bound; unused unless taken
            errs[i] = None
    return errs


def _levels(k: int) -> int:
    """Roundings per term of a pairwise sum of ``k`` terms: ceil(log2 k) (torch's CPU reductions are pairwise)."""
    return max(1, math.ceil(math.log2(k))) if k > 1 else 1


def sum_abs(values):
    total = 0
    for v in values:
        total = total + abs(v)
    return total


def partial_errors(tape: Tape, vals: list, errs: list, i: int, op: int, pairs: list, m) -> dict:
    """``D(p)`` per child of node ``i``: the error bound of each local partial in ``pairs``."""
    a = tape.args[i]
    if op in (ADD, PIECEWISE):
        return {}
    if op == MUL:
        mags, es = [abs(vals[j]) for j in a], [_e(errs[j]) for j in a]
        out = {}
        prefix = [(1, 0)]                               # (value, error) of the product of the first k
        for v, e in zip(mags[:-1], es[:-1]):
            pv, pe = prefix[-1]
            prefix.append((pv * v, pv * e + v * pe))
        sv, se = 1, 0
        for k in range(len(a) - 1, -1, -1):
            pv, pe = prefix[k]
            out[a[k]] = pv * se + sv * pe + pv * sv       # the other factors' error, and the product's rounding
            sv, se = sv * mags[k], sv * es[k] + mags[k] * se
        return out
    if op == POW:
        b, e = vals[a[0]], vals[a[1]]
        out = {}
        for child, p in pairs:
            if child == a[0] and tape.ops[a[1]] == CONST:
                out[child] = abs(e * (e - 1) * _power(b, e - 2, m)) * _e(errs[a[0]]) + abs(p)
            else:
                out[child] = abs(p) * (1 + _e(errs[a[0]]) + _e(errs[a[1]]))
        return out
    if i in tape.dargs:
        return {j: _e(errs[d]) for j, d in zip(a, tape.dargs[i]) if d >= 0}
    xs, es = [vals[j] for j in a], [_e(errs[j]) for j in a]
    return {child: _rule_error(tape.extra[i], xs, vals[i], es, p, m) for child, p in pairs}


def _e(e):
    return 0 if e is None else e


def _power(b, e, m):
    with np.errstate(all="ignore"):
        return m.power(b, e)


def _rule_error(name: str, xs: list, y, errs: list, p, m):
    """``D(p)`` for the functions with built-in derivative rules: ``|f''(x)|·E[x]`` plus the formula's rounding."""
    x, ex = xs[0], errs[0]
    ap = abs(p)
    if name == "exp":
        return abs(y) * ex + ap
    if name == "log":
        return ex / (x * x) + ap
    if name in ("sin", "cos"):
        return abs(m.sin(x) if name == "sin" else m.cos(x)) * ex + ap
    if name in ("sinh", "cosh"):
        return abs(m.sinh(x) if name == "sinh" else m.cosh(x)) * ex + ap
    if name in ("tan", "tanh"):          # torch forms 1 ± y² from the rounded output
        return 2 * abs(y) * ap * ex + 1 + y * y
    if name in ("asin", "acos", "atanh", "acosh"):   # 1 - x² (x² - 1) cancels near the ends
        s = abs(1 - x * x)
        return (abs(x) * ex + (1 + x * x)) * ap / s + ap
    if name == "atan":
        return 2 * abs(x) * ap * ap * ex + ap
    if name == "asinh":
        return abs(x) * ap ** 3 * ex + ap
    if name in ("erf", "erfc"):
        return 2 * abs(x) * ap * ex + ap
    if name == "atan2":
        r2 = xs[0] * xs[0] + xs[1] * xs[1]
        return (errs[0] + errs[1]) / r2 * (1 + ap * m.sqrt(r2)) + ap
    return ap * (1 + ex)       # pragma: no cover - every rule is above


def sweep_bounds(tape: Tape, vals: list, errs: list, seeds: dict, partials, m, top: int, active=None) -> list:
    """``M`` per leaf: the reverse sweep of the adjoints as (magnitude, error bound) pairs.

    ``seeds`` maps root nodes to ``|v|``. ``active`` (a list of bools, from
    ``sweep.active_nodes``) stops the sweep at nodes no differentiated input reaches.
    """
    ops = tape.ops
    mag: list = [None] * len(ops)
    err: list = [None] * len(ops)
    fan = [0] * len(ops)                 # contributions summed into each adjoint
    for r, w in seeds.items():
        mag[r] = w if mag[r] is None else mag[r] + w
        err[r] = 0 * w if err[r] is None else err[r]
    out: list = [0] * len(tape.leaves)
    for i in range(top, -1, -1):
        a_i = mag[i]
        if a_i is None:
            continue
        if fan[i] > 2:                   # the adjoint is a pairwise sum of its contributions
            err[i] = err[i] + (_levels(fan[i]) - 1) * a_i
        op = ops[i]
        if op == SYM:
            out[int(tape.extra[i])] = err[i] + a_i
            continue
        if op == CONST or op not in _VALUED:
            continue
        b_i = err[i]
        if op == ADD:                    # the commonest node, inline: partials 1, exact
            inc_b = b_i + a_i
            for child in tape.args[i]:
                if ops[child] == CONST or (active is not None and not active[child]):
                    continue
                mag[child] = a_i if mag[child] is None else mag[child] + a_i
                err[child] = inc_b if err[child] is None else err[child] + inc_b
                fan[child] += 1
            continue
        kids = tape.args[i]
        if op == MUL and len(kids) == 2 and isinstance(a_i, float):   # the next commonest, in floats
            for child, other in ((kids[0], kids[1]), (kids[1], kids[0])):
                if ops[child] == CONST or (active is not None and not active[child]):
                    continue
                p = abs(vals[other])
                inc_a = a_i * p
                inc_b = b_i * p + a_i * (_e(errs[other]) + p) + inc_a
                mag[child] = inc_a if mag[child] is None else mag[child] + inc_a
                err[child] = inc_b if err[child] is None else err[child] + inc_b
                fan[child] += 1
            continue
        pairs = partials(i, op)
        ds = partial_errors(tape, vals, errs, i, op, pairs, m)
        for child, p in pairs:
            if ops[child] == CONST or (active is not None and not active[child]):
                continue
            d = ds.get(child, 0)
            inc_a = scaled(p, a_i) if p is not None else a_i
            inc_b = (scaled(p, b_i) if p is not None else b_i) + scaled(a_i, d) + inc_a
            mag[child] = inc_a if mag[child] is None else mag[child] + inc_a
            err[child] = inc_b if err[child] is None else err[child] + inc_b
            fan[child] += 1
    return out


def tangent_bounds(tape: Tape, vals: list, errs: list, leaf_mags: Sequence, partials, m, needed) -> dict:
    """Per node in ``needed`` (ascending): the (magnitude, error bound) pair of its J·u, leaves seeded with ``|u|``."""
    ops = tape.ops
    pairs: dict = {}
    for i in needed:
        op = ops[i]
        if op == SYM:
            u = leaf_mags[int(tape.extra[i])]
            if u is not None:
                pairs[i] = (abs(u), 0 * abs(u))
            continue
        if op not in (ADD, MUL, POW, FUNC, PIECEWISE):
            continue
        a_sum, b_sum = None, None
        local = partials(i, op)
        ds = partial_errors(tape, vals, errs, i, op, local, m)
        for child, p in local:
            got = pairs.get(child)
            if got is None:
                continue
            a_c, b_c = got
            d = ds.get(child, 0)
            inc_a = scaled(p, a_c) if p is not None else a_c
            inc_b = (scaled(p, b_c) if p is not None else b_c) + scaled(a_c, d)
            a_sum = inc_a if a_sum is None else a_sum + inc_a
            b_sum = inc_b if b_sum is None else b_sum + inc_b
        if a_sum is not None:
            pairs[i] = (a_sum, b_sum + a_sum)
    return pairs
