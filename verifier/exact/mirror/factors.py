"""Linear algebra that is closed-form in its inputs: pinv and lstsq of full-rank matrices, and the
functions of given factors (lu_solve, lu_unpack, householder_product, ormqr).

* pinv(A) = (A^T A)^-1 A^T for full column rank, A^T (A A^T)^-1 for full row rank (the
  Moore-Penrose conditions' unique solution; pinv is differentiable exactly where the rank is full).
* lstsq(A, B) = (A^T A)^-1 A^T B for full column rank (the normal equations); the solution only.
* lu_solve(LU, pivots, B): with A = P L U (L unit lower and U upper packed in LU, P the product of
  LAPACK's row swaps i <-> pivots[i] - 1), X = U^-1 L^-1 P^T B solves A X = B; adjoint=True solves
  A^T X = B (X = P L^-T U^-T B, real A: the adjoint is the transpose); left=False solves X A = B
  (with adjoint, X A^T = B) through the transposed left solve of B^T.
* lu_unpack: stack(P, L, U) for a square LU (torch returns the three; both sides stack them).
* householder_product(A, tau) = H_1 ... H_k, H_i = I - tau_i v_i v_i^T with v_i = (0, .., 1,
  A[i+1:, i]), its first n columns; ormqr(A, tau, C) multiplies C by that Q (left/right, Q or Q^T).

None is marked analytic: torch conjugates (A^H, v v^H), so a complex step would not differentiate
the real function. Decompositions themselves (qr, eigh, svd, lu_factor, ...) have no closed form over symbols and
wait for the numeric-exact route.
"""

from __future__ import annotations

import numpy as np
import sympy
import torch

from ._arrays import as_obj, index_array, unsupported
from ._table import register
from .linalg import inv, matmul, solve_triangular


def _int_pivots(args, kwargs):
    """torch wants int32 pivots; a case writes them as an index input (int64)."""
    return (args[0], torch.as_tensor(args[1]).int(), *args[2:]), kwargs


def _cuts(value) -> bool:
    """Whether a pinv atol/rtol may cut singular values: anything but None or the number 0."""
    if value is None:
        return False
    return isinstance(value, np.ndarray) or not (isinstance(value, (int, float, sympy.Number)) and value == 0)


def _shown(value) -> str:
    return "(a tensor)" if isinstance(value, np.ndarray) else str(value)


def _t(a):
    return np.swapaxes(as_obj(a), -1, -2)


@register("pinv", torch=torch.linalg.pinv,
          doc="(A^T A)^-1 A^T (full column rank) or A^T (A A^T)^-1 (full row rank)")
def pinv(input, *, atol=None, rtol=None, hermitian=False):
    for name, value in (("atol", atol), ("rtol", rtol)):
        if _cuts(value):
            raise unsupported(f"pinv: {name} {_shown(value)} is not supported: torch then sets the singular values "
                              f"below the cut-off to zero, which has no closed form here",
                              hint="Leave atol and rtol unset (torch's default cut-off, eps * max(m, n) * "
                                   "sigma_max, keeps every singular value of a full-rank input), or set them to 0.")
    a = as_obj(input)
    m, n = a.shape[-2:]
    if m >= n:
        return matmul(inv(matmul(_t(a), a)), _t(a))
    return matmul(_t(a), inv(matmul(a, _t(a))))


@register("lstsq", torch=torch.linalg.lstsq, finish=lambda out: out.solution,
          doc="(A^T A)^-1 A^T B for full column rank (m >= n); the solution only")
def lstsq(A, B, rcond=None, *, driver=None):
    a = as_obj(A)
    if a.shape[-2] < a.shape[-1]:
        raise unsupported("lstsq: only tall or square A (m >= n, full column rank) is supported")
    return matmul(inv(matmul(_t(a), a)), matmul(_t(a), B))


def _permutation(pivots, n):
    """P with A = P L U from LAPACK's 1-based pivots (row i swapped with pivots[i] - 1, in order)."""
    order = list(range(n))
    for i, p in enumerate(index_array(pivots).reshape(-1)):
        j = int(p) - 1
        order[i], order[j] = order[j], order[i]
    perm = np.zeros((n, n), dtype=np.int64)
    for row, src in enumerate(order):     # P^T A = (rows of A in 'order')
        perm[src, row] = 1
    return perm


def _lu_parts(LU):
    lu = as_obj(LU)
    if lu.ndim != 2 or lu.shape[0] != lu.shape[1]:
        raise unsupported(f"lu_solve/lu_unpack: only a square 2-d LU is supported, got {lu.shape}")
    n = lu.shape[0]
    lower = np.empty((n, n), dtype=object)
    upper = np.empty((n, n), dtype=object)
    for i in range(n):
        for j in range(n):
            lower[i, j] = lu[i, j] if i > j else (sympy.S.One if i == j else sympy.S.Zero)
            upper[i, j] = lu[i, j] if i <= j else sympy.S.Zero
    return lower, upper


