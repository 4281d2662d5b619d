"""More shape mirrors, each defined through the mirrors of shape.py (torch's documented definition in ``doc``).

fliplr/flipud, ravel, atleast_nd, the stacks (hstack, vstack, dstack,
column_stack), tile, diagflat, take_along_dim, unflatten, repeat_interleave,
positive, Tensor.unfold (the sliding window) and the ``*_copy`` forms of the
view functions (torch documents each as its view function's result, copied).
"""

from __future__ import annotations

import numpy as np
import torch

from ._arrays import as_obj, index_array, norm_dim, shape_args, unsupported
from ._table import register
from .shape import cat, diag, diagonal, expand, flip, gather, narrow, permute, squeeze, t, transpose, unsqueeze, view


def _shape(name, fn, doc, **kw):
    return register(name, torch=fn, doc=doc, analytic=True, **kw)


@_shape("positive", torch.positive, "x (the identity)")
def positive(x):
    return as_obj(x).copy()


@_shape("fliplr", torch.fliplr, "flip(x, dims=(1,)): reverse the columns of a tensor with >= 2 dims")
def fliplr(x):
    if as_obj(x).ndim < 2:
        raise unsupported("fliplr needs a tensor with at least 2 dims")
    return flip(x, 1)


@_shape("flipud", torch.flipud, "flip(x, dims=(0,)): reverse the rows of a tensor with >= 1 dim")
def flipud(x):
    if as_obj(x).ndim < 1:
        raise unsupported("flipud needs a tensor with at least 1 dim")
    return flip(x, 0)


@_shape("ravel", torch.ravel, "reshape(x, (-1,)): the elements in row-major order")
def ravel(x):
    return as_obj(x).reshape(-1).copy()


def _atleast(x, n):
    x = as_obj(x)
    if x.ndim >= n:
        return x.copy()
    if n == 3 and x.ndim == 2:
        return x.reshape(x.shape + (1,)).copy()
    if n == 3 and x.ndim == 1:
        return x.reshape((1,) + x.shape + (1,)).copy()
    return x.reshape((1,) * (n - x.ndim) + x.shape).copy()


def _one(tensors, name):
    if isinstance(tensors, (list, tuple)):
        raise unsupported(f"{name} of a list returns a tuple of tensors, which the case language cannot read")
    return tensors


@_shape("atleast_1d", torch.atleast_1d, "a 0-d tensor as shape (1,), others unchanged")
def atleast_1d(x):
    return _atleast(_one(x, "atleast_1d"), 1)


@_shape("atleast_2d", torch.atleast_2d, "0-d -> (1, 1), (n,) -> (1, n), others unchanged")
def atleast_2d(x):
    return _atleast(_one(x, "atleast_2d"), 2)


@_shape("atleast_3d", torch.atleast_3d, "0-d -> (1, 1, 1), (n,) -> (1, n, 1), (m, n) -> (m, n, 1), "
        "others unchanged")
def atleast_3d(x):
    return _atleast(_one(x, "atleast_3d"), 3)


def _parts(tensors, name):
    if not isinstance(tensors, (list, tuple)) or not tensors:
        raise unsupported(f"{name} takes a non-empty list or tuple of tensors")
    return [as_obj(p) for p in tensors]


@_shape("hstack", torch.hstack, "cat(atleast_1d(x) for x in tensors), along dim 0 for 1-d inputs, else dim 1")
def hstack(tensors):
    parts = [_atleast(p, 1) for p in _parts(tensors, "hstack")]
    return cat(parts, 0 if parts[0].ndim == 1 else 1)


@_shape("vstack", torch.vstack, "cat(atleast_2d(x) for x in tensors, dim=0)", aliases=("row_stack",))
def vstack(tensors):
    return cat([_atleast(p, 2) for p in _parts(tensors, "vstack")], 0)


@_shape("dstack", torch.dstack, "cat(atleast_3d(x) for x in tensors, dim=2)")
def dstack(tensors):
    return cat([_atleast(p, 3) for p in _parts(tensors, "dstack")], 2)


@_shape("column_stack", torch.column_stack, "hstack of the tensors, 0-d and 1-d ones first reshaped to (n, 1)")
def column_stack(tensors):
    return hstack([p.reshape(-1, 1) if p.ndim <= 1 else p for p in _parts(tensors, "column_stack")])


@_shape("tile", torch.tile, "x repeated dims[i] times along dim i; missing leading dims count as 1, extra ones "
        "add dims (as Tensor.repeat)")
def tile(x, dims):
    return np.tile(as_obj(x), shape_args((dims,)))


@_shape("diagflat", torch.diagflat, "diag(flatten(x), offset): a square matrix with x's elements on a diagonal")
def diagflat(x, offset=0):
    return diag(as_obj(x).reshape(-1), offset)


