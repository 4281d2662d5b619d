"""Indexing and scatter: index_add/copy/fill/put/reduce, scatter, scatter_add, scatter_reduce,
masked_scatter, masked_select, take, put, the *_scatter views, block_diag, diag_embed, rot90,
and split/chunk/unbind.

Each is the assignment its torch docs write, e.g. ``index_add``:
out = input; out[..., index[i], ...] += alpha * source[..., i, ...] along dim. Indices are
constants (int64 inputs). Where torch leaves duplicate indices undefined (index_copy, scatter
without reduce, put without accumulate) the mirror takes the last write; cases should not
repeat an index there.

Reductions (scatter_reduce, index_reduce) collect, per target element, the original value
(include_self) and every source element sent there, and combine them: sum, prod, mean
(divided by the count), amax/amin (the gradient shared evenly among ties, as torch does).

split/chunk/unbind return tuples in torch; here both sides stack the pieces (equal sizes
only), so ``torch.unbind(x)[1]`` is the same tensor on both sides.
"""

from __future__ import annotations

import numpy as np
import sympy
import torch
from sympy import Max, Min

from ._arrays import add_all, as_obj, index_array, mul_all, norm_dim, sym_number, tie_split, unsupported
from ._table import register
from .selection import stacked


def _along(x, dim):
    """(x with dim moved to the front, a function undoing the move).

    A 0-d tensor is, as in torch's index_* ops, a 1-d tensor of one element along dim 0 or -1;
    the undoing function gives the 0-d shape back.
    """
    d = norm_dim(dim, x.ndim)
    if x.ndim == 0:
        return x.reshape(1).copy(), lambda y: y.reshape(())
    return np.moveaxis(x, d, 0).copy(), lambda y: np.moveaxis(y, 0, d)


_COMBINE = {
    "sum": add_all,
    "prod": mul_all,
    "mean": lambda xs: add_all(xs) / len(xs),
    "amax": lambda xs: tie_split(Max, xs),
    "amin": lambda xs: tie_split(Min, xs),
}


def _reduced(out, buckets, reduce, include_self, name):
    if reduce not in _COMBINE:
        raise unsupported(f"{name}: reduce={reduce!r} is not supported",
                          hint=f"Use one of {', '.join(map(repr, _COMBINE))}.")
    for idx, items in buckets.items():
        items = ([out[idx]] if include_self else []) + items
        out[idx] = _COMBINE[reduce](items)
    return out


@register("index_add", torch=torch.index_add, doc="out = input; out[index[i]] += alpha * source[i] along dim")
def index_add(input, dim, index, source, *, alpha=1):
    out, back = _along(as_obj(input), dim)
    src, _ = _along(as_obj(source), dim)
    a = sym_number(alpha)
    for i, k in enumerate(index_array(index).reshape(-1)):
        out[k] = out[k] + a * src[i]
    return back(out)


@register("index_copy", torch=torch.index_copy, doc="out = input; out[index[i]] = source[i] along dim")
def index_copy(input, dim, index, source):
    out, back = _along(as_obj(input), dim)
    src, _ = _along(as_obj(source), dim)
    for i, k in enumerate(index_array(index).reshape(-1)):
        out[k] = src[i]
    return back(out)


@register("index_fill", torch=torch.index_fill, doc="out = input; out[index] = value along dim")
def index_fill(input, dim, index, value):
    out, back = _along(as_obj(input), dim)
    v = as_obj(value)
    if v.ndim:
        raise unsupported("index_fill: value must be a scalar")
    for k in index_array(index).reshape(-1):
        out[k] = np.full(out[k].shape, v[()], dtype=object) if out.ndim > 1 else v[()]
    return back(out)


@register("index_reduce", torch=torch.index_reduce,
          doc="out[index[i]] = reduce(input[index[i]] (include_self), source[i], ...) along dim")
def index_reduce(input, dim, index, source, reduce, *, include_self=True):
    x, back = _along(as_obj(input), dim)
    src, _ = _along(as_obj(source), dim)
    buckets: dict = {}
    for i, k in enumerate(index_array(index).reshape(-1)):
        for rest in np.ndindex(x.shape[1:]):
            buckets.setdefault((int(k),) + rest, []).append(src[(i,) + rest])
    return back(_reduced(x, buckets, reduce, include_self, "index_reduce"))


@register("index_put", torch=torch.index_put, prepare=lambda a, k: ((a[0], tuple(a[1]), *a[2:]), k),
          doc="out = input; out[indices] = values (or += with accumulate)")
