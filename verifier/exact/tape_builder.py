"""Building a tape per operation: node arrays, per-op templates, SymPy fragments (used by :mod:`verifier.exact.lowering`).

:class:`Builder` appends nodes to one tape: whole arrays of sums and
products by index arithmetic, a small per-function template tape copied
once per element (:func:`template`: the mirror's scalar definition,
evaluated and flattened by SymPy once per function and parameter set,
cached for the process), and SymPy expressions over symbols that stand for
existing nodes (:meth:`Builder.from_sympy`).
"""

from __future__ import annotations

import math

import numpy as np
import sympy as sp

from . import fingerprint, mirror
from .symbolic import _to_sympy, as_object_array
from .tape import ADD, CONST, MUL, POW, SYM, Tape, _Compiler


class Unsupported(Exception):
    """The lowering cannot read this expression; the caller builds the SymPy model instead."""


class Nodes:
    """An array (any shape) of tape node indices: the lowering's value of a tensor."""

    __slots__ = ("ids",)

    def __init__(self, ids: np.ndarray) -> None:
        self.ids = np.asarray(ids, dtype=np.int64)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.ids.shape


class _Token:
    """An element that supports nothing: a mirror function that only moves elements passes it through."""

    __slots__ = ("id",)

    def __init__(self, i: int) -> None:
        self.id = i


_TEMPLATES: dict = {}      # (function, parameters) -> (small tape, number of array arguments), per process


class Builder:
    """Appends nodes to one tape (a :class:`~verifier.exact.tape._Compiler`, which also flattens SymPy)."""

    def __init__(self) -> None:
        self.c = _Compiler({})
        self.consts: dict[str, int] = {}

    def emit(self, op: int, args: list[tuple[int, ...]], extra: str = "") -> np.ndarray:
        """Append one node per entry of ``args``; their indices."""
        start = len(self.c.ops)
        n = len(args)
        self.c.ops.extend([op] * n)
        self.c.args.extend(args)
        self.c.extra.extend([extra] * n)
        return np.arange(start, start + n, dtype=np.int64)

    def const(self, value) -> int:
        """The node of a number (any SymPy expression without symbols)."""
        value = _to_sympy(value)
        key = sp.srepr(value)
        if key not in self.consts:
            self.consts[key] = self.c.add(value)
        return self.consts[key]

    def leaves(self, name: str, shape: tuple[int, ...]) -> Nodes:
        n = math.prod(shape)
        first = len(self.c.leaf_list)
        self.c.leaf_list.extend((name, k) for k in range(n))
        ids = self.emit(SYM, [()] * n)
        for k, i in enumerate(ids.tolist()):
            self.c.extra[i] = str(first + k)
        return Nodes(ids.reshape(shape))

    def elementwise(self, op: int, *operands: Nodes, extra: str = "") -> Nodes:
        arrays = np.broadcast_arrays(*[o.ids for o in operands])
        shape = arrays[0].shape
        cols = [a.ravel().tolist() for a in arrays]
        return Nodes(self.emit(op, list(zip(*cols)), extra).reshape(shape))

    def sums(self, terms: np.ndarray) -> np.ndarray:
        """One sum node per row of ``terms`` (shape ``out + (k,)``); a row of one is that node."""
        shape, k = terms.shape[:-1], terms.shape[-1]
        if k == 0:
            return np.full(shape, self.const(0), dtype=np.int64)
        if k == 1:
            return terms[..., 0]
        rows = [tuple(r) for r in terms.reshape(-1, k).tolist()]
        return self.emit(ADD, rows).reshape(shape)

    def products(self, factors: list[np.ndarray]) -> np.ndarray:
        arrays = np.broadcast_arrays(*factors)
        cols = [a.ravel().tolist() for a in arrays]
        return self.emit(MUL, list(zip(*cols))).reshape(arrays[0].shape)

    def instantiate(self, template: Tape, operands: list[Nodes]) -> Nodes:
        """Copy a small tape once per (broadcast) element, its leaves replaced by the operands' nodes."""
        arrays = np.broadcast_arrays(*[o.ids for o in operands]) if operands else [np.zeros((), np.int64)]
        shape = arrays[0].shape
        return Nodes(self.copies(template, [a.ravel() for a in arrays])[:, 0].reshape(shape))

    def copies(self, template: Tape, cols: list[np.ndarray]) -> np.ndarray:
        """Copy a small tape ``n`` times: its leaf ``j`` is ``cols[j][i]`` in copy ``i`` (each column of
        length ``n``). Returns its roots' nodes per copy, shape ``(n, number of roots)``."""
        n = len(cols[0]) if cols else 1
        where: list[np.ndarray] = []            # template node -> its node per copy
        for j, op in enumerate(template.ops):
            if op == SYM:
                where.append(np.asarray(cols[template.leaves[int(template.extra[j])][1]], dtype=np.int64))
            elif op == CONST:
                where.append(np.full(n, self.const(_constant(template.extra[j])), dtype=np.int64))
            else:
                kids = [where[a].tolist() for a in template.args[j]]
                where.append(self.emit(op, list(zip(*kids)) if kids else [()] * n, template.extra[j]))
        for j, ds in template.dargs.items():
            per = [where[d].tolist() if d >= 0 else [-1] * n for d in ds]
            for i, row in zip(where[j].tolist(), zip(*per)):
                self.c.dargs[i] = tuple(row)
        return np.stack([where[r] for r in template.roots], axis=-1) if template.roots else np.zeros((n, 0), np.int64)

    def from_sympy(self, values: np.ndarray, symbols: dict) -> Nodes:
        """Flatten an object array of SymPy expressions over ``symbols`` (symbol -> node) into the tape."""
        self.c.index.update(symbols)
        ids = [self.c.add(_to_sympy(v)) for v in values.ravel().tolist()]
        return Nodes(np.array(ids, dtype=np.int64).reshape(values.shape))


