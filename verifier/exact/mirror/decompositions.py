"""Decompositions without a closed form over symbols, evaluated numerically at high precision.

eigvalsh, eigh, svdvals, svd, qr and matrix_exp have no usable SymPy expression beyond 2x2. Their
mirrors take *numbers* (an object array of SymPy numbers, as the numeric-exact route
:mod:`verifier.exact.numeric` feeds them at 60 digits) and compute with mpmath at the working
precision; given symbols they raise :class:`NumericOnly`, which sends the case to that route.

Definitions (real input, torch's conventions):

* eigvalsh(A) past 2x2 (spectral.py keeps the closed form up to 2x2): the eigenvalues of the
  symmetric matrix built from A's lower triangle (UPLO='L', or the upper with 'U'), ascending. eigh(A): its orthonormal eigenvectors Q (columns, in that order): ``A = Q diag(λ) Qᵀ``.
* svdvals(A): the singular values, descending. svd(A, full_matrices=False): U of ``A = U diag(σ) Vᵀ``.
* qr(A) (mode 'reduced'): Q with orthonormal columns of ``A = Q R``, R upper triangular.
* matrix_exp(A) = Σ_k A^k / k!.

Gauge: eigenvector and singular-vector signs (and QR's column signs) are not functions of A; torch
and mpmath may pick differently. Inside :func:`gauge`, every such output has column signs flipped
by a seeded pattern, so the route can check that the case's output does not depend on them.
At a repeated eigenvalue or singular value (or a zero singular value for svd/svdvals) the
derivative is not defined: the mirror refuses the point, naming the gap.
"""

from __future__ import annotations

import contextlib
import contextvars

import mpmath
import numpy as np
import sympy
import torch

from verifier.errors import RefusedPoint, SymbolicError

from ._arrays import as_obj, sym_number, unsupported
from ._table import register

#: Relative gap (to the matrix's scale) below which two eigenvalues/singular values count as repeated.
GAP = 1e-6

_GAUGE: contextvars.ContextVar = contextvars.ContextVar("gauge", default=None)
_NOTES: contextvars.ContextVar = contextvars.ContextVar("notes", default=None)

#: Invariants to name when a case's output depends on a gauge.
INVARIANTS = {
    "eigh": "eigenvalues (torch.linalg.eigvalsh(A)), |Q| (torch.linalg.eigh(A).abs()) or a projector q_k q_kᵀ",
    "svd": "singular values (torch.linalg.svdvals(A)), |U| (torch.linalg.svd(A, full_matrices=False).abs()) "
           "or U Uᵀ",
    "qr": "|Q| (torch.linalg.qr(A).abs()) or the projector Q Qᵀ",
    "eigvals": "a symmetric function of the eigenvalues (their order is LAPACK's), e.g. "
               "(torch.linalg.eigvals(A) ** 3).sum().real or torch.linalg.eigvals(A).abs().sum()",
    "eig": "a function of |V| symmetric in the columns (order and phases are gauges), e.g. "
           "(torch.linalg.eig(A).abs() ** 4).sum()",
}


class NumericOnly(SymbolicError):
    """A decomposition met symbols: the case belongs on the numeric-exact route."""


@contextlib.contextmanager
def gauge(flip: tuple[str, int] | None):
    """Within: the decomposition whose :func:`gauge_key` is ``flip[0]`` has column ``flip[1]`` negated."""
    token = _GAUGE.set(flip)
    try:
        yield
    finally:
        _GAUGE.reset(token)


@contextlib.contextmanager
def notes():
    """Within: each decomposition records (name, condition, dimension, gauge kind) in the yielded list,
    and each gauge-carrying one also ("gauge", its gauge_key, its number of columns)."""
    seen: list = []
    token = _NOTES.set(seen)
    try:
        yield seen
    finally:
        _NOTES.reset(token)


def recording() -> bool:
    """Whether notes are being taken (the route evaluates the point itself, not a Richardson step)."""
    return _NOTES.get() is not None


def _note(name: str, condition, n: int, gauge_kind: str | None) -> None:
    seen = _NOTES.get()
    if seen is not None:
        seen.append((name, float(condition), n, gauge_kind))


def _matrix(name: str, a) -> mpmath.matrix:
    a = as_obj(a)
    if a.ndim != 2:
        raise unsupported(f"{name}: only a single 2-d matrix is supported on the numeric-exact route, "
                          f"got shape {list(a.shape)}")
    if a.size == 0:
        raise unsupported(f"{name}: an empty matrix has nothing to decompose")
    if not all(sym_number(e).is_number for e in a.flat):
        raise NumericOnly(f"{name} has no closed form over symbols",
                          hint="It runs on the numeric-exact route (docs/numeric-exact.md).")
    return mpmath.matrix([[to_mpf(e) for e in row] for row in a])


