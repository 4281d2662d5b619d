"""A case's tape built per operation, without one SymPy expression per element.

:func:`verifier.exact.symbolic.build` evaluates the case over arrays of SymPy
symbols, so a cold run of a 10⁴-element case builds 10⁴+ SymPy objects and
then flattens them (:mod:`verifier.exact.tape`). Here the same expression is
read with arrays of *tape node indices* instead (:class:`Nodes`), and each
operation appends its nodes to the tape directly:

* **elementwise mirror functions** (``FUNCTIONS[name].elementwise``) and
  ``+ - * / **``: the mirror's scalar definition is evaluated by SymPy once
  per function and distinct parameter set, flattened to a small tape (with
  SymPy's own derivative nodes for kinks, as :func:`~verifier.exact.tape.compile_tape`
  gives them), cached for the process, and copied once per element by
  index arithmetic in numpy;
* **linear and structural operations**: ``sum``/``mean`` (one sum node per
  output), ``matmul``/``@``/``linear``/``einsum`` (products and one sum per
  output), ``.T``, basic indexing, and every mirror function that only moves
  elements (``reshape``, ``permute``, ``cat``, ``stack``, ``index_select``...:
  they run on opaque tokens, and when they rearrange without computing,
  their result is taken as is);
* **anything else** (softmax, layer_norm, losses, comparisons...): the
  mirror's SymPy definition runs over fresh symbols standing for its
  argument nodes, for that operation only, and its result is flattened into
  the same tape.

The tape is then evaluated exactly like a SymPy-built one (40-digit mpmath
sweeps), so SymPy stays the source of each operation's mathematics. Small
cases keep the per-element SymPy model as their second route
(:mod:`verifier.exact.compiled`); ``tests/test_lowering.py`` checks that both
give the same output and Jᵀv on every built-in case.
"""

from __future__ import annotations

import ast
import math

import numpy as np
import sympy as sp
from sympy.core.parameters import distribute

from ..cases.case import Case
from ..cases.language import Reading
from . import lowering_ops, mirror
from .symbolic import SymbolicReading, as_object_array
from .tape import ADD, MUL, POW, Tape
from .tape_builder import Builder, Nodes, Unsupported, _axes, _Token, template

ROUTE = "reverse sweep over the expression graph (built per operation)"


