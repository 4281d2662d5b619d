"""Convolutions and patch rearrangements: conv1d/2d/3d, conv_transpose1d/2d/3d, unfold, fold, pixel_shuffle.

Each output element is one flat sum written from the definition of a
cross-correlation (what torch calls convolution, cf. the formula in the
``torch.nn.Conv2d`` docs):

    out[n, o, p] = bias[o] + sum_{c in group(o), k} w[o, c, k] x[n, c, p*stride - pad + k*dilation]

where positions outside the input are the zero padding (their terms are
left out). The transposed convolution is the same relation read backwards:
every input element x[n, c, p] adds x * w[c, o, k] to out[n, o, p*stride - pad + k*dilation].
"""

from __future__ import annotations

import math

import numpy as np
import sympy
import torch.nn.functional as F

from ._arrays import add_all, as_obj, unsupported
from ._table import register


def spatial(value, nd: int, what: str) -> tuple[int, ...]:
    """An int or a sequence of nd ints (torch's ``_ntuple``) as a tuple of nd ints."""
    if isinstance(value, (tuple, list)):
        if len(value) == 1:
            value = list(value) * nd
        if len(value) != nd:
            raise unsupported(f"{what} needs {nd} values, got {list(value)}")
        return tuple(int(v) for v in value)
    return (int(value),) * nd


def batched(x, nd: int, name: str):
    """(x with a batch dim, whether it was added): torch accepts unbatched (C, *spatial) inputs."""
    x = as_obj(x)
    if x.ndim == nd + 1:
        return x[None], True
    if x.ndim != nd + 2:
        raise unsupported(f"{name}: expected a {nd + 1}-d or {nd + 2}-d input, got shape {x.shape}")
    return x, False


