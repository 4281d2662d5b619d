"""Pooling: max_pool, avg_pool (1-3 d), adaptive_avg_pool and adaptive_max_pool (1-2 d).

Windows follow the definitions in the ``torch.nn.MaxPool2d``/``AvgPool2d``
docs: window p covers input positions p*stride - pad + k*dilation, the
output size is floor (or with ``ceil_mode`` ceil) of
(L + 2 pad - dilation (k - 1) - 1) / stride + 1, and a ceil-mode window must
start inside the input or its left padding. Adaptive windows are
[floor(i L / out), ceil((i + 1) L / out)).

Kinks: a max over a window is written ``Piecewise((x_1, x_1 = m), (x_2, x_2 = m), ...)``
with m the window's Max: its value is m, and its derivative sends the whole
gradient to the *first* element (in the window's row-major order) that
attains the max, which is what torch's max-pool kernels record as the index
(they update on ``val > max`` only). The ``Eq`` conditions are where the kink
detector finds the ties.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import sympy
import torch.nn.functional as F
from sympy import Max

from ._arrays import add_all, extremum, piecewise, sym_number, unsupported
from ._table import register
from .conv import batched, spatial


def first_max(items) -> sympy.Expr:
    """max(items) whose derivative goes wholly to the first maximal item (torch's pooling index)."""
    items = [sym_number(v) for v in items]
    if len(items) == 1:
        return items[0]
    m = extremum(Max, items)
    pairs = [(v, sympy.Eq(v, m, evaluate=False)) for v in items[:-1]]
    return piecewise(*pairs, (items[-1], True))


def _out_size(n, k, s, p, d, ceil_mode):
    span = n + 2 * p - d * (k - 1) - 1
    if span < 0:
        raise unsupported(f"pooling: kernel {k} (dilation {d}) does not fit size {n} with padding {p}")
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def _pool_args(nd, name, kernel_size, stride, padding, dilation=1):
    k = spatial(kernel_size, nd, "kernel_size")
    s = k if stride is None or (isinstance(stride, (list, tuple)) and not stride) else spatial(stride, nd, "stride")
    p, d = spatial(padding, nd, "padding"), spatial(dilation, nd, "dilation")
    if any(2 * pi > ki for pi, ki in zip(p, k)):
        raise unsupported(f"{name}: padding {p} is more than half the kernel {k}",
                          hint="torch refuses it too.")
    return k, s, p, d


def _max_pool(nd, name, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    if return_indices:
        raise unsupported(f"{name}: return_indices=True returns indices, which have no gradient",
                          hint="Leave return_indices False.")
    x, unbatched = batched(input, nd, name)
    k, s, p, d = _pool_args(nd, name, kernel_size, stride, padding, dilation)
    sizes = x.shape[2:]
    out_sizes = tuple(_out_size(*a, ceil_mode) for a in zip(sizes, k, s, p, d))
    out = np.empty(x.shape[:2] + out_sizes, dtype=object)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for o in np.ndindex(out_sizes):
                items = []
                for kk in np.ndindex(k):
                    at = tuple(oi * si - pi + ki * di for oi, si, pi, ki, di in zip(o, s, p, kk, d))
                    if all(0 <= a < m for a, m in zip(at, sizes)):
                        items.append(x[(n, c) + at])
                out[(n, c) + o] = first_max(items)
    return out[0] if unbatched else out


def _avg_pool(nd, name, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override):
    x, unbatched = batched(input, nd, name)
    k, s, p, _ = _pool_args(nd, name, kernel_size, stride, padding)
    sizes = x.shape[2:]
    out_sizes = tuple(_out_size(n, kk, ss, pp, 1, ceil_mode) for n, kk, ss, pp in zip(sizes, k, s, p))
    out = np.empty(x.shape[:2] + out_sizes, dtype=object)
    for o in np.ndindex(out_sizes):
        starts = [oi * si - pi for oi, si, pi in zip(o, s, p)]
        # torch: the window may reach into the padding but not beyond it; that span is the
        # divisor with count_include_pad, the in-input part otherwise
        ends = [min(a + kk, n + pi) for a, kk, n, pi in zip(starts, k, sizes, p)]
        padded = math.prod(e - a for a, e in zip(starts, ends))
        lo = [max(a, 0) for a in starts]
        hi = [min(e, n) for e, n in zip(ends, sizes)]
        inside = math.prod(e - a for a, e in zip(lo, hi))
        if divisor_override:
            divisor = int(divisor_override)
        else:
            divisor = padded if count_include_pad else inside
        ranges = [range(a, e) for a, e in zip(lo, hi)]
        for n in range(x.shape[0]):
            for c in range(x.shape[1]):
                items = [x[(n, c) + at] for at in itertools.product(*ranges)]
                out[(n, c) + o] = add_all(items) / divisor
    return out[0] if unbatched else out


def _adaptive_windows(sizes, out_sizes):
    """Per output position, the input ranges [floor(i L/out), ceil((i+1) L/out)) per dim."""
    return {o: [range((i * n) // m, -(-((i + 1) * n) // m)) for i, n, m in zip(o, sizes, out_sizes)]
            for o in np.ndindex(out_sizes)}


def _adaptive(nd, name, input, output_size, combine):
    x, unbatched = batched(input, nd, name)
    sizes = x.shape[2:]
    wanted = output_size if isinstance(output_size, (list, tuple)) else (output_size,) * nd
    out_sizes = tuple(n if m is None else int(m) for n, m in zip(sizes, wanted))
    if len(out_sizes) != nd or min(out_sizes) < 1:
        raise unsupported(f"{name}: output_size {output_size!r} is not {nd} positive sizes")
    windows = _adaptive_windows(sizes, out_sizes)
    out = np.empty(x.shape[:2] + out_sizes, dtype=object)
    for o, ranges in windows.items():
        for n in range(x.shape[0]):
            for c in range(x.shape[1]):
                out[(n, c) + o] = combine([x[(n, c) + at] for at in itertools.product(*ranges)])
    return out[0] if unbatched else out


def _register(nd):
    @register(f"max_pool{nd}d", torch=getattr(F, f"max_pool{nd}d"),
              doc=f"max over each {nd}-d window (padding is -inf); the gradient goes to the first "
                  "maximal element, as torch's index")
    def max_pool(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                 return_indices=False):
        return _max_pool(nd, f"max_pool{nd}d", input, kernel_size, stride, padding, dilation,
                         ceil_mode, return_indices)

    @register(f"avg_pool{nd}d", torch=getattr(F, f"avg_pool{nd}d"),
              doc=f"sum over each {nd}-d window / window size (padding counted if count_include_pad, "
                  "or divisor_override)")
    def avg_pool(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        if nd == 1 and divisor_override is not None:
            raise unsupported("avg_pool1d has no divisor_override")
        return _avg_pool(nd, f"avg_pool{nd}d", input, kernel_size, stride, padding, ceil_mode,
                         count_include_pad, divisor_override)

    if nd == 3:
        return

    @register(f"adaptive_avg_pool{nd}d", torch=getattr(F, f"adaptive_avg_pool{nd}d"),
              doc="mean over windows [floor(i L/out), ceil((i+1) L/out)) per dim")
    def adaptive_avg_pool(input, output_size):
        return _adaptive(nd, f"adaptive_avg_pool{nd}d", input, output_size,
                         lambda xs: add_all(xs) / len(xs))

    @register(f"adaptive_max_pool{nd}d", torch=getattr(F, f"adaptive_max_pool{nd}d"),
              doc="max over windows [floor(i L/out), ceil((i+1) L/out)); gradient to the first maximum")
    def adaptive_max_pool(input, output_size, return_indices=False):
        if return_indices:
            raise unsupported(f"adaptive_max_pool{nd}d: return_indices=True is not supported")
        return _adaptive(nd, f"adaptive_max_pool{nd}d", input, output_size, first_max)


for _nd in (1, 2, 3):
    _register(_nd)