@_shape("take_along_dim", torch.take_along_dim, "gather(x, dim, indices) after broadcasting x and indices in "
        "every other dim; dim=None: take(x.flatten(), indices.flatten())")
def take_along_dim(x, indices, dim=None):
    x, idx = as_obj(x), index_array(indices)
    if dim is None:
        flat = x.reshape(-1)
        return flat[idx.reshape(-1) % max(flat.size, 1)].copy()
    d = norm_dim(dim, x.ndim)
    if idx.ndim != x.ndim:
        raise unsupported("take_along_dim needs indices with as many dims as the input")
    xs, js = list(x.shape), list(idx.shape)
    shape = [max(a, b) if i != d else None for i, (a, b) in enumerate(zip(xs, js))]
    xb = np.broadcast_to(x, tuple(s if s is not None else xs[i] for i, s in enumerate(shape))).copy()
    jb = np.broadcast_to(idx, tuple(s if s is not None else js[i] for i, s in enumerate(shape))).copy()
    return gather(xb, d, jb)


@_shape("unflatten", torch.unflatten, "reshape dim into sizes (one size may be -1)")
def unflatten(x, dim, sizes):
    x = as_obj(x)
    d = norm_dim(dim, x.ndim)
    sizes = list(shape_args((sizes,)))
    if -1 in sizes:
        known = int(np.prod([s for s in sizes if s != -1]))
        sizes[sizes.index(-1)] = x.shape[d] // known if known else 0
    return x.reshape(x.shape[:d] + tuple(sizes) + x.shape[d + 1:]).copy()


@_shape("repeat_interleave", torch.repeat_interleave, "each element (dim=None: of the flattened input) or "
        "slice along dim repeated repeats[i] times, in place")
def repeat_interleave(x, repeats=None, dim=None, *, output_size=None):
    if repeats is None:
        raise unsupported("repeat_interleave(repeats) without an input tensor has no gradient")
    x = as_obj(x)
    reps = index_array(repeats) if not isinstance(repeats, int) else repeats
    if dim is None:
        return np.repeat(x.reshape(-1), reps).copy()
    return np.repeat(x, reps, axis=norm_dim(dim, x.ndim)).copy()


@register("Tensor.unfold", torch=torch.Tensor.unfold, bare=False, analytic=True,
          doc="the windows x[..., i*step : i*step + size, ...] along dimension, as a new last dim")
def tensor_unfold(x, dimension, size, step):
    x = as_obj(x)
    d = norm_dim(dimension, x.ndim)
    length = x.shape[d] if x.ndim else 1
    size, step = int(size), int(step)
    count = (length - size) // step + 1
    if x.ndim == 0:
        return x.reshape((1,)).copy()
    windows = [np.moveaxis(np.take(x, range(i * step, i * step + size), axis=d), d, -1) for i in range(count)]
    out = np.stack(windows, axis=d) if windows else np.empty(x.shape[:d] + (0,) + x.shape[d + 1:] + (size,),
                                                              dtype=object)
    return out


@_shape("unfold_copy", torch.unfold_copy, "x.unfold(dimension, size, step), copied")
def unfold_copy(x, dimension, size, step):
    return tensor_unfold(x, dimension, size, step)


# The *_copy functions: torch documents each as its view function's output, copied (no aliasing).
@_shape("expand_copy", torch.expand_copy, "x.expand(size), copied")
def expand_copy(x, size, *, implicit=False):
    return expand(x, size)


@_shape("permute_copy", torch.permute_copy, "x.permute(dims), copied")
def permute_copy(x, dims):
    return permute(x, dims)


@_shape("view_copy", torch.view_copy, "x.view(size), copied")
def view_copy(x, size):
    return view(x, size)


@_shape("diagonal_copy", torch.diagonal_copy, "torch.diagonal(x, offset, dim1, dim2), copied")
def diagonal_copy(x, offset=0, dim1=0, dim2=1):
    return diagonal(x, offset, dim1, dim2)


@_shape("t_copy", torch.t_copy, "x.t(), copied")
def t_copy(x):
    return t(x)


@_shape("transpose_copy", torch.transpose_copy, "x.transpose(dim0, dim1), copied")
def transpose_copy(x, dim0, dim1):
    return transpose(x, dim0, dim1)


@_shape("unsqueeze_copy", torch.unsqueeze_copy, "x.unsqueeze(dim), copied")
def unsqueeze_copy(x, dim):
    return unsqueeze(x, dim)


@_shape("squeeze_copy", torch.squeeze_copy, "x.squeeze(dim), copied")
def squeeze_copy(x, dim=None):
    return squeeze(x, dim)


@_shape("alias_copy", torch.alias_copy, "x, copied")
def alias_copy(x):
    return as_obj(x).copy()


@_shape("narrow_copy", torch.narrow_copy, "x.narrow(dim, start, length), copied")
def narrow_copy(x, dim, start, length):
    return narrow(x, dim, start, length)
