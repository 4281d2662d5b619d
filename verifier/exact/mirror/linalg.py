"""Linear-algebra mirrors: products, einsum, determinants, inverses, solves, Cholesky.

Products build each output with one flat ``Add`` of explicit products.
Up to 4x4, det/inv/solve are division-free Berkowitz polynomials (inv and
solve divide once, by the shared det), so they are exact wherever A is
invertible. Larger systems use Gaussian elimination without simplification,
whose expressions are DAGs sharing every pivot; rows are swapped only past
*structural* zeros (the mirror cannot see the evaluation point), so a leading
minor that vanishes at the point gives nan there.
"""

from __future__ import annotations

import numpy as np
import sympy
import torch
from sympy import sqrt

from verifier.errors import SymbolicError

from ._arrays import add_all, as_obj, mul_all, norm_dim, scalar_array, unsupported
from ._table import register

ZERO, ONE = sympy.S.Zero, sympy.S.One
# Berkowitz gives division-free polynomials, but their size grows like n!;
# above this size elimination takes over.
_BERKOWITZ_MAX = 4


def _dot(u, v):
    """sum_k u_k v_k of two equal-length 1-d object arrays, as one Add.

    When every factor is a nonzero number or a symbol (a matmul of the
    inputs themselves, the common case), the products and their sum are
    built unevaluated: the sum of products is already in its final form, and
    SymPy's canonicalisation of 8192 products is 0.9 s of a cold 32x32 @ 32x8
    matmul. Zeros keep the evaluated route, so 0*x stays 0 and never
    multiplies an undefined value.
    """
    if all(_plain(a) for a in u) and all(_plain(b) for b in v):
        return sympy.Add(*[a * b if a.is_Number and b.is_Number else sympy.Mul(a, b, evaluate=False)
                           for a, b in zip(u, v)], evaluate=False)
    return add_all(u * v)


def _plain(x) -> bool:
    """A symbol, or a nonzero finite number: safe to multiply without evaluating."""
    return isinstance(x, sympy.Symbol) or (isinstance(x, sympy.Number) and x.is_finite and not x.is_zero)


@register("matmul", torch=torch.matmul, analytic=True,
          doc="(A B)_ij = sum_k A_ik B_kj, with torch's 1-d and batch-broadcast rules")
def matmul(a, b):
    """Matrix product with torch.matmul's promotion of 1-d operands and batch broadcasting."""
    a, b = as_obj(a), as_obj(b)
    if a.ndim == 0 or b.ndim == 0:
        raise unsupported("matmul needs operands with at least one dimension")
    if a.ndim == 1 and b.ndim == 1:
        return scalar_array(_dot(a, b))
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    if a2.shape[-1] != b2.shape[-2]:
        raise unsupported(f"matmul: shapes {a.shape} and {b.shape} do not match")
    batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    A = np.broadcast_to(a2, batch + a2.shape[-2:])
    B = np.broadcast_to(b2, batch + b2.shape[-2:])
    n, m = A.shape[-2], B.shape[-1]
    out = np.empty(batch + (n, m), dtype=object)
    for idx in np.ndindex(batch):
        rows, cols = A[idx], B[idx].T
        for i in range(n):
            for j in range(m):
                out[idx + (i, j)] = _dot(rows[i], cols[j])
    if a.ndim == 1:
        out = out[..., 0, :]
    if b.ndim == 1:
        out = out[..., 0]
    return out


def _require_ndim(name, arrays, ndims):
    for arr, nd in zip(arrays, ndims):
        if arr.ndim != nd:
            raise unsupported(f"{name} expects {'-d, '.join(map(str, ndims))}-d operands, "
                              f"got shapes {[x.shape for x in arrays]}")


def _checked(name: str, a, b, ndims: tuple[int, int]):
    """Both operands as object arrays, after checking their dimensions are the ones ``name`` takes."""
    a, b = as_obj(a), as_obj(b)
    _require_ndim(name, (a, b), ndims)
    return a, b


@register("mm", torch=torch.mm, analytic=True, doc="matrix product of two 2-d tensors")
def mm(a, b):
    """2-d matrix product."""
    return matmul(*_checked("mm", a, b, (2, 2)))


