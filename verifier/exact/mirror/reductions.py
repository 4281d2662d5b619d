"""Reduction mirrors: sums, means, products, moments, norms, extrema, cumulative scans.

``dim`` follows torch: None (or ``()``) reduces everything, an int or a tuple
names axes, ``keepdim`` keeps them with size 1.
"""

from __future__ import annotations

import mpmath
import numpy as np
import sympy
import torch
from sympy import Abs, Max, Min, exp

from ._arrays import (
    add_all,
    as_obj,
    is_array_arg,
    log_of_sum,
    mul_all,
    norm_dims,
    power,
    reduce,
    reduced_count,
    scan,
    sym_number,
    tie_split,
    unsupported,
)
from ._table import register
from .decompositions import _note, notes, svdvals, to_mpf
from .elementwise import maximum, minimum

HALF = sympy.Rational(1, 2)
_NORM_HINT = ("Supported vector orders: any number, inf, -inf (written 'inf', '-inf'); matrix orders: "
              "'fro', 'nuc', 1, -1, 2, -2, inf, -inf ('nuc', 2 and -2 through the singular values, on the "
              "numeric-exact route).")


@register("sum", torch=torch.sum, analytic=True, doc="sum_i x_i over dim")
def sum_(x, dim=None, keepdim=False, dtype=None):
    """Sum over ``dim`` (all elements by default)."""
    return reduce(x, dim, keepdim, add_all)


@register("mean", torch=torch.mean, analytic=True, doc="(1/N) sum_i x_i over dim")
def mean(x, dim=None, keepdim=False, dtype=None):
    """Arithmetic mean over ``dim``."""
    n = reduced_count(as_obj(x), dim)
    return reduce(x, dim, keepdim, lambda xs: add_all(xs) / n)


@register("prod", torch=torch.prod, analytic=True, doc="prod_i x_i over dim")
def prod(x, dim=None, keepdim=False, dtype=None):
    """Product over ``dim``."""
    return reduce(x, dim, keepdim, mul_all)


def _variance_args(args, kwargs):
    """Read torch.var's call forms: (x, dim, *, correction, keepdim), (x, dim, unbiased, keepdim)
    and (x, unbiased)."""
    args = list(args)
    dim, correction, keepdim = None, sympy.S.One, False
    if args and isinstance(args[0], (bool, np.bool_)):
        correction = sympy.Integer(int(args.pop(0)))
    else:
        if args:
            dim = args.pop(0)
        if args:
            correction = sympy.Integer(int(bool(args.pop(0))))
        if args:
            keepdim = args.pop(0)
    dim = kwargs.pop("dim", dim)
    if "unbiased" in kwargs:
        correction = sympy.Integer(int(bool(kwargs.pop("unbiased"))))
    if "correction" in kwargs:
        c = kwargs.pop("correction")
        correction = sympy.S.One if c is None else sym_number(c)
    keepdim = kwargs.pop("keepdim", keepdim)
    if kwargs:
        raise unsupported(f"var/std: unexpected arguments {sorted(kwargs)}")
    return dim, correction, bool(keepdim)


def _variance(xs, correction):
    """sum (x - mean)^2 / (N - correction), with the mean built once and shared.

    The divisor goes inside the flat sum: ``Pow`` of ``sum/d`` (std = var**(1/2))
    would query every term's sign when re-evaluated, O(n) each.
    """
    n = len(xs)
    m = add_all(xs) / n
    d = n - correction
    if d <= 0:
        return sympy.nan  # torch's 0/0 (or x/0) for too few elements
    return add_all([(v - m) ** 2 / d for v in xs])


@register("var", torch=torch.var,
          doc="sum_i (x_i - mean)^2 / (N - correction), correction=1 by default (unbiased)")
def var(x, *args, **kwargs):
    """Variance with torch's ``correction`` (or legacy ``unbiased``) argument."""
    dim, correction, keepdim = _variance_args(args, kwargs)
    return reduce(x, dim, keepdim, lambda xs: _variance(xs, correction))


@register("std", torch=torch.std, doc="sqrt(var(x)), same arguments as var")
def std(x, *args, **kwargs):
    """Standard deviation: the square root of :func:`var`."""
    dim, correction, keepdim = _variance_args(args, kwargs)
    return reduce(x, dim, keepdim, lambda xs: power(_variance(xs, correction), HALF))


_INF_NAMES = {"inf": float("inf"), "-inf": float("-inf")}


