"""Linear-algebra composites: addmm, addmv, addr, baddbmm, addbmm, vdot, dist, cholesky_inverse,
cholesky_solve, triangular_solve.

The BLAS-style ops are beta * input + alpha * (product), as their torch docs write them;
the Cholesky ops use the factor's definition A = L L^T (or U^T U with upper=True; torch conjugates, L L^H, so these
and vdot are not marked analytic: the complex step would differentiate a conjugate):
cholesky_inverse(L) = A^-1, cholesky_solve(B, L) = A^-1 B. triangular_solve returns
(solution, cloned coefficient) in torch; both sides here give the solution.
"""

from __future__ import annotations

import numpy as np
import torch

from ._arrays import add_all, as_obj, scalar_array, sym_number
from ._table import register
from .linalg import bmm, inv, matmul, mm, mv, outer, solve, solve_triangular
from .reductions import norm_order, p_norm


def _affine(input, product, beta, alpha):
    b, a = sym_number(beta), sym_number(alpha)
    return as_obj(input) * b + as_obj(product) * a


def _register_affine(name, product, what):
    def definition(input, a, b, *, beta=1, alpha=1):
        return _affine(input, product(a, b), beta, alpha)

    definition.__name__ = name
    register(name, torch=getattr(torch, name), analytic=True, doc=f"beta * input + alpha * {what}")(definition)


for _name, _product, _what in (("addmm", mm, "(m1 @ m2)"), ("addmv", mv, "(mat @ vec)"),
                               ("addr", outer, "outer(vec1, vec2)"), ("baddbmm", bmm, "bmm(b1, b2)")):
    _register_affine(_name, _product, _what)


@register("addbmm", torch=torch.addbmm, analytic=True, doc="beta * input + alpha * sum_b b1[b] @ b2[b]")
def addbmm(input, batch1, batch2, *, beta=1, alpha=1):
    products = as_obj(bmm(batch1, batch2))
    total = np.empty(products.shape[1:], dtype=object)
    for idx in np.ndindex(total.shape):
        total[idx] = add_all(products[(slice(None),) + idx])
    return _affine(input, total, beta, alpha)


@register("vdot", torch=torch.vdot, doc="sum_i conj(a_i) b_i (= dot for real vectors; not holomorphic)")
def vdot(input, other):
    a, b = as_obj(input), as_obj(other)
    return scalar_array(add_all([u * v for u, v in zip(a, b)]))


@register("dist", torch=torch.dist, doc="||a - b||_p of the broadcast difference, over all elements")
def dist(input, other, p=2):
    a, b = np.broadcast_arrays(as_obj(input), as_obj(other))
    return scalar_array(p_norm([u - v for u, v in zip(a.flat, b.flat)], norm_order(p)))


def _gram(factor, upper):
    f = as_obj(factor)
    ft = np.swapaxes(f, -1, -2)
    return matmul(ft, f) if upper else matmul(f, ft)


@register("cholesky_inverse", torch=torch.cholesky_inverse,
          doc="(L L^T)^-1, or (U^T U)^-1 with upper=True")
def cholesky_inverse(L, upper=False):
    return inv(_gram(L, upper))


@register("cholesky_solve", torch=torch.cholesky_solve,
          doc="(L L^T)^-1 B, or (U^T U)^-1 B with upper=True")
def cholesky_solve(B, L, upper=False):
    return solve(_gram(L, upper), B)


@register("triangular_solve", torch=torch.triangular_solve, finish=lambda out: out.solution, analytic=True,
          doc="the solution X of op(A) X = b, A triangular (op: transpose); the solution only")
def triangular_solve(b, A, upper=True, transpose=False, unitriangular=False):
    a = as_obj(A)
    if transpose:
        a = np.swapaxes(a, -1, -2)
        upper = not upper
    return solve_triangular(a, b, upper=bool(upper), unitriangular=bool(unitriangular))
