"""Differences, integrals, statistics and matrix products, each from its textbook definition (in ``doc``).

diff, trapezoid/trapz/cumulative_trapezoid (the trapezoidal rule), cov and
corrcoef (the weighted sample covariance as torch documents it), nanmean
(mean over the non-NaN elements; inputs are finite here), sum_to_size,
tensordot, linalg.vecdot, linalg.multi_dot, linalg.matrix_power,
linalg.vander, linalg.tensorinv/tensorsolve (inv/solve of the reshaped
operator), float_power (pow), and the identities of a real tensor:
resolve_conj, resolve_neg (not analytic: on a complex step input they are not
the identity; conj and real are in complex_numbers.py).
"""

from __future__ import annotations

import math

import numpy as np
import sympy
import torch

from ._arrays import as_obj, norm_dim, shape_args, sym_number, unsupported
from ._table import register
from .linalg import inv, matmul, solve
from .reductions import mean, sum_
from .shape import cat, movedim, narrow


def _reg(name, fn, doc, analytic=True, **kw):
    return register(name, torch=fn, doc=doc, analytic=analytic, **kw)


def _real_identity(name, fn):
    @_reg(name, fn, "x itself for a real tensor", analytic=False)
    def identity(x):
        return as_obj(x).copy()
    return identity


# conj, conj_physical and real are mirror/complex_numbers.py's (their definitions hold on real tensors too)
for _name, _fn in (("resolve_conj", torch.resolve_conj), ("resolve_neg", torch.resolve_neg)):
    _real_identity(_name, _fn)


@_reg("float_power", torch.float_power, "x ** y computed in double precision", domain=(0.0, math.inf))
def float_power(input, exponent):
    from .elementwise import pow_
    return pow_(input, exponent)


@_reg("nanmean", torch.nanmean, "the mean of the non-NaN elements over dim (finite inputs: mean)", analytic=False)

def nanmean(x, dim=None, keepdim=False, *, dtype=None):
    return mean(x, dim, keepdim)


@_reg("sum_to_size", torch.Tensor.sum_to_size, "sum over the dims broadcasting size to x's shape expanded")
def sum_to_size(x, *size):
    x = as_obj(x)
    size = shape_args(size)
    lead = x.ndim - len(size)
    out = sum_(x, tuple(range(lead))) if lead else x
    dims = tuple(i for i, s in enumerate(size) if s == 1 and out.shape[i] != 1)
    return sum_(out, dims, keepdim=True) if dims else out.copy()


@_reg("diff", torch.diff, "out[i] = x[i+1] - x[i] along dim (after prepend/append), n times")
def diff(input, n=1, dim=-1, prepend=None, append=None):
    x = as_obj(input)
    d = norm_dim(dim, x.ndim)
    parts = [as_obj(p) for p in (prepend, x, append) if p is not None]
    x = cat(parts, d) if len(parts) > 1 else x
    for _ in range(int(n)):
        length = x.shape[d]
        x = as_obj(narrow(x, d, 1, length - 1)) - as_obj(narrow(x, d, 0, length - 1)) if length else x
    return x


def _spacing(y, x, dx, d):
    """The widths of the trapezoid intervals along d (x's differences, or dx)."""
    if x is None:
        return sym_number(1 if dx is None else dx)
    x = as_obj(x)
    return diff(x, dim=-1 if x.ndim == 1 else d) if x.ndim == 1 else diff(x, dim=d)


def _trapezoids(y, x, dx, dim):
    y = as_obj(y)
    d = norm_dim(dim, y.ndim)
    length = y.shape[d]
    if length == 0:
        return d, np.zeros(y.shape[:d] + (0,) + y.shape[d + 1:], dtype=object) + sympy.S.Zero
    h = _spacing(y, x, dx, d)
    if isinstance(h, np.ndarray) and h.ndim == 1:
        h = h.reshape((-1,) + (1,) * (y.ndim - d - 1))
    mids = (as_obj(narrow(y, d, 1, length - 1)) + as_obj(narrow(y, d, 0, length - 1))) / 2
    return d, mids * h