def to_mpf(e) -> mpmath.mpf:
    """A number (or an unevaluated expression of numbers, such as matmul's sums) at the working precision."""
    value = sym_number(e).evalf(mpmath.mp.dps)
    if not value.is_real or not value.is_finite:
        raise SymbolicError(f"a decomposition's input is {value}, not a finite real number",
                            hint="Choose a point where the function is finite.")
    return mpmath.mpf(value._to_mpmath(mpmath.mp.prec))


def _out(m: mpmath.matrix, rows: int, cols: int | None = None) -> np.ndarray:
    dps = mpmath.mp.dps
    if cols is None:
        return np.array([sympy.Float(m[i], dps) for i in range(rows)], dtype=object)
    out = np.empty((rows, cols), dtype=object)
    for i in range(rows):
        for j in range(cols):
            out[i, j] = sympy.Float(m[i, j], dps)
    return out


def gauge_key(name: str, of: mpmath.matrix) -> str:
    """Which decomposition of which matrix: the name and the input's digits (the same matrix twice: the same key)."""
    return name + ":" + ",".join(mpmath.nstr(of[i, j], 30) for i in range(of.rows) for j in range(of.cols))


def _flip_columns(q: mpmath.matrix, name: str, of: mpmath.matrix) -> mpmath.matrix:
    """q with column ``col`` negated when the gauge is ``(key, col)`` for this decomposition of this matrix.

    Each single-column flip generates the sign group {±1}^n: a function invariant under every one of
    them, for every decomposition met, is invariant under all sign choices (and torch's are one).
    """
    key = gauge_key(name, of)
    _note_key(key, q.cols)
    flip = _GAUGE.get()
    if flip is None or flip[0] != key:
        return q
    q = q.copy()
    for i in range(q.rows):
        q[i, flip[1]] = -q[i, flip[1]]
    return q


def _note_key(key: str, cols: int) -> None:
    seen = _NOTES.get()
    if seen is not None:
        seen.append(("gauge", key, cols))


def _scale(m: mpmath.matrix):
    return max([abs(m[i, j]) for i in range(m.rows) for j in range(m.cols)] + [mpmath.mpf(1)])


def _check_gaps(name: str, values: list, scale, what: str, zero_too: bool = False, pairwise: bool = False) -> float:
    """The smallest gap relative to ``scale``; refuses repeated (or, with ``zero_too``, zero) values.

    ``values`` sorted: neighbours' gaps; ``pairwise`` (complex eigenvalues, no order): every pair's."""
    n = len(values)
    gaps = ([abs(values[i] - values[j]) for i in range(n) for j in range(i)] if pairwise
            else [abs(values[i + 1] - values[i]) for i in range(n - 1)])
    if zero_too:
        gaps.append(min(abs(v) for v in values))
    gap = min(gaps) if gaps else scale
    if gap < GAP * scale:
        listed = ", ".join(mpmath.nstr(v, 8) for v in values)
        raise RefusedPoint(f"{name}: {what} are ({listed}); the smallest gap is {mpmath.nstr(gap, 3)}, below "
                            f"{GAP:g} of the matrix's scale {mpmath.nstr(scale, 3)}: the derivative is not "
                            "defined there (it divides by the gap)",
                            hint="Choose a point whose eigenvalues/singular values are distinct (and nonzero for "
                                 "svd), e.g. another seed.")
    return float(scale / gap)


def _symmetric(a: mpmath.matrix, upper: bool) -> mpmath.matrix:
    """The symmetric matrix of a's lower (or upper) triangle, as torch's eigh reads it."""
    n = a.rows
    if a.cols != n:
        raise unsupported(f"eigh/eigvalsh need a square matrix, got {a.rows}x{a.cols}")
    s = mpmath.matrix(n, n)
    for i in range(n):
        for j in range(i + 1):
            s[i, j] = s[j, i] = a[j, i] if upper else a[i, j]
    return s


def _eigh(name: str, A, UPLO: str):
    if UPLO not in ("L", "U"):
        raise unsupported(f"{name} takes UPLO='L' or 'U', got {UPLO!r}")
    s = _symmetric(_matrix(name, A), UPLO == "U")
    e, q = mpmath.eigsy(s)
    order = sorted(range(s.rows), key=lambda k: e[k])
    values = [e[k] for k in order]
    vectors = mpmath.matrix(s.rows, s.rows)
    for new, old in enumerate(order):
        for i in range(s.rows):
            vectors[i, new] = q[i, old]
    cond = _check_gaps(name, values, _scale(s), "the eigenvalues")
    return values, vectors, cond