def norm_order(p):
    """Normalise a norm order: infinities (also the strings 'inf', '-inf') to sympy.oo, numbers to
    SymPy numbers, other strings kept."""
    if isinstance(p, str):
        return sym_number(_INF_NAMES[p]) if p in _INF_NAMES else p
    return sym_number(p)


def inf_strings(args, kwargs):
    """A ``prepare``: the order written 'inf'/'-inf' becomes a float (the case language has no
    name for infinity)."""
    args = tuple(_INF_NAMES.get(a, a) if isinstance(a, str) else a for a in args)
    kwargs = {k: _INF_NAMES.get(v, v) if isinstance(v, str) else v for k, v in kwargs.items()}
    return args, kwargs


def _two_norm(xs):
    """sqrt(sum x^2), and 0 with derivative 0 when every x is 0 (torch's norm'(0) = 0).

    At the origin the 2-norm is a cone: no derivative, and torch returns the
    min-norm subgradient 0 (its backward masks norm == 0). The Piecewise makes
    the zero branch the active one exactly there.
    """
    s = add_all([v**2 for v in xs])
    if s.is_Number:
        return power(s, HALF)
    return sympy.Piecewise((power(s, HALF), sympy.StrictGreaterThan(s, 0, evaluate=False)),
                           (sympy.S.Zero, True), evaluate=False)


def p_norm(xs, p):
    """The p-norm of a list of elements; p = 2 as sqrt(sum x^2) (no Abs needed for reals).

    Kinks follow torch: sign(0) = 0 for p = 1, the 2-norm's derivative is 0 at
    the origin, and the inf-norms split the gradient evenly among tied |x_i|.
    """
    if p == 2 or p == "fro":
        return _two_norm(xs)
    if p == 1:
        return add_all([Abs(v) for v in xs])
    if p is sympy.oo:
        return tie_split(Max, [Abs(v) for v in xs])
    if p is sympy.S.NegativeInfinity:
        return tie_split(Min, [Abs(v) for v in xs])
    if p == 0:
        # the number of non-zero elements: piecewise constant, derivative 0 (torch's gradient too)
        return add_all([sympy.Piecewise((sympy.S.Zero, sympy.Eq(v, 0, evaluate=False)), (sympy.S.One, True),
                                        evaluate=False) for v in xs])
    if isinstance(p, sympy.Number) and p > 0 and p.is_even:
        return power(add_all([v**p for v in xs]), 1 / p)
    if isinstance(p, sympy.Number) and p.is_finite:
        return power(add_all([Abs(v) ** p for v in xs]), 1 / p)
    raise unsupported(f"vector norm order {p!r} is not supported", hint=_NORM_HINT)


@register("vector_norm", torch=torch.linalg.vector_norm, prepare=inf_strings,
          doc="(sum_i |x_i|^ord)^(1/ord) over dim; ord=inf: max |x_i|")
def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):
    """torch.linalg.vector_norm: flattens when dim is None."""
    if ord is None or isinstance(ord, str) and ord not in _INF_NAMES:
        raise unsupported(f"vector norm: ord={ord!r} is not a number", hint=_NORM_HINT)
    p = norm_order(ord)
    return reduce(x, dim, keepdim, lambda xs: p_norm(xs, p))


def _singular_norm(x, p, rows: int, cols: int, keepdim: bool):
    """'nuc' (the sum of the singular values), 2 (the largest) or -2 (the smallest) of each matrix over
    (rows, cols): svdvals on the numeric-exact route (docs/numeric-exact.md), which refuses a point
    with a repeated or zero singular value (there the norm has a kink or the route no derivative).
    An empty matrix has nuclear norm 0 (no singular values), as torch's; its 2/-2 norms are refused."""
    moved = np.moveaxis(x, (rows, cols), (-2, -1))
    if 0 in moved.shape[-2:] and p != "nuc":
        raise unsupported(f"matrix norm: ord={p} of an empty {moved.shape[-2]}x{moved.shape[-1]} matrix has no "
                          "singular value (torch returns 0 without a gradient, or raises)",
                          hint="Check a non-empty matrix, or the nuclear norm ('nuc'), which is 0 there.")
    out = np.empty(moved.shape[:-2], dtype=object)
    for idx in np.ndindex(out.shape):
        s = _svdvals(moved[idx]) if moved[idx].size else []                 # descending
        out[idx] = (add_all(list(s)) if len(s) else sympy.S.Zero) if p == "nuc" else (s[0] if p == 2 else s[-1])
    return np.expand_dims(out, axis=tuple(sorted((rows, cols)))) if keepdim else out


