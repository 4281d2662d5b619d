"""Order statistics and running extrema: sort, topk, kthvalue, median, nanmedian, cummax, cummin,
logcumsumexp, aminmax, std_mean, var_mean.

Sorting has no closed form in the elements, but the k-th order statistic has one:

    sorted_k = sum_i x_i [rank_i = k],  rank_i = #{j < i: x_j <= x_i} + #{j > i: x_j < x_i}

(a stable ascending sort; descending swaps the comparisons). The counts are
sums of Heaviside steps, constant between ties, so the derivative of
sorted_k is 1 for the element that lands at k and 0 for the others, which
is torch's backward (it scatters the gradient back through the indices). At
a tie the steps jump: that is the kink, found by the kink detector.

Functions that return (values, indices) in torch check the values: their
torch side returns ``.values`` (as ``max(x, dim)`` does). Those that return
two tensors of one shape (aminmax, std_mean, var_mean) are stacked on both
sides, so ``torch.aminmax(x)[0]`` is the min on both.
"""

from __future__ import annotations

import numpy as np
import sympy
import torch
from sympy import Max, Min, exp

from ._arrays import add_all, as_obj, extremum, log_of_sum, norm_dim, piecewise, reduce, scan, tie_split, unsupported
from ._table import register
from .reductions import _variance_args, mean, std, var


def _rank_select(xs, descending):
    """The list xs sorted (stable), each entry a sum of x_i times the indicator of its rank."""
    n = len(xs)
    ranks = []
    for i, xi in enumerate(xs):
        steps = []
        for j, xj in enumerate(xs):
            if j == i:
                continue
            d = (xj - xi) if descending else (xi - xj)   # xj before xi: xj <= xi (ascending)
            steps.append(sympy.Heaviside(d, 1 if j < i else 0))
        ranks.append(add_all(steps))
    out = []
    for k in range(n):
        hits = [piecewise((1, sympy.Eq(r, k, evaluate=False)), (0, True)) for r in ranks]
        out.append(add_all([x * h for x, h in zip(xs, hits)]))
    return out


#: The longest slice sorted symbolically: the rank formula builds n^2 comparisons and n^2 indicators
#: per slice (64: 8,064 of them, about 10 s on a loaded 2-core machine; 8,000 elements would be 1.3e8).
SORT_MAX = 64


def _sorted_along(x, dim, descending):
    x = as_obj(x)
    if x.ndim == 0:
        return x
    n = x.shape[norm_dim(dim, x.ndim)]
    if n > SORT_MAX:
        raise unsupported(f"sorting {n} elements along one dim is not supported: the mirror's rank formula "
                          f"grows as n^2 (over {SORT_MAX} elements it does not finish in reasonable time)",
                          hint=f"Sort at most {SORT_MAX} elements per slice, e.g. x[:{SORT_MAX}].")
    return scan(x, dim, lambda xs: _rank_select(xs, descending))


def _values(out):
    """torch's (values, indices) result -> the values, the tensor a case checks."""
    return out if isinstance(out, torch.Tensor) else out[0]


@register("sort", torch=torch.sort, finish=_values,
          doc="values sorted along dim: sorted_k = sum_i x_i [rank_i = k] (stable ranks); values only")
def sort(input, dim=-1, descending=False, stable=False):
    return _sorted_along(input, dim, bool(descending))


@register("msort", torch=torch.msort, doc="sort along dim 0 (values)")
def msort(input):
    return _sorted_along(input, 0, False)


def _take(x, dim, positions):
    x = as_obj(x)
    if x.ndim == 0:                  # torch treats a 0-d tensor as one element along dim 0 or -1
        return x
    d = norm_dim(dim, x.ndim)
    return np.take(x, positions, axis=d)


@register("topk", torch=torch.topk, finish=_values,
          doc="the k largest (or smallest) along dim, in order: the first k of the sorted values")
def topk(input, k, dim=-1, largest=True, sorted=True):
    if not sorted:
        raise unsupported("topk: sorted=False leaves the order unspecified", hint="Use sorted=True.")
    return _take(_sorted_along(input, dim, bool(largest)), dim, list(range(int(k))))


@register("kthvalue", torch=torch.kthvalue, finish=_values, doc="the k-th smallest along dim (k from 1); values")
def kthvalue(input, k, dim=-1, keepdim=False):
    out = _take(_sorted_along(input, dim, False), dim, [int(k) - 1])
    return out if keepdim or out.ndim == 0 else np.squeeze(out, axis=norm_dim(dim, as_obj(input).ndim))


