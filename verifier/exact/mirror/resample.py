"""Index-moving layers: embedding, pad, interpolate, grid_sample.

* ``embedding``: out[..., :] = weight[input[...], :] (torch.nn.Embedding's definition: a lookup).
* ``pad``: the ``torch.nn.functional.pad`` definition; pads are given for the last dims first
  (left, right, ...). An output position outside the input reads ``value`` (constant), the
  mirror image without repeating the edge (reflect), the nearest edge (replicate) or the
  position modulo the size (circular). Negative pads crop.
* ``interpolate``: source coordinates as the ``torch.nn.Upsample`` docs and ATen's
  ``area_pixel_compute_source_index`` define them: with align_corners the corner pixels'
  centres coincide (src = dst (in - 1) / (out - 1)); without, src = (dst + 1/2) scale - 1/2,
  scale = in / out (or 1 / scale_factor), clamped at 0 for the linear modes. linear and
  bilinear mix the two neighbours with weights 1 - t, t; bicubic is Keys' cubic convolution
  with A = -0.75 over four neighbours, indices clamped to the edge. nearest takes
  floor(dst * scale) with the scale rounded to float32, as torch computes it (an index
  choice, not a derivative: for scales like 3/5 the float32 product decides the pixel).
  nearest-exact takes the pixel whose centre is nearest, floor((dst + 1/2) scale) clamped to
  the last index (ATen's nearest_neighbor_exact_compute_source_index: float32 scale, the
  product rounded to float32 before the floor). trilinear is linear in each of 3 dims (the
  weights multiply). area is adaptive average pooling to the output size (F.interpolate calls
  adaptive_avg_pool{1,2,3}d): the mean over [floor(i L/out), ceil((i+1) L/out)).
  The output size is floor(L * scale_factor) in float64, as torch computes it; with
  recompute_scale_factor=True (and always for area) the scale is then in/out, not 1/scale_factor.
  antialias=True is refused: its filter widens with the downsampling factor (not written here).
* ``grid_sample`` (bilinear, zero padding): out = sum_pixels x[p] hat(ix - p_x) hat(iy - p_y),
  hat(d) = max(0, 1 - |d|), the tent kernel whose sum is bilinear interpolation; (ix, iy)
  unnormalised from the grid by ((g + 1) / 2)(size - 1) with align_corners, else
  ((g + 1) size - 1) / 2. The hat is written as four pieces whose boundaries (integer
  coordinates: its kinks, where the kink detector looks) belong to the piece on the right,
  torch's floor convention; the sum is taken per row, hat_y * sum_x x hat_x.
"""

from __future__ import annotations

import math

import numpy as np
import sympy
import torch.nn.functional as F
from sympy import Rational

from ._arrays import add_all, as_obj, index_array, piecewise, relation, sym_number, unsupported
from ._table import register
from .pooling import _adaptive


@register("embedding", torch=F.embedding, doc="weight[input]: row input[...] of the weight matrix")
def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
              sparse=False):
    """Look rows of ``weight`` up by the integer ``input``."""
    if padding_idx is not None:
        raise unsupported("embedding: padding_idx is not supported (torch zeroes that row's gradient, "
                          "which is not a derivative of the lookup)",
                          hint="Leave padding_idx out, or keep the padding row constant.")
    if max_norm is not None or scale_grad_by_freq:
        raise unsupported("embedding: max_norm and scale_grad_by_freq are not supported")
    idx, w = index_array(input), as_obj(weight)
    if idx.size and (idx.min() < 0 or idx.max() >= w.shape[0]):
        raise unsupported(f"embedding: index out of range for {w.shape[0]} rows")
    return w[idx]


_MODES = ("constant", "reflect", "replicate", "circular")


def _source(i, n, mode):
    """The input index an output index i (in input coordinates) reads, or None for the constant."""
    if 0 <= i < n:
        return i
    if mode == "constant":
        return None
    if mode == "replicate":
        return min(max(i, 0), n - 1)
    if mode == "circular":
        return i % n
    period = 2 * (n - 1)
    j = i % period
    return j if j < n else period - j


@register("pad", torch=F.pad,
          doc="pad the last dims by (left, right, ...) pairs: constant value, reflect (no edge "
              "repeat), replicate (edge) or circular (modulo)")
