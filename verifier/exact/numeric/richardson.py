"""Richardson-extrapolated central differences in high-precision arithmetic, with an error estimate.

``D(h) = (f(x + h u) - f(x - h u)) / 2h`` has the error expansion ``c₁h² + c₂h⁴ + …`` for a smooth
``f``; the Neville table ``T[k][j] = T[k][j-1] + (T[k][j-1] - T[k-1][j-1]) / (4^j - 1)`` over
``h_k = h₀/2^k`` removes one term per column. At ``DIGITS`` = 60 digits and ``h₀ = 1e-6`` the
rounding error of a difference is about 1e-60/1e-6 = 1e-54 and four levels leave a truncation
error of order h⁸ ≈ 1e-48 (times the function's eighth derivative): far below float64's 1e-16.
The estimate of each derivative's error is the change between the last two diagonal entries
(the classic, conservative Richardson estimate), plus the rounding floor.
"""

from __future__ import annotations

from typing import Callable

import mpmath

DIGITS = 60
H0 = mpmath.mpf("1e-6")
LEVELS = 4


def derivative(f: Callable[[mpmath.mpf], list], *, h0=None, levels: int | None = None) -> tuple[list, list]:
    """(d/dt f(t) at t = 0, error estimate) per element of the vector ``f(t)``; call within ``workdps``.

    ``h0``/``levels`` default to the module's ``H0``/``LEVELS`` (read at each call).
    """
    h0 = mpmath.mpf(H0 if h0 is None else h0)
    levels = LEVELS if levels is None else levels
    table: list[list[list]] = []
    for k in range(levels):
        h = h0 / 2 ** k
        plus, minus = f(h), f(-h)
        row = [[(p - m) / (2 * h) for p, m in zip(plus, minus)]]
        for j in range(1, k + 1):
            factor = mpmath.mpf(4) ** j - 1
            row.append([a + (a - b) / factor for a, b in zip(row[j - 1], table[k - 1][j - 1])])
        table.append(row)
    best, previous = table[-1][-1], table[-2][-1]      # the last two diagonal entries
    floor = mpmath.mpf(10) ** (-mpmath.mp.dps + 2) / (h0 / 2 ** (levels - 1))
    errors = [abs(a - b) + floor * (1 + abs(a)) for a, b in zip(best, previous)]
    return best, errors