@_reg("trapezoid", torch.trapezoid, "sum over dim of (y[i] + y[i+1]) / 2 * (x[i+1] - x[i]) (or * dx)")
def trapezoid(y, x=None, *, dx=None, dim=-1):
    d, parts = _trapezoids(y, x, dx, dim)
    return sum_(parts, d)


@_reg("trapz", torch.trapz, "trapezoid(y, x, dim) (or with spacing dx)")
def trapz(y, x=None, *, dx=None, dim=-1):
    return trapezoid(y, x, dx=dx, dim=dim)


@_reg("cumulative_trapezoid", torch.cumulative_trapezoid, "the running sums of trapezoid's terms along dim")
def cumulative_trapezoid(y, x=None, *, dx=None, dim=-1):
    d, parts = _trapezoids(y, x, dx, dim)
    moved = np.moveaxis(parts, d, -1)
    out = np.empty(moved.shape, dtype=object)
    for idx in np.ndindex(moved.shape[:-1]):
        acc = []
        for k in range(moved.shape[-1]):
            acc.append(moved[idx + (k,)])
            out[idx + (k,)] = sympy.Add(*acc)
    return np.moveaxis(out, -1, d)


@_reg("cov", torch.cov, "sum_k w_k (x_ik - m_i)(x_jk - m_j) / (sum w - correction * sum(w a) / sum w), "
      "w = fweights * aweights, m the w-weighted means (rows are variables)", analytic=False)

def cov(input, *, correction=1, fweights=None, aweights=None):
    x = as_obj(input)
    x = x.reshape(1, -1) if x.ndim < 2 else x
    n = x.shape[1]
    w = np.full(n, sympy.S.One, dtype=object)
    if fweights is not None:
        w = w * as_obj(fweights)
    if aweights is not None:
        w = w * as_obj(aweights)
    wsum = sympy.Add(*w)
    means = [sympy.Add(*(w * x[i])) / wsum for i in range(x.shape[0])]
    c = sym_number(correction)
    norm = wsum - (c * sympy.Add(*(w * as_obj(aweights))) / wsum if aweights is not None else c)
    centred = np.array([[x[i, k] - means[i] for k in range(n)] for i in range(x.shape[0])], dtype=object)
    out = np.empty((x.shape[0], x.shape[0]), dtype=object)
    for i in range(x.shape[0]):
        for j in range(x.shape[0]):
            out[i, j] = sympy.Add(*(w * centred[i] * centred[j])) / norm
    return out if out.shape != (1, 1) else out.reshape(())      # one variable: torch returns a 0-d tensor


@_reg("corrcoef", torch.corrcoef, "cov(x)_ij / sqrt(cov_ii cov_jj) (Pearson's r)", analytic=False)

def corrcoef(input):
    c = cov(input)
    if c.ndim == 0:
        return np.array(c[()] / c[()], dtype=object)
    d = [sympy.sqrt(c[i, i]) for i in range(c.shape[0])]
    return np.array([[c[i, j] / (d[i] * d[j]) for j in range(c.shape[0])] for i in range(c.shape[0])], dtype=object)


@_reg("tensordot", torch.tensordot, "sum over the paired dims of a[..., k] b[k, ...] (dims: the last n of a with "
      "the first n of b, or two lists)")
