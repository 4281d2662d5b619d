"""Difference stencils that stay inside an input's domain, and Richardson extrapolation with error estimates.

A difference quotient with step h has an error series in powers of h:

    central    D(h) = (g(x+h) - g(x-h)) / 2h  = g' + c2 h² + c4 h⁴ + ...
    one-sided  D(h) = s·(g(x+s·h) - g(x)) / h = g' + c1 h  + c2 h² + ...

Evaluated at the steps h, h/2, h/4, ... (``LEVELS`` of them), the leading
terms cancel in the Richardson tableau

    R[k][m] = R[k][m-1] + (R[k][m-1] - R[k-1][m-1]) / (2^p_m - 1).

Every entry is a candidate. Its error estimate is the size of the last
correction (how much the value still moved; as large or larger than the
error once the series converges) plus the rounding the tableau carries: each
g value is off by about ``NOISE_ULPS``·eps·Σ|v⊙f|, divided by the step and
amplified by the tableau's coefficients. Per element the candidate with the
smallest estimate wins: that is the adaptive part, it picks the step and the
order that suit the function at that point.

Domains: the largest offset of a stencil is kept at most ``DOMAIN_FRACTION``
of the way to the nearest declared bound, so no stencil point leaves the
domain (and the series converges: a singularity at the bound is 1/fraction
steps away). Where that shrinks the central step, a one-sided stencil that
points away from the near bound is tried too, and the better one is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

EPS64 = float(np.finfo(np.float64).eps)

#: Largest central step, relative to max(1, |x|), rounded to a power of two.
#: The finest of the LEVELS steps is BASE_STEP / 2**(LEVELS-1).
BASE_STEP = 2.0 ** -5
#: Steps per central stencil (two points each).
LEVELS = 4
#: Steps per one-sided stencil (one point each, plus g(x)); one-sided needs
#: more, because odd powers do not cancel by symmetry.
ONE_SIDED_LEVELS = 6
#: Elements whose best estimate is still this uncertain (relative to max(|value|, 1e-2·the input's
#: largest value)) get a second round of stencils REFINE_FACTOR smaller: a kink (relu, abs, max)
#: within reach of the first steps spoils every candidate, while steps that stop short of it do not.
REFINE_RTOL = 1e-7
REFINE_FACTOR = 2.0 ** -9
#: A stencil reaches at most this fraction of the distance to a domain bound.
DOMAIN_FRACTION = 0.25
#: Rounding of one g evaluation, in units of eps·Σ|v⊙f|.
NOISE_ULPS = 4.0
#: The smallest error an estimate claims, in units of eps·|value|.
FLOOR_ULPS = 2.0

#: Method names; per-element arrays hold their index (an int8), not the string.
METHODS = ("failed", "central-richardson", "bounded-central-richardson", "one-sided-richardson", "complex-step")
FAILED, CENTRAL, BOUNDED, ONE_SIDED, COMPLEX = range(len(METHODS))


@dataclass
class Stencil:
    """Offsets around each element (rows) and how to turn the g values into quotients."""

    kind: str                  # "central" (central or bounded central) | "one-sided"
    codes: np.ndarray          # (n,) the method each row reports (an index into METHODS)
    steps: np.ndarray          # (n, K) the step h_k of each level, largest first
    offsets: np.ndarray        # (n, P) where g is evaluated, relative to x (actual float64 offsets)
    direction: np.ndarray      # (n,) +1/-1: one-sided direction (1 for central)
    powers: tuple[int, ...]    # the error-series powers the tableau cancels, in order

    def quotients(self, g: np.ndarray, g0) -> np.ndarray:
        """(n, K) difference quotients from the (n, P) g values at ``offsets`` (g0 = g(x), or one per row)."""
        if self.kind == "one-sided":
            return self.direction[:, None] * (g - _column(g0)) / np.abs(self.offsets)
        plus, minus = g[:, 0::2], g[:, 1::2]
        return (plus - minus) / (self.offsets[:, 0::2] - self.offsets[:, 1::2])

    def rounding(self, noise) -> np.ndarray:
        """(n, K) rounding in each quotient, for g values off by ``noise`` each (a number, or one per row)."""
        return (2.0 if self.kind == "one-sided" else 1.0) * _column(noise) / self.steps


def _column(value):
    """A per-row array as an (n, 1) column; a number as it is."""
    value = np.asarray(value, dtype=np.float64)
    return value[:, None] if value.ndim else value


def _pow2_floor(v: np.ndarray) -> np.ndarray:
    """The largest power of two <= v (v > 0): steps that add to x with as little rounding as possible."""
    with np.errstate(divide="ignore"):
        return np.exp2(np.floor(np.log2(v)))


def _actual(x: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The offsets as float64 really applies them: (x + o) - x."""
    return (x[:, None] + offsets) - x[:, None]