@register("bmm", torch=torch.bmm, analytic=True, doc="batched matrix product of 3-d tensors")
def bmm(a, b):
    """Batched matrix product (no broadcasting)."""
    return matmul(*_checked("bmm", a, b, (3, 3)))


@register("mv", torch=torch.mv, analytic=True, doc="(A v)_i = sum_k A_ik v_k")
def mv(a, v):
    """Matrix-vector product."""
    return matmul(*_checked("mv", a, v, (2, 1)))


@register("dot", torch=torch.dot, analytic=True, doc="sum_i a_i b_i of two vectors")
def dot(a, b):
    """Inner product of two 1-d tensors."""
    return scalar_array(_dot(*_checked("dot", a, b, (1, 1))))


@register("outer", torch=torch.outer, analytic=True, aliases=("ger",), doc="(a b^T)_ij = a_i b_j")
def outer(a, b):
    """Outer product of two vectors."""
    a, b = as_obj(a), as_obj(b)
    _require_ndim("outer", (a, b), (1, 1))
    return a[:, None] * b[None, :]


@register("inner", torch=torch.inner, analytic=True,
          doc="sum over the last dim of a and b: out[I, J] = sum_k a[I, k] b[J, k]")
def inner(a, b):
    """torch.inner: contract the last dimensions (scalars multiply)."""
    a, b = as_obj(a), as_obj(b)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    out = np.empty(a.shape[:-1] + b.shape[:-1], dtype=object)
    for i in np.ndindex(a.shape[:-1]):
        for j in np.ndindex(b.shape[:-1]):
            out[i + j] = _dot(a[i], b[j])
    return out


@register("kron", torch=torch.kron, analytic=True, doc="Kronecker product: blocks a_ij * b")
def kron(a, b):
    """Kronecker product (numpy's definition matches torch's)."""
    return np.kron(as_obj(a), as_obj(b))


@register("cross", torch=torch.linalg.cross, analytic=True,
          doc="3-vector cross product along dim (default -1, as torch.linalg.cross)")
def cross(a, b, *, dim=-1):
    """Cross product of 3-vectors along ``dim``.

    torch.cross without ``dim`` would pick the first size-3 dim; this mirror
    (and its torch callable) use torch.linalg.cross's default of -1.
    """
    a, b = np.broadcast_arrays(as_obj(a), as_obj(b))
    axis = norm_dim(dim, a.ndim)
    if a.shape[axis] != 3:
        raise unsupported(f"cross: dim {dim} has size {a.shape[axis]}, not 3")
    u, v = np.moveaxis(a, axis, 0), np.moveaxis(b, axis, 0)
    out = np.stack([u[1] * v[2] - u[2] * v[1],
                    u[2] * v[0] - u[0] * v[2],
                    u[0] * v[1] - u[1] * v[0]])
    return np.moveaxis(out, 0, axis)


@register("torch.cross", torch=torch.cross, bare=False, analytic=True,
          doc="torch.cross: as cross, but without dim the first dim of size 3")
def torch_cross(a, b, dim=None):
    """torch.cross (and Tensor.cross): dim=None means the first dim of size 3, unlike torch.linalg.cross."""
    if dim is None:
        shape = np.broadcast_shapes(as_obj(a).shape, as_obj(b).shape)
        if 3 not in shape:
            raise unsupported(f"torch.cross: no dim of size 3 in shape {list(shape)}")
        dim = shape.index(3)
    return cross(a, b, dim=dim)


@register("trace", torch=torch.trace, analytic=True, doc="sum_i A_ii of a 2-d tensor")
def trace(a):
    """Sum of the main diagonal."""
    a = as_obj(a)
    _require_ndim("trace", (a,), (2,))
    return scalar_array(add_all(np.diagonal(a)))


def _batched(a, fn, core_ndim=2, out_core=None):
    """Apply ``fn`` to every matrix in the leading batch dims of ``a``; fn returns an array.

    An empty batch has no matrix to call ``fn`` on: its result has the shape ``batch + out_core``
    (default: the input's core shape, as for inv and cholesky).
    """
    a = as_obj(a)
    batch = a.shape[:-core_ndim]
    results = [as_obj(fn(a[idx])) for idx in np.ndindex(batch)]
    if not results:
        return np.empty(batch + (a.shape[-core_ndim:] if out_core is None else tuple(out_core)), dtype=object)
    out = np.empty(batch + results[0].shape, dtype=object)
    for idx, r in zip(np.ndindex(batch), results):
        out[idx + (Ellipsis,)] = r  # Ellipsis: copy elements even when r is 0-d
    return out


