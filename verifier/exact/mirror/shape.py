"""Shape and indexing mirrors: they move or copy elements and never do arithmetic.

numpy's object-array routines do the work; results are always fresh copies
(numpy hands back read-only views from broadcast_to/diagonal) and structural
zeros are SymPy's ``S.Zero``, never Python ints.
"""

from __future__ import annotations

import numpy as np
import sympy
import torch

from ._arrays import as_obj, index_array, norm_dim, norm_dims, scalar_array, shape_args, unsupported
from ._table import register

ZERO = sympy.S.Zero


def _sizes(positional, keyword, name):
    """Sizes or dims given positionally (``f(x, 2, 3)``, ``f(x, (2, 3))``) or as torch's keyword ``name=``."""
    unknown = set(keyword) - {name}
    if unknown:
        raise unsupported(f"unexpected keyword argument(s) {', '.join(sorted(unknown))}; torch's is '{name}'")
    if name in keyword:
        if positional:
            raise unsupported(f"'{name}' given both positionally and as a keyword")
        positional = (keyword[name],)
    return shape_args(positional)


def _reshape_like(x, sizes):
    """Reshape to ``sizes`` (one entry may be -1)."""
    return as_obj(x).reshape(shape_args(sizes)).copy()


@register("reshape", torch=torch.Tensor.reshape, analytic=True, doc="same elements, new shape")
def reshape(x, *shape, **keyword):
    """Row-major reshape, like torch.reshape (``shape=`` as torch's keyword)."""
    return _reshape_like(x, _sizes(shape, keyword, "shape"))


@register("view", torch=torch.Tensor.view, analytic=True, doc="same elements, new shape")
def view(x, *shape, **keyword):
    """Row-major reshape (torch's view, without the memory aliasing; ``size=`` as torch's keyword)."""
    return _reshape_like(x, _sizes(shape, keyword, "size"))


@register("view_as", torch=torch.Tensor.view_as, analytic=True,
          doc="same elements, shape of other")
def view_as(x, other):
    """Reshape to another tensor's shape."""
    return _reshape_like(x, as_obj(other).shape)


@register("reshape_as", torch=torch.Tensor.reshape_as, analytic=True,
          doc="same elements, shape of other")
def reshape_as(x, other):
    """Reshape to another tensor's shape."""
    return _reshape_like(x, as_obj(other).shape)


@register("flatten", torch=torch.flatten, analytic=True,
          doc="merge dims start_dim..end_dim into one")
def flatten(x, start_dim=0, end_dim=-1):
    """Flatten a run of dimensions (a 0-d tensor becomes 1-d)."""
    x = as_obj(x)
    if x.ndim == 0:
        return x.reshape(1)
    s, e = norm_dim(start_dim, x.ndim), norm_dim(end_dim, x.ndim)
    return x.reshape(x.shape[:s] + (-1,) + x.shape[e + 1:]).copy()


@register("squeeze", torch=torch.squeeze, analytic=True,
          doc="drop size-1 dims (all, or those in dim)")
def squeeze(x, dim=None):
    """Remove size-1 dimensions; naming a dim whose size is not 1 is a no-op, as in torch.

    ``dim=()`` names no dimension, so nothing is squeezed (torch's rule; for
    reductions the empty tuple means "all").
    """
    x = as_obj(x)
    if isinstance(dim, (tuple, list)) and len(dim) == 0:
        return x.copy()
    axes = norm_dims(dim, x.ndim)
    return np.squeeze(x, axis=tuple(a for a in axes if x.shape[a] == 1)).copy()


@register("unsqueeze", torch=torch.unsqueeze, analytic=True, doc="insert a size-1 dim at dim")
def unsqueeze(x, dim):
    """Insert a dimension of size 1 (negative dims count from the new end)."""
    x = as_obj(x)
    return np.expand_dims(x, norm_dim(dim, x.ndim + 1)).copy()


@register("transpose", torch=torch.transpose, analytic=True, aliases=("swapaxes", "swapdims"),
          doc="swap dims dim0 and dim1")
def transpose(x, dim0, dim1):
    """Swap two dimensions."""
    x = as_obj(x)
    if x.ndim == 0:
        return x.copy()
    return np.swapaxes(x, norm_dim(dim0, x.ndim), norm_dim(dim1, x.ndim)).copy()


