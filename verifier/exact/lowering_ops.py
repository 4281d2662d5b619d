"""Lowering rules for losses, convolutions, pooling and triangular linear algebra (used by
:mod:`verifier.exact.lowering`).

Each rule writes the mirror's definition (``verifier/exact/mirror``) as tape nodes, by numpy index
arithmetic over node arrays, instead of running the mirror's SymPy definition over one symbol per
element (the fallback, :meth:`~verifier.exact.lowering.LoweringReading._by_sympy`):

* pointwise losses (``mse_loss``, ``l1_loss``, ``smooth_l1_loss``, ``huber_loss``, the binary
  cross-entropies, ``soft_margin_loss``, ``margin_ranking_loss``, ``hinge_embedding_loss``,
  ``poisson_nll_loss``): the mirror's own definition evaluated once on one symbol per tensor argument
  (SymPy's per-element formula, a template cached per parameter set), copied per element, reduced;
* ``nll_loss``, ``cross_entropy`` (class-index and probability targets): ``log_softmax`` by the
  per-slice rule, the target's entries gathered by index, ``-w_c`` products, one sum node;
* ``conv1d/2d/3d``: every output ``bias[o] + Σ_(c,k) w[o,c,k] x[n, c, p·stride − pad + k·dilation]``
  gathered at once from a padded index array (padding terms are the constant 0);
* ``avg_pool1d/2d/3d``: one sum per window times ``1/divisor``, the windows and divisors as the
  mirror computes them;
* ``cholesky`` (Cholesky–Banachiewicz on ``(A + Aᵀ)/2``) and ``solve_triangular`` (forward or back
  substitution over the triangle torch reads): the mirror's recurrences over node arrays, every
  batch matrix at once.

A rule returns ``NotImplemented`` for any argument form it does not read (a legacy keyword, a
constant weight, a target out of range, a shape error...): the mirror's SymPy definition then
runs, and reports the error in its own words. The per-element SymPy route stays the second route
of every small case (``tests/test_lowering.py`` compares both on every built-in case).
"""

from __future__ import annotations

import inspect
import math
import numbers

import numpy as np
import sympy as sp

from verifier.errors import ExpressionError

from . import mirror
from .mirror import conv as mconv
from .mirror import pooling as mpool
from .tape import ADD, MUL, POW
from .tape_builder import Nodes, template

_REDUCTIONS = ("none", "sum", "mean")


class _Ops:
    """Elementwise arithmetic on node arrays of one builder (broadcasting like numpy)."""

    def __init__(self, r) -> None:
        self.r, self.b = r, r.b

    def const(self, value) -> Nodes:
        return Nodes(np.array(self.b.const(value), dtype=np.int64))

    def add(self, a: Nodes, b: Nodes) -> Nodes:
        return self.b.elementwise(ADD, a, b)

    def mul(self, a: Nodes, b: Nodes) -> Nodes:
        return self.b.elementwise(MUL, a, b)

    def neg(self, a: Nodes) -> Nodes:
        return self.mul(self.const(sp.Integer(-1)), a)

    def pow(self, a: Nodes, exponent) -> Nodes:
        return self.b.elementwise(POW, a, self.const(exponent))

    def total(self, terms: list[Nodes], shape) -> Nodes:
        """One sum node per element over a list of equally shaped node arrays (0 for no terms)."""
        if not terms:
            return Nodes(np.full(shape, self.b.const(0), dtype=np.int64))
        stacked = np.stack(np.broadcast_arrays(*[t.ids for t in terms]), axis=-1)
        return Nodes(self.b.sums(stacked))


def _number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


# -- losses --------------------------------------------------------------------------------------------

def _reduce_loss(o: _Ops, losses: Nodes, reduction: str) -> Nodes:
    if reduction == "none":
        return losses
    total = Nodes(o.b.sums(losses.ids.reshape(1, -1))[0])
    if reduction == "sum":
        return total
    return o.mul(total, o.const(sp.Rational(1, max(losses.ids.size, 1))))


def _nll(o: _Ops, x: Nodes, target, weight, ignore_index, reduction):
    """nll_loss of log-probabilities ``x`` (class dim 1, or 0 when 1-d) as the mirror writes it."""
    if not isinstance(target, np.ndarray) or not np.issubdtype(target.dtype, np.integer):
        return NotImplemented
    if weight is not None and not isinstance(weight, Nodes) or reduction not in _REDUCTIONS:
        return NotImplemented
    ids = x.ids
    if ids.ndim == 0:
        return NotImplemented
    scores = np.moveaxis(ids, 1, -1) if ids.ndim > 1 else ids
    classes = scores.shape[-1]
    if target.shape != scores.shape[:-1] or (weight is not None and weight.shape != (classes,)):
        return NotImplemented
    t = target.astype(np.int64)
    kept = t != ignore_index
    if np.any(kept & ((t < 0) | (t >= classes))):
        return NotImplemented                       # the mirror reports the bad class index
    zero = o.b.const(0)
    picked = np.take_along_axis(scores, np.where(kept, t, 0)[..., None], axis=-1)[..., 0]
    if weight is None:
        terms = o.neg(Nodes(picked[kept]))
        w_kept = None
    else:
        w_kept = Nodes(weight.ids[t[kept]])
        terms = o.neg(o.mul(w_kept, Nodes(picked[kept])))
    losses = np.full(t.shape, zero, dtype=np.int64)
    losses[kept] = terms.ids
    if reduction != "mean":
        return _reduce_loss(o, Nodes(losses), reduction)
    if not kept.any():
        return NotImplemented                       # 0/0: the mirror says so
    total = Nodes(o.b.sums(losses.reshape(1, -1))[0])
    if w_kept is None:
        return o.mul(total, o.const(sp.Rational(1, int(kept.sum()))))
    return o.mul(total, o.pow(Nodes(o.b.sums(w_kept.ids.reshape(1, -1))[0]), sp.Integer(-1)))