def plan(x: np.ndarray, domain: tuple[float, float] | None, *, base: float = BASE_STEP,
         rows: np.ndarray | None = None) -> list[Stencil]:
    """Stencils for the elements ``x`` (flat float64): one or two candidates per element, aligned by row.

    The first stencil covers every element (central, or bounded central near a
    bound); the second, present only when some element sits near a bound,
    is one-sided. Rows a stencil does not cover (not near a bound, or not in
    ``rows`` when given) are all-NaN: they are not evaluated and never win.
    ``base`` is the largest step relative to max(1, |x|).
    """
    x = np.asarray(x, dtype=np.float64)
    h0 = _pow2_floor(base * np.maximum(1.0, np.abs(x)))
    lo, hi = domain if domain is not None else (-np.inf, np.inf)
    below, above = x - lo, hi - x                   # distances to the bounds (inf when unbounded)
    room = DOMAIN_FRACTION * np.minimum(below, above)
    near = room < h0
    central_h0 = np.where(near, _pow2_floor(np.where(near, room, 1.0)), h0)
    levels = 2.0 ** -np.arange(LEVELS)
    steps = central_h0[:, None] * levels
    offsets = np.empty((len(x), 2 * LEVELS))
    offsets[:, 0::2], offsets[:, 1::2] = steps, -steps
    codes = np.where(near, BOUNDED, CENTRAL).astype(np.int8)
    central = Stencil("central", codes, steps, _actual(x, offsets), np.ones(len(x)),
                      tuple(range(2, 2 * LEVELS, 2)))
    if rows is not None:
        central.offsets[~rows] = np.nan
        near = near & rows
    if not near.any():
        return [central]
    # One-sided, away from the nearer bound, as far as the far side allows.
    direction = np.where(below <= above, 1.0, -1.0)
    far_room = DOMAIN_FRACTION * np.maximum(below, above)
    one_h0 = np.minimum(h0, _pow2_floor(np.where(np.isfinite(far_room), far_room, 1.0)))
    one_steps = one_h0[:, None] * 2.0 ** -np.arange(ONE_SIDED_LEVELS)
    one_offsets = _actual(x, direction[:, None] * one_steps)
    one_offsets[~near] = np.nan                     # only near-bound elements use it
    one = Stencil("one-sided", np.full(len(x), ONE_SIDED, dtype=np.int8), one_steps, one_offsets,
                  direction, tuple(range(1, ONE_SIDED_LEVELS)))
    return [central, one]


