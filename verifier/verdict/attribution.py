"""Who is wrong at each gradient element — autograd, the finite difference, or nobody — and errors in ULPs.

The exact value is the reference (SymPy, 40 digits). For every element:

* ``autograd_wrong``: autograd is outside its tolerance of exact. That is
  the one verdict that fails a case, whatever the finite difference says.
* ``fd_inaccurate``: autograd agrees with exact, but the finite difference
  does not: it is outside the FD tolerance, or further from exact than its
  own error estimate claims (so the estimate was wrong), or not finite.
* ``all_agree``: exact, autograd and the finite difference agree (the FD
  within its tolerance and within its own error estimate).
* ``at_kink``: at a kink the kink detector found, autograd is right there
  (in the generalized gradient, or torch's convention where the verifier
  does not decide membership; ``verifier/verdict/kinks.py`` judges it), and
  the finite difference lands where a difference across a kink must, the
  midpoint of the one-sided derivatives (:func:`at_kinks`).
* ``fd_not_sampled``: autograd agrees with exact; no finite difference was
  taken here (``max_elements`` sampled other elements).

ULP distances are measured in the *case's* dtype: |got - exact| divided by
the spacing of that dtype's numbers at |exact| (``ulp``), so 0.5 means
"correctly rounded" and float32's 1 ulp is float32's, not float64's. At an
exact zero the spacing is the dtype's smallest subnormal, so any error is a
huge number of ulps there: judge such elements by the absolute error.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

KINDS = ("autograd_wrong", "fd_inaccurate", "all_agree", "at_kink", "fd_not_sampled")
#: The ``attribution`` column's dtype: one small integer per element, whatever the table's size.
KIND_DTYPE = pd.CategoricalDtype(KINDS)
_CODE = {kind: i for i, kind in enumerate(KINDS)}

# significand bits (with the implicit one) and the smallest normal exponent, per dtype
_BITS = {"float64": (53, -1022), "float32": (24, -126), "float16": (11, -14), "bfloat16": (8, -126)}


def ulp(values: np.ndarray, dtype: str) -> np.ndarray:
    """The spacing of ``dtype``'s numbers at |values| (its smallest subnormal at and below the normal range)."""
    digits, min_exp = _BITS[dtype]
    values = np.abs(np.asarray(values, dtype=np.float64))
    _, exponent = np.frexp(values)            # values = m·2^e with m in [0.5, 1): the binade is 2^(e-1)
    binade = np.where(values == 0, min_exp, np.maximum(exponent - 1, min_exp))
    spacing = np.ldexp(1.0, binade - (digits - 1))
    return np.where(np.isfinite(values), spacing, np.nan)


def ulp_distance(got: np.ndarray, exact: np.ndarray, dtype: str) -> np.ndarray:
    """|got - exact| in ulps of ``dtype`` at the exact value (0 where they are equal, infinities included)."""
    got = np.asarray(got, dtype=np.float64)
    exact = np.asarray(exact, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        dist = np.abs(got - exact) / ulp(exact, dtype)
    return np.where(got == exact, 0.0, dist)


def attribute(ok: np.ndarray, finite_diff: np.ndarray, exact: np.ndarray, estimate: np.ndarray,
              fd_ok: np.ndarray, sampled: np.ndarray) -> tuple[pd.Categorical, np.ndarray]:
    """(kind per element, flattened, FD within its own estimate) from the verdicts and values, all one shape.

    The kinds come back as a ``pandas.Categorical`` over ``KINDS``: a
    million-element case should not pay for a million Python strings.
    """
    codes, within_estimate = attribution_codes(ok, finite_diff, exact, estimate, fd_ok, sampled)
    return as_kinds(codes), within_estimate


def attribution_codes(ok, finite_diff, exact, estimate, fd_ok, sampled) -> tuple[np.ndarray, np.ndarray]:
    """:func:`attribute` with the kinds as int8 codes into ``KINDS`` (flattened)."""
    fd = np.asarray(finite_diff, dtype=np.float64)
    exact = np.asarray(exact, dtype=np.float64)
    estimate = np.asarray(estimate, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        within_estimate = np.isfinite(fd) & (np.abs(fd - exact) <= estimate)
    within_estimate |= np.isfinite(fd) & (fd == exact)
    kind = np.where(~np.asarray(ok, dtype=bool), _CODE["autograd_wrong"],
                    np.where(~np.asarray(sampled, dtype=bool), _CODE["fd_not_sampled"],
                             np.where(within_estimate & np.asarray(fd_ok, dtype=bool), _CODE["all_agree"],
                                      _CODE["fd_inaccurate"])))
    return np.ravel(kind).astype(np.int8), within_estimate


def as_kinds(codes: np.ndarray) -> pd.Categorical:
    """int8 codes into ``KINDS`` as the ``attribution`` column (codes made here, so not re-validated)."""
    return pd.Categorical.from_codes(np.asarray(codes, dtype=np.int8), dtype=KIND_DTYPE, validate=False)


def at_kinks(rows):
    """Re-attribute the elements the kink detector examined, by its verdict on the finite difference.

    There the function is not smooth, so the FD's own error estimate (which
    assumes an error series in powers of the step) does not apply; the
    detector judged ``fd_ok`` instead: against the midpoint of the one-sided
    derivatives at a kink (``at_kink``), with the curvature jump allowed for
    at a point that is only once differentiable (``all_agree``).
    """
    if rows.empty or "kink_rule" not in rows:
        return rows
    return rows.assign(attribution=kink_attribution({c: rows[c].to_numpy() for c in _READS}, len(rows)))


_READS = ("kink_rule", "ok", "attribution", "fd_ok", "kink")


def full_column(value, n: int):
    """A detail column as ``n`` values: an array or Categorical as it is, one value (or a list) as an array."""
    if isinstance(value, pd.Categorical):
        return value
    if isinstance(value, (list, str)) or np.ndim(value) == 0:
        return np.asarray(value if isinstance(value, list) else [value] * n, dtype=object if isinstance(
            value, (list, str)) else None)
    return np.asarray(value)


def kink_attribution(columns, n: int) -> pd.Categorical:
    """:func:`at_kinks`' new ``attribution`` column from the detail columns (arrays of ``n``, or one value)."""
    def full(name):
        return full_column(columns[name], n)

    kinds = full("attribution")
    codes = kinds.codes if isinstance(kinds, pd.Categorical) else pd.Categorical(kinds, dtype=KIND_DTYPE).codes
    ok = np.asarray(full("ok"), dtype=bool)
    # the kink verdict may have rejudged ``ok`` there (the generalized gradient): a wrong value is autograd's
    codes = np.where(~ok, _CODE["autograd_wrong"], codes)
    examined = (full("kink_rule") != "") & ok & (codes != _CODE["fd_not_sampled"])
    if not examined.any():
        return as_kinds(codes)
    new = np.where(~full("fd_ok").astype(bool), _CODE["fd_inaccurate"],
                   np.where(full("kink").astype(bool), _CODE["at_kink"], _CODE["all_agree"]))
    return as_kinds(np.where(examined, new, codes))