def tensordot(a, b, dims=2, out=None):
    a, b = as_obj(a), as_obj(b)
    if isinstance(dims, int):
        da, db = list(range(a.ndim - dims, a.ndim)), list(range(dims))
    else:
        da, db = ([d] if isinstance(d, int) else list(d) for d in dims)
    da, db = [norm_dim(d, a.ndim) for d in da], [norm_dim(d, b.ndim) for d in db]
    for i, j in zip(da, db):          # a paired dim of size 1 broadcasts against the other's
        if a.shape[i] != b.shape[j] and 1 in (a.shape[i], b.shape[j]):
            size = max(a.shape[i], b.shape[j])
            a = np.repeat(a, size, axis=i) if a.shape[i] == 1 else a
            b = np.repeat(b, size, axis=j) if b.shape[j] == 1 else b
    keep_a = [i for i in range(a.ndim) if i not in da]
    keep_b = [i for i in range(b.ndim) if i not in db]
    am = np.transpose(a, keep_a + da).reshape(int(np.prod([a.shape[i] for i in keep_a])), -1)
    bm = np.transpose(b, db + keep_b).reshape(-1, int(np.prod([b.shape[i] for i in keep_b])))
    if am.shape[1] != bm.shape[0]:
        raise unsupported("tensordot: the paired dims differ in size")
    return as_obj(matmul(am, bm)).reshape(tuple(a.shape[i] for i in keep_a) + tuple(b.shape[i] for i in keep_b))


@_reg("vecdot", torch.linalg.vecdot, "sum over dim of x * y (x conjugated; real here)", analytic=False)

def vecdot(x, y, *, dim=-1):
    a, b = np.broadcast_arrays(as_obj(x), as_obj(y))
    return sum_(a * b, dim)


@_reg("multi_dot", torch.linalg.multi_dot, "the matrix product of the list, a 1-d first (last) as a row (column)")
def multi_dot(tensors):
    if not isinstance(tensors, (list, tuple)) or len(tensors) < 2:
        raise unsupported("multi_dot takes a list of at least two tensors")
    out = as_obj(tensors[0])
    for t in tensors[1:]:
        out = as_obj(matmul(out, t))
    return out


@_reg("matrix_power", torch.linalg.matrix_power, "A @ A @ ... (n factors); n = 0: I; n < 0: inv(A)^(-n)")
def matrix_power(A, n):
    a = as_obj(A)
    k = int(n)
    base = as_obj(inv(a)) if k < 0 else a
    eye = np.zeros(a.shape, dtype=object) + sympy.S.Zero
    for i in range(a.shape[-1]):
        eye[..., i, i] = sympy.S.One
    out = eye
    for _ in range(abs(k)):
        out = as_obj(matmul(out, base))
    return out


@register("torch.linalg.vander", torch=torch.linalg.vander, bare=False, analytic=True,
          doc="out[..., i, j] = x[..., i] ** j, j < N (default len(x)); torch.vander's powers decrease instead")
def vander(x, *, N=None):
    x = as_obj(x)
    x = x.reshape(1) if x.ndim == 0 else x
    n = x.shape[-1] if N is None else int(N)
    return np.stack([x ** j if j else x * 0 + 1 for j in range(n)], axis=-1)


@_reg("tensorinv", torch.linalg.tensorinv, "inv of A reshaped to (prod shape[:ind], prod shape[ind:]), reshaped "
      "to shape[ind:] + shape[:ind]")
def tensorinv(A, ind=2):
    a = as_obj(A)
    head, tail = a.shape[:ind], a.shape[ind:]
    return as_obj(inv(a.reshape(int(np.prod(head)), -1))).reshape(tail + head)


@_reg("tensorsolve", torch.linalg.tensorsolve, "x with tensordot(A, x, x.ndim) = B: solve of A reshaped to "
      "(B.numel(), x.numel())")
def tensorsolve(A, B, dims=None):
    a, b = as_obj(A), as_obj(B)
    if dims is not None:
        dims = [norm_dim(d, a.ndim) for d in dims]
        a = movedim(a, dims, list(range(a.ndim - len(dims), a.ndim)))
    xshape = a.shape[b.ndim:]
    sol = solve(a.reshape(b.size, -1), b.reshape(-1))
    return as_obj(sol).reshape(xshape)