def _square(name, a):
    a = as_obj(a)
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise unsupported(f"{name} expects (batches of) square matrices, got shape {a.shape}")
    return a


def _is_zero(e) -> bool:
    return e == 0 or getattr(e, "is_zero", None) is True


def _eliminate(a, rhs):
    """Gaussian elimination of [a | rhs] to upper-triangular form.

    Returns (U rows, transformed rhs rows, inverse pivots, number of swaps).
    The inverse pivot 1/U_kk is built once and shared by every use.
    """
    n = a.shape[0]
    m = [list(row) for row in a]
    r = [list(row) for row in rhs]
    inv_pivots, swaps = [], 0
    for c in range(n):
        p = next((i for i in range(c, n) if not _is_zero(m[i][c])), None)
        if p is None:
            raise SymbolicError("matrix is structurally singular (a whole pivot column is zero)")
        if p != c:
            m[c], m[p], r[c], r[p] = m[p], m[c], r[p], r[c]
            swaps += 1
        inv = 1 / m[c][c]
        inv_pivots.append(inv)
        for i in range(c + 1, n):
            if _is_zero(m[i][c]):
                continue
            f = m[i][c] * inv
            m[i] = [ZERO] * (c + 1) + [m[i][j] - f * m[c][j] for j in range(c + 1, n)]
            r[i] = [r[i][j] - f * r[c][j] for j in range(len(r[i]))]
    return m, r, inv_pivots, swaps


def _solve_matrix(a, b):
    """X with a X = b for one square ``a`` (n, n) and ``b`` (n, k)."""
    if a.shape[0] <= _BERKOWITZ_MAX:
        return _solve_cramer(a, b)
    u, r, inv, _ = _eliminate(a, b)
    n, k = b.shape
    x = [[ZERO] * k for _ in range(n)]
    for i in reversed(range(n)):
        for j in range(k):
            x[i][j] = (r[i][j] - add_all([u[i][l] * x[l][j] for l in range(i + 1, n)])) * inv[i]
    out = np.empty((n, k), dtype=object)
    out[...] = x
    return out


def _solve_cramer(a, b):
    """X = adj(a) b / det(a): polynomials over one shared 1/det."""
    n, k = b.shape
    if n == 0:
        return np.empty((0, k), dtype=object)
    m = sympy.Matrix(a.tolist())
    adj = np.empty((n, n), dtype=object)
    adj[...] = m.adjugate(method="berkowitz").tolist() if n > 1 else [[ONE]]
    inv_det = 1 / m.det(method="berkowitz")
    return matmul(adj, b) * inv_det


def _det_one(a):
    n = a.shape[0]
    if n == 0:
        return ONE
    if n <= _BERKOWITZ_MAX:
        return sympy.Matrix(a.tolist()).det(method="berkowitz")
    u, _, _, swaps = _eliminate(a, np.empty((n, 0), dtype=object))
    return (-1) ** swaps * mul_all([u[i][i] for i in range(n)])


@register("det", torch=torch.linalg.det, analytic=True,
          doc="determinant (Berkowitz polynomial up to 4x4, product of elimination pivots above)")
def det(a):
    """Determinant of (batches of) square matrices."""
    a = _square("det", a)
    return _batched(a, lambda m: scalar_array(_det_one(m)), out_core=())


@register("logdet", torch=torch.logdet, analytic=True, doc="log(det(A)), for det(A) > 0")
def logdet(a):
    """Log-determinant."""
    return np.vectorize(sympy.log, otypes=[object])(det(a))


@register("inv", torch=torch.linalg.inv, analytic=True, aliases=("inverse",),
          doc="A^{-1}, by Gaussian elimination on [A | I]")
def inv(a):
    """Matrix inverse of (batches of) square matrices."""
    a = _square("inv", a)
    n = a.shape[-1]
    eye = np.full((n, n), ZERO, dtype=object)
    np.fill_diagonal(eye, ONE)
    return _batched(a, lambda m: _solve_matrix(m, eye))


