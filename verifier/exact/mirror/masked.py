"""The ``torch.masked`` namespace: reductions and normalizations over the unmasked elements.

torch's documentation of every masked op (``help(torch.masked.sum)``) defines it
the same way: ``mask`` (a bool tensor broadcastable to the input, of no more
dimensions) marks the valid elements; "if a mask element is True the element is
included in the computation, otherwise it is ignored". Each mirror below is
that definition: the operation over the list of unmasked elements of a slice.

Where the documentation calls the output *undefined* (a fully masked-out slice,
or the masked-out positions of a normalization), the mirror gives the value
torch's strided implementation returns, honestly, so that both sides compare
the same numbers:

* a fully masked reduction: the identity of the operation (``sum`` 0, ``prod``
  1, ``amax``/``logsumexp`` -inf, ``amin`` +inf, ``norm`` 0, or +inf for
  ``ord=-inf``); ``mean``/``median``/``var``/``std`` (no identity) nan;
* ``cumsum``/``cumprod``: a masked-out element counts as 0 / 1, so its output is
  the running value up to it;
* ``softmax``/``softmin`` give 0 at a masked-out position, ``log_softmax``
  -inf, and a fully masked slice nan throughout; ``normalize`` gives 0 at a
  masked-out position (its norm is then 0, and max(0, eps) = eps);
* ``logaddexp(a, b, input_mask, other_mask)``: a masked-out operand is -inf
  (the identity), so one masked side gives the other, both give -inf.

A constant output (an identity, 0, -inf, nan) has derivative 0; a nan or inf
output is the outcome ``non_finite`` unless the case accepts it. PyTorch's own
gradient tests zero these positions first (``torch.where(output_mask, out, 0)``,
the OpInfo gradcheck wrapper), which a case can write too (docs/cases.md).
"""

from __future__ import annotations

import numpy as np
import sympy
import torch
from sympy import Max, Min, exp

from ._arrays import (
    add_all,
    as_obj,
    emap,
    log_of_sum,
    mul_all,
    norm_dim,
    power,
    reduce,
    scan,
    sym_number,
    tie_split,
    unsupported,
)
from ._table import register
from .reductions import HALF, inf_strings, norm_order, p_norm
from .selection import _rank_select

_OUT = object()          # a masked-out element in the object array; never reaches SymPy
_MASK_HINT = "Pass mask= a bool tensor broadcastable to the input (of no more dimensions than the input)."
_SOURCE = "torch.masked: the operation over the unmasked elements (help(torch.masked.{}))"


def _mask(x: np.ndarray, mask, name: str = "mask") -> np.ndarray:
    """The mask as a bool array of x's shape (torch's broadcasting; None: every element valid)."""
    if mask is None:
        return np.ones(x.shape, dtype=bool)
    m = np.asarray(mask, dtype=bool)
    if m.ndim > x.ndim:
        raise unsupported(f"torch.masked: {name} has {m.ndim} dims, more than the input's {x.ndim}", hint=_MASK_HINT)
    try:
        return np.broadcast_to(m, x.shape)
    except ValueError:
        raise unsupported(f"torch.masked: {name} of shape {m.shape} does not broadcast to the input's {x.shape}",
                          hint=_MASK_HINT) from None


def _marked(x, mask) -> np.ndarray:
    """x as an object array with every masked-out element replaced by the marker ``_OUT``."""
    x = as_obj(x)
    out = x.copy()
    out[~_mask(x, mask)] = _OUT
    return out


def _filled(x, mask, identity) -> np.ndarray:
    """x with every masked-out element replaced by ``identity`` (torch's definition for sums, products)."""
    x = as_obj(x)
    out = x.copy()
    out[~_mask(x, mask)] = sym_number(identity)
    return out


def _over_valid(x, mask, dim, keepdim, combine, empty):
    """Reduce ``dim`` with ``combine(unmasked elements)``; ``empty`` where a slice has none."""
    def one(xs):
        valid = [v for v in xs if v is not _OUT]
        return combine(valid) if valid else sym_number(empty)
    return reduce(_marked(x, mask), dim, bool(keepdim), one)


def _slices(x, mask, dim, step):
    """Apply ``step(unmasked elements) -> their outputs`` along ``dim``; masked-out positions get
    ``step``'s ``None`` entry (see the callers), a fully masked slice nan."""
    x = as_obj(x)
    m = _mask(x, mask)
    if x.ndim == 0:
        return emap(lambda v: step([v])[0][0] if m[()] else sympy.nan, x)
    axis = norm_dim(dim, x.ndim)
    xs, ms = np.moveaxis(x, axis, -1), np.moveaxis(m, axis, -1)
    out = np.empty(xs.shape, dtype=object)
    for idx in np.ndindex(xs.shape[:-1]):
        valid = [v for v, keep in zip(xs[idx], ms[idx]) if keep]
        if not valid:
            out[idx] = [sympy.nan] * xs.shape[-1]
            continue
        values, fill = step(valid)
        it = iter(values)
        out[idx] = [next(it) if keep else fill for keep in ms[idx]]
    return np.moveaxis(out, -1, axis)