def _median(input, dim, keepdim):
    x = as_obj(input)
    if dim is None:
        flat = x.reshape(-1)
        return _rank_select(list(flat), False)[(flat.size - 1) // 2]
    if x.ndim == 0:                  # torch.median(scalar, 0, keepdim=True) is the scalar, 0-d
        return x
    d = norm_dim(dim, x.ndim)
    out = _take(_sorted_along(x, d, False), d, [(x.shape[d] - 1) // 2])
    return out if keepdim else np.squeeze(out, axis=d)


@register("median", torch=torch.median, finish=_values,
          doc="the lower median, sorted[(n - 1) // 2], over all or along dim; values")
def median(input, dim=None, keepdim=False):
    return _median(input, dim, keepdim)


@register("nanmedian", torch=torch.nanmedian, finish=_values, doc="median of the non-NaN values (as median here)")
def nanmedian(input, dim=None, keepdim=False):
    return _median(input, dim, keepdim)


def _running(pick):
    """Running max/min whose gradient goes to the latest extreme element (torch's cummax uses >=)."""
    def step(xs):
        out = []
        for k in range(len(xs)):
            prefix = xs[: k + 1]
            m = extremum(pick, prefix)
            if len(prefix) == 1:
                out.append(prefix[0])
                continue
            pairs = [(v, sympy.Eq(v, m, evaluate=False)) for v in reversed(prefix[1:])]
            out.append(piecewise(*pairs, (prefix[0], True)))
        return out

    return step


@register("cummax", torch=torch.cummax, finish=_values, doc="y_k = max_{i<=k} x_i along dim (values); "
          "the gradient goes to the latest maximum, as torch")
def cummax(input, dim):
    return scan(input, dim, _running(Max))


@register("cummin", torch=torch.cummin, finish=_values, doc="y_k = min_{i<=k} x_i along dim (values); "
          "the gradient goes to the latest minimum, as torch")
def cummin(input, dim):
    return scan(input, dim, _running(Min))


@register("logcumsumexp", torch=torch.logcumsumexp, analytic=True,
          doc="y_k = log(sum_{i<=k} exp(x_i)) along dim")
def logcumsumexp(input, dim):
    def step(xs):
        es = [exp(v) for v in xs]
        return [log_of_sum(add_all(es[: k + 1])) for k in range(len(es))]

    return scan(input, dim, step)


def stacked(out):
    """torch's tuple of same-shaped results -> one stacked tensor (the mirror stacks the same way)."""
    return torch.stack(tuple(out))


@register("aminmax", torch=torch.aminmax, finish=stacked,
          doc="stack(amin, amax) over all or along dim; ties share the gradient evenly, as amin/amax")
def aminmax(input, *, dim=None, keepdim=False):
    x = as_obj(input)
    lo = reduce(x, dim, keepdim, lambda xs: tie_split(Min, xs))
    hi = reduce(x, dim, keepdim, lambda xs: tie_split(Max, xs))
    return np.stack([as_obj(lo), as_obj(hi)])


def _with_mean(spread):
    def definition(input, *args, **kwargs):
        x = as_obj(input)
        s = spread(x, *args, **kwargs)
        # var's call forms, (x, unbiased) included: torch.var_mean(x, True) is over every element
        dim, _, keepdim = _variance_args(args, dict(kwargs))
        m = mean(x, dim, keepdim) if dim is not None else mean(x)
        return np.stack([as_obj(s), as_obj(m)])

    return definition


register("std_mean", torch=torch.std_mean, finish=stacked,
         doc="stack(std, mean) with std's arguments (correction, dim, keepdim)")(_with_mean(std))
register("var_mean", torch=torch.var_mean, finish=stacked,
         doc="stack(var, mean) with var's arguments (correction, dim, keepdim)")(_with_mean(var))


@register("nansum", torch=torch.nansum, doc="sum of the non-NaN elements over dim")
def nansum(input, dim=None, keepdim=False, dtype=None):
    return reduce(input, dim, keepdim, add_all)



#: The most elements torch.mode's mirror takes: (5,) 9.7 s, (3, 5) 13.7 s, (5, 5) 95 s run end to end on a
#: 2-core machine at load ~25 (the exact side's kink detection is 60 % of it); op_db's (5, 5, 5) timed out at 60 s.
MODE_MAX = 16


def _mode_of(xs):
    """The most frequent value; among equally frequent ones the smallest; its last occurrence takes
    the gradient (torch.mode's observed choice; for distinct values it is the minimum)."""
    n = len(xs)

    def same(i, j):
        return sympy.Heaviside(xs[i] - xs[j], 1) * sympy.Heaviside(xs[j] - xs[i], 1)

    counts = [add_all([same(i, j) for j in range(n)]) for i in range(n)]
    hits = []
    for i in range(n):
        beats = []
        for j in range(n):
            if j == i:
                continue
            fewer = sympy.StrictLessThan(counts[j], counts[i], evaluate=False)
            tie = sympy.Eq(counts[j], counts[i], evaluate=False)
            larger = sympy.StrictGreaterThan(xs[j], xs[i], evaluate=False)
            earlier_same = sympy.And(sympy.Eq(xs[j], xs[i], evaluate=False)) if j < i else sympy.false
            beats.append(sympy.Or(fewer, sympy.And(tie, sympy.Or(larger, earlier_same))))
        hits.append(piecewise((1, sympy.And(*beats)), (0, True)))
    return add_all([x * h for x, h in zip(xs, hits)])


@register("mode", torch=torch.mode, finish=_values,
          doc="the most frequent value along dim (smallest among equally frequent; distinct values: the "
              "minimum); values")
def mode(input, dim=-1, keepdim=False):
    x = as_obj(input)
    if x.size > MODE_MAX:
        raise unsupported(f"mode of {x.size} elements is not supported: the mirror compares every pair of a "
                          f"slice (n^2 tie counts, n^2 conditions) and the kink detector walks them all (25 "
                          f"elements took 95 s on a loaded 2-core machine; the limit is {MODE_MAX})",
                          hint=f"Take the mode of at most {MODE_MAX} elements, e.g. x[:3] of a (5, 5) input.")
    return reduce(x, dim, keepdim, _mode_of)