def eigvalsh(A, UPLO="L"):
    """Ascending eigenvalues of one n x n matrix (one triangle read); mirror/spectral.py calls it past 2x2."""
    values, _, cond = _eigh("eigvalsh", A, UPLO)
    _note("eigvalsh", cond, len(values), None)
    return _out(mpmath.matrix(values), len(values))


@register("eigh", torch=torch.linalg.eigh, finish=lambda out: out.eigenvectors,
          doc="Q of A = Q diag(λ) Qᵀ (lower triangle, λ ascending); signs are a gauge (numeric-exact route)")
def eigh(A, UPLO="L"):
    values, vectors, cond = _eigh("eigh", A, UPLO)
    _note("eigh", cond, len(values), "eigh")
    return _out(_flip_columns(vectors, "eigh", _matrix("eigh", A)), len(values), len(values))


def _svd(name: str, A):
    a = _matrix(name, A)
    u, s, vt = mpmath.svd_r(a, full_matrices=False, compute_uv=True)
    k = min(a.rows, a.cols)
    order = sorted(range(k), key=lambda i: -s[i])
    values = [s[i] for i in order]
    left = mpmath.matrix(a.rows, k)
    for new, old in enumerate(order):
        for i in range(a.rows):
            left[i, new] = u[i, old]
    # a zero singular value is a kink of svdvals; of U only when A is not square... refuse both
    cond = _check_gaps(name, values[::-1], _scale(a), "the singular values", zero_too=True)
    return values, left, cond


@register("svdvals", torch=torch.linalg.svdvals,
          doc="the singular values of A, descending (numeric-exact route)")
def svdvals(A, *, driver=None):
    values, _, cond = _svd("svdvals", A)
    _note("svdvals", cond, len(values), None)
    return _out(mpmath.matrix(values), len(values))


@register("svd", torch=torch.linalg.svd, finish=lambda out: out.U,
          doc="U of A = U diag(σ) Vᵀ (reduced, σ descending); signs are a gauge (numeric-exact route)")
def svd(A, full_matrices=True, *, driver=None):
    a = as_obj(A)
    if full_matrices and a.ndim == 2 and a.shape[0] > a.shape[1]:
        raise unsupported("svd: with full_matrices=True U's extra columns are any basis of the complement "
                          "(no derivative); pass full_matrices=False")
    values, left, cond = _svd("svd", A)
    _note("svd", cond, len(values), "svd")
    return _out(_flip_columns(left, "svd", _matrix("svd", A)), left.rows, left.cols)


@register("qr", torch=torch.linalg.qr, finish=lambda out: out.Q,
          doc="Q of A = Q R (reduced, m >= n, full column rank); column signs are a gauge (numeric-exact route)")
def qr(A, mode="reduced"):
    if mode != "reduced":
        raise unsupported("qr: only mode='reduced' is supported")
    a = _matrix("qr", A)
    if a.rows < a.cols:
        raise unsupported("qr: only m >= n is supported (Q of a wide A has no derivative in torch)")
    q, _ = mpmath.qr(a, mode="skinny")
    sv = mpmath.svd_r(a, compute_uv=False)
    smin, smax = min(sv), max(sv)
    if smin < GAP * smax:
        raise RefusedPoint(f"qr: A is (nearly) rank deficient (smallest singular value {mpmath.nstr(smin, 3)}): "
                            "Q has no derivative there", hint="Choose a matrix of full column rank.")
    _note("qr", smax / smin, a.rows, "qr")
    return _out(_flip_columns(q, "qr", a), a.rows, a.cols)


@register("matrix_exp", torch=torch.linalg.matrix_exp,
          doc="Σ_k A^k / k! (numeric-exact route)")
def matrix_exp(A):
    a = _matrix("matrix_exp", A)
    if a.rows != a.cols:
        raise unsupported(f"matrix_exp needs a square matrix, got {a.rows}x{a.cols}")
    # the exponential's condition grows like e^{2‖A‖}/e^{‖A‖}; ‖A‖_1 bounds it
    norm = mpmath.mnorm(a, 1)
    _note("matrix_exp", 1 + norm, a.rows, None)
    return _out(mpmath.expm(a), a.rows, a.cols)


#: The entries that run on the numeric-exact route only (eigvalsh past 2x2 too, through spectral.py),
#: and those whose output carries a sign gauge (the key into INVARIANTS).
NUMERIC_ONLY = frozenset({"eigh", "svd", "svdvals", "qr", "matrix_exp", "eig", "eigvals"})   # eig: mirror/eig.py
GAUGED = {"eigh": "eigh", "svd": "svd", "qr": "qr"}
