"""Per-element comparison rows, verdicts, and the per-dtype tolerance table.

An autograd value passes when

    |autograd - exact| <= rtol·M_i + atol,

element by element, where ``M_i`` is the rounding bound of that element
(:mod:`verifier.exact.magnitude`): a first-order running error bound of the
same computation in floating point, in units of the dtype's unit roundoff.
It is at least ``(|J|ᵀ|v|)_i`` — the sizes of the terms that flow into
element *i* — so an element whose exact value cancels to ~0 is judged against
the terms it cancels, and an element is never judged against another
element's size (no global scale: one large element cannot hide an error in a
small one). ``atol`` is an absolute floor per element (docs/numerics.md says
why it exists and why it is small).

A non-finite exact value, autograd value or allowance is never a pass: it is
its own outcome (``non_finite``) unless the case accepts it
(``accept: [non_finite]``; then equal infinities agree, as before).

Default tolerances come from each dtype's machine epsilon: ``rtol =
eps^(2/3)`` (float32: 1e-5; a safety factor of 10 to 3.6·10⁵ unit roundoffs
over the bound, for torch computing in another order or with other formulas
than the mirror) and ``atol = eps^(4/5)``, both rounded up.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd
import torch

from ..cases.case import Case, Tolerance
from .attribution import as_kinds, attribution_codes

EPSILON = {name: float(torch.finfo(getattr(torch, name)).eps)
           for name in ("float64", "float32", "float16", "bfloat16")}


#: The named per-dtype defaults: rtol = eps^(2/3) multiplies the element's rounding bound M_i,
#: atol = eps^(4/5) is an absolute floor per element (never scaled by another element), each
#: rounded up to one digit. float32's rtol is 1e-5 (≈ 170 u): M is a worst-case bound, up to
#: 45-400·|exact| in layer_norm's cancelling gradient, where eps^(2/3) let a factor 1.001 pass.
DEFAULT_TOLERANCES: dict[str, Tolerance] = {
    "float64": Tolerance(rtol=4e-11, atol=4e-13),    # eps 2.2e-16: eps^(2/3) 3.7e-11, eps^(4/5) 3.0e-13
    "float32": Tolerance(rtol=1e-5, atol=3e-6),      # eps 1.2e-7:  eps^(2/3) 2.4e-5 lowered to 1e-5 (see below), 2.9e-6
    "float16": Tolerance(rtol=1e-2, atol=4e-3),      # eps 9.8e-4:  9.8e-3, 3.9e-3
    "bfloat16": Tolerance(rtol=4e-2, atol=3e-2),     # eps 7.8e-3:  3.9e-2, 2.1e-2
}

#: How close finite differences are expected to come to the exact value. They
#: are only reported (never blamed on autograd); see finite_diff.py. Judged by
#: :func:`fd_within`, with the gradient's scale (unchanged: never loosened).
FD_TOLERANCE = Tolerance(rtol=1e-6, atol=1e-7)

#: What a case may accept with ``accept:`` (each outcome is a non-pass otherwise).
ACCEPTABLE = ("non_finite",)

DETAIL_COLUMNS = [
    "case", "dtype", "input", "index", "exact", "autograd", "finite_diff",
    "abs_err", "rel_err", "fd_abs_err", "fd_rel_err", "ag_fd_abs_err", "ag_fd_rel_err",
    "tolerance", "fd_method", "fd_step", "fd_error_estimate",
    "ulp_err", "fd_ulp_err", "fd_within_estimate", "attribution", "ok", "fd_ok",
]


def tolerance_for(case: Case, dtype: str) -> Tolerance:
    """The case's override for ``dtype``, else the named default."""
    return case.tolerance.get(dtype, DEFAULT_TOLERANCES[dtype])