class Ops:
    """Elementwise arithmetic on node arrays of one lowering's builder (broadcasting like numpy)."""

    def __init__(self, r) -> None:
        self.r, self.b = r, r.b

    def const(self, value) -> Nodes:
        return Nodes(np.array(self.b.const(value), dtype=np.int64))

    def add(self, a: Nodes, b: Nodes) -> Nodes:
        return self.b.elementwise(ADD, a, b)

    def mul(self, a: Nodes, b: Nodes) -> Nodes:
        return self.b.elementwise(MUL, a, b)

    def neg(self, a: Nodes) -> Nodes:
        return self.mul(self.const(sp.Integer(-1)), a)

    def pow(self, a: Nodes, exponent) -> Nodes:
        return self.b.elementwise(POW, a, self.const(exponent))

    def total(self, terms: list[Nodes], shape) -> Nodes:
        """One sum node per element over a list of equally shaped node arrays (0 for no terms)."""
        if not terms:
            return Nodes(np.full(shape, self.b.const(0), dtype=np.int64))
        stacked = np.stack(np.broadcast_arrays(*[t.ids for t in terms]), axis=-1)
        return Nodes(self.b.sums(stacked))


def _axes(dim, ndim: int):
    if dim is None or dim == () or dim == []:
        return list(range(ndim))
    dims = [dim] if isinstance(dim, (int, np.integer)) else list(dim) if isinstance(dim, (tuple, list)) else None
    if dims is None or not all(isinstance(d, (int, np.integer)) and -max(ndim, 1) <= d < max(ndim, 1)
                               for d in dims):
        return None
    axes = sorted({int(d) % max(ndim, 1) for d in dims})
    return axes if len(axes) == len(dims) and all(a < ndim for a in axes) else None


def _constant(text: str):
    from .tape import _NAMED
    if text in _NAMED:
        return _NAMED[text]
    if text in ("true", "false"):
        return sp.true if text == "true" else sp.false
    if text in ("zoo", "nan"):
        return sp.zoo if text == "zoo" else sp.nan
    p, q = (int(s) for s in text.split("/"))
    return sp.Rational(p, q)


def template(name: str, args: list, kwargs: dict) -> tuple[Tape, list[int]]:
    """The small tape of mirror function ``name`` over one symbol per array argument (cached)."""
    entry = mirror.resolve(name)
    slots = [k for k, a in enumerate(args) if isinstance(a, Nodes)]
    kslots = sorted(k for k, a in kwargs.items() if isinstance(a, Nodes))
    try:       # what the mirror computes now, not its identity: a changed global or capture is a new template
        what = fingerprint.digest(entry.sym)
    except fingerprint.Unkeyable:
        what = None                  # nothing to key it by: built afresh, never served from the cache
    key = (name, what,
           tuple("<>" if isinstance(a, Nodes) else _param_key(a) for a in args),
           tuple((k, "<>" if isinstance(a, Nodes) else _param_key(a)) for k, a in sorted(kwargs.items())))
    hit = _TEMPLATES.get(key) if what is not None else None
    if hit is None:
        syms = [sp.Dummy(f"a{k}", real=True) for k in range(len(slots) + len(kslots))]
        sargs, skw = list(args), dict(kwargs)
        for s, k in zip(syms, slots):
            sargs[k] = _scalar(s)
        for s, k in zip(syms[len(slots):], kslots):
            skw[k] = _scalar(s)
        value = as_object_array(entry.sym(*sargs, **skw))
        if value.shape != ():
            raise Unsupported(f"'{name}' of scalars is not a scalar")
        c = _Compiler({s: ("", k) for k, s in enumerate(syms)})
        root = c.add(_to_sympy(value[()]))
        c.finish()
        hit = (Tape(c.ops, c.args, c.extra, c.dargs, c.leaf_list, [root]), slots + kslots)
        if what is not None:
            _TEMPLATES[key] = hit
    return hit


def _param_key(value):
    try:
        hash(value)
    except TypeError:
        return ("unhashable", repr(value))
    return (type(value).__name__, value if not isinstance(value, sp.Basic) else sp.srepr(value))


def _scalar(s):
    arr = np.empty((), dtype=object)
    arr[()] = s
    return arr