def _padding(padding, nd, kernel, dilation, stride, name):
    """(left, right) padding per spatial dim; 'same' puts the odd extra element on the right, as torch."""
    if padding == "valid":
        return (0,) * nd, (0,) * nd
    if padding == "same":
        if any(s != 1 for s in stride):
            raise unsupported(f"{name}: padding='same' is not supported for strided convolutions",
                              hint="torch refuses it too; give the padding as numbers.")
        total = [d * (k - 1) for d, k in zip(dilation, kernel)]
        return tuple(t // 2 for t in total), tuple(t - t // 2 for t in total)
    if isinstance(padding, str):
        raise unsupported(f"{name}: unknown padding {padding!r}", hint="Use 'valid', 'same' or numbers.")
    p = spatial(padding, nd, "padding")
    return p, p


def _conv(nd, name, input, weight, bias, stride, padding, dilation, groups):
    x, unbatched = batched(input, nd, name)
    w = as_obj(weight)
    n_batch, channels, sizes = x.shape[0], x.shape[1], x.shape[2:]
    out_ch, group_ch, kernel = w.shape[0], w.shape[1], w.shape[2:]
    groups = int(groups)
    if channels != group_ch * groups or out_ch % groups:
        raise unsupported(f"{name}: weight {w.shape} does not fit input {x.shape} with groups={groups}")
    s, d = spatial(stride, nd, "stride"), spatial(dilation, nd, "dilation")
    lo, hi = _padding(padding, nd, kernel, d, s, name)
    out_sizes = tuple((n + a + b - dd * (k - 1) - 1) // ss + 1
                      for n, a, b, dd, k, ss in zip(sizes, lo, hi, d, kernel, s))
    if min(out_sizes) < 1:
        raise unsupported(f"{name}: the kernel is larger than the padded input")
    b = None if bias is None else as_obj(bias)
    per_group = out_ch // groups
    out = np.empty((n_batch, out_ch) + out_sizes, dtype=object)
    for n in range(n_batch):
        for o in range(out_ch):
            first = (o // per_group) * group_ch
            for p in np.ndindex(out_sizes):
                terms = []
                for c in range(group_ch):
                    for k in np.ndindex(kernel):
                        at = tuple(pi * si - li + ki * di for pi, si, li, ki, di in zip(p, s, lo, k, d))
                        if all(0 <= a < m for a, m in zip(at, sizes)):
                            terms.append(w[(o, c) + k] * x[(n, first + c) + at])
                if b is not None:
                    terms.append(b[o])
                out[(n, o) + p] = add_all(terms)
    return out[0] if unbatched else out


def _conv_transpose(nd, name, input, weight, bias, stride, padding, output_padding, groups, dilation):
    x, unbatched = batched(input, nd, name)
    w = as_obj(weight)
    n_batch, channels, sizes = x.shape[0], x.shape[1], x.shape[2:]
    groups = int(groups)
    if w.shape[0] != channels or channels % groups:
        raise unsupported(f"{name}: weight {w.shape} does not fit input {x.shape} with groups={groups}")
    group_out, kernel = w.shape[1], w.shape[2:]
    s, d = spatial(stride, nd, "stride"), spatial(dilation, nd, "dilation")
    p, op = spatial(padding, nd, "padding"), spatial(output_padding, nd, "output_padding")
    out_sizes = tuple((n - 1) * ss - 2 * pp + dd * (k - 1) + o + 1
                      for n, ss, pp, dd, k, o in zip(sizes, s, p, d, kernel, op))
    in_per_group = channels // groups
    buckets: dict[tuple, list] = {}
    for n in range(n_batch):
        for c in range(channels):
            first = (c // in_per_group) * group_out
            for q in np.ndindex(sizes):
                for oc in range(group_out):
                    for k in np.ndindex(kernel):
                        at = tuple(qi * si - pi + ki * di for qi, si, pi, ki, di in zip(q, s, p, k, d))
                        if all(0 <= a < m for a, m in zip(at, out_sizes)):
                            buckets.setdefault((n, first + oc) + at, []).append(x[(n, c) + q] * w[(c, oc) + k])
    b = None if bias is None else as_obj(bias)
    out = np.empty((n_batch, group_out * groups) + out_sizes, dtype=object)
    for idx in np.ndindex(out.shape):
        terms = buckets.get(idx, [])
        out[idx] = add_all(terms + ([b[idx[1]]] if b is not None else []))
    return out[0] if unbatched else out


def _register_conv(nd):
    @register(f"conv{nd}d", torch=getattr(F, f"conv{nd}d"),
              doc=f"cross-correlation: bias[o] + sum_(c,k) w[o,c,k] x[n,c,p*stride-pad+k*dilation], "
                  f"{nd}-d, zero padding ('same'/'valid' too), groups")
    def conv(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        return _conv(nd, f"conv{nd}d", input, weight, bias, stride, padding, dilation, groups)

    @register(f"conv_transpose{nd}d", torch=getattr(F, f"conv_transpose{nd}d"),
              doc=f"x[n,c,q] w[c,o,k] summed into out[n,o,q*stride-pad+k*dilation] (+ bias), {nd}-d, "
                  "output_padding, groups")
    def conv_transpose(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                       dilation=1):
        return _conv_transpose(nd, f"conv_transpose{nd}d", input, weight, bias, stride, padding,
                               output_padding, groups, dilation)


for _nd in (1, 2, 3):
    _register_conv(_nd)


def _patches(sizes, kernel, dilation, padding, stride):
    """Block positions (row-major) and, per kernel offset, the input position or None (padding)."""
    blocks = tuple((n + 2 * p - d * (k - 1) - 1) // s + 1
                   for n, k, d, p, s in zip(sizes, kernel, dilation, padding, stride))
    if min(blocks) < 1:
        raise unsupported(f"unfold/fold: no complete block fits size {tuple(sizes)}")
    out = []
    for b in np.ndindex(blocks):
        row = []
        for k in np.ndindex(tuple(kernel)):
            at = tuple(bi * s - p + ki * d for bi, s, p, ki, d in zip(b, stride, padding, k, dilation))
            row.append(at if all(0 <= a < n for a, n in zip(at, sizes)) else None)
        out.append(row)
    return out


def _patch_args(kernel_size, dilation, padding, stride):
    return (spatial(kernel_size, 2, "kernel_size"), spatial(dilation, 2, "dilation"),
            spatial(padding, 2, "padding"), spatial(stride, 2, "stride"))


@register("unfold", torch=F.unfold,
          doc="im2col: out[n, c*kh*kw + ki*kw + kj, l] = x[n, c, block_l + (ki, kj)*dilation] "
              "(0 in the padding)")
def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """Sliding 2-d blocks as columns (torch.nn.functional.unfold)."""
    x, unbatched = batched(input, 2, "unfold")
    kernel, d, p, s = _patch_args(kernel_size, dilation, padding, stride)
    blocks = _patches(x.shape[2:], kernel, d, p, s)
    n_batch, channels, per = x.shape[0], x.shape[1], math.prod(kernel)
    out = np.empty((n_batch, channels * per, len(blocks)), dtype=object)
    for n in range(n_batch):
        for c in range(channels):
            for col, row in enumerate(blocks):
                for j, at in enumerate(row):
                    out[n, c * per + j, col] = sympy.S.Zero if at is None else x[(n, c) + at]
    return out[0] if unbatched else out


@register("fold", torch=F.fold,
          doc="col2im: out[n, c, pos] = sum of the column entries x[n, c*kh*kw + j, l] whose block "
              "l and offset j land on pos")
def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """Sum sliding blocks back into a 2-d image (torch.nn.functional.fold)."""
    x = as_obj(input)
    unbatched = x.ndim == 2
    x = x[None] if unbatched else x
    kernel, d, p, s = _patch_args(kernel_size, dilation, padding, stride)
    sizes = spatial(output_size, 2, "output_size")
    blocks = _patches(sizes, kernel, d, p, s)
    per = math.prod(kernel)
    if x.ndim != 3 or x.shape[1] % per or x.shape[2] != len(blocks):
        raise unsupported(f"fold: input {x.shape} does not hold {len(blocks)} blocks of "
                          f"C*{per} values")
    channels = x.shape[1] // per
    buckets: dict[tuple, list] = {}
    for n in range(x.shape[0]):
        for c in range(channels):
            for col, row in enumerate(blocks):
                for j, at in enumerate(row):
                    if at is not None:
                        buckets.setdefault((n, c) + at, []).append(x[n, c * per + j, col])
    out = np.empty((x.shape[0], channels) + sizes, dtype=object)
    for idx in np.ndindex(out.shape):
        out[idx] = add_all(buckets.get(idx, []))
    return out[0] if unbatched else out


@register("pixel_shuffle", torch=F.pixel_shuffle,
          doc="out[..., c, h*r + i, w*r + j] = x[..., c*r*r + i*r + j, h, w]")
def pixel_shuffle(input, upscale_factor):
    """Rearrange (*, C r^2, H, W) into (*, C, H r, W r)."""
    x, r = as_obj(input), int(upscale_factor)
    *lead, ch, h, w = x.shape
    if ch % (r * r):
        raise unsupported(f"pixel_shuffle: {ch} channels are not divisible by {r}^2")
    y = x.reshape(*lead, ch // (r * r), r, r, h, w)
    n = len(lead)
    y = np.transpose(y, tuple(range(n)) + (n, n + 3, n + 1, n + 4, n + 2))
    return y.reshape(*lead, ch // (r * r), h * r, w * r)


@register("pixel_unshuffle", torch=F.pixel_unshuffle,
          doc="out[..., c*r*r + i*r + j, h, w] = x[..., c, h*r + i, w*r + j]")
def pixel_unshuffle(input, downscale_factor):
    """Rearrange (*, C, H r, W r) into (*, C r^2, H, W)."""
    x, r = as_obj(input), int(downscale_factor)
    *lead, ch, h, w = x.shape
    if h % r or w % r:
        raise unsupported(f"pixel_unshuffle: {h}x{w} is not divisible by {r}")
    y = x.reshape(*lead, ch, h // r, r, w // r, r)
    n = len(lead)
    y = np.transpose(y, tuple(range(n)) + (n, n + 2, n + 4, n + 1, n + 3))
    return y.reshape(*lead, ch * r * r, h // r, w // r)