@register("torch.masked.sum", torch=torch.masked.sum, bare=False, analytic=True, doc=_SOURCE.format("sum")
          + ": sum_i x_i over the unmasked i along dim; 0 where all are masked out")
def masked_sum(input, dim=None, *, keepdim=False, dtype=None, mask=None):
    return _over_valid(input, mask, dim, keepdim, add_all, 0)


@register("torch.masked.prod", torch=torch.masked.prod, bare=False, analytic=True, doc=_SOURCE.format("prod")
          + ": prod_i x_i over the unmasked i along dim; 1 where all are masked out")
def masked_prod(input, dim=None, *, keepdim=False, dtype=None, mask=None):
    return _over_valid(input, mask, dim, keepdim, mul_all, 1)


@register("torch.masked.cumsum", torch=torch.masked.cumsum, bare=False, analytic=True,
          doc=_SOURCE.format("cumsum") + ": y_k = sum of the unmasked x_i, i <= k, along dim (at every k)")
def masked_cumsum(input, dim, *, dtype=None, mask=None):
    return scan(_filled(input, mask, 0), dim, lambda xs: [add_all(xs[: k + 1]) for k in range(len(xs))])


@register("torch.masked.cumprod", torch=torch.masked.cumprod, bare=False, analytic=True,
          doc=_SOURCE.format("cumprod") + ": y_k = product of the unmasked x_i, i <= k, along dim (at every k)")
def masked_cumprod(input, dim, *, dtype=None, mask=None):
    return scan(_filled(input, mask, 1), dim, lambda xs: [mul_all(xs[: k + 1]) for k in range(len(xs))])


@register("torch.masked.amax", torch=torch.masked.amax, bare=False,
          doc=_SOURCE.format("amax") + ": max of the unmasked x_i along dim (k ties share the gradient, "
              "1/k each); -inf where all are masked out")
def masked_amax(input, dim=None, *, keepdim=False, dtype=None, mask=None):
    return _over_valid(input, mask, dim, keepdim, lambda xs: tie_split(Max, xs), float("-inf"))


@register("torch.masked.amin", torch=torch.masked.amin, bare=False,
          doc=_SOURCE.format("amin") + ": min of the unmasked x_i along dim (k ties share the gradient, "
              "1/k each); +inf where all are masked out")
def masked_amin(input, dim=None, *, keepdim=False, dtype=None, mask=None):
    return _over_valid(input, mask, dim, keepdim, lambda xs: tie_split(Min, xs), float("inf"))


@register("torch.masked.mean", torch=torch.masked.mean, bare=False, analytic=True,
          doc=_SOURCE.format("mean") + ": (1/N) sum of the N unmasked x_i along dim; nan where N = 0")
def masked_mean(input, dim=None, *, keepdim=False, dtype=None, mask=None):
    return _over_valid(input, mask, dim, keepdim, lambda xs: add_all(xs) / len(xs), sympy.nan)


@register("torch.masked.median", torch=torch.masked.median, bare=False,
          doc=_SOURCE.format("median") + ": the lower median sorted[(N - 1) // 2] of the N unmasked x_i "
              "along one dim (-1 by default); nan where N = 0")