@register("t", torch=torch.t, analytic=True, doc="matrix transpose (identity for <2-d)")
def t(x):
    """Transpose a matrix; 0-d and 1-d tensors are returned as they are."""
    x = as_obj(x)
    if x.ndim > 2:
        raise unsupported(f"t expects a tensor with <= 2 dims, got {x.ndim}")
    return x.T.copy()


@register("permute", torch=torch.Tensor.permute, analytic=True, doc="reorder dims")
def permute(x, *dims, **keyword):
    """Reorder dimensions: ``permute(x, (1, 0))``, ``x.permute(1, 0)`` or ``dims=(1, 0)``."""
    x = as_obj(x)
    return np.transpose(x, [norm_dim(d, x.ndim) for d in _sizes(dims, keyword, "dims")]).copy()


@register("movedim", torch=torch.movedim, analytic=True, aliases=("moveaxis",),
          doc="move dims source to positions destination")
def movedim(x, source, destination):
    """Move dimensions to new positions, keeping the others' order."""
    return np.moveaxis(as_obj(x), source, destination).copy()


def _concat_parts(tensors):
    if not isinstance(tensors, (list, tuple)):
        raise unsupported("cat/stack take a list or tuple of tensors")
    return [as_obj(p) for p in tensors]


@register("cat", torch=torch.cat, analytic=True, aliases=("concat", "concatenate"),
          doc="join tensors along an existing dim")
def cat(tensors, dim=0):
    """Concatenate along ``dim``."""
    parts = _concat_parts(tensors)
    return np.concatenate(parts, axis=norm_dim(dim, parts[0].ndim))


@register("stack", torch=torch.stack, analytic=True, doc="join tensors along a new dim")
def stack(tensors, dim=0):
    """Stack along a new dimension ``dim``."""
    parts = _concat_parts(tensors)
    return np.stack(parts, axis=norm_dim(dim, parts[0].ndim + 1))


def _broadcast(x, shape):
    return np.broadcast_to(x, shape).copy()


@register("expand", torch=torch.Tensor.expand, analytic=True,
          doc="broadcast size-1 dims to sizes (-1 keeps a size)")
def expand(x, *sizes, **keyword):
    """Broadcast to ``sizes`` (or ``size=``); -1 keeps the existing size, new dims go in front."""
    x = as_obj(x)
    sizes = _sizes(sizes, keyword, "size")
    lead = len(sizes) - x.ndim
    shape = tuple(x.shape[i - lead] if s == -1 else s for i, s in enumerate(sizes))
    return _broadcast(x, shape)


@register("expand_as", torch=torch.Tensor.expand_as, analytic=True,
          doc="broadcast to the shape of other")
def expand_as(x, other):
    """Broadcast to another tensor's shape."""
    return _broadcast(as_obj(x), as_obj(other).shape)


@register("broadcast_to", torch=torch.broadcast_to, analytic=True, doc="broadcast to shape")
def broadcast_to(x, shape):
    """Broadcast to ``shape``."""
    return _broadcast(as_obj(x), shape_args((shape,)))


@register("repeat", torch=torch.Tensor.repeat, analytic=True,
          doc="tile the tensor sizes[i] times along dim i")
def repeat(x, *sizes, **keyword):
    """Tile like torch's Tensor.repeat (extra leading sizes add dimensions; ``repeats=``)."""
    return np.tile(as_obj(x), _sizes(sizes, keyword, "repeats"))


@register("flip", torch=torch.Tensor.flip, analytic=True, doc="reverse order along dims")
def flip(x, *dims, **keyword):
    """Reverse the order of elements along ``dims`` (positional, or torch's keyword ``dims=``)."""
    x = as_obj(x)
    return np.flip(x, axis=tuple(norm_dim(d, x.ndim) for d in _sizes(dims, keyword, "dims"))).copy()


@register("roll", torch=torch.roll, analytic=True,
          doc="cyclic shift by shifts along dims (flattened when dims is None)")
def roll(x, shifts, dims=None):
    """Cyclic shift."""
    return np.roll(as_obj(x), shifts, axis=dims)


@register("gather", torch=torch.gather, analytic=True,
          doc="out[..i..] = x[..index[..i..]..] along dim")
def gather(x, dim, index, sparse_grad=False):
    """Pick one element along ``dim`` per position of ``index``."""
    x = as_obj(x)
    index = index_array(index)
    axis = norm_dim(dim, x.ndim)
    where = list(np.indices(index.shape, sparse=True))
    where[axis] = index
    return x[tuple(where)] if x.ndim else x.copy()


