"""Normalisation layers: batch_norm (training and eval), instance_norm, group_norm, rms_norm.

All are (x - mean) / sqrt(var + eps) over some set of elements, with the
biased variance (divided by the count), as the torch docs define them
(``torch.nn.BatchNorm2d``: "the standard-deviation is calculated via the
biased estimator"); rms_norm is x / sqrt(mean(x^2) + eps). With running
statistics (batch_norm in eval, instance_norm with use_input_stats=False)
the mean and variance are the given constants. eps changes the value and is
part of the definition. Statistics are one shared object per slice so the
expression graph stays linear in the input size.
"""

from __future__ import annotations

import numpy as np
import sympy
import torch
import torch.nn.functional as F
from sympy import Abs, Rational

from ._arrays import add_all, as_obj, emap, norm_dim, piecewise, power, relation, sym_number, unsupported
from ._arrays import reduce as reduce_over
from ._table import register
from .reductions import norm_order, p_norm

EPS = Rational(1, 10**5)


def standardise(x, dims, eps) -> np.ndarray:
    """(x - mean) / sqrt(biased var + eps) over ``dims`` (kept for broadcasting).

    var + eps is built as one flat sum: a two-term Add (sum/n + eps) makes
    SymPy ask whether either term is infinite when raising it to a power, a
    query that costs O(n) per term on this expression.
    """
    x = as_obj(x)
    n = int(np.prod([x.shape[d] for d in dims]))
    e = sym_number(eps)
    centred = x - reduce_over(x, dims, True, lambda xs: add_all(xs) / n)
    var_eps = reduce_over(centred, dims, True, lambda cs: add_all([c**2 / n for c in cs] + [e]))
    return centred * emap(lambda v: power(v, Rational(-1, 2)), var_eps)


def _channel_shape(x):
    return (1, -1) + (1,) * (x.ndim - 2)


def affine(out, weight, bias, shape):
    """out * weight + bias with per-channel (or per-element) parameters reshaped to ``shape``."""
    if weight is not None:
        out = out * as_obj(weight).reshape(shape)
    if bias is not None:
        out = out + as_obj(bias).reshape(shape)
    return out


def _with_running(x, mean, var, eps, shape):
    m, v = as_obj(mean).reshape(shape), as_obj(var).reshape(shape)
    e = sym_number(eps)
    return (x - m) * emap(lambda s: power(s + e, Rational(-1, 2)), v)


@register("batch_norm", torch=F.batch_norm,
          doc="training: (x - mean) / sqrt(var + eps) per channel over (N, *spatial), biased var; "
              "eval: the running mean/var; then * weight + bias")
def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=EPS):
    """Batch normalisation (the running statistics' in-place update has no gradient)."""
    x = as_obj(input)
    if x.ndim < 2:
        raise unsupported(f"batch_norm: expected (N, C, ...) input, got shape {x.shape}")
    shape = _channel_shape(x)
    if training:
        out = standardise(x, (0,) + tuple(range(2, x.ndim)), eps)
    else:
        if running_mean is None or running_var is None:
            raise unsupported("batch_norm: eval mode (training=False) needs running_mean and running_var")
        out = _with_running(x, running_mean, running_var, eps, shape)
    return affine(out, weight, bias, shape)


@register("instance_norm", torch=F.instance_norm,
          doc="(x - mean) / sqrt(var + eps) per (sample, channel) over the spatial dims, biased var; "
              "then * weight + bias")
def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=EPS):
    """Instance normalisation; use_input_stats=False uses the running statistics instead."""
    x = as_obj(input)
    if x.ndim < 3:
        raise unsupported(f"instance_norm: expected (N, C, *spatial) input, got shape {x.shape}")
    shape = _channel_shape(x)
    if use_input_stats:
        out = standardise(x, tuple(range(2, x.ndim)), eps)
    else:
        out = _with_running(x, running_mean, running_var, eps, shape)
    return affine(out, weight, bias, shape)


@register("group_norm", torch=F.group_norm,
          doc="(x - mean) / sqrt(var + eps) per (sample, group of C/G channels) over the group's "
              "channels and spatial dims; then * weight + bias per channel")
def group_norm(input, num_groups, weight=None, bias=None, eps=EPS):
    """Group normalisation."""
    x = as_obj(input)
    g = int(num_groups)
    if x.ndim < 2 or x.shape[1] % g:
        raise unsupported(f"group_norm: {x.shape[1] if x.ndim > 1 else 0} channels do not split "
                          f"into {g} groups")
    grouped = x.reshape((x.shape[0], g, x.shape[1] // g) + x.shape[2:])
    out = standardise(grouped, tuple(range(2, grouped.ndim)), eps).reshape(x.shape)
    return affine(out, weight, bias, _channel_shape(x))


@register("rms_norm", torch=F.rms_norm,
          doc="x / sqrt(mean(x^2) + eps) over the last len(normalized_shape) dims, * weight; "
              "eps=None is float64's machine epsilon (see docs/cases.md)")
def rms_norm(input, normalized_shape, weight=None, eps=None):
    """Root-mean-square normalisation.

    torch's eps=None means the input dtype's machine epsilon; the mirror does
    not know the dtype and uses float64's 2^-52. In float32 that changes the
    value by about eps_32 / (2 mean(x^2)) relative, below float32's tolerance
    for mean(x^2) >~ 0.01; give eps explicitly otherwise.
    """
    x = as_obj(input)
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(shape)
    if tuple(x.shape[x.ndim - k:]) != tuple(int(s) for s in shape):
        raise unsupported(f"rms_norm: normalized_shape {shape} does not end input shape {x.shape}")
    dims = tuple(range(x.ndim - k, x.ndim))
    n = int(np.prod(shape))
    e = Rational(1, 2**52) if eps is None else sym_number(eps)
    ms = reduce_over(x, dims, True, lambda xs: add_all([v**2 / n for v in xs] + [e]))
    out = x * emap(lambda v: power(v, Rational(-1, 2)), ms)
    return out if weight is None else out * as_obj(weight)


@register("renorm", torch=torch.renorm,
          doc="each sub-tensor along dim times maxnorm / (norm + 1e-7) where its p-norm exceeds maxnorm")
def renorm(input, p, dim, maxnorm):
    """x * maxnorm / (||x_slice||_p + 1e-7) where the norm exceeds maxnorm (torch's kernel adds
    1e-7), else x; the factor is a function of the slice, differentiated with it."""
    x = as_obj(input)
    d = norm_dim(dim, x.ndim)
    order, m = norm_order(p), sym_number(maxnorm)
    others = tuple(a for a in range(x.ndim) if a != d)
    if not (isinstance(order, sympy.Number) and order > 0 and order.is_finite):
        raise unsupported(f"renorm: p={p!r} is not supported", hint="Use a finite p > 0.")
    norms = reduce_over(x, others, True, lambda xs: p_norm(xs, order))
    # the test ||x||_p > maxnorm as sum |x|^p > maxnorm^p: the same condition without the
    # 2-norm's Piecewise (SymPy rewrites a Piecewise inside a condition into ITE)
    powers = reduce_over(x, others, True, lambda xs: add_all([Abs(v) ** order for v in xs]))
    tiny = sym_number(1e-7)
    factor = emap(lambda n, s: piecewise((m / (n + tiny), relation(s, ">", m**order)), (1, True)), norms, powers)
    return x * factor