class LoweringReading(Reading):
    """Reads a case expression into tape nodes (see the module doc)."""

    def __init__(self, builder: Builder, variables: dict) -> None:
        self.b = builder
        self.variables = variables
        self.sym = SymbolicReading({})

    def literal(self, value):
        return self.sym.literal(value)

    def _nodes(self, value) -> Nodes:
        if isinstance(value, Nodes):
            return value
        if isinstance(value, np.ndarray):
            raise Unsupported("an index or mask input used as a value")
        return Nodes(np.array(self.b.const(value), dtype=np.int64))

    def binop(self, op, left, right):
        if not isinstance(left, Nodes) and not isinstance(right, Nodes):
            return self.sym.binop(op, left, right)
        if op is ast.MatMult:
            return self._matmul(self._nodes(left), self._nodes(right))
        a, b = self._nodes(left), self._nodes(right)
        if op is ast.Add:
            return self.b.elementwise(ADD, a, b)
        if op is ast.Mult:
            return self.b.elementwise(MUL, a, b)
        if op is ast.Sub:
            return self.b.elementwise(ADD, a, self._negate(b))
        if op is ast.Div:
            return self.b.elementwise(MUL, a, self.b.elementwise(POW, b, self._nodes(sp.Integer(-1))))
        if op is ast.Pow:
            return self.b.elementwise(POW, a, b)
        raise Unsupported(f"operator {op.__name__}")

    def _negate(self, a: Nodes) -> Nodes:
        return self.b.elementwise(MUL, self._nodes(sp.Integer(-1)), a)

    def unary(self, op, operand):
        if not isinstance(operand, Nodes):
            return self.sym.unary(op, operand)
        if op is ast.USub:
            return self._negate(operand)
        if op is ast.UAdd:
            return operand
        raise Unsupported(f"operator {op.__name__}")

    def compare(self, op, left, right):
        raise Unsupported("comparisons")

    def prop(self, obj, name):
        if not isinstance(obj, Nodes):
            return self.sym.prop(obj, name)
        return Nodes(obj.ids.T if name == "T" else np.swapaxes(obj.ids, -1, -2))

    def index(self, obj, key):
        if not isinstance(obj, Nodes):
            raise Unsupported("indexing a constant")
        keys = key if isinstance(key, tuple) else (key,)
        if any(isinstance(k, Nodes) for k in keys):
            raise Unsupported("an index computed from floating inputs")
        return Nodes(obj.ids[key])

    def call(self, name, args, kwargs):
        entry = mirror.resolve(name)
        canonical = entry.name
        rule = _rule(entry)
        if rule is not None:
            out = rule(self, *args, **kwargs)
            if out is not NotImplemented:
                return out
        nodes = [a for a in [*args, *kwargs.values()] if isinstance(a, Nodes)]
        if entry.elementwise and nodes and not any(isinstance(a, np.ndarray) for a in [*args, *kwargs.values()]):
            tape, slots = template(canonical, args, kwargs)
            operands = [args[k] if isinstance(k, int) else kwargs[k] for k in slots]
            return self.b.instantiate(tape, operands)
        moved = self._moved(entry, args, kwargs)
        return moved if moved is not None else self._by_sympy(entry, args, kwargs)

    def _moved(self, entry, args, kwargs):
        """The mirror run on opaque tokens: its result when it only rearranged them, else None."""
        definition = getattr(entry.sym, "__wrapped__", None)     # the mirror's own function, unnormalised
        if definition is None:
            return None
        try:
            with distribute(False):
                result = definition(*_stand_in(args, _Token), **_stand_in(kwargs, _Token))
        except Exception:          # it computed with the tokens (or refused them): not a pure move
            return None
        if not isinstance(result, np.ndarray) or result.dtype != object:
            return None
        flat = result.ravel().tolist()
        if not all(isinstance(t, _Token) or (isinstance(t, sp.Basic) and t.is_number) for t in flat):
            return None
        ids = [t.id if isinstance(t, _Token) else self.b.const(t) for t in flat]
        return Nodes(np.array(ids, dtype=np.int64).reshape(result.shape))

    def _by_sympy(self, entry, args, kwargs):
        """The mirror's SymPy definition over fresh symbols standing for the argument nodes (this op only)."""
        symbols = {}

        def fresh(i):
            s = sp.Dummy(real=True)
            symbols[s] = i
            return s
        value = entry.sym(*_stand_in(args, fresh), **_stand_in(kwargs, fresh))
        return self.b.from_sympy(as_object_array(value), symbols)

    # -- linear operations ------------------------------------------------------------------------------

    def _matmul(self, a: Nodes, b: Nodes) -> Nodes:
        A, B = a.ids, b.ids
        if A.ndim == 0 or B.ndim == 0:
            raise Unsupported("matmul of a scalar")
        a2 = A[None, :] if A.ndim == 1 else A
        b2 = B[:, None] if B.ndim == 1 else B
        if a2.shape[-1] != b2.shape[-2]:
            raise Unsupported("matmul shapes")      # the SymPy model reports it
        # (..., n, k) x (..., k, m): factors broadcast to (..., n, m, k)
        prods = self.b.products([a2[..., :, None, :], np.swapaxes(b2, -1, -2)[..., None, :, :]])
        out = self.b.sums(prods)
        if A.ndim == 1:
            out = out[..., 0, :]
        if B.ndim == 1:
            out = out[..., 0]
        return Nodes(out)

    def _reduce(self, kind, x, dim=None, keepdim=False, dtype=None):
        if not isinstance(x, Nodes) or dtype is not None:
            return NotImplemented
        ids = x.ids
        axes = _axes(dim, ids.ndim)
        if axes is None:
            return NotImplemented
        moved = np.moveaxis(ids, axes, list(range(ids.ndim - len(axes), ids.ndim)))
        keep = moved.shape[:ids.ndim - len(axes)]
        count = math.prod(ids.shape[a] for a in axes)
        out = self.b.sums(moved.reshape(keep + (count,)))
        if kind == "mean":
            out = self.b.elementwise(MUL, Nodes(out), self._nodes(sp.Rational(1, max(count, 1)))).ids
        if keepdim:
            out = np.expand_dims(out, axes)
        return Nodes(out)

    def _einsum(self, equation, *operands):
        from .mirror.einsum import _einsum_parse
        if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
            operands = operands[0]
        if not isinstance(equation, str) or not all(isinstance(o, Nodes) for o in operands):
            return NotImplemented
        labels, out_labels, sizes = _einsum_parse(equation, [o.shape for o in operands])
        summed = [lab for lab in sizes if lab not in out_labels]
        order = out_labels + summed
        joint = tuple(sizes[lab] for lab in order)
        factors = []
        for ls, o in zip(labels, operands):
            # put each operand's dims in joint order (size-1 dims broadcast), repeated labels as diagonals
            view = o.ids
            idx = tuple(np.arange(sizes[lab]).reshape([-1 if q == order.index(lab) else 1
                                                       for q in range(len(order))]) if n != 1 else 0
                        for lab, n in zip(ls, o.shape))
            view = view[idx] if idx else view
            factors.append(np.broadcast_to(view, joint))
        prods = self.b.products(factors) if len(factors) > 1 else factors[0]
        k = math.prod(joint[len(out_labels):])
        return Nodes(self.b.sums(np.asarray(prods).reshape(joint[:len(out_labels)] + (k,))))

    def _per_slice(self, name, x, dim, keepdim=None, dtype=None):
        """softmax, log_softmax, softmin, logsumexp along ``dim`` as the mirror writes them: ``exp`` (and
        ``log``) through their per-function templates, one sum node per slice, ``e * s**-1`` or
        ``x - log(s)`` by index arithmetic (no SymPy per slice)."""
        if not isinstance(x, Nodes) or dtype is not None or x.ids.ndim == 0:
            return NotImplemented
        if dim is None and name != "logsumexp":
            dim = mirror.nn._implicit_softmax_dim(x.ids.ndim)
        if not isinstance(dim, (int, np.integer)) or not -x.ids.ndim <= dim < x.ids.ndim:
            return NotImplemented                   # the SymPy model reports (or reads) it
        d = int(dim) % x.ids.ndim
        moved = Nodes(np.moveaxis(x.ids, d, -1))
        if name == "softmin":
            moved = self._negate(moved)
        e = self.call("exp", [moved], {})
        total = Nodes(self.b.sums(e.ids))
        if name == "logsumexp":
            out = self.call("log", [total], {}).ids
            return Nodes(np.expand_dims(out, d) if keepdim else out)
        if name == "log_softmax":
            out = self.b.elementwise(ADD, moved, self._negate(Nodes(self.call("log", [total], {}).ids[..., None])))
        else:
            inverse = self.b.elementwise(POW, total, self._nodes(sp.Integer(-1)))
            out = self.b.elementwise(MUL, e, Nodes(inverse.ids[..., None]))
        return Nodes(np.moveaxis(out.ids, -1, d))

    def _linear(self, input, weight, bias=None):
        if not isinstance(input, Nodes) or not isinstance(weight, Nodes):
            return NotImplemented
        w = weight.ids
        out = self._matmul(input, Nodes(w.T if w.ndim == 2 else w))
        return out if bias is None else self.b.elementwise(ADD, out, self._nodes(bias))


