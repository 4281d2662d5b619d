"""torch.nn.functional mirrors: softmax family, losses, normalisation layers, linear.

Per-slice quantities (softmax denominators, norms, layer-norm statistics) are
built once per slice and the same SymPy object is reused by every output
element of that slice, so the expression DAG stays linear in the input size.
"""

from __future__ import annotations

import numpy as np
import sympy
import torch.nn.functional as F
from sympy import Abs, Piecewise, Rational, exp, log

from ._arrays import (
    add_all,
    as_obj,
    emap,
    index_array,
    log_of_sum,
    norm_dim,
    power,
    scalar_array,
    sym_number,
    unsupported,
)
from ._arrays import reduce as reduce_over  # `reduce` is a legacy torch parameter name here
from ._table import register
from .linalg import matmul
from .reductions import norm_order, p_norm

_REDUCTIONS = ("none", "mean", "sum")


def _implicit_softmax_dim(ndim: int) -> int:
    """torch's legacy choice of dim when softmax is called without one."""
    return 0 if ndim in (0, 1, 3) else 1


def _slice_sums(e, dim):
    """Per-slice sums of ``e`` along ``dim``, kept as size-1 dims for broadcasting."""
    return reduce_over(e, dim, True, add_all)


@register("softmax", torch=F.softmax, doc="exp(x_i) / sum_j exp(x_j) along dim")
def softmax(x, dim=None, _stacklevel=3, dtype=None):
    """Softmax; the denominator's reciprocal is one shared object per slice."""
    x = as_obj(x)
    d = _implicit_softmax_dim(x.ndim) if dim is None else dim
    e = emap(exp, x)
    return e * emap(lambda s: 1 / s, _slice_sums(e, d))


@register("log_softmax", torch=F.log_softmax, doc="x_i - log(sum_j exp(x_j)) along dim")
def log_softmax(x, dim=None, _stacklevel=3, dtype=None):
    """Log-softmax; log of the denominator shared per slice."""
    x = as_obj(x)
    d = _implicit_softmax_dim(x.ndim) if dim is None else dim
    return x - emap(log_of_sum, _slice_sums(emap(exp, x), d))


@register("softmin", torch=F.softmin, doc="exp(-x_i) / sum_j exp(-x_j) along dim")
def softmin(x, dim=None, _stacklevel=3, dtype=None):
    """Softmax of -x."""
    return softmax(-as_obj(x), dim)


def _reduce_loss(losses, reduction, name):
    """Apply a loss's ``reduction``: 'none' keeps elements, 'sum' adds, 'mean' averages."""
    losses = as_obj(losses)
    if reduction == "none":
        return losses
    if reduction == "sum":
        return scalar_array(add_all(losses.flat))
    if reduction == "mean":
        return scalar_array(add_all(losses.flat) / losses.size)
    raise unsupported(f"{name}: reduction={reduction!r} is not supported",
                      hint=f"Use one of {', '.join(map(repr, _REDUCTIONS))}.")


def _check_legacy(name, size_average, reduce_):
    if size_average is not None or reduce_ is not None:
        raise unsupported(f"{name}: size_average/reduce are deprecated; use reduction=")


def _class_dim(ndim):
    return 0 if ndim == 1 else 1


@register("nll_loss", torch=F.nll_loss,
          doc="-w[t_n] x[n, t_n]; mean divides by sum_n w[t_n]; ignore_index rows count 0")
def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    """Negative log-likelihood of class-index targets (class dim 1, or 0 for 1-d input)."""
    _check_legacy("nll_loss", size_average, reduce)
    x = as_obj(input)
    t = index_array(target)
    scores = np.moveaxis(x, _class_dim(x.ndim), -1) if x.ndim > 1 else x
    w = None if weight is None else as_obj(weight)
    losses = np.empty(t.shape, dtype=object)
    weights = []
    for idx in np.ndindex(t.shape):
        c = int(t[idx])
        if c == ignore_index:
            losses[idx] = sympy.S.Zero
            continue
        wc = sympy.S.One if w is None else w[c]
        weights.append(wc)
        losses[idx] = -wc * scores[idx + (c,)]
    if reduction == "mean":
        return scalar_array(add_all(losses.flat) / add_all(weights))
    return _reduce_loss(losses, reduction, "nll_loss")


