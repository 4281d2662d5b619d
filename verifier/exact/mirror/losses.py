"""The remaining losses of torch.nn.functional, each from the formula in its torch docs.

Hinge-like losses clamp at 0 the way torch computes them (``clamp_min(u, 0)``,
whose backward passes the gradient where u >= 0): written u * Heaviside(u, 1),
so that u = 0 takes the linear branch's derivative and the kink detector
finds the kink (a Piecewise would do the same, but SymPy rewrites a
Piecewise whose condition holds another Piecewise, such as a 2-norm, into
ITE terms the evaluators do not know). Where torch branches on a label
(``where(target == 1, ...)``) the mirror does too, with the same test, so a
target other than ±1 gets torch's value.
"""

from __future__ import annotations

import numpy as np
import sympy
import torch.nn.functional as F
from sympy import exp, log, pi

from ._arrays import add_all, as_obj, emap, extremum, piecewise, power, relation, sym_number
from ._table import register
from .attention import pairwise_distance
from .nn import _check_legacy, _reduce_loss


def _clamp_min0(u):
    """max(u, 0) with torch's clamp_min convention: the gradient passes at u = 0."""
    return u * sympy.Heaviside(u, 1)


def _where(y, op, label, expr):
    """``expr`` where ``y op label`` (op: '==' or '!='), else 0, as torch's where on the target."""
    y = sym_number(y)
    cond = (sympy.Eq if op == "==" else sympy.Ne)(y, label, evaluate=bool(y.is_Number))
    return piecewise((expr, cond), (0, True))


@register("margin_ranking_loss", torch=F.margin_ranking_loss,
          doc="max(0, -y (x1 - x2) + margin), reduced")
def margin_ranking_loss(input1, input2, target, margin=0, size_average=None, reduce=None,
                        reduction="mean"):
    """Ranking hinge loss."""
    _check_legacy("margin_ranking_loss", size_average, reduce)
    m = sym_number(margin)
    losses = emap(lambda a, b, y: _clamp_min0(-y * (a - b) + m), input1, input2, target)
    return _reduce_loss(losses, reduction, "margin_ranking_loss")


@register("hinge_embedding_loss", torch=F.hinge_embedding_loss,
          doc="x where y = 1, max(0, margin - x) where y = -1 (torch adds both where y is neither)")
def hinge_embedding_loss(input, target, margin=1.0, size_average=None, reduce=None, reduction="mean"):
    """Hinge embedding loss."""
    _check_legacy("hinge_embedding_loss", size_average, reduce)
    m = sym_number(margin)

    def one(x, y):
        return _where(y, "!=", 1, _clamp_min0(m - x)) + _where(y, "!=", -1, x)

    return _reduce_loss(emap(one, input, target), reduction, "hinge_embedding_loss")


@register("soft_margin_loss", torch=F.soft_margin_loss, doc="log(1 + exp(-y x)), reduced")
def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """Two-class logistic loss."""
    _check_legacy("soft_margin_loss", size_average, reduce)
    return _reduce_loss(emap(lambda x, y: log(1 + exp(-y * x)), input, target), reduction,
                        "soft_margin_loss")


@register("triplet_margin_loss", torch=F.triplet_margin_loss,
          doc="max(d(a, p) - d(a, n) + margin, 0), d = pairwise_distance (||u - v + eps||_p); "
              "swap: d(a, n) = min(d(a, n), d(p, n))")
def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False,
                        size_average=None, reduce=None, reduction="mean"):
    """Triplet loss with torch's distance (eps added to the difference)."""
    _check_legacy("triplet_margin_loss", size_average, reduce)
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_neg = emap(lambda u, w: extremum(sympy.Min, [u, w]), d_neg,
                     pairwise_distance(positive, negative, p, eps))
    m = sym_number(margin)
    losses = emap(lambda a, b: _clamp_min0(m + a - b), d_pos, d_neg)
    return _reduce_loss(losses, reduction, "triplet_margin_loss")


def _stirling(y):
    """torch's full=True term y log y - y + log(2 pi y)/2, for targets y > 1 (0 otherwise)."""
    return piecewise((y * log(y) - y + log(2 * pi * y) / 2, relation(y, ">", 1)), (0, True))