def _stand_in(value, make):
    """``value`` (arguments: a list, tuple, dict or one value) with each Nodes array replaced by
    an object array of ``make(node index)``."""
    if isinstance(value, dict):
        return {k: _stand_in(v, make) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_stand_in(p, make) for p in value)
    if not isinstance(value, Nodes):
        return value
    out = np.empty(value.shape, dtype=object)
    for idx, i in zip(np.ndindex(*value.shape), value.ids.ravel().tolist()):
        out[idx] = make(i)
    return out


def _slices(name):
    def rule(r, x, dim=None, *rest, **kwargs):
        if name == "logsumexp":
            if rest[1:] or set(kwargs) - {"keepdim"}:
                return NotImplemented
            return r._per_slice(name, x, dim, keepdim=bool(rest[0] if rest else kwargs.get("keepdim", False)))
        if rest or set(kwargs) - {"dtype", "_stacklevel"}:
            return NotImplemented
        return r._per_slice(name, x, dim, dtype=kwargs.get("dtype"))
    return rule


def _matmul_of(ndims):
    """mm, mv, bmm: matmul where the operands have the ranks the function takes (else the mirror says why)."""
    def rule(r, a, b):
        if not isinstance(a, Nodes) or not isinstance(b, Nodes) or (a.ids.ndim, b.ids.ndim) != ndims:
            return NotImplemented
        if ndims == (3, 3) and a.shape[0] != b.shape[0]:
            return NotImplemented                   # bmm does not broadcast its batch
        return r._matmul(a, b)
    return rule