def pad(input, pad, mode="constant", value=None):
    """torch.nn.functional.pad."""
    x = as_obj(input)
    if mode not in _MODES:
        raise unsupported(f"pad: unknown mode {mode!r}", hint=f"Use one of {', '.join(_MODES)}.")
    pads = [int(p) for p in pad]
    if len(pads) % 2 or len(pads) // 2 > x.ndim:
        raise unsupported(f"pad: {pads} must be (left, right) pairs for at most {x.ndim} dims")
    lo, hi = [0] * x.ndim, [0] * x.ndim
    for k in range(len(pads) // 2):
        lo[x.ndim - 1 - k], hi[x.ndim - 1 - k] = pads[2 * k], pads[2 * k + 1]
    if mode == "reflect" and any((a or b) and max(a, b) >= n for a, b, n in zip(lo, hi, x.shape)):
        raise unsupported("pad: reflect padding must be smaller than the dim it pads",
                          hint="torch refuses it too: pad each dim by less than its size.")
    fill = sym_number(0 if value is None else value)
    shape = tuple(n + a + b for n, a, b in zip(x.shape, lo, hi))
    if min(shape, default=1) < 0:
        raise unsupported(f"pad: {pads} crops more than the input has")
    out = np.empty(shape, dtype=object)
    for idx in np.ndindex(shape):
        src = [_source(i - a, n, mode) for i, a, n in zip(idx, lo, x.shape)]
        out[idx] = fill if any(s is None for s in src) else x[tuple(src)]
    return out


_DIMS = {"nearest": (1, 2, 3), "nearest-exact": (1, 2, 3), "area": (1, 2, 3), "linear": (1,),
         "bilinear": (2,), "trilinear": (3,), "bicubic": (2,)}
_NEAREST = ("nearest", "nearest-exact", "area")


def _sizes(x, nd, size, scale_factor, recompute):
    """(output sizes, per-dim scale in/out or 1/scale_factor), torch's rules."""
    sizes = x.shape[2:]
    if (size is None) == (scale_factor is None):
        raise unsupported("interpolate: give exactly one of size and scale_factor")
    if size is not None:
        if recompute:
            raise unsupported("interpolate: recompute_scale_factor is not meaningful with an explicit size",
                              hint="torch refuses it too: drop recompute_scale_factor or give scale_factor.")
        out = tuple(int(s) for s in (size if isinstance(size, (list, tuple)) else [size] * nd))
        if len(out) != nd:
            raise unsupported(f"interpolate: size {list(out)} is not {nd} spatial sizes")
        return out, [Rational(n, m) for n, m in zip(sizes, out)]
    factors = scale_factor if isinstance(scale_factor, (list, tuple)) else [scale_factor] * nd
    if len(factors) != nd:
        raise unsupported(f"interpolate: scale_factor {list(factors)} is not {nd} factors")
    out = tuple(int(math.floor(n * float(f))) for n, f in zip(sizes, factors))   # float64, as torch
    if recompute:
        return out, [Rational(n, m) for n, m in zip(sizes, out)]
    return out, [1 / sym_number(f) for f in factors]


def _linear_source(dst, n_in, n_out, scale, align_corners, cubic):
    if align_corners:
        return Rational(dst * (n_in - 1), n_out - 1) if n_out > 1 else sympy.S.Zero
    src = (dst + Rational(1, 2)) * scale - Rational(1, 2)
    return src if cubic or src > 0 else sympy.S.Zero


def _cubic_weights(t):
    a = Rational(-3, 4)

    def near(d):      # |d| <= 1
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d):       # 1 < |d| < 2
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def _taps(mode, dst, n_in, n_out, scale, align_corners):
    """[(input index, weight)] for one output index along one dim."""
    if mode == "nearest":
        src = np.floor(np.float32(dst) * np.float32(float(scale)))
        return [(min(int(src), n_in - 1), sympy.S.One)]
    if mode == "nearest-exact":
        src = np.floor(np.float32((dst + 0.5) * np.float64(np.float32(float(scale)))))
        return [(min(int(src), n_in - 1), sympy.S.One)]
    src = _linear_source(dst, n_in, n_out, scale, align_corners, mode == "bicubic")
    i = int(sympy.floor(src))
    t = src - i
    if mode == "bicubic":
        return [(min(max(i + k, 0), n_in - 1), w) for k, w in zip((-1, 0, 1, 2), _cubic_weights(t))]
    i = min(i, n_in - 1)
    return [(i, 1 - t), (min(i + 1, n_in - 1), t)]


@register("interpolate", torch=F.interpolate,
          doc="resample the spatial dims: nearest (floor(dst*scale)), nearest-exact (floor((dst+1/2)*scale)), "
              "linear/bilinear/trilinear (two taps 1-t, t per dim), bicubic (Keys, A=-0.75), area (adaptive "
              "average pooling); source index per align_corners")
