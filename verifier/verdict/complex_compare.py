"""Detail rows of a complex case: one row per complex element, its error ``|autograd − exact|``.

The allowance is the real rule of :mod:`verifier.verdict.compare` with the
epsilon of the parts' real dtype (complex64 ↔ float32, complex128 ↔
float64): ``|autograd − exact| ≤ rtol·M_k + atol`` per element, ``M_k`` the
sizes of the terms flowing into element k (complex_exact.exact_complex).
The error of a complex element is the modulus of the complex difference, so
a wrong imaginary part fails as surely as a wrong real part.

``exact``, ``autograd`` and ``finite_diff`` hold the real parts; the
``*_imag`` columns the imaginary parts (0 for a real input), so every column
stays numeric for the CSV, HTML, ULP and heat-map tables.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..cases.case import Case, Tolerance
from .attribution import as_kinds, attribution_codes
from .compare import FD_TOLERANCE, allowance, index_labels, scaled_ulps

IMAG_COLUMNS = ["exact_imag", "autograd_imag", "finite_diff_imag"]


def complex_within(got, exact, tol: Tolerance, magnitude=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(passes, allowed, |got − exact|) per element of complex (or real) arrays; non-finite never passes."""
    got, exact = np.asarray(got, dtype=np.complex128), np.asarray(exact, dtype=np.complex128)
    allowed = allowance(np.abs(exact), tol, magnitude)
    with np.errstate(invalid="ignore"):
        err = np.abs(got - exact)
        ok = (err <= allowed) & np.isfinite(got) & np.isfinite(exact) & np.isfinite(allowed)
    return ok, allowed, err


def _rel(err: np.ndarray, ref: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(err == 0, 0.0, np.where(np.abs(ref) == 0, np.inf, err / np.abs(ref)))


def complex_columns(case: Case, dtype: str, tol_dtype: str, exact: Mapping[str, np.ndarray],
                    autograd: Mapping[str, np.ndarray], fd, tol: Tolerance,
                    magnitude: Mapping[str, np.ndarray]) -> dict[str, object]:
    """The detail columns (compare.DETAIL_COLUMNS plus IMAG_COLUMNS) of a complex case."""
    parts = {k: [] for k in ("input", "index", "ex", "ag", "fd", "abs", "fd_abs", "agfd", "allowed", "ok",
                             "fd_ok", "est", "step", "kind", "within")}
    for name, ex in exact.items():
        ex = np.asarray(ex, dtype=np.complex128)
        ag = np.asarray(autograd.get(name, np.full(ex.shape, np.nan)), dtype=np.complex128)
        fdv = np.asarray(fd.values[name], dtype=np.complex128) if fd is not None else np.full(ex.shape, np.nan)
        ok, allowed, err = complex_within(ag, ex, tol, magnitude.get(name))
        scale = max(1.0, float(np.max(np.abs(ex)))) if ex.size else 1.0
        with np.errstate(invalid="ignore"):
            fd_abs, agfd = np.abs(fdv - ex), np.abs(ag - fdv)
        fd_ok = (fd_abs <= FD_TOLERANCE.rtol * np.abs(ex) + FD_TOLERANCE.atol * scale) & np.isfinite(fdv)
        est = np.asarray(fd.error_estimate[name]) if fd is not None else np.full(ex.shape, np.nan)
        # attribution on the moduli: "FD within its estimate" is |fd − exact| ≤ estimate
        kind, within_est = attribution_codes(ok, fd_abs, np.zeros(ex.shape), est, fd_ok, np.ones(ex.shape, bool))
        for key, arr in (("ex", ex), ("ag", ag), ("fd", fdv), ("abs", err), ("fd_abs", fd_abs), ("agfd", agfd),
                         ("allowed", np.broadcast_to(allowed, ex.shape)), ("ok", ok), ("fd_ok", fd_ok),
                         ("est", est), ("step", np.asarray(fd.steps[name]) if fd is not None else
                                        np.full(ex.shape, np.nan))):
            parts[key].append(np.ravel(arr))
        parts["kind"].append(kind)
        parts["within"].append(np.ravel(within_est))
        parts["input"] += [name] * ex.size
        parts["index"] += index_labels(ex.shape)

    def cat(key, dt=None):
        return np.concatenate(parts[key]).astype(dt) if parts[key] else np.array([], dtype=dt or float)

    ex, ag, fdv = cat("ex", np.complex128), cat("ag", np.complex128), cat("fd", np.complex128)
    err, fd_abs, agfd, allowed = cat("abs", float), cat("fd_abs", float), cat("agfd", float), cat("allowed", float)
    return {
        "case": case.name, "dtype": dtype, "input": parts["input"], "index": parts["index"],
        "exact": ex.real, "autograd": ag.real, "finite_diff": fdv.real,
        "exact_imag": ex.imag, "autograd_imag": ag.imag, "finite_diff_imag": fdv.imag,
        "abs_err": err, "rel_err": _rel(err, ex),
        "fd_abs_err": fd_abs, "fd_rel_err": _rel(fd_abs, ex), "ag_fd_abs_err": agfd, "ag_fd_rel_err": _rel(agfd, fdv),
        "tolerance": allowed, "fd_method": fd.method if fd is not None else "none", "fd_step": cat("step", float),
        "fd_error_estimate": cat("est", float),
        "ulp_err": scaled_ulps(err, allowed, tol, tol_dtype), "fd_ulp_err": scaled_ulps(fd_abs, allowed, tol, tol_dtype),
        "fd_within_estimate": cat("within", bool), "attribution": as_kinds(cat("kind", np.int8)),
        "ok": cat("ok", bool), "fd_ok": cat("fd_ok", bool),
    }


def complex_mismatches(columns: Mapping[str, object], limit: int = 5) -> str:
    """The first failing complex elements, with both parts of each side."""
    ok = np.asarray(columns["ok"], dtype=bool)
    bad = np.flatnonzero(~ok)
    if not bad.size:
        return ""
    texts = []
    for k in bad[:limit]:
        ex = complex(columns["exact"][k], columns["exact_imag"][k])
        ag = complex(columns["autograd"][k], columns["autograd_imag"][k])
        texts.append(f"{columns['input'][k]}{columns['index'][k]}: exact {ex:.17g}, autograd {ag:.17g}, "
                     f"|error| {columns['abs_err'][k]:.3g} > tolerance {columns['tolerance'][k]:.3g}")
    return (f"mismatched elements: {bad.size} / {ok.size} ({100.0 * bad.size / ok.size:.0f}%); "
            + "; ".join(texts))