def _rule(entry):
    """The lowering rule of a mirror entry, however the case spelled it (``x.sum``, ``torch.sum``, ``sum``):
    entries that share a canonical entry's definition share its rule."""
    rule = _RULES.get(entry.name)
    if rule is not None:
        return rule
    for name, rule in _RULES.items():
        canonical = mirror.FUNCTIONS.get(name)
        if canonical is not None and canonical.sym is entry.sym:
            return rule
    return None


_RULES = {
    "softmax": _slices("softmax"),
    "log_softmax": _slices("log_softmax"),
    "softmin": _slices("softmin"),
    "logsumexp": _slices("logsumexp"),
    "mm": _matmul_of((2, 2)),
    "mv": _matmul_of((2, 1)),
    "bmm": _matmul_of((3, 3)),
    "sum": lambda r, *a, **k: r._reduce("sum", *a, **k),
    "mean": lambda r, *a, **k: r._reduce("mean", *a, **k),
    "matmul": lambda r, a, b: r._matmul(a, b) if isinstance(a, Nodes) and isinstance(b, Nodes) else NotImplemented,
    "einsum": lambda r, *a: r._einsum(*a),
    "linear": lambda r, *a, **k: r._linear(*a, **k),
    **lowering_ops.RULES,        # losses, convolutions, avg pooling, cholesky, solve_triangular
}


def lower(case: Case) -> tuple[Tape, tuple[int, ...]]:
    """The case's tape and output shape, built per operation; :class:`Unsupported` when it cannot be."""
    fn = case.sympy_fn
    if not hasattr(fn, "evaluate"):
        raise Unsupported("a Python callable")
    b = Builder()
    variables = {}
    for spec in case.inputs:
        if spec.dtype is None:
            shape = tuple(np.shape(spec.value) if spec.value is not None else spec.shape)
            variables[spec.name] = b.leaves(spec.name, shape)
        else:
            variables[spec.name] = spec.values()
    try:
        out = fn.evaluate(LoweringReading(b, variables))
    except Unsupported:
        raise
    except Exception as exc:            # an error the SymPy model will report in its own words
        raise Unsupported(f"{type(exc).__name__}: {exc}") from None
    if not isinstance(out, Nodes):
        out = Nodes(np.array(b.const(out), dtype=np.int64)) if not isinstance(out, np.ndarray) else None
        if out is None:
            raise Unsupported("the output is not built from the inputs")
    b.c.finish()
    c = b.c
    return Tape(c.ops, c.args, c.extra, c.dargs, c.leaf_list, out.ids.ravel().tolist()), out.shape