def extrapolate(quotients: np.ndarray, rounding: np.ndarray,
                powers: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Richardson-extrapolate (n, K) quotients at steps h·2^-k: (best value, its error estimate, its step index).

    Non-finite quotients (a stencil point outside where the function is
    defined) poison only the tableau entries built from them.
    """
    n, levels = quotients.shape
    best = np.full(n, np.nan)
    best_err = np.full(n, np.inf)
    best_level = np.zeros(n, dtype=int)
    col, rho = quotients.copy(), rounding.copy()       # column m of the tableau, rows k >= m
    prev_col = None
    for m in range(levels):
        if m > 0:
            factor = 2.0 ** powers[m - 1]
            new = col[:, 1:] + (col[:, 1:] - col[:, :-1]) / (factor - 1)
            rho = (factor * rho[:, 1:] + rho[:, :-1]) / (factor - 1)
            prev_col, col = col[:, 1:], new
        for j in range(col.shape[1]):
            k = j + m
            if m == 0 and k == 0:
                continue                              # the coarsest plain quotient has nothing to compare with
            err = np.zeros(n)
            if prev_col is not None:
                err = np.abs(col[:, j] - prev_col[:, j])                    # the last correction
            if j > 0:
                err = np.maximum(err, np.abs(col[:, j] - col[:, j - 1]))    # same order, next coarser step
            err = err + rho[:, j]
            value = col[:, j]
            err = np.where(np.isfinite(err) & np.isfinite(value), err, np.inf)
            better = err < best_err
            best = np.where(better, value, best)
            best_err = np.where(better, err, best_err)
            best_level = np.where(better, k, best_level)
    return best, best_err, best_level


def estimate(x: np.ndarray, domain, evaluate: Callable[[Stencil, np.ndarray], np.ndarray], g0,
             noise: Callable[[np.ndarray], object], measured: Callable[[np.ndarray], np.ndarray] | None = None):
    """The best Richardson estimate per element over the stencils :func:`plan` proposes.

    ``evaluate(stencil, rows)`` returns the (n, P) g values at the stencil's
    offsets for the rows marked True (NaN elsewhere); ``g0`` is g at x (a
    number, or one per row); ``noise(slopes)`` gives the rounding of one g
    value (a number or one per row) from the finest plain quotients.
    ``measured(best)``, when given, returns a measured rounding per row
    (using the best derivative so far); where it exceeds ``noise`` the
    estimates are redone with it.
    Returns (value, error estimate, step, method code) per element.
    """
    quotients = []
    rounding = None

    def run(stencils):
        nonlocal rounding
        for stencil in stencils:
            rows = np.isfinite(stencil.offsets).all(axis=1)
            if not rows.any():
                continue
            q = stencil.quotients(evaluate(stencil, rows), g0)
            quotients.append((stencil, q))
            if rounding is None:
                rounding = noise(q[:, -1])

    run(plan(x, domain))
    found = _select(len(x), quotients, rounding)
    value, err = found[0], found[1]
    scale = 1e-2 * float(np.nanmax(np.abs(value), initial=0.0))
    refine = ~(err <= REFINE_RTOL * np.maximum(np.abs(value), scale))
    if refine.any():
        run(plan(x, domain, base=BASE_STEP * REFINE_FACTOR, rows=refine))
        found = _select(len(x), quotients, rounding)
    if measured is not None and quotients:
        rounding = np.maximum(rounding, measured(found[0]))
        found = _select(len(x), quotients, rounding)
    best, best_err, best_step, codes = found
    # no estimate is better than the rounding of the value itself (and of the exact value it is compared with)
    best_err = np.maximum(best_err, FLOOR_ULPS * EPS64 * np.abs(best))
    return best, np.where(np.isfinite(best_err), best_err, np.nan), best_step, codes


def _select(n: int, quotients: list, rounding):
    """Per element, the tableau candidate with the smallest error estimate over all stencils."""
    best, best_err = np.full(n, np.nan), np.full(n, np.inf)
    best_step, codes = np.full(n, np.nan), np.full(n, FAILED, dtype=np.int8)
    for stencil, q in quotients:
        value, err, level = extrapolate(q, stencil.rounding(rounding), stencil.powers)
        better = err < best_err
        best = np.where(better, value, best)
        best_err = np.where(better, err, best_err)
        best_step = np.where(better, stencil.steps[np.arange(n), level], best_step)
        codes = np.where(better, stencil.codes, codes)
    return best, best_err, best_step, codes