def _rel(abs_err: np.ndarray, ref: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = abs_err / np.abs(ref)
    return np.where(abs_err == 0, 0.0, np.where(ref == 0, np.inf, rel))


def allowance(exact: np.ndarray, tol: Tolerance, magnitude: np.ndarray | None = None) -> np.ndarray:
    """``rtol·M + atol`` per element; without a rounding bound ``M`` is ``|exact|`` (tighter, never looser)."""
    exact = np.abs(np.asarray(exact, dtype=np.float64))
    scale = exact if magnitude is None else np.maximum(np.asarray(magnitude, dtype=np.float64), exact)
    with np.errstate(invalid="ignore", over="ignore"):
        return tol.rtol * scale + tol.atol


def within(got: np.ndarray, exact: np.ndarray, tol: Tolerance, magnitude: np.ndarray | None = None, *,
           accept_non_finite: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(passes, allowed error) element by element: ``|got - exact| <= rtol·M + atol``, all three finite.

    With ``accept_non_finite`` equal infinities agree and an infinite
    allowance passes finite values (the case said so).
    """
    got = np.asarray(got, dtype=np.float64)
    exact = np.asarray(exact, dtype=np.float64)
    allowed = allowance(exact, tol, magnitude)
    with np.errstate(invalid="ignore"):
        err = np.abs(got - exact)
        ok = err <= allowed
    finite = np.isfinite(got) & np.isfinite(exact) & np.isfinite(allowed)
    if accept_non_finite:
        ok = (ok & np.isfinite(got)) | (got == exact)
    else:
        ok = ok & finite
    return ok, allowed


def non_finite(got: np.ndarray, exact: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Where any of the three is inf or nan."""
    return ~(np.isfinite(got) & np.isfinite(exact) & np.isfinite(allowed))


def fd_within(got: np.ndarray, exact: np.ndarray, tol: Tolerance) -> tuple[np.ndarray, np.ndarray]:
    """The finite differences' rule, ``rtol·|exact| + atol·max(1, max|exact|)`` (FD_TOLERANCE; only reported)."""
    exact = np.asarray(exact, dtype=np.float64)
    scale = max(1.0, float(np.max(np.abs(exact)))) if exact.size else 1.0
    allowed = tol.rtol * np.abs(exact) + tol.atol * scale
    err = np.abs(np.asarray(got, dtype=np.float64) - exact)
    ok = (err <= allowed) & np.isfinite(got)
    ok |= np.asarray(got) == exact
    return ok, allowed


def scaled_ulps(abs_err: np.ndarray, allowed: np.ndarray, tol: Tolerance, dtype: str) -> np.ndarray:
    """An error in ulps of the allowance's scale: ``err / (eps·(M + atol/rtol))``.

    ``allowed = rtol·(M + atol/rtol)``, so this is ``err / allowed · rtol/eps``:
    a row passes when it is at most ``rtol/eps`` (1.8e5 float64, 84 float32,
    10 float16, 5 bfloat16 with the defaults), and an exact value of ~0 no
    longer divides by a subnormal's spacing.
    """
    unit = np.asarray(allowed, dtype=np.float64) * (EPSILON[dtype] / tol.rtol) if tol.rtol > 0 else \
        np.full(np.shape(allowed), EPSILON[dtype] * max(tol.atol, np.finfo(np.float64).tiny))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.asarray(abs_err, dtype=np.float64) / unit
    return np.where(np.asarray(abs_err) == 0, 0.0, out)


def element_rows(case: Case, dtype: str, exact: Mapping[str, np.ndarray],
                 autograd: Mapping[str, np.ndarray], fd, tol: Tolerance, *,
                 constant_columns: Mapping[str, object] | None = None,
                 magnitude: Mapping[str, np.ndarray] | None = None,
                 accept_non_finite: bool = False) -> pd.DataFrame:
    """One row per input × element: values, the three error pairs, verdicts.

    ``constant_columns`` are appended, one value for every row (the runner's
    kink columns when nothing is at a kink: cheaper than adding them later).
    """
    columns = element_columns(case, dtype, exact, autograd, fd, tol, magnitude=magnitude,
                              accept_non_finite=accept_non_finite)
    return pd.DataFrame({**columns, **(constant_columns or {})})


def element_columns(case: Case, dtype: str, exact: Mapping[str, np.ndarray],
                    autograd: Mapping[str, np.ndarray], fd, tol: Tolerance, *,
                    magnitude: Mapping[str, np.ndarray] | None = None,
                    accept_non_finite: bool = False) -> dict[str, object]:
    """:func:`element_rows`' columns before the frame is built: arrays, or one value for every row.

    Building a DataFrame costs more than most small cases' comparisons; the
    runner edits these columns (kinks) and builds the frame once. ``magnitude``
    is the exact side's rounding bound per input (``ExactResult.magnitude``);
    without it the allowance uses |exact| (tighter).
    """
    frames = []
    for name, ex in exact.items():
        ex = np.asarray(ex, dtype=np.float64)
        ag = np.asarray(autograd.get(name, np.full(ex.shape, np.nan)), dtype=np.float64)
        fdv = np.asarray(fd.values[name], dtype=np.float64) if fd is not None else np.full(ex.shape, np.nan)
        mag = None if magnitude is None or name not in magnitude else magnitude[name]
        ok, allowed = within(ag, ex, tol, mag, accept_non_finite=accept_non_finite)
        allowed = np.broadcast_to(allowed, ex.shape)
        fd_ok, _ = fd_within(fdv, ex, FD_TOLERANCE)
        with np.errstate(invalid="ignore"):        # inf - inf: the non_finite check reports those
            abs_err, fd_abs, agfd_abs = np.abs(ag - ex), np.abs(fdv - ex), np.abs(ag - fdv)
        est = _per_element(fd, "error_estimate", name, ex.shape, np.nan)
        sampled = _per_element(fd, "sampled", name, ex.shape, fd is not None).astype(bool)
        kind, within_est = attribution_codes(ok, fdv, ex, est, fd_ok, sampled)
        frames.append(({
            "case": case.name, "dtype": dtype, "input": name,
            "index": index_labels(ex.shape),
            "exact": ex.ravel(), "autograd": ag.ravel(), "finite_diff": fdv.ravel(),
            "abs_err": abs_err.ravel(), "rel_err": _rel(abs_err, ex).ravel(),
            "fd_abs_err": fd_abs.ravel(), "fd_rel_err": _rel(fd_abs, ex).ravel(),
            "ag_fd_abs_err": agfd_abs.ravel(), "ag_fd_rel_err": _rel(agfd_abs, fdv).ravel(),
            "tolerance": allowed.ravel(),
            "fd_method": _methods(fd, name, ex.shape),
            "fd_step": _per_element(fd, "steps", name, ex.shape, np.nan).ravel(),
            "fd_error_estimate": est.ravel(),
            "ulp_err": scaled_ulps(abs_err, allowed, tol, dtype).ravel(),
            "fd_ulp_err": scaled_ulps(fd_abs, allowed, tol, dtype).ravel(),
            "fd_within_estimate": within_est.ravel(), "attribution": kind,
            "ok": ok.ravel(), "fd_ok": fd_ok.ravel(),
        }, ex.size))
    if not frames:
        return {col: np.array([], dtype=object if col in _TEXT_COLUMNS else float) for col in DETAIL_COLUMNS}
    columns = _merge(frames)
    columns["attribution"] = as_kinds(columns["attribution"])
    return columns


_TEXT_COLUMNS = ("case", "dtype", "input", "index", "fd_method", "attribution")


def _merge(parts: list[tuple[dict, int]]) -> dict[str, object]:
    """One frame's columns from per-input column dicts of ``n`` rows each (scalars repeat).

    A DataFrame per input, ``concat`` and a column reindex cost ~3 ms per case
    whatever its size, the bulk of a small case's run; this builds one frame,
    and leaves scalar columns scalar (pandas repeats them cheaply; an object
    array of 10⁶ copies would cost time and memory).
    """
    columns = {}
    for col in DETAIL_COLUMNS:
        values = [cols[col] for cols, _ in parts]
        first = values[0]
        if len(values) == 1:
            columns[col] = first
        elif all(isinstance(v, list) for v in values):
            columns[col] = [x for v in values for x in v]
        elif all(np.ndim(v) == 0 for v in values) and all(v == first or (v != v and first != first)
                                                           for v in values):
            columns[col] = first
        elif all(isinstance(v, str) for v in values):
            columns[col] = [v for v, (_, n) in zip(values, parts) for _ in range(n)]
        else:
            columns[col] = np.concatenate([np.full(n, v) if np.ndim(v) == 0 else np.asarray(v).ravel()
                                           for v, (_, n) in zip(values, parts)])
    return columns


def index_labels(shape: tuple[int, ...]) -> list[str]:
    """``str(idx)`` for every index of ``shape`` in C order ("(0, 1)", "(3,)", "()").

    Built axis by axis from per-axis strings: ``str`` of 10⁶ tuples takes
    seconds, this a small fraction of that.
    """
    if not shape:
        return ["()"]
    if len(shape) == 1:
        return [f"({i},)" for i in range(shape[0])]
    labels = ["("]
    for axis, n in enumerate(shape):
        tail = ")" if axis == len(shape) - 1 else ", "
        parts = [f"{i}{tail}" for i in range(n)]
        labels = [p + q for p in labels for q in parts]
    return labels


def _methods(fd, name: str, shape: tuple[int, ...]):
    """The FD method per element, or one string when every element of the input used the same one."""
    if fd is None:
        return "none"
    single = getattr(fd, "single_method", {}).get(name)
    if single is not None:
        return single
    return _per_element(fd, "methods", name, shape, fd.method).ravel()


def _per_element(fd, attr: str, name: str, shape: tuple[int, ...], default) -> np.ndarray:
    """``fd.<attr>[name]`` broadcast to the gradient's shape, or ``default`` everywhere when absent."""
    table = getattr(fd, attr, None) if fd is not None else None
    if table and name in table:
        return np.broadcast_to(np.asarray(table[name]), shape)
    return np.full(shape, default, dtype=object if isinstance(default, str) else None)


def first_mismatches(rows: pd.DataFrame, limit: int = 5) -> str:
    """A short text listing the first failing elements and the mismatch count."""
    if bool(rows["ok"].all()):
        return ""           # the common case, without a boolean-indexed copy of the table
    bad = rows[~rows["ok"]]
    parts = [f"{r.input}{r.index}: exact {r.exact:.17g}, autograd {r.autograd:.17g}, "
             f"error {r.abs_err:.3g} > tolerance {r.tolerance:.3g}" for r in bad.head(limit).itertuples()]
    pct = 100.0 * len(bad) / len(rows)
    return f"mismatched elements: {len(bad)} / {len(rows)} ({pct:.0f}%); " + "; ".join(parts)


def non_finite_detail(columns: Mapping[str, object], what: str = "gradient") -> str:
    """'' when every exact, autograd and allowance value is finite; else which side is not, where, and what to do."""
    ex = np.asarray(columns["exact"], dtype=np.float64)
    ag = np.asarray(columns["autograd"], dtype=np.float64)
    allowed = np.asarray(columns["tolerance"], dtype=np.float64)
    bad = non_finite(ag, ex, allowed)
    if not bad.any():
        return ""
    inputs, index = columns.get("input"), columns.get("index")
    sides = []
    for label, arr in (("exact", ex), ("autograd", ag), ("allowance", allowed)):
        where = np.flatnonzero(~np.isfinite(arr))
        if where.size:
            k = int(where[0])
            at = f"{_at(inputs, k)}{_at(index, k)}" if inputs is not None else f"element {k}"
            sides.append(f"{label} is {arr[k]} at {at}" + (f" and {where.size - 1} more" if where.size > 1 else ""))
    return (f"non-finite {what} values at {int(bad.sum())} / {bad.size} elements ({'; '.join(sides)}): "
            "an overflow or a pole, so nothing there can be checked. Move the point into the dtype's range, "
            "or state `accept: [non_finite]` if the case means it")


def _at(column, k: int) -> str:
    if column is None:
        return ""
    if isinstance(column, str):
        return column
    return str(column[k])
