"""Lowering rules for convolutions, average pooling and triangular linear algebra (part of
:mod:`verifier.exact.lowering_ops`, which documents the rules).

* ``conv1d/2d/3d``: every output ``bias[o] + Σ_(c,k) w[o,c,k] x[n, c, p·stride − pad + k·dilation]``
  gathered at once from a padded index array (padding terms are the constant 0);
* ``avg_pool1d/2d/3d``: one sum per window times ``1/divisor``, the windows and divisors as the
  mirror computes them;
* ``cholesky`` (Cholesky–Banachiewicz on ``(A + Aᵀ)/2``) and ``solve_triangular`` (forward or back
  substitution over the triangle torch reads): the mirror's recurrences over node arrays, every
  batch matrix at once.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import sympy as sp

from verifier.errors import ExpressionError

from .mirror import conv as mconv
from .mirror import pooling as mpool
from .tape_builder import Nodes, Ops

# -- convolutions and pooling ---------------------------------------------------------------------------

def _batched(x: Nodes, nd: int):
    if x.ids.ndim == nd + 1:
        return x.ids[None], True
    if x.ids.ndim != nd + 2:
        return None, False
    return x.ids, False


def _conv(nd):
    def rule(r, input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        if not isinstance(input, Nodes) or not isinstance(weight, Nodes):
            return NotImplemented
        if bias is not None and not isinstance(bias, Nodes) or not isinstance(groups, numbers.Integral):
            return NotImplemented
        x, unbatched = _batched(input, nd)
        w = weight.ids
        if x is None or w.ndim != nd + 2:
            return NotImplemented
        n_batch, channels, sizes = x.shape[0], x.shape[1], x.shape[2:]
        out_ch, group_ch, kernel = w.shape[0], w.shape[1], w.shape[2:]
        groups_ = int(groups)
        if groups_ < 1 or channels != group_ch * groups_ or out_ch % groups_:
            return NotImplemented
        try:
            s, d = mconv.spatial(stride, nd, "stride"), mconv.spatial(dilation, nd, "dilation")
            lo, hi = mconv._padding(padding, nd, kernel, d, s, f"conv{nd}d")
        except (ExpressionError, TypeError, ValueError):
            return NotImplemented
        out_sizes = tuple((n + a + b - dd * (k - 1) - 1) // ss + 1
                          for n, a, b, dd, k, ss in zip(sizes, lo, hi, d, kernel, s))
        if min(out_sizes, default=1) < 1 or min(s + d, default=1) < 1 or bias is not None and bias.shape != (out_ch,):
            return NotImplemented
        # joint axes: (n, o, p_1..p_nd, c, k_1..k_nd)
        ax = 2 + 2 * nd + 1
        xp = np.full((n_batch, channels) + tuple(n + a + b for n, a, b in zip(sizes, lo, hi)), -1, np.int64)
        xp[(slice(None), slice(None)) + tuple(slice(a, a + n) for a, n in zip(lo, sizes))] = x

        def along(values, axis):
            shape = [1] * ax
            shape[axis] = -1
            return np.asarray(values).reshape(shape)
        o_, c_ = np.arange(out_ch), np.arange(group_ch)
        chan = along((o_ // (out_ch // groups_)) * group_ch, 1) + along(c_, 2 + nd)
        pos = [along(np.arange(out_sizes[i]) * s[i], 2 + i) + along(np.arange(kernel[i]) * d[i], 3 + nd + i)
               for i in range(nd)]
        xg = xp[(along(np.arange(n_batch), 0), chan, *pos)]
        wg = w[(along(o_, 1), along(c_, 2 + nd), *[along(np.arange(kernel[i]), 3 + nd + i) for i in range(nd)])]
        xg, wg = np.broadcast_arrays(xg, wg)
        terms = np.full(xg.shape, r.b.const(0), dtype=np.int64)
        valid = xg >= 0
        terms[valid] = r.b.products([xg[valid], wg[valid]])
        rows = terms.reshape((n_batch, out_ch) + out_sizes + (-1,))
        if bias is not None:
            extra = np.broadcast_to(bias.ids.reshape((1, out_ch) + (1,) * nd + (1,)), rows.shape[:-1] + (1,))
            rows = np.concatenate([rows, extra], axis=-1)
        out = r.b.sums(rows)
        return Nodes(out[0] if unbatched else out)
    return rule


def _avg_pool(nd):
    def rule(r, input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
             divisor_override=None):
        if not isinstance(input, Nodes) or (nd == 1 and divisor_override is not None):
            return NotImplemented
        if not all(isinstance(v, (bool, np.bool_)) for v in (ceil_mode, count_include_pad)):
            return NotImplemented
        if divisor_override is not None and not isinstance(divisor_override, numbers.Integral):
            return NotImplemented
        x, unbatched = _batched(input, nd)
        if x is None:
            return NotImplemented
        try:
            k, s, p, _ = mpool._pool_args(nd, f"avg_pool{nd}d", kernel_size, stride, padding)
            sizes = x.shape[2:]
            out_sizes = tuple(mpool._out_size(n, kk, ss, pp, 1, ceil_mode) for n, kk, ss, pp in zip(sizes, k, s, p))
        except (ExpressionError, TypeError, ValueError):
            return NotImplemented
        o = Ops(r)
        out = np.empty(x.shape[:2] + out_sizes, dtype=np.int64)
        for pos in np.ndindex(out_sizes):           # as the mirror's _avg_pool: windows, then divisors
            starts = [oi * si - pi for oi, si, pi in zip(pos, s, p)]
            ends = [min(a + kk, n + pi) for a, kk, n, pi in zip(starts, k, sizes, p)]
            padded = math.prod(e - a for a, e in zip(starts, ends))
            lo = [max(a, 0) for a in starts]
            hi = [min(e, n) for e, n in zip(ends, sizes)]
            inside = math.prod(max(e - a, 0) for a, e in zip(lo, hi))
            divisor = int(divisor_override) if divisor_override else (padded if count_include_pad else inside)
            if divisor == 0:
                return NotImplemented               # 0/0: the mirror says so
            window = x[(slice(None), slice(None)) + tuple(slice(a, max(e, a)) for a, e in zip(lo, hi))]
            total = Nodes(r.b.sums(window.reshape(x.shape[:2] + (-1,))))
            out[(slice(None), slice(None)) + pos] = o.mul(total, o.const(sp.Rational(1, divisor))).ids
        return Nodes(out[0] if unbatched else out)
    return rule


# -- triangular linear algebra --------------------------------------------------------------------------

def _entry(a: np.ndarray, i: int, j: int) -> Nodes:
    return Nodes(a[..., i, j])


def cholesky(r, a, *, upper=False):
    if not isinstance(a, Nodes) or not isinstance(upper, (bool, np.bool_)):
        return NotImplemented
    A = a.ids
    if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        return NotImplemented
    o = Ops(r)
    n, batch = A.shape[-1], A.shape[:-2]
    half = sp.Rational(1, 2)
    sym = [[_entry(A, i, j) if i == j else o.mul(o.add(_entry(A, i, j), _entry(A, j, i)), o.const(half))
            for j in range(n)] for i in range(n)]
    low: list[list[Nodes | None]] = [[None] * n for _ in range(n)]
    inv_diag = []
    for i in range(n):
        for j in range(i):
            dot = o.total([o.mul(low[i][k], low[j][k]) for k in range(j)], batch)
            low[i][j] = o.mul(o.add(sym[i][j], o.neg(dot)), inv_diag[j])
        squares = o.total([o.pow(low[i][k], 2) for k in range(i)], batch)
        d = o.pow(o.add(sym[i][i], o.neg(squares)), half)
        low[i][i] = d
        inv_diag.append(o.pow(d, -1))
    zero = r.b.const(0)
    out = np.full(batch + (n, n), zero, dtype=np.int64)
    for i in range(n):
        for j in range(i + 1):
            out[..., i, j] = np.broadcast_to(low[i][j].ids, batch)
    return Nodes(np.swapaxes(out, -1, -2).copy() if upper else out)


def solve_triangular(r, a, b, *, upper, left=True, unitriangular=False):
    if not isinstance(a, Nodes) or not isinstance(b, Nodes):
        return NotImplemented
    if not all(isinstance(v, (bool, np.bool_)) for v in (upper, left, unitriangular)):
        return NotImplemented
    A, B = a.ids, b.ids
    if A.ndim < 2 or A.shape[-1] != A.shape[-2] or B.ndim < 2:
        return NotImplemented
    up = bool(upper)
    if not left:                                    # X A = B  <=>  Aᵀ Xᵀ = Bᵀ, Aᵀ has the other triangle
        A, B, up = np.swapaxes(A, -1, -2), np.swapaxes(B, -1, -2), not up
    vector = B.ndim == A.ndim - 1 and B.shape == A.shape[:-1]
    if vector and not left:
        return NotImplemented                       # the mirror's own reading of that form
    if vector:
        B = B[..., None]
    try:
        batch = np.broadcast_shapes(A.shape[:-2], B.shape[:-2])
    except ValueError:
        return NotImplemented
    n, k = B.shape[-2], B.shape[-1]
    if n != A.shape[-1]:
        return NotImplemented
    A = np.broadcast_to(A, batch + A.shape[-2:])
    B = np.broadcast_to(B, batch + B.shape[-2:])
    o = Ops(r)
    x: dict[tuple[int, int], Nodes] = {}
    for i in (reversed(range(n)) if up else range(n)):
        known = range(i + 1, n) if up else range(i)
        for j in range(k):
            dot = o.total([o.mul(_entry(A, i, m), x[m, j]) for m in known], batch)
            s = o.add(_entry(B, i, j), o.neg(dot))
            x[i, j] = s if unitriangular else o.mul(s, o.pow(_entry(A, i, i), -1))
    out = np.empty(batch + (n, k), dtype=np.int64)
    for (i, j), v in x.items():
        out[..., i, j] = np.broadcast_to(v.ids, batch)
    if vector:
        out = out[..., 0]
    elif not left:
        out = np.swapaxes(out, -1, -2)
    return Nodes(out)


STRUCT_RULES = {
    "cholesky": cholesky,
    "solve_triangular": solve_triangular,
    **{f"conv{nd}d": _conv(nd) for nd in (1, 2, 3)},
    **{f"avg_pool{nd}d": _avg_pool(nd) for nd in (1, 2, 3)},
}