def index_put(input, indices, values, accumulate=False):
    out = as_obj(input).copy()
    idx = []
    for i in indices:          # a bool mask indexes as its nonzero positions, one array per dim it spans
        mask = np.asarray(i)
        idx.extend(np.nonzero(mask) if mask.dtype == bool else [index_array(i)])
    positions = np.broadcast_arrays(*idx)
    v = np.broadcast_to(as_obj(values), positions[0].shape + out.shape[len(idx):])
    for n, at in enumerate(zip(*(p.reshape(-1) for p in positions))):
        where = np.unravel_index(n, positions[0].shape)
        out[at] = out[at] + v[where] if accumulate else v[where]
    return out


def _scatter_targets(x, dim, index):
    """(position in src/index, target position in out) pairs of a scatter along dim."""
    idx = index_array(index)
    d = norm_dim(dim, x.ndim)
    for at in np.ndindex(idx.shape):
        target = list(at)
        target[d] = int(idx[at])
        yield at, tuple(target)


@register("scatter", torch=torch.scatter,
          doc="out = input; out[..., index[i,j], ...] = src[i, j] (along dim) or value; reduce 'add'/'multiply'")
def scatter(input, dim, index, src=None, value=None, *, reduce=None):
    out = as_obj(input).copy()
    if src is None and value is None:
        raise unsupported("scatter: give src or value")
    s = as_obj(src if src is not None else value)
    for at, target in _scatter_targets(out, dim, index):
        new = s[at] if s.ndim else s[()]
        if reduce == "add":
            out[target] = out[target] + new
        elif reduce == "multiply":
            out[target] = out[target] * new
        elif reduce is None:
            out[target] = new
        else:
            raise unsupported(f"scatter: reduce={reduce!r} is not supported", hint="Use 'add' or 'multiply'.")
    return out


@register("scatter_add", torch=torch.scatter_add, doc="out = input; out[..., index[i,j], ...] += src[i, j]")
def scatter_add(input, dim, index, src):
    return scatter(input, dim, index, src, reduce="add")


@register("scatter_reduce", torch=torch.scatter_reduce,
          doc="out[target] = reduce(input[target] (include_self), the src elements sent there); "
              "sum, prod, mean, amax, amin")
def scatter_reduce(input, dim, index, src, reduce, *, include_self=True):
    out = as_obj(input).copy()
    s = as_obj(src)
    buckets: dict = {}
    for at, target in _scatter_targets(out, dim, index):
        buckets.setdefault(target, []).append(s[at])
    return _reduced(out, buckets, reduce, include_self, "scatter_reduce")


@register("masked_select", torch=torch.masked_select, doc="1-d: the elements where the mask holds, row-major")
def masked_select(input, mask):
    x = as_obj(input)
    m = np.asarray(mask, dtype=bool)
    x, m = np.broadcast_arrays(x, m)
    return x[m]


@register("masked_scatter", torch=torch.masked_scatter,
          doc="out = input; the positions where the mask holds take source's elements in row-major order")
def masked_scatter(input, mask, source):
    x = as_obj(input)
    m = np.broadcast_to(np.asarray(mask, dtype=bool), x.shape)
    out = x.copy()
    src = as_obj(source).reshape(-1)
    out[m] = src[: int(m.sum())]
    return out


@register("take", torch=torch.take, doc="input.flatten()[index]")
def take(input, index):
    return as_obj(input).reshape(-1)[index_array(index)]


@register("put", torch=torch.put, doc="out = input; out.flatten()[index] = source (or += with accumulate)")
def put(input, index, source, accumulate=False):
    x = as_obj(input)
    flat = x.reshape(-1).copy()
    src = as_obj(source).reshape(-1)
    for i, k in enumerate(index_array(index).reshape(-1)):
        flat[k] = flat[k] + src[i] if accumulate else src[i]
    return flat.reshape(x.shape)


@register("block_diag", torch=torch.block_diag, doc="the inputs as diagonal blocks of one matrix, 0 elsewhere")
def block_diag(*tensors):
    blocks = [as_obj(t) for t in tensors]
    blocks = [b.reshape(1, -1) if b.ndim < 2 else b for b in blocks]
    rows, cols = sum(b.shape[0] for b in blocks), sum(b.shape[1] for b in blocks)
    out = np.full((rows, cols), sympy.S.Zero, dtype=object)
    r = c = 0
    for b in blocks:
        out[r:r + b.shape[0], c:c + b.shape[1]] = b
        r, c = r + b.shape[0], c + b.shape[1]
    return out