@register("lu_solve", torch=torch.linalg.lu_solve, prepare=_int_pivots,
          doc="with A = P L U packed in (LU, pivots): A X = B, X = U^-1 L^-1 P^T B; adjoint: A^T X = B, "
              "X = P L^-T U^-T B; left=False: X A = B (or X A^T = B), the transposed solve")
def lu_solve(LU, pivots, B, *, left=True, adjoint=False):
    lu, piv, b = as_obj(LU), index_array(pivots), as_obj(B)
    if b.ndim < 2:
        raise unsupported("lu_solve needs B with at least 2 dims", hint="Give B as a matrix, e.g. B[:, None].")
    if lu.ndim == 2:
        return _lu_solve_one(lu, piv, b, bool(left), bool(adjoint))
    if lu.ndim < 2 or piv.shape[:-1] != lu.shape[:-2]:
        raise unsupported(f"lu_solve: LU {list(lu.shape)} and pivots {list(piv.shape)} are not (*, n, n) and (*, n)")
    try:
        batch = np.broadcast_shapes(lu.shape[:-2], b.shape[:-2])
    except ValueError:
        raise unsupported(f"lu_solve: the batch dims of LU {list(lu.shape)} and B {list(b.shape)} do not "
                          "broadcast") from None
    lu, piv = np.broadcast_to(lu, batch + lu.shape[-2:]), np.broadcast_to(piv, batch + piv.shape[-1:])
    b = np.broadcast_to(b, batch + b.shape[-2:])
    parts = [_lu_solve_one(lu[i], piv[i], b[i], bool(left), bool(adjoint)) for i in np.ndindex(batch)]
    return np.stack(parts).reshape(batch + parts[0].shape) if parts else np.empty(batch + b.shape[-2:], dtype=object)


def _lu_solve_one(LU, pivots, B, left: bool, adjoint: bool):
    """One packed LU (n x n): A X = B, A^T X = B (adjoint), X A = B or X A^T = B (left=False)."""
    lower, upper = _lu_parts(LU)
    perm = as_obj(_permutation(pivots, lower.shape[0]))
    # X A = B  <=>  A^T X^T = B^T and X A^T = B  <=>  A X^T = B^T: the right solves are left solves of B^T
    rhs = B if left else _t(B)
    if adjoint == left:     # solve with A^T = U^T L^T P^T: X = P L^-T U^-T rhs
        z = solve_triangular(_t(upper), rhs, upper=False)
        x = matmul(perm, solve_triangular(_t(lower), z, upper=True, unitriangular=True))
    else:
        y = solve_triangular(lower, matmul(_t(perm), rhs), upper=False, unitriangular=True)
        x = solve_triangular(upper, y, upper=True)
    return x if left else _t(x)


@register("lu_unpack", torch=torch.lu_unpack, prepare=_int_pivots, finish=lambda out: torch.stack(tuple(out)),
          doc="stack(P, L, U) of a square packed LU")
def lu_unpack(LU_data, LU_pivots, unpack_data=True, unpack_pivots=True):
    lower, upper = _lu_parts(LU_data)
    return np.stack([as_obj(_permutation(LU_pivots, lower.shape[0])), lower, upper])


def _householder_q(a, tau):
    a, tau = as_obj(a), as_obj(tau)
    m = a.shape[0]
    q = as_obj(np.eye(m, dtype=np.int64))
    for i in range(tau.shape[0]):
        v = np.array([sympy.S.Zero] * i + [sympy.S.One] + list(a[i + 1:, i]), dtype=object)
        h = as_obj(np.eye(m, dtype=np.int64)) - tau[i] * np.outer(v, v)
        q = matmul(q, h)
    return q


@register("householder_product", torch=torch.linalg.householder_product,
          doc="the first n columns of H_1 ... H_k, H_i = I - tau_i v_i v_i^T, v_i = (0.., 1, A[i+1:, i])")
def householder_product(A, tau):
    a = as_obj(A)
    if a.ndim != 2:
        raise unsupported("householder_product: only a 2-d A is supported (no batch dims)",
                          hint="Check one matrix of the batch, e.g. torch.linalg.householder_product(A[0], tau[0]).")
    return _householder_q(a, tau)[:, : a.shape[1]]


@register("ormqr", torch=torch.ormqr,
          doc="Q C, C Q, Q^T C or C Q^T with Q = householder_product's full H_1 ... H_k")
def ormqr(input, input2, input3, left=True, transpose=False):
    q = _householder_q(input, input2)
    q = _t(q) if transpose else q
    return matmul(q, input3) if left else matmul(input3, q)