def _batched_pair(a, b, fn):
    """Apply ``fn(A, B)`` over the broadcast batch dims of ``a`` (.., n, n) and ``b`` (.., n, k)."""
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    A = np.broadcast_to(a, batch + a.shape[-2:])
    B = np.broadcast_to(b, batch + b.shape[-2:])
    out = np.empty(batch + (a.shape[-2], b.shape[-1]), dtype=object)
    for idx in np.ndindex(batch):
        out[idx + (Ellipsis,)] = fn(A[idx], B[idx])
    return out


def _with_rhs(a, b, left, fn):
    """Shared batching/vector/left handling of solve and solve_triangular."""
    vector = b.ndim == 1 or (b.ndim == a.ndim - 1 and b.shape == a.shape[:-1])
    if vector:
        b = b[..., None]
    if left:
        x = _batched_pair(a, b, fn)
    else:
        # X A = B  <=>  A^T X^T = B^T
        x = np.swapaxes(_batched_pair(np.swapaxes(a, -1, -2), np.swapaxes(b, -1, -2), fn), -1, -2)
    return x[..., 0] if vector else x


@register("solve", torch=torch.linalg.solve, analytic=True,
          doc="X with A X = B (left=False: X A = B), i.e. A^{-1} B")
def solve(a, b, *, left=True):
    """torch.linalg.solve, including batches of vectors as right-hand sides."""
    a, b = _square("solve", a), as_obj(b)
    return _with_rhs(a, b, left, _solve_matrix)


def _triangular_solve(upper, unitriangular):
    """Forward/back substitution reading only the triangle torch reads."""

    def solve_one(a, b):
        n, k = b.shape
        order = reversed(range(n)) if upper else range(n)
        x = np.empty((n, k), dtype=object)
        for i in order:
            known = range(i + 1, n) if upper else range(i)
            for j in range(k):
                s = b[i, j] - add_all([a[i, l] * x[l, j] for l in known])
                x[i, j] = s if unitriangular else s / a[i, i]
        return x

    return solve_one


@register("solve_triangular", torch=torch.linalg.solve_triangular, analytic=True,
          doc="X with A X = B for triangular A (upper=...; left=False: X A = B)")
def solve_triangular(a, b, *, upper, left=True, unitriangular=False):
    """torch.linalg.solve_triangular: uses only the upper or lower triangle of A."""
    a, b = _square("solve_triangular", a), as_obj(b)
    if b.ndim < 2:
        raise unsupported("solve_triangular needs B with at least 2 dims")
    if left:
        return _with_rhs(a, b, True, _triangular_solve(bool(upper), bool(unitriangular)))
    # X A = B  <=>  A^T X^T = B^T, and A^T has the other triangle.
    a_t, b_t = np.swapaxes(a, -1, -2), np.swapaxes(b, -1, -2)
    x_t = _with_rhs(a_t, b_t, True, _triangular_solve(not upper, bool(unitriangular)))
    return np.swapaxes(x_t, -1, -2)


def _cholesky_one(a, upper):
    """Cholesky-Banachiewicz on the symmetric part (A + A^T)/2.

    Using the symmetric part keeps the value torch computes for symmetric A
    and gives the symmetric gradient torch's backward returns.
    """
    n = a.shape[0]
    sym = [[a[i, j] if i == j else (a[i, j] + a[j, i]) / 2 for j in range(n)] for i in range(n)]
    low = np.full((n, n), ZERO, dtype=object)
    inv_diag = []
    for i in range(n):
        for j in range(i):
            s = sym[i][j] - add_all([low[i, k] * low[j, k] for k in range(j)])
            low[i, j] = s * inv_diag[j]
        d = sqrt(sym[i][i] - add_all([low[i, k] ** 2 for k in range(i)]))
        low[i, i] = d
        inv_diag.append(1 / d)
    return low.T.copy() if upper else low


@register("cholesky", torch=torch.linalg.cholesky,
          doc="lower L with L L^T = (A + A^T)/2 (Cholesky-Banachiewicz); upper=True gives L^T")
def cholesky(a, *, upper=False):
    """torch.linalg.cholesky for symmetric positive-definite (batches of) matrices."""
    a = _square("cholesky", a)
    return _batched(a, lambda m: _cholesky_one(m, bool(upper)))
