"""More nn functions, each from its definition in torch's documentation (in ``doc``).

prelu, bilinear, channel_shuffle, the deprecated upsample_nearest/upsample_bilinear
(interpolate with a fixed mode), adaptive pooling in 3-d, multi_margin_loss,
multilabel_margin_loss, local_response_norm, pinverse, cartesian_prod and
combinations. Hinge terms are ``Piecewise((u, u > 0), (0, True))``: torch's
kernels add a term only where it is positive, so the gradient at u = 0 is 0.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
import torch.nn.functional as F

from ._arrays import add_all, as_obj, index_array, piecewise, relation, sym_number, unsupported
from ._table import register
from .einsum import einsum
from .factors import pinv
from .nn import _reduce_loss
from .pooling import _adaptive
from .resample import interpolate


def _hinge(u):
    return piecewise((u, relation(u, ">", 0)), (0, True))


@register("prelu", torch=F.prelu, doc="max(0, x) + weight * min(0, x), weight per channel (dim 1) or shared; "
          "at x = 0 the gradient is weight's branch, as torch's x > 0 test")
def prelu(input, weight):
    x, w = as_obj(input), as_obj(weight)
    if w.size == 1:
        w = w.reshape(())
    elif x.ndim >= 2:
        w = w.reshape((1, w.size) + (1,) * (x.ndim - 2))
    out = np.empty(x.shape, dtype=object)
    wb = np.broadcast_to(w, x.shape)
    for idx in np.ndindex(x.shape):
        out[idx] = piecewise((x[idx], relation(x[idx], ">", 0)), (wb[idx] * x[idx], True))
    return out


@register("bilinear", torch=F.bilinear, doc="y_k = x1^T W_k x2 + b_k over the last dims")
def bilinear(input1, input2, weight, bias=None):
    x1, w = as_obj(input1), as_obj(weight)
    if x1.size == 0:                  # an empty batch: an empty output
        return np.empty(x1.shape[:-1] + w.shape[:1], dtype=object)
    out = as_obj(einsum("...i,kij,...j->...k", input1, weight, input2))
    return out if bias is None else out + as_obj(bias)


@register("channel_shuffle", torch=F.channel_shuffle, analytic=True,
          doc="the channels (dim 1) as a (groups, C / groups) grid, transposed: out[:, j g + i] = x[:, i C/g + j]")
def channel_shuffle(input, groups):
    x = as_obj(input)
    g = int(groups)
    n, c = x.shape[0], x.shape[1]
    grid = x.reshape((n, g, c // g) + x.shape[2:])
    return np.swapaxes(grid, 1, 2).reshape(x.shape).copy()


@register("upsample_nearest", torch=F.upsample_nearest,
          doc="interpolate(input, size, scale_factor, mode='nearest')")
def upsample_nearest(input, size=None, scale_factor=None):
    return interpolate(input, size, scale_factor, mode="nearest")


@register("upsample_bilinear", torch=F.upsample_bilinear,
          doc="interpolate(input, size, scale_factor, mode='bilinear', align_corners=True)")
def upsample_bilinear(input, size=None, scale_factor=None):
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


@register("adaptive_avg_pool3d", torch=F.adaptive_avg_pool3d,
          doc="mean over windows [floor(i L/out), ceil((i+1) L/out)) per dim")
def adaptive_avg_pool3d(input, output_size):
    return _adaptive(3, "adaptive_avg_pool3d", input, output_size, lambda xs: add_all(xs) / len(xs))


@register("adaptive_max_pool3d", torch=F.adaptive_max_pool3d,
          doc="max over windows [floor(i L/out), ceil((i+1) L/out)); gradient to the first maximum")
def adaptive_max_pool3d(input, output_size, return_indices=False):
    from .pooling import first_max
    if return_indices:
        raise unsupported("adaptive_max_pool3d: return_indices=True is not supported")
    return _adaptive(3, "adaptive_max_pool3d", input, output_size, first_max)


def _rows(input, target):
    x, y = as_obj(input), index_array(target)
    if x.ndim == 0:
        x = x.reshape(1, 1)
    elif x.ndim == 1:
        x = x.reshape(1, -1)
    return x, y.reshape(x.shape[0], -1) if y.size else y.reshape(x.shape[0], 0)


@register("multi_margin_loss", torch=F.multi_margin_loss,
          doc="per row: sum_{i != y} w_y max(0, margin - x_y + x_i)^p / C, reduced")
def multi_margin_loss(input, target, p=1, margin=1, weight=None, size_average=None, reduce=None,
                      reduction="mean"):
    x, y = _rows(input, target)
    m, k = sym_number(margin), int(p)
    w = None if weight is None else as_obj(weight).reshape(-1)
    losses = []
    for n in range(x.shape[0]):
        t = int(y[n, 0])
        terms = [_hinge(m - x[n, t] + x[n, i]) ** k for i in range(x.shape[1]) if i != t]
        total = add_all(terms) * (w[t] if w is not None else 1) / x.shape[1]
        losses.append(total)
    out = np.array(losses, dtype=object).reshape(as_obj(input).shape[:-1] if as_obj(input).ndim else ())
    return _reduce_loss(out, reduction, "multi_margin_loss")


@register("multilabel_margin_loss", torch=F.multilabel_margin_loss,
          doc="per row: sum over target classes j (up to the first -1) and non-target i of "
              "max(0, 1 - (x_j - x_i)) / C, reduced")
def multilabel_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    x, y = _rows(input, target)
    losses = []
    for n in range(x.shape[0]):
        targets = []
        for t in y[n]:
            if int(t) < 0:
                break
            targets.append(int(t))
        others = [i for i in range(x.shape[1]) if i not in targets]
        terms = [_hinge(1 - (x[n, j] - x[n, i])) for j in targets for i in others]
        losses.append(add_all(terms) / x.shape[1])
    out = np.array(losses, dtype=object).reshape(as_obj(input).shape[:-1] if as_obj(input).ndim else ())
    return _reduce_loss(out, reduction, "multilabel_margin_loss")


@register("local_response_norm", torch=F.local_response_norm,
          doc="x_c / (k + alpha / size * sum_{c' = c - size//2}^{c + (size-1)//2} x_c'^2)^beta over channels")
def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    x = as_obj(input)
    a, b, kk, n = sym_number(alpha), sym_number(beta), sym_number(k), int(size)
    out = np.empty(x.shape, dtype=object)
    channels = x.shape[1]
    for idx in np.ndindex(x.shape):
        c = idx[1]
        near = [x[idx[:1] + (j,) + idx[2:]] for j in range(c - n // 2, c + (n - 1) // 2 + 1) if 0 <= j < channels]
        out[idx] = x[idx] / (kk + a / n * add_all([v ** 2 for v in near])) ** b
    return out


@register("pinverse", torch=torch.pinverse, doc="linalg.pinv(input) (rcond only cuts singular values below it)")
def pinverse(input, rcond=1e-15):
    return pinv(input)


@register("cartesian_prod", torch=torch.cartesian_prod, analytic=True,
          doc="rows (a_i, b_j, ...) of every combination of the 1-d inputs, in row-major order")
def cartesian_prod(*tensors):
    parts = [as_obj(t).reshape(-1) for t in tensors]
    if len(parts) == 1:
        return parts[0].copy()
    rows = [list(r) for r in itertools.product(*parts)]
    return np.array(rows, dtype=object).reshape(len(rows), len(parts))


@register("combinations", torch=torch.combinations, analytic=True,
          doc="rows of the r-element combinations of a 1-d input (with_replacement: multisets), in order")
def combinations(input, r=2, with_replacement=False):
    x = as_obj(input).reshape(-1)
    pick = itertools.combinations_with_replacement if with_replacement else itertools.combinations
    rows = [[x[i] for i in c] for c in pick(range(x.size), int(r))]
    out = np.empty((len(rows), int(r)), dtype=object)
    for i, row in enumerate(rows):
        out[i, :] = row
    return out
