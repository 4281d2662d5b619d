"""Functions whose torch result is a tuple: the pieces (stacked, equal pieces only) or the first output.

The split family (unsafe_split, unsafe_chunk, split_with_sizes_copy,
tensor_split, hsplit/vsplit/dsplit, unbind_copy), broadcast_tensors and
meshgrid return several tensors; as split/chunk/unbind do, their value in a
case is the pieces stacked along a new first dim (torch's tuple is stacked by
``finish``). The ``_ex`` linear-algebra functions return (result, info): the
value is the result (info is an integer status, not differentiable). Also
double (x as float64: the identity on the exact side) and constant_pad_nd
(F.pad in constant mode).
"""

from __future__ import annotations

import numpy as np
import torch

from ._arrays import as_obj, norm_dim, unsupported
from ._table import register
from .indexing import _stack_pieces, chunk, split, unbind
from .linalg import cholesky, inv, solve
from .resample import pad
from .selection import stacked


def _first(out):
    return out[0]


@register("unsafe_split", torch=torch.unsafe_split, finish=stacked, analytic=True, doc="split(x, size, dim), stacked")
def unsafe_split(tensor, split_size, dim=0):
    return split(tensor, split_size, dim)


@register("split_with_sizes_copy", torch=torch.split_with_sizes_copy, finish=stacked, analytic=True,
          doc="split(x, sizes, dim), copied, stacked")
def split_with_sizes_copy(input, split_sizes, dim=0):
    return split(input, list(split_sizes), dim)


@register("unsafe_chunk", torch=torch.unsafe_chunk, finish=stacked, analytic=True, doc="chunk(x, chunks, dim), stacked")
def unsafe_chunk(input, chunks, dim=0):
    return chunk(input, chunks, dim)


@register("unbind_copy", torch=torch.unbind_copy, finish=stacked, analytic=True, doc="unbind(x, dim), copied, stacked")
def unbind_copy(input, dim=0):
    return unbind(input, dim)


def _tensor_split(x, sections, d, name):
    n = x.shape[d]
    if isinstance(sections, (list, tuple)):
        cuts = [min(max(int(c), 0), n) for c in sections]
    else:
        k = int(sections)
        q, r = divmod(n, k)
        cuts = list(np.cumsum([q + 1 if i < r else q for i in range(k)])[:-1])
    return _stack_pieces(name, np.split(x, cuts, axis=d))


@register("tensor_split", torch=torch.tensor_split, finish=stacked, analytic=True,
          doc="pieces of x along dim: n nearly equal sections (the first n mod k one longer) or cut at indices")
def tensor_split(input, indices_or_sections, dim=0):
    x = as_obj(input)
    return _tensor_split(x, indices_or_sections, norm_dim(dim, x.ndim), "tensor_split")


def _directional(name, dim_of):
    def split_along(input, indices_or_sections):
        x = as_obj(input)
        return _tensor_split(x, indices_or_sections, dim_of(x), name)
    return split_along


for _name, _dim, _doc in (("hsplit", lambda x: 1 if x.ndim > 1 else 0, "tensor_split along dim 1 (dim 0 for 1-d)"),
                          ("vsplit", lambda x: 0, "tensor_split along dim 0 (>= 2-d)"),
                          ("dsplit", lambda x: 2, "tensor_split along dim 2 (>= 3-d)")):
    register(_name, torch=getattr(torch, _name), finish=stacked, analytic=True, doc=_doc)(_directional(_name, _dim))


@register("broadcast_tensors", torch=torch.broadcast_tensors, finish=stacked, analytic=True,
          doc="each tensor broadcast to the common shape, stacked")
def broadcast_tensors(*tensors):
    parts = [as_obj(t) for t in tensors]
    return np.stack([p.copy() for p in np.broadcast_arrays(*parts)])


@register("meshgrid", torch=torch.meshgrid, finish=stacked, analytic=True,
          doc="grids G_k[i_1, ..., i_n] = x_k[i_k] ('ij'; 'xy' swaps the first two dims), stacked")
def meshgrid(*tensors, indexing=None):
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing not in (None, "ij", "xy"):
        raise unsupported(f"meshgrid: indexing={indexing!r} is not 'ij' or 'xy'")
    parts = [as_obj(t).reshape(-1) for t in tensors]
    grids = np.meshgrid(*parts, indexing="xy" if indexing == "xy" else "ij")
    return np.stack([g.copy() for g in grids])


@register("inv_ex", torch=torch.linalg.inv_ex, finish=_first, analytic=True, doc="inv(A) (the info output aside)")
def inv_ex(A, *, check_errors=False):
    return inv(A)


@register("solve_ex", torch=torch.linalg.solve_ex, finish=_first, analytic=True,
          doc="solve(A, B, left) (the info output aside)")
def solve_ex(A, B, *, left=True, check_errors=False):
    return solve(A, B, left=left)


@register("cholesky_ex", torch=torch.linalg.cholesky_ex, finish=_first,
          doc="cholesky(A, upper) (the info output aside)")
def cholesky_ex(A, *, upper=False, check_errors=False):
    return cholesky(A, upper=upper)


@register("double", torch=torch.Tensor.double, doc="x as float64 (the identity on exact numbers)")
def double(x, memory_format=None):
    return as_obj(x).copy()


@register("constant_pad_nd", torch=torch.constant_pad_nd, doc="F.pad(x, pad, mode='constant', value=value)")
def constant_pad_nd(input, pad_, value=0):
    return pad(input, pad_, mode="constant", value=value)
