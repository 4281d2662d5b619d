"""Rounding bounds (:mod:`verifier.exact.magnitude`) of the tape's exact values, computed next to them.

The rules are :mod:`verifier.exact.magnitude`'s; this module runs them over a
tape evaluated by :mod:`verifier.exact.sweep`. A bound needs a few digits, not
40: it runs in Python floats (the 40-digit run cost 4-14x the exact side), and
again in mpmath only when a float result overflows (softmax's exp(1000) in
the mirror) — never a looser bound.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import mpmath

from . import magnitude
from .sweep import Poison, _needed, local_partials
from .tape import Tape


def gradient_bounds(tape: Tape, vals: list, seeds: Mapping[int, object], active: list[bool] | None = None,
           upto: int | None = None) -> tuple[list, list]:
    """(per-node forward error bounds ``E``, per-leaf bounds ``M`` of the sweep seeded with ``|v|``).

    See :mod:`verifier.exact.magnitude`: ``M`` is in units of the dtype's
    unit roundoff; ``M ≥ |adjoint|`` at every leaf. A bound needs a few
    digits, not 40: it runs in Python floats, and again in mpmath only when
    a float overflows (softmax's exp(1000) in the mirror).
    """
    top = max((i for i in seeds), default=-1)

    def run(values, part, m):
        errs = magnitude.forward_errors(tape, values, part, upto)
        return errs, magnitude.sweep_bounds(tape, values, errs, {r: abs(float(w)) if m is magnitude.FLOATS
                                                                  else abs(w) for r, w in seeds.items()},
                                            part, m, top, active)

    return _in_floats(tape, vals, run, lambda out: [out[0][r] for r in seeds] + list(out[1]))


def _in_floats(tape: Tape, vals: list, run, results):
    """``run(values, partials, namespace)`` over floats; over mpmath when a float result is not finite."""
    fvals = [_float(v) for v in vals]
    try:
        out = run(fvals, lambda i, op: _float_partials(tape, vals, fvals, i, op), magnitude.FLOATS)
        if all(r is not None and math.isfinite(r) for r in results(out)):
            return out
    except (OverflowError, ZeroDivisionError, ValueError):
        pass
    return run(vals, lambda i, op: local_partials(tape, vals, i, op), mpmath)


def _float(v):
    if isinstance(v, bool) or v is None or isinstance(v, Poison):
        return v
    if isinstance(v, mpmath.mpc):
        v = v.real
    return float(v)


def _float_partials(tape: Tape, vals: list, fvals: list, i: int, op: int) -> list:
    """:func:`~verifier.exact.sweep.local_partials` as floats (two-factor products from the float values)."""
    return [(c, None if p is None else _float(p)) for c, p in local_partials(tape, vals, i, op, fvals)]


def tangent_bound(tape: Tape, vals: list, leaf_tangents: Sequence, roots: Sequence[int]) -> list:
    """The rounding bound ``M`` (see :mod:`verifier.exact.magnitude`) of each root's J·u, leaves seeded with |u|."""
    needed = _needed(tape, vals, roots)

    def run(values, part, m):
        errs = magnitude.forward_errors(tape, values, part, (max(needed) + 1) if needed else 0)
        leaves = [None if t is None else (float(t) if m is magnitude.FLOATS else t) for t in leaf_tangents]
        pairs = magnitude.tangent_bounds(tape, values, errs, leaves, part, m, needed)
        return [pairs[r][1] if r in pairs else 0.0 for r in roots]

    return _in_floats(tape, vals, run, lambda out: out)