def nll_loss(r, input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    if not isinstance(input, Nodes) or size_average is not None or reduce is not None:
        return NotImplemented
    if not isinstance(ignore_index, numbers.Integral):
        return NotImplemented
    return _nll(_Ops(r), input, target, weight, int(ignore_index), reduction)


def cross_entropy(r, input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean", label_smoothing=0.0):
    if not isinstance(input, Nodes) or size_average is not None or reduce is not None:
        return NotImplemented
    if not _number(label_smoothing) or label_smoothing != 0 or not isinstance(ignore_index, numbers.Integral):
        return NotImplemented
    if input.ids.ndim == 0 or reduction not in _REDUCTIONS:
        return NotImplemented
    o = _Ops(r)
    cdim = 0 if input.ids.ndim == 1 else 1
    logp = r._per_slice("log_softmax", input, cdim)
    if logp is NotImplemented:
        return NotImplemented
    if isinstance(target, np.ndarray) and np.issubdtype(target.dtype, np.integer):
        return _nll(o, logp, target, weight, int(ignore_index), reduction)
    if not isinstance(target, Nodes) or (weight is not None and not isinstance(weight, Nodes)):
        return NotImplemented                       # probabilities as constants: the mirror reads them
    try:
        np.broadcast_shapes(logp.shape, target.shape)
    except ValueError:
        return NotImplemented
    terms = o.mul(logp, target)
    if weight is not None:
        shape = [1] * input.ids.ndim
        shape[cdim] = -1
        if weight.ids.size != input.shape[cdim] or weight.ids.ndim != 1:
            return NotImplemented
        terms = o.mul(terms, Nodes(weight.ids.reshape(shape)))
    if terms.ids.ndim != input.ids.ndim:
        return NotImplemented
    summed = Nodes(o.b.sums(np.moveaxis(terms.ids, cdim, -1)))
    return _reduce_loss(o, o.neg(summed), reduction)


#: Losses whose mirror applies one scalar formula per (broadcast) element, then the reduction.
POINTWISE_LOSSES = ("mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "binary_cross_entropy",
                    "binary_cross_entropy_with_logits", "soft_margin_loss", "margin_ranking_loss",
                    "hinge_embedding_loss", "poisson_nll_loss")


def _pointwise_loss(name):
    """The mirror's loss evaluated once on one symbol per tensor argument (reduction='sum' of one
    element: the per-element formula, SymPy's template, cached per parameter set), copied per broadcast
    element by index arithmetic, then the case's reduction."""
    def rule(r, *args, **kwargs):
        definition = getattr(mirror.FUNCTIONS[name].sym, "__wrapped__", None)
        try:
            bound = inspect.signature(definition).bind(*args, **kwargs)
        except (TypeError, ValueError):
            return NotImplemented
        bound.apply_defaults()
        given = bound.arguments
        if given.get("reduction") not in _REDUCTIONS or any(given.get(k) is not None for k in ("size_average", "reduce")):
            return NotImplemented
        values = list(given.values())
        if any(isinstance(v, (np.ndarray, list, tuple)) for v in values) or not isinstance(values[0], Nodes):
            return NotImplemented                   # a constant tensor argument: the mirror reads it
        try:
            np.broadcast_shapes(*[v.shape for v in values if isinstance(v, Nodes)])
        except ValueError:
            return NotImplemented
        reduction = given["reduction"]
        call = {**given, "reduction": "sum"}        # on scalars: the one element's loss
        tape, slots = template(name, [], call)
        losses = r.b.instantiate(tape, [call[k] for k in slots])
        return _reduce_loss(_Ops(r), losses, reduction)
    return rule


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
        o = _Ops(r)
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
    o = _Ops(r)
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
    o = _Ops(r)
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


RULES = {
    "nll_loss": nll_loss,
    "cross_entropy": cross_entropy,
    "cholesky": cholesky,
    "solve_triangular": solve_triangular,
    **{f"conv{nd}d": _conv(nd) for nd in (1, 2, 3)},
    **{f"avg_pool{nd}d": _avg_pool(nd) for nd in (1, 2, 3)},
    **{name: _pointwise_loss(name) for name in POINTWISE_LOSSES},
}