def masked_median(input, dim=-1, *, keepdim=False, dtype=None, mask=None):
    x = as_obj(input)
    return _over_valid(x, mask, norm_dim(dim, x.ndim), keepdim,
                       lambda xs: _rank_select(xs, False)[(len(xs) - 1) // 2], sympy.nan)


@register("torch.masked.logsumexp", torch=torch.masked.logsumexp, bare=False, analytic=True,
          doc=_SOURCE.format("logsumexp") + ": log sum exp(x_i) over the unmasked i along dim; "
              "-inf where all are masked out")
def masked_logsumexp(input, dim=None, *, keepdim=False, dtype=None, mask=None):
    return _over_valid(input, mask, dim, keepdim, lambda xs: log_of_sum(add_all([exp(v) for v in xs])),
                       float("-inf"))


@register("torch.masked.logaddexp", torch=torch.masked.logaddexp, bare=False, elementwise=True, analytic=True,
          doc="torch.masked.logaddexp: log(exp(a) + exp(b)) over the valid operands of each element "
              "(help(torch.masked.logaddexp)): one masked out gives the other, both -inf")
def masked_logaddexp(input, other, *, dtype=None, input_mask=None, other_mask=None):
    a, b = as_obj(input), as_obj(other)
    a, b = _marked(a, input_mask), _marked(b, other_mask)        # each mask broadcasts to its own operand

    def one(u, v):
        valid = [w for w in (u, v) if w is not _OUT]
        if not valid:
            return sympy.S.NegativeInfinity
        return valid[0] if len(valid) == 1 else sympy.log(exp(u) + exp(v))
    return emap(one, a, b)


@register("torch.masked.norm", torch=torch.masked.norm, bare=False, prepare=inf_strings,
          doc=_SOURCE.format("norm") + ": (sum |x_i|^ord)^(1/ord) over the unmasked i along dim (inf: max |x_i|,"
              " -inf: min); 0 where all are masked out (+inf for ord=-inf)")
def masked_norm(input, ord=2.0, dim=None, *, keepdim=False, dtype=None, mask=None):
    if ord is None or isinstance(ord, str) and ord not in ("inf", "-inf"):
        raise unsupported(f"torch.masked.norm: ord={ord!r} is not a number", hint="Pass a number, 'inf' or '-inf'.")
    p = norm_order(ord)
    return _over_valid(input, mask, dim, keepdim, lambda xs: p_norm(xs, p),
                       float("inf") if p is sympy.S.NegativeInfinity else 0)


def _variance_of(xs, correction, root):
    """sum (x - mean)^2 / max(N - correction, 0) over the N unmasked elements (torch's definition)."""
    n = len(xs)
    m = add_all(xs) / n
    d = n - correction
    if d <= 0:
        # torch divides by max(N - c, 0) = 0: 0/0 = nan for one element, +inf for a positive sum
        return sympy.nan if n == 1 else sympy.oo
    v = add_all([(x - m) ** 2 / d for x in xs])
    return power(v, HALF) if root else v


def _std_var(name, root):
    def definition(input, dim=None, unbiased=None, *, correction=None, keepdim=False, dtype=None, mask=None):
        if unbiased is not None and correction is not None:
            raise unsupported(f"torch.masked.{name}: pass unbiased or correction, not both")
        c = sympy.S.One
        if unbiased is not None:
            c = sympy.Integer(int(bool(unbiased)))
        if correction is not None:
            c = sym_number(correction)
        return _over_valid(input, mask, dim, keepdim, lambda xs: _variance_of(xs, c, root), sympy.nan)
    return definition


register("torch.masked.var", torch=torch.masked.var, bare=False,
         doc=_SOURCE.format("var") + ": sum (x_i - mean)^2 / max(N - correction, 0) over the N unmasked x_i "
             "(correction 1 by default, unbiased=False: 0); nan where N = 0")(_std_var("var", False))
register("torch.masked.std", torch=torch.masked.std, bare=False,
         doc=_SOURCE.format("std") + ": sqrt of torch.masked.var, same arguments")(_std_var("std", True))


def _softmax_step(sign):
    def step(xs):
        e = [exp(sign * v) for v in xs]
        inv = 1 / add_all(e)
        return [v * inv for v in e], sympy.S.Zero
    return step


@register("torch.masked.softmax", torch=torch.masked.softmax, bare=False,
          doc=_SOURCE.format("softmax") + ": exp(x_i) / sum_j exp(x_j) over the unmasked j of the slice along "
              "dim; 0 at a masked-out position, nan in a fully masked slice")
def masked_softmax(input, dim, *, dtype=None, mask=None):
    return _slices(input, mask, dim, _softmax_step(1))


@register("torch.masked.softmin", torch=torch.masked.softmin, bare=False,
          doc=_SOURCE.format("softmin") + ": exp(-x_i) / sum_j exp(-x_j) over the unmasked j along dim; "
              "0 at a masked-out position, nan in a fully masked slice")
def masked_softmin(input, dim, *, dtype=None, mask=None):
    return _slices(input, mask, dim, _softmax_step(-1))


@register("torch.masked.log_softmax", torch=torch.masked.log_softmax, bare=False,
          doc=_SOURCE.format("log_softmax") + ": x_i - log sum_j exp(x_j) over the unmasked j along dim; "
              "-inf at a masked-out position, nan in a fully masked slice")
def masked_log_softmax(input, dim, *, dtype=None, mask=None):
    def step(xs):
        lse = log_of_sum(add_all([exp(v) for v in xs]))
        return [v - lse for v in xs], sympy.S.NegativeInfinity
    return _slices(input, mask, dim, step)


@register("torch.masked.normalize", torch=torch.masked.normalize, bare=False, prepare=inf_strings,
          doc=_SOURCE.format("normalize") + ": x_i / max(||x||_ord, eps), the norm over the unmasked j of the "
              "slice along dim; 0 at a masked-out position")
def masked_normalize(input, ord, dim, *, eps=1e-12, dtype=None, mask=None):
    x = as_obj(input)
    floor = sym_number(eps)
    m = _mask(x, mask)
    norms = masked_norm(x, ord, norm_dim(dim, x.ndim), keepdim=True, mask=m)
    scale = emap(lambda n: 1 / Max(n, floor), norms)
    return np.where(m, x * scale, sympy.S.Zero)
