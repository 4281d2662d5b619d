"""LU factorization with partial pivoting, evaluated numerically at high precision (numeric-exact route).

Definition (one real m x n matrix A, k = min(m, n), LAPACK getrf's algorithm, which torch runs): for
column j = 0 .. k-1, the pivot row p ≥ j is the one of largest |a_pj| (the first such on a tie), rows j and p
are swapped, and the rows below j are eliminated with the multipliers l_ij = a_ij / a_jj. Then
``A = P L U``: L is m x k unit lower triangular, U is k x n upper triangular, P the product of the swaps.

* torch.linalg.lu(A): P, L, U (stacked for the case language: square A only, the three are n x n);
* torch.linalg.lu_factor(A), torch.linalg.lu_factor_ex(A), torch.lu(A): the packed LU (L's strict lower part
  and U in one m x n matrix; the integer pivots have no derivative).

L and U are rational functions of A as long as the pivot choice does not change: the choice is piecewise
constant, and where two candidate pivots tie in |value| it switches, a kink of L and U. The mirror refuses a
point whose best and second-best candidates are within ``TIE`` of the matrix's scale (the Richardson steps of
the route, 1e-6, must never cross a switch), and a (nearly) rank-deficient A (a zero pivot: no derivative).
The condition noted for the allowance is σ_max/σ_min of A, as for qr.
"""

from __future__ import annotations

import mpmath
import numpy as np
import torch

from verifier.errors import SymbolicError

from ._arrays import as_obj, unsupported
from ._table import register
from .decompositions import GAP, _matrix, _note, _out, _scale

#: Relative difference (to the matrix's scale) of the two largest pivot candidates below which they tie.
TIE = 1e-4


def _getrf(name: str, A):
    """(L m x k, U k x n, the row order: A[order] = L U), refusing pivot ties and rank deficiency."""
    a = _matrix(name, A)
    m, n = a.rows, a.cols
    k = min(m, n)
    sv = mpmath.svd_r(a, compute_uv=False)
    if min(sv) < GAP * max(sv):
        raise SymbolicError(f"{name}: A is (nearly) rank deficient (smallest singular value {mpmath.nstr(min(sv), 3)}): "
                            "a pivot is zero and the factors have no derivative there",
                            hint="Choose a matrix of full rank.")
    scale = _scale(a)
    w = a.copy()
    order = list(range(m))
    for j in range(k):
        ranked = sorted(range(j, m), key=lambda i: -abs(w[i, j]))
        if len(ranked) > 1 and abs(w[ranked[0], j]) - abs(w[ranked[1], j]) < TIE * scale:
            raise SymbolicError(f"{name}: at column {j} the pivot candidates {mpmath.nstr(w[ranked[0], j], 8)} and "
                                f"{mpmath.nstr(w[ranked[1], j], 8)} tie in absolute value (within {TIE:g} of the "
                                f"scale {mpmath.nstr(scale, 3)}): partial pivoting switches rows there, a kink of L "
                                "and U", hint="Choose a point whose pivot candidates differ clearly, e.g. another seed.")
        p = ranked[0]
        if p != j:
            for c in range(n):
                w[j, c], w[p, c] = w[p, c], w[j, c]
            order[j], order[p] = order[p], order[j]
        for i in range(j + 1, m):
            w[i, j] = w[i, j] / w[j, j]
            for c in range(j + 1, n):
                w[i, c] -= w[i, j] * w[j, c]
    _note(name, max(sv) / min(sv), max(m, n), None)
    return w, order, k


def _packed(name: str, A) -> np.ndarray:
    w, _, _ = _getrf(name, A)
    return _out(w, w.rows, w.cols)


def _each(one, A, front: int = 0) -> np.ndarray:
    """``one`` of every matrix of a batch (…, m, n), stacked back; ``front`` leading result dims (stack(P, L, U):
    1) stay in front of the batch dims, as torch.stack of the batched factors puts them."""
    a = as_obj(A)
    if a.ndim <= 2:
        return one(a)
    batch, (m, n) = a.shape[:-2], a.shape[-2:]
    mats = a.reshape(-1, m, n)
    if not len(mats):
        return np.empty((3, *batch, m, m) if front else (*batch, m, n), dtype=object)
    parts = np.stack([one(x) for x in mats], axis=front)
    lead = parts.shape[:front]
    return parts.reshape(*lead, *batch, *parts.shape[front + 1:])


@register("torch.linalg.lu", torch=torch.linalg.lu, bare=False, finish=lambda out: torch.stack(tuple(out)),
          doc="stack(P, L, U) of A = P L U, partial pivoting as LAPACK getrf (square A; numeric-exact route)")
def linalg_lu(A, *, pivot=True):
    if not pivot:
        raise unsupported("torch.linalg.lu: pivot=False is not supported (torch runs it on CUDA only)")
    return _each(_plu, A, front=1)


def _plu(A) -> np.ndarray:
    w, order, k = _getrf("lu", A)
    m, n = w.rows, w.cols
    if m != n:
        raise unsupported(f"torch.linalg.lu: P, L and U of a {m}x{n} matrix have different shapes and cannot be "
                          "stacked; check a square matrix, or the packed factors with torch.linalg.lu_factor")
    perm, lower, upper = mpmath.zeros(m, m), mpmath.zeros(m, m), mpmath.zeros(m, m)
    for row, src in enumerate(order):          # A[order] = L U, so A = P L U with P[src, row] = 1
        perm[src, row] = 1
    for i in range(m):
        for j in range(m):
            if i > j:
                lower[i, j] = w[i, j]
            elif i == j:
                lower[i, j] = 1
            if i <= j:
                upper[i, j] = w[i, j]
    return np.stack([_out(perm, m, m), _out(lower, m, m), _out(upper, m, m)])


@register("lu_factor", torch=torch.linalg.lu_factor, finish=lambda out: out.LU,
          doc="the packed LU of A = P L U (partial pivoting as LAPACK getrf; numeric-exact route)")
def lu_factor(A, *, pivot=True):
    if not pivot:
        raise unsupported("lu_factor: pivot=False is not supported (torch runs it on CUDA only)")
    return _each(lambda a: _packed("lu_factor", a), A)


@register("lu_factor_ex", torch=torch.linalg.lu_factor_ex, finish=lambda out: out.LU,
          doc="the packed LU of lu_factor, without the error check (numeric-exact route)")
def lu_factor_ex(A, *, pivot=True, check_errors=False):
    return lu_factor(A, pivot=pivot)


@register("lu", torch=torch.lu, finish=lambda out: out[0],
          doc="the legacy torch.lu: the packed LU of lu_factor (numeric-exact route)")
def lu(A, pivot=True, get_infos=False):
    return lu_factor(A, pivot=pivot)


#: The entries of this module that run on the numeric-exact route only.
NUMERIC_ONLY = frozenset({"torch.linalg.lu", "lu_factor", "lu_factor_ex", "lu"})