@register("cross_entropy", torch=F.cross_entropy,
          doc="nll_loss(log_softmax(x, class dim), target); probability targets: "
              "-sum_c w_c y_c log_softmax(x)_c")
def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean", label_smoothing=0.0):
    """Cross-entropy from logits, with class-index or class-probability targets."""
    _check_legacy("cross_entropy", size_average, reduce)
    if sym_number(label_smoothing) != 0:
        raise unsupported("cross_entropy: label_smoothing is not supported")
    x = as_obj(input)
    cdim = _class_dim(x.ndim)
    logp = log_softmax(x, cdim)
    probabilities = isinstance(target, np.ndarray) and (
        target.dtype == object or np.issubdtype(target.dtype, np.floating))
    if not probabilities:
        return nll_loss(logp, target, weight, None, ignore_index, None, reduction)
    y = as_obj(target)
    terms = logp * y
    if weight is not None:
        shape = [1] * x.ndim
        shape[cdim] = -1
        terms = terms * as_obj(weight).reshape(shape)
    losses = -reduce_over(terms, cdim, False, add_all)
    return _reduce_loss(losses, reduction, "cross_entropy")


def _pointwise_loss(name, input, target, f, reduction):
    return _reduce_loss(emap(f, input, target), reduction, name)


@register("mse_loss", torch=F.mse_loss, doc="(x - y)^2, reduced")
def mse_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """Mean squared error."""
    _check_legacy("mse_loss", size_average, reduce)
    return _pointwise_loss("mse_loss", input, target, lambda u, v: (u - v) ** 2, reduction)


@register("l1_loss", torch=F.l1_loss, doc="|x - y|, reduced")
def l1_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """Mean absolute error."""
    _check_legacy("l1_loss", size_average, reduce)
    return _pointwise_loss("l1_loss", input, target, lambda u, v: Abs(u - v), reduction)


@register("smooth_l1_loss", torch=F.smooth_l1_loss,
          doc="d^2/(2 beta) if |d| < beta else |d| - beta/2, d = x - y; beta=0: |d|")
def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """Smooth L1 (quadratic near zero, linear beyond beta)."""
    _check_legacy("smooth_l1_loss", size_average, reduce)
    b = sym_number(beta)
    if b == 0:
        return l1_loss(input, target, reduction=reduction)
    f = lambda u, v: Piecewise(((u - v) ** 2 / (2 * b), Abs(u - v) < b), (Abs(u - v) - b / 2, True))
    return _pointwise_loss("smooth_l1_loss", input, target, f, reduction)


@register("huber_loss", torch=F.huber_loss,
          doc="d^2/2 if |d| < delta else delta (|d| - delta/2), d = x - y")
def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    """Huber loss (delta * smooth_l1_loss with beta = delta)."""
    if weight is not None:
        raise unsupported("huber_loss: weight is not supported")
    k = sym_number(delta)
    f = lambda u, v: Piecewise(((u - v) ** 2 / 2, Abs(u - v) < k), (k * (Abs(u - v) - k / 2), True))
    return _pointwise_loss("huber_loss", input, target, f, reduction)


def _weighted(losses, weight):
    return losses if weight is None else losses * as_obj(weight)


@register("binary_cross_entropy", torch=F.binary_cross_entropy, domain=(0.0, 1.0),
          doc="-w (y log x + (1 - y) log(1 - x)); torch's clamp of log at -100 is not modelled")
def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction="mean"):
    """Binary cross-entropy of probabilities in (0, 1)."""
    _check_legacy("binary_cross_entropy", size_average, reduce)
    losses = emap(lambda p, y: -(y * log(p) + (1 - y) * log(1 - p)), input, target)
    return _reduce_loss(_weighted(losses, weight), reduction, "binary_cross_entropy")


@register("binary_cross_entropy_with_logits", torch=F.binary_cross_entropy_with_logits,
          doc="w (pw y log(1 + exp(-x)) + (1 - y) log(1 + exp(x))), pw = pos_weight")