@register("diag_embed", torch=torch.diag_embed,
          doc="the last dim placed on the offset diagonal of new trailing (n, n) matrices, 0 elsewhere")
def diag_embed(input, offset=0, dim1=-2, dim2=-1):
    if (dim1, dim2) != (-2, -1):
        raise unsupported("diag_embed: only dim1=-2, dim2=-1 are supported")
    x = as_obj(input)
    k = int(offset)
    n = x.shape[-1] + abs(k)
    out = np.full(x.shape[:-1] + (n, n), sympy.S.Zero, dtype=object)
    for i in range(x.shape[-1]):
        r, c = (i, i + k) if k >= 0 else (i - k, i)
        out[..., r, c] = x[..., i]
    return out


def _diagonal_positions(shape, offset, dim1, dim2):
    d1, d2 = norm_dim(dim1, len(shape)), norm_dim(dim2, len(shape))
    k = int(offset)
    n = max(0, min(shape[d1] - max(-k, 0), shape[d2] - max(k, 0)))
    return d1, d2, [(i + max(-k, 0), i + max(k, 0)) for i in range(n)]


@register("diagonal_scatter", torch=torch.diagonal_scatter,
          doc="out = input with its (offset, dim1, dim2) diagonal replaced by src (src's last dim)")
def diagonal_scatter(input, src, offset=0, dim1=0, dim2=1):
    out = as_obj(input).copy()
    s = as_obj(src)
    d1, d2, pos = _diagonal_positions(out.shape, offset, dim1, dim2)
    moved = np.moveaxis(out, (d1, d2), (-2, -1))   # a view: writing it writes out
    for i, (r, c) in enumerate(pos):
        moved[..., r, c] = s[..., i]
    return out


@register("select_scatter", torch=torch.select_scatter, doc="out = input with out.select(dim, index) = src")
def select_scatter(input, src, dim, index):
    out, back = _along(as_obj(input), dim)
    out[int(index)] = as_obj(src)
    return back(out)


@register("slice_scatter", torch=torch.slice_scatter,
          doc="out = input with out[start:end:step] (along dim) = src")
def slice_scatter(input, src, dim=0, start=None, end=None, step=1):
    out, back = _along(as_obj(input), dim)
    s, _ = _along(as_obj(src), dim)
    out[slice(start, end, step)] = s
    return back(out)


@register("rot90", torch=torch.rot90, doc="rotate by k * 90 degrees in the plane dims, from dims[0] to dims[1]")
def rot90(input, k=1, dims=(0, 1)):
    x = as_obj(input)
    return np.rot90(x, int(k), axes=tuple(norm_dim(d, x.ndim) for d in dims))


def _stack_pieces(name, pieces):
    shapes = {p.shape for p in pieces}
    if len(shapes) != 1:
        raise unsupported(f"{name}: pieces of unequal sizes {sorted(shapes)} are not supported",
                          hint="Split into equal pieces, or index the input with a slice instead.")
    return np.stack(pieces)


@register("split", torch=torch.split, finish=stacked, aliases=("split_with_sizes",),
          doc="pieces of split_size_or_sections along dim, stacked (equal pieces only)")
def split(tensor, split_size_or_sections, dim=0):
    x = as_obj(tensor)
    d = norm_dim(dim, x.ndim)
    n = x.shape[d]
    if isinstance(split_size_or_sections, (list, tuple)):
        cuts = np.cumsum([int(s) for s in split_size_or_sections])[:-1]
    else:
        cuts = list(range(int(split_size_or_sections), n, int(split_size_or_sections)))
    return _stack_pieces("split", np.split(x, cuts, axis=d))


@register("chunk", torch=torch.chunk, finish=stacked, doc="ceil(n / chunks)-sized pieces along dim, stacked "
          "(equal pieces only)")
def chunk(input, chunks, dim=0):
    x = as_obj(input)
    size = -(-x.shape[norm_dim(dim, x.ndim)] // int(chunks))
    return split(x, size, dim)


@register("unbind", torch=torch.unbind, finish=stacked, doc="the slices along dim, stacked (dim moved to the front)")
def unbind(input, dim=0):
    x = as_obj(input)
    return np.moveaxis(x, norm_dim(dim, x.ndim), 0)