class _Memo(dict):
    """Results of a pure computation keyed by its exact inputs: run-time state, not part of the definition,
    so the cache's fingerprint reads its name, never its changing contents (``fingerprint.Fingerprint``)."""

    _fingerprint_by_name_ = "memo"


_SVD_MEMO: _Memo = _Memo()


def _svdvals(a):
    """svdvals of one matrix of numbers, remembered: the numeric route perturbs one element at a time,
    so every other matrix of a batch repeats (a 5x5x5 batch: 5 times fewer SVDs). A repeat notes its
    condition again, so the route's κ and its refusals are those of an uncached call."""
    if not all(sym_number(e).is_number for e in a.flat):
        return svdvals(a)                               # symbols: NumericOnly sends the case to the route
    key = (mpmath.mp.dps, a.shape, tuple(to_mpf(e) for e in a.flat))
    hit = _SVD_MEMO.get(key)
    if hit is None:
        if len(_SVD_MEMO) > 4096:
            _SVD_MEMO.clear()
        with notes() as seen:
            values = svdvals(a)
        hit = _SVD_MEMO[key] = (values, seen[-1][1] if seen else None)
    values, cond = hit
    if cond is not None:
        _note("svdvals", cond, len(values), None)
    return values


@register("matrix_norm", torch=torch.linalg.matrix_norm, prepare=inf_strings,
          doc="'fro': sqrt(sum a_ij^2); 1/inf: max column/row sum of |a_ij| (-1/-inf: min); 'nuc': sum of "
              "the singular values, 2/-2: the largest/smallest (numeric-exact route)")
def matrix_norm(x, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None):
    """torch.linalg.matrix_norm."""
    x = as_obj(x)
    p = norm_order(ord)
    if p not in ("fro", "nuc", 1, -1, 2, -2, sympy.oo, sympy.S.NegativeInfinity):
        raise unsupported(f"matrix norm: ord={ord!r} is not a matrix order", hint=_NORM_HINT)
    if not isinstance(dim, (tuple, list)) or len(dim) != 2 or x.ndim < 2:
        raise unsupported(f"matrix norm: needs 2 dims of an input with >= 2 dims, got dim={dim!r} "
                          f"on a {x.ndim}-d input", hint="Pass a 2-d (or batched) input, or a vector order.")
    if p == "fro":
        return reduce(x, dim, keepdim, lambda xs: p_norm(xs, 2))
    rows, cols = norm_dims(dim[0], x.ndim)[0], norm_dims(dim[1], x.ndim)[0]
    if p in ("nuc", 2, -2):
        return _singular_norm(x, p, rows, cols, keepdim)
    inner, outer = (rows, cols) if p in (1, -1) else (cols, rows)
    pick = Max if p in (1, sympy.oo) else Min
    sums = reduce(np.vectorize(Abs, otypes=[object])(x), inner, True, add_all)
    result = reduce(sums, outer, True, lambda xs: tie_split(pick, xs))
    return result if keepdim else np.squeeze(result, axis=(rows, cols))


@register("norm", torch=torch.norm, prepare=inf_strings,
          doc="torch.norm: p='fro' (default) or 2: sqrt(sum x^2); p=1: sum |x|; "
              "p=inf: max |x|; other p: (sum |x|^p)^(1/p); over dim (all by default)")
def norm(x, p="fro", dim=None, keepdim=False, out=None, dtype=None):
    """torch.norm, as torch/functional.py routes it: a string order other than 'fro' (or 'fro'
    over more than 2 dims) is a matrix norm over ``dim`` (all dims by default), a number
    (None: 2) a vector norm over ``dim``."""
    x = as_obj(x)
    if out is not None:
        raise unsupported("norm: out= writes into a tensor in place, which a case cannot check",
                          hint="Drop the out argument.")
    p = _INF_NAMES.get(p, p) if isinstance(p, str) else p      # 'inf' is how a case writes infinity
    if isinstance(p, str):
        if p == "fro" and (dim is None or not isinstance(dim, (tuple, list)) or len(dim) <= 2):
            return vector_norm(x, 2, dim, keepdim)
        return matrix_norm(x, p, tuple(range(x.ndim)) if dim is None else dim, keepdim)
    return vector_norm(x, 2 if p is None else p, dim, keepdim)


@register("torch.linalg.norm", torch=torch.linalg.norm, bare=False, prepare=inf_strings,
          doc="torch.linalg.norm: a matrix norm over a 2-tuple dim (or a 2-d input with ord), "
              "else a vector norm; ord=None flattens to the 2-norm")