@register("poisson_nll_loss", torch=F.poisson_nll_loss,
          doc="log_input: exp(x) - y x; else x - y log(x + eps); full adds the Stirling term for y > 1")
def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8,
                     reduce=None, reduction="mean"):
    """Poisson negative log-likelihood."""
    _check_legacy("poisson_nll_loss", size_average, reduce)
    e = sym_number(eps)
    if log_input:
        losses = emap(lambda x, y: exp(x) - y * x, input, target)
    else:
        losses = emap(lambda x, y: x - y * log(x + e), input, target)
    if full:
        losses = losses + emap(_stirling, target)
    return _reduce_loss(losses, reduction, "poisson_nll_loss")


@register("gaussian_nll_loss", torch=F.gaussian_nll_loss,
          doc="(log var + (x - y)^2 / var) / 2 (+ log(2 pi)/2 if full); torch's clamp of var at eps "
              "is not modelled")
def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """Gaussian negative log-likelihood; var has input's shape or one dim less / a last dim of 1."""
    x, y, v = as_obj(input), as_obj(target), as_obj(var)
    if v.shape != x.shape and v.ndim == x.ndim - 1:
        v = v[..., None]
    const = log(2 * pi) / 2 if full else sympy.S.Zero
    losses = emap(lambda a, b, s: (log(s) + (a - b) ** 2 / s) / 2 + const, x, y, v)
    return _reduce_loss(losses, reduction, "gaussian_nll_loss")


@register("multilabel_soft_margin_loss", torch=F.multilabel_soft_margin_loss,
          doc="-(1/C) sum_c w_c (y_c log sigmoid(x_c) + (1 - y_c) log sigmoid(-x_c)) per sample, reduced")
def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None,
                                reduction="mean"):
    """Multi-label one-versus-all logistic loss; log sigmoid(x) = -log(1 + exp(-x))."""
    _check_legacy("multilabel_soft_margin_loss", size_average, reduce)
    x = as_obj(input)
    terms = emap(lambda a, y: y * log(1 + exp(-a)) + (1 - y) * log(1 + exp(a)), x, target)
    if weight is not None:
        terms = terms * as_obj(weight)
    per = np.empty(x.shape[:-1], dtype=object)
    for idx in np.ndindex(per.shape):
        per[idx] = add_all(list(terms[idx])) / x.shape[-1]
    return _reduce_loss(per, reduction, "multilabel_soft_margin_loss")


_EPSILON = sym_number(1e-12)   # torch's cosine_embedding_loss adds this to both squared norms


@register("cosine_embedding_loss", torch=F.cosine_embedding_loss,
          doc="1 - cos(x1, x2) where y = 1, max(0, cos - margin) where y = -1; cos over dim 1 with "
              "torch's 1e-12 added to each squared norm")
def cosine_embedding_loss(input1, input2, target, margin=0, size_average=None, reduce=None,
                          reduction="mean"):
    """Cosine embedding loss."""
    _check_legacy("cosine_embedding_loss", size_average, reduce)
    a, b = as_obj(input1), as_obj(input2)
    m = sym_number(margin)
    rows = a.reshape(-1, a.shape[-1]) if a.ndim > 1 else a[None]
    others = b.reshape(-1, b.shape[-1]) if b.ndim > 1 else b[None]
    labels = as_obj(target).reshape(-1)
    losses = np.empty(len(rows), dtype=object)
    for i, (u, w) in enumerate(zip(rows, others)):
        dot = add_all([p * q for p, q in zip(u, w)])
        mags = add_all([p * p for p in u] + [_EPSILON]) * add_all([q * q for q in w] + [_EPSILON])
        cos = dot * power(mags, sympy.Rational(-1, 2))
        losses[i] = _where(labels[i], "==", 1, 1 - cos) + _where(labels[i], "==", -1, _clamp_min0(cos - m))
    return _reduce_loss(losses.reshape(a.shape[:-1]) if a.ndim > 1 else losses[0], reduction,
                        "cosine_embedding_loss")