def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,
                                     reduction="mean", pos_weight=None):
    """Binary cross-entropy on logits: log sigmoid(x) = -log(1 + exp(-x))."""
    _check_legacy("binary_cross_entropy_with_logits", size_average, reduce)
    pw = sympy.S.One if pos_weight is None else pos_weight
    losses = emap(lambda x, y, p: p * y * log(1 + exp(-x)) + (1 - y) * log(1 + exp(x)),
                  input, target, pw)
    return _reduce_loss(_weighted(losses, weight), reduction, "binary_cross_entropy_with_logits")


@register("kl_div", torch=F.kl_div,
          doc="y (log y - x) (log_target: exp(y) (y - x)), x = log-probabilities; "
              "'batchmean' divides the sum by the batch size")
def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """KL divergence with torch's argument order (input is log q, target is p or log p)."""
    _check_legacy("kl_div", size_average, reduce)
    if log_target:
        losses = emap(lambda x, y: exp(y) * (y - x), input, target)
    else:
        losses = emap(lambda x, y: y * (log(y) - x), input, target)
    if reduction == "batchmean":
        x = as_obj(input)
        total = add_all(losses.flat)
        return scalar_array(total / x.shape[0] if x.ndim else total)
    return _reduce_loss(losses, reduction, "kl_div")


@register("cosine_similarity", torch=F.cosine_similarity,
          doc="sum x1 x2 / (||x1|| ||x2||) along dim (eps guard not modelled)")
def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """Cosine of the angle between x1 and x2 along ``dim``, after broadcasting."""
    a, b = np.broadcast_arrays(as_obj(x1), as_obj(x2))
    d = norm_dim(dim, a.ndim)
    dots = reduce_over(a * b, d, False, add_all)
    na = reduce_over(a, d, False, lambda xs: p_norm(xs, 2))
    nb = reduce_over(b, d, False, lambda xs: p_norm(xs, 2))
    return emap(lambda n, u, v: n / (u * v), dots, na, nb)


@register("normalize", torch=F.normalize,
          doc="x / ||x||_p along dim (p=2, dim=1 by default; eps guard not modelled)")
def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    """Scale slices to unit p-norm; one shared reciprocal norm per slice."""
    x = as_obj(input)
    order = norm_order(p)
    norms = reduce_over(x, norm_dim(dim, x.ndim), True, lambda xs: p_norm(xs, order))
    return x * emap(lambda n: 1 / n, norms)


@register("layer_norm", torch=F.layer_norm,
          doc="(x - mean) / sqrt(var + eps) * weight + bias over the last len(normalized_shape) "
              "dims, biased variance")
def layer_norm(input, normalized_shape, weight=None, bias=None, eps=Rational(1, 10**5)):
    """Layer normalisation; eps is part of the definition (it changes the value)."""
    x = as_obj(input)
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(shape)
    if tuple(x.shape[x.ndim - k:]) != tuple(int(s) for s in shape):
        raise unsupported(f"layer_norm: normalized_shape {shape} does not end input shape "
                          f"{x.shape}")
    dims = tuple(range(x.ndim - k, x.ndim))
    n = int(np.prod(shape))
    e = sym_number(eps)
    centred = x - reduce_over(x, dims, True, lambda xs: add_all(xs) / n)
    # var + eps as one flat sum: a two-term Add (sum/n + eps) makes SymPy ask
    # whether either term is infinite when raising it to a power, a query
    # that costs O(n) per term on this expression.
    var_eps = reduce_over(centred, dims, True, lambda cs: add_all([c**2 / n for c in cs] + [e]))
    out = centred * emap(lambda v: power(v, Rational(-1, 2)), var_eps)
    if weight is not None:
        out = out * as_obj(weight)
    if bias is not None:
        out = out + as_obj(bias)
    return out


@register("linear", torch=F.linear, analytic=True, doc="x W^T + b")
def linear(input, weight, bias=None):
    """Affine map with torch's (out_features, in_features) weight layout."""
    w = as_obj(weight)
    out = matmul(input, w.T if w.ndim == 2 else w)
    return out if bias is None else as_obj(out) + as_obj(bias)