def linalg_norm(x, ord=None, dim=None, keepdim=False, *, dtype=None):
    """torch.linalg.norm's routing between vector_norm and matrix_norm."""
    x = as_obj(x)
    ord = _INF_NAMES.get(ord, ord) if isinstance(ord, str) else ord
    if isinstance(dim, (tuple, list)) and len(dim) == 2:
        return matrix_norm(x, "fro" if ord is None else ord, dim, keepdim)
    if dim is None and ord is not None:
        if x.ndim == 2:
            return matrix_norm(x, ord, (-2, -1), keepdim)
        if x.ndim != 1:
            raise unsupported(f"torch.linalg.norm: with ord={ord!r} and dim=None the input must be 1-d or 2-d, "
                              f"not {x.ndim}-d", hint="Pass dim, as torch requires.")
    if isinstance(ord, str):
        raise unsupported(f"torch.linalg.norm: ord={ord!r} is a matrix norm and needs a 2-d input or a 2-tuple dim")
    return vector_norm(x, 2 if ord is None else ord, dim, keepdim)


@register("logsumexp", torch=torch.logsumexp, analytic=True, doc="log(sum_i exp(x_i)) over dim")
def logsumexp(x, dim=None, keepdim=False):
    """Log of the sum of exponentials (no max subtraction: the math, not the algorithm)."""
    return reduce(x, dim, keepdim, lambda xs: log_of_sum(add_all([exp(v) for v in xs])))


@register("cumsum", torch=torch.cumsum, analytic=True, doc="y_k = sum_{i<=k} x_i along dim")
def cumsum(x, dim, dtype=None):
    """Running sums along ``dim``."""
    return scan(x, dim, lambda xs: [add_all(xs[: k + 1]) for k in range(len(xs))])


@register("cumprod", torch=torch.cumprod, analytic=True, doc="y_k = prod_{i<=k} x_i along dim")
def cumprod(x, dim, dtype=None):
    """Running products along ``dim``."""
    return scan(x, dim, lambda xs: [mul_all(xs[: k + 1]) for k in range(len(xs))])


@register("amax", torch=torch.amax,
          doc="max_i x_i over dim (all by default); k tied maxima get 1/k of the gradient each")
def amax(x, dim=(), keepdim=False):
    """Maximum over ``dim``; the gradient is shared evenly among ties, as torch does."""
    return reduce(x, dim, keepdim, lambda xs: tie_split(Max, xs))


@register("amin", torch=torch.amin,
          doc="min_i x_i over dim (all by default); k tied minima get 1/k of the gradient each")
def amin(x, dim=(), keepdim=False):
    """Minimum over ``dim``; the gradient is shared evenly among ties, as torch does."""
    return reduce(x, dim, keepdim, lambda xs: tie_split(Min, xs))


def _extremum(pick, pairwise, x, args, kwargs):
    """Shared body of max/min: full reduction, reduction over one dim, or elementwise with other."""
    args = list(args)
    other = kwargs.pop("other", None)
    if args and is_array_arg(args[0]):
        other = args.pop(0)
    if other is not None:
        return pairwise(x, other)
    dim = kwargs.pop("dim", args.pop(0) if args else None)
    keepdim = kwargs.pop("keepdim", args.pop(0) if args else False)
    if dim is None and keepdim:
        raise unsupported("max/min: keepdim needs a dim")
    # Over all elements torch shares the gradient evenly among ties. With a dim
    # it returns indices and gives the whole gradient to the one index it picked,
    # which is not documented at a tie: cases with a dim should avoid ties.
    return reduce(x, dim, keepdim, lambda xs: tie_split(pick, xs))


def values(out):
    """A ``finish``: torch.max/min with a dim return (values, indices); the expression sees the values."""
    return out if isinstance(out, torch.Tensor) else out.values


@register("max", torch=torch.max, finish=values,
          doc="max over all, max over dim (values only), or elementwise max(a, b)")
def max_(x, *args, **kwargs):
    """``max(x)``, ``max(x, dim, keepdim)`` (values) or ``max(x, other)`` (elementwise)."""
    return _extremum(Max, maximum, x, args, kwargs)


@register("min", torch=torch.min, finish=values,
          doc="min over all, min over dim (values only), or elementwise min(a, b)")
def min_(x, *args, **kwargs):
    """``min(x)``, ``min(x, dim, keepdim)`` (values) or ``min(x, other)`` (elementwise)."""
    return _extremum(Min, minimum, x, args, kwargs)