@register("index_select", torch=torch.index_select, analytic=True,
          doc="x with dim restricted to the listed indices")
def index_select(x, dim, index):
    """Select entries along ``dim`` by a 1-d (or 0-d) index; a 0-d input stays 0-d, as in torch."""
    x = as_obj(x)
    if x.ndim == 0:
        norm_dim(dim, 0)
        if np.any((index_array(index) != 0) & (index_array(index) != -1)):
            raise unsupported("index_select: index out of range for a 0-d tensor")
        return x.copy()
    return np.take(x, np.atleast_1d(index_array(index)), axis=norm_dim(dim, x.ndim))


@register("narrow", torch=torch.narrow, analytic=True, doc="slice start:start+length along dim")
def narrow(x, dim, start, length):
    """Contiguous slice along ``dim``."""
    x = as_obj(x)
    axis = norm_dim(dim, x.ndim)
    start = int(start) % x.shape[axis] if int(start) < 0 else int(start)
    return np.take(x, np.arange(start, start + int(length)), axis=axis)


@register("select", torch=torch.select, analytic=True,
          doc="x indexed at index along dim (dim removed)")
def select(x, dim, index):
    """Index one position along ``dim``, removing that dimension."""
    x = as_obj(x)
    out = np.take(x, int(index), axis=norm_dim(dim, x.ndim))
    return out if isinstance(out, np.ndarray) else scalar_array(out)


def _zeros(shape):
    return np.full(shape, ZERO, dtype=object)


@register("diag", torch=torch.diag, analytic=True,
          doc="vector -> square matrix with it on diagonal k; matrix -> its diagonal k")
def diag(x, diagonal=0):
    """torch.diag: build a diagonal matrix from a vector, or extract a diagonal."""
    x = as_obj(x)
    k = int(diagonal)
    if x.ndim == 1:
        n = len(x) + abs(k)
        out = _zeros((n, n))
        for i, v in enumerate(x):
            out[(i, i + k) if k >= 0 else (i - k, i)] = v
        return out
    if x.ndim == 2:
        return np.diagonal(x, k).copy()
    raise unsupported(f"diag expects a 1-d or 2-d tensor, got {x.ndim}-d")


@register("diagonal", torch=torch.diagonal, analytic=True,
          doc="diagonal `offset` of the (dim1, dim2) planes, appended as the last dim")
def diagonal(x, offset=0, dim1=0, dim2=1):
    """torch.diagonal (torch.linalg.diagonal, below, defaults to dim1=-2, dim2=-1)."""
    x = as_obj(x)
    return np.diagonal(x, int(offset), norm_dim(dim1, x.ndim), norm_dim(dim2, x.ndim)).copy()


@register("torch.linalg.diagonal", torch=torch.linalg.diagonal, bare=False, analytic=True,
          doc="diagonal `offset` of the (dim1, dim2) planes, default the last two dims")
def linalg_diagonal(x, *, offset=0, dim1=-2, dim2=-1):
    """torch.linalg.diagonal: torch.diagonal with keyword-only arguments over the last two dims."""
    return diagonal(x, offset, dim1, dim2)


def _triangle(x, diagonal, lower):
    x = as_obj(x)
    if x.ndim < 2:
        raise unsupported("tril/triu expect a tensor with >= 2 dims")
    rows, cols = x.shape[-2:]
    mask = np.tri(rows, cols, int(diagonal), dtype=bool)
    if not lower:
        mask = ~np.tri(rows, cols, int(diagonal) - 1, dtype=bool)
    out = _zeros(x.shape)
    out[..., mask] = x[..., mask]
    return out


@register("tril", torch=torch.tril, analytic=True, doc="x_ij where j - i <= diagonal, else 0")
def tril(x, diagonal=0):
    """Lower triangle of the last two dims."""
    return _triangle(x, diagonal, lower=True)


@register("triu", torch=torch.triu, analytic=True, doc="x_ij where j - i >= diagonal, else 0")
def triu(x, diagonal=0):
    """Upper triangle of the last two dims."""
    return _triangle(x, diagonal, lower=False)


@register("contiguous", torch=torch.Tensor.contiguous, analytic=True,
          doc="identity (memory layout only)")
def contiguous(x, *args, **kwargs):
    """Identity: memory layout has no mathematical content."""
    return as_obj(x).copy()


@register("clone", torch=torch.clone, analytic=True, doc="identity (a copy)")
def clone(x, *, memory_format=None):
    """Identity."""
    return as_obj(x).copy()