def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """torch.nn.functional.interpolate: nearest, nearest-exact, linear, bilinear, trilinear, bicubic, area."""
    x = as_obj(input)
    nd = x.ndim - 2
    if mode not in _DIMS or nd not in _DIMS[mode]:
        raise unsupported(f"interpolate: mode {mode!r} on a {x.ndim}-d input is not supported",
                          hint="nearest, nearest-exact and area (3-5 d), linear (3-d), bilinear and bicubic "
                               "(4-d), trilinear (5-d), as torch allows.")
    if antialias:
        raise unsupported("interpolate: antialias=True is not supported (its filter's support widens with the "
                          "downsampling factor, a different function that is not written here)",
                          hint="Check antialias=False, or upsampling, where torch's antialias changes nothing.")
    if mode in _NEAREST and align_corners is not None:
        raise unsupported("interpolate: align_corners only goes with the linear and cubic modes",
                          hint="torch refuses it too: drop align_corners for nearest, nearest-exact and area.")
    recompute = bool(recompute_scale_factor) or (mode == "area" and size is None)
    out_sizes, scales = _sizes(x, nd, size, scale_factor, recompute)
    if min(out_sizes, default=1) < 1:
        raise unsupported(f"interpolate: the output size {list(out_sizes)} has an empty dim")
    if mode == "area":
        return _adaptive(nd, f"adaptive_avg_pool{nd}d", x, out_sizes, lambda xs: add_all(xs) / len(xs))
    taps = [[_taps(mode, o, n, m, s, bool(align_corners)) for o in range(m)]
            for n, m, s in zip(x.shape[2:], out_sizes, scales)]
    out = np.empty(x.shape[:2] + out_sizes, dtype=object)
    for pos in np.ndindex(out_sizes):
        per_dim = [taps[d][p] for d, p in enumerate(pos)]
        combos = [(tuple(i for i, _ in c), sympy.Mul(*[w for _, w in c])) for c in _product(per_dim)]
        for lead in np.ndindex(x.shape[:2]):
            out[lead + pos] = add_all([w * x[lead + at] for at, w in combos if w != 0])
    return out


def _product(lists):
    if not lists:
        return [()]
    return [(a,) + rest for a in lists[0] for rest in _product(lists[1:])]


def _hat(d):
    """max(0, 1 - |d|) as four pieces, each boundary owned by the piece on its right.

    That is torch's convention (ATen picks the cell by floor(ix): a coordinate on a pixel's
    centre takes the slopes of the cell to its right), and a Piecewise of unevaluated
    relations costs no assumption queries: ``Max(0, 1 - Abs(d))`` took SymPy ~30 ms per hat
    to build and as long again to differentiate (the OpInfo samples timed out).
    """
    return piecewise((sympy.S.Zero, relation(d, "<", -1)), (1 + d, relation(d, "<", 0)),
                     (1 - d, relation(d, "<", 1)), (sympy.S.Zero, True))


def _times(a, b):
    """a * b left unevaluated: a weight is a Piecewise, and Mul's evaluation asks the assumption
    system about it (seconds for the OpInfo samples); the product is the same function."""
    if a.is_Number or b.is_Number:                 # a constant grid or input: 0 * x is just 0
        return a * b
    return sympy.Mul(a, b, evaluate=False)


@register("grid_sample", torch=F.grid_sample,
          doc="bilinear, zero padding: sum_p x[p] hat(ix - p_x) hat(iy - p_y), hat(d) = max(0, 1 - |d|), "
              "(ix, iy) unnormalised from the grid per align_corners")
def grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=None):
    """torch.nn.functional.grid_sample on 4-d inputs, bilinear with zero padding."""
    x, g = as_obj(input), as_obj(grid)
    if mode != "bilinear" or padding_mode != "zeros" or x.ndim != 4:
        raise unsupported(f"grid_sample: mode={mode!r}, padding_mode={padding_mode!r} on a {x.ndim}-d input is "
                          f"not supported", hint="Use mode='bilinear', padding_mode='zeros' on a 4-d (N, C, H, W) "
                                                 "input, the one form the mirror has.")
    n_batch, channels, height, width = x.shape
    if g.shape[0] != n_batch or g.ndim != 4 or g.shape[3] != 2:
        raise unsupported(f"grid_sample: grid {g.shape} is not (N, H_out, W_out, 2) for input {x.shape}")

    def unnormalise(c, size):
        return (c + 1) / 2 * (size - 1) if align_corners else ((c + 1) * size - 1) / 2

    out = np.empty((n_batch, channels) + g.shape[1:3], dtype=object)
    for n in range(n_batch):
        for i, j in np.ndindex(g.shape[1:3]):
            ix, iy = unnormalise(g[n, i, j, 0], width), unnormalise(g[n, i, j, 1], height)
            hx = [_hat(ix - px) for px in range(width)]
            hy = [_hat(iy - py) for py in range(height)]
            for c in range(channels):
                rows = [add_all([_times(x[n, c, py, px], hx[px]) for px in range(width)]) for py in range(height)]
                out[n, c, i, j] = add_all([_times(hy[py], rows[py]) for py in range(height)])
    return out
