"""Shared helpers for symbolic element arrays (numpy object arrays of SymPy expressions).

Everything here builds sums and products with one ``sympy.Add``/``sympy.Mul``
call per output element, never with incremental ``+`` (``np.sum`` on object
arrays is quadratic in the length and builds every partial sum).
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import sympy
from sympy.functions.elementary.piecewise import ExprCondPair

from verifier.errors import ExpressionError, RefusedCall

S = sympy.S


def unsupported(message: str, hint: str | None = None) -> ExpressionError:
    """Build the error raised when a call form or argument has no symbolic mirror (a refusal, not a crash)."""
    return RefusedCall(message, hint=hint)


def sym_number(value) -> sympy.Basic:
    """Convert a scalar argument (Python, numpy or SymPy number, 0-d array) to a SymPy object.

    Python floats become exact Rationals of their binary value (what torch
    sees), infinities become ``oo``. Strings are never parsed.
    """
    if isinstance(value, np.ndarray):
        if value.ndim != 0:
            raise unsupported(f"expected a scalar, got an array of shape {value.shape}")
        value = value[()]
    if isinstance(value, sympy.Basic):
        return value
    if isinstance(value, (bool, np.bool_)):
        return S.One if value else S.Zero
    if isinstance(value, numbers.Integral):
        return sympy.Integer(int(value))
    if isinstance(value, numbers.Real):
        value = float(value)
        if math.isinf(value):
            return S.Infinity if value > 0 else S.NegativeInfinity
        if math.isnan(value):           # sympy.Rational(nan) is 0: a NaN would silently become a zero
            return S.NaN
        return sympy.Rational(value)
    raise unsupported(f"cannot use {type(value).__name__} value {value!r} as a number")


def as_obj(x) -> np.ndarray:
    """Return ``x`` as an object array of SymPy expressions (0-d for scalars)."""
    if isinstance(x, np.ndarray) and x.dtype == object:
        return x
    if isinstance(x, (list, tuple)):
        parts = [as_obj(p) for p in x]
        out = np.empty((len(parts),) + (parts[0].shape if parts else ()), dtype=object)
        for i, p in enumerate(parts):
            out[i, ...] = p  # "..." copies elements even when p is 0-d
        return out
    if isinstance(x, np.ndarray):
        out = np.empty(x.shape, dtype=object)
        for idx, v in np.ndenumerate(x):
            out[idx] = sym_number(v)
        return out
    return scalar_array(sym_number(x))


def scalar_array(value) -> np.ndarray:
    """Wrap one object in a 0-d object array without numpy trying to iterate it."""
    out = np.empty((), dtype=object)
    out[()] = value
    return out


def to_result(x) -> np.ndarray:
    """Normalise a mirror's return value: an object ndarray whose elements are SymPy objects."""
    if not isinstance(x, np.ndarray):
        return scalar_array(sym_number(x))
    if x.dtype != object:
        return as_obj(x)
    if not all(isinstance(v, sympy.Basic) for v in x.flat):
        out = np.empty(x.shape, dtype=object)
        for idx, v in np.ndenumerate(x):
            out[idx] = sym_number(v)
        return out
    return x


def emap(f, *arrays) -> np.ndarray:
    """Apply ``f`` to matching elements of the broadcast arguments."""
    objs = [as_obj(a) for a in arrays]
    out = np.frompyfunc(f, len(objs), 1)(*objs)
    return out if isinstance(out, np.ndarray) else scalar_array(out)


def add_all(terms) -> sympy.Expr:
    """Sum with one flat ``Add`` (linear time, unlike repeated ``+``)."""
    return sympy.Add(*terms)


def log_of_sum(total: sympy.Expr) -> sympy.Expr:
    """log of a sum of exponentials (logsumexp, log_softmax), left unevaluated.

    The sum is positive, so nothing is lost; evaluating would have SymPy ask
    the assumption system about every term (parity, algebraicity): 0.5 s of
    the 0.6 s a logsumexp over 1024 elements took to build.
    """
    return sympy.log(total, evaluate=False)


def mul_all(factors) -> sympy.Expr:
    """Product with one flat ``Mul``."""
    return sympy.Mul(*factors)


def power(base, exponent) -> sympy.Expr:
    """``base ** exponent`` without SymPy's evaluation of the power.

    Evaluating sqrt/Pow of a large sum queries assumptions (sign, finiteness)
    of every term, O(n) per call and O(n^2) for a normalisation layer; the
    unevaluated Pow is the same mathematical object and evaluates normally
    once numbers are substituted.
    """
    base, exponent = sym_number(base), sym_number(exponent)
    if base.is_Number:
        return base**exponent
    return sympy.Pow(base, exponent, evaluate=False)


def extremum(pick, items) -> sympy.Expr:
    """``Max``/``Min`` (``pick``) of many elements, left unevaluated.

    SymPy's evaluation compares every pair of arguments through the
    assumption system (over a second for 64 symbols, milliseconds even for
    ``Min(Max(x, -1), 1)``); for symbolic inputs it rarely removes anything,
    and the unevaluated form is the same function (it evaluates normally once
    numbers are substituted).
    """
    items = [sym_number(v) for v in items]
    if len(items) == 1:
        return items[0]
    if all(v.is_Number for v in items):
        return pick(*items)
    return pick(*items, evaluate=False)


_RELATIONS = {"<": sympy.StrictLessThan, "<=": sympy.LessThan,
              ">": sympy.StrictGreaterThan, ">=": sympy.GreaterThan}


def relation(a, op: str, b):
    """``a op b`` as a SymPy relational, unevaluated unless both sides are numbers.

    Evaluating ``x < -1`` asks the assumption system whether x + 1 is
    negative (about a millisecond per element); the unevaluated relational is
    the same condition, decided by the evaluator at the point.
    """
    a, b = sym_number(a), sym_number(b)
    if a.is_Number and b.is_Number:
        return _RELATIONS[op](a, b)
    return _RELATIONS[op](a, b, evaluate=False)


def piecewise(*pairs) -> sympy.Expr:
    """``Piecewise(*pairs)`` without SymPy's (slow) evaluation; constant conditions resolved here."""
    kept = []
    for expr, cond in pairs:
        if cond is sympy.false or cond is False:
            continue
        if cond is sympy.true or cond is True:
            if not kept:
                return sym_number(expr)
            kept.append((sym_number(expr), sympy.true))
            break
        kept.append((sym_number(expr), cond))
    return sympy.Piecewise(*kept, evaluate=False)


def tie_split(pick, items) -> sympy.Expr:
    """max/min (``pick``) of many elements whose derivative splits evenly among ties.

    torch's max/min/amax/amin reductions (and the inf-norms built on them)
    give each of the k elements that attain the extreme 1/k of the gradient:
    the min-norm subgradient. ``Max``'s own derivative gives each tied pair
    1/2, which is only right for k = 2. So the value is written as

        sum_i x_i [x_i = m] / sum_i [x_i = m],   m = Max(x_1..x_n),

    which equals m exactly. The indicators are Piecewise constants whose
    derivative is 0, so the derivative is [x_i = m] / k, torch's rule, both
    at ties and away from them (where k = 1). m appears only inside the
    indicators' conditions, where the kink detector finds its ties.
    """
    items = [sym_number(v) for v in items]
    if len(items) == 1:
        return items[0]
    if all(v.is_Number for v in items):
        return pick(*items)
    m = pick(*items, evaluate=False)
    hits = [TieIndicator.of(v, m) for v in items]
    return sympy.Add(*[v * h for v, h in zip(items, hits)]) / sympy.Add(*hits)


class TieIndicator(sympy.Piecewise):
    """``[x_i = m]`` of :func:`tie_split`: a Piecewise constant whose derivative is 0, said directly.

    SymPy's own Piecewise derivative rebuilds and collapses a Piecewise and
    walks the free symbols of the condition (all n elements, through m) for
    each of the n indicators and each of the n symbols: O(n^3), minutes for
    50 elements. Its free symbols are kept once computed (the expression is
    immutable). Everything else (evaluation, the tape, kink detection) sees
    an ordinary Piecewise.
    """

    @classmethod
    def of(cls, v, m) -> "TieIndicator":
        """``Piecewise((1, Eq(v, m)), (0, True), evaluate=False)`` built directly: SymPy's
        ExprCondPair walks the whole condition (all n arguments of m) looking for nested
        Piecewise, which made building n indicators O(n^2)."""
        pair = sympy.Basic.__new__(ExprCondPair, S.One, sympy.Eq(v, m, evaluate=False))
        return sympy.Basic.__new__(cls, pair, sympy.Basic.__new__(ExprCondPair, S.Zero, sympy.true))

    def _eval_derivative(self, s):
        return S.Zero

    @property
    def free_symbols(self):
        cached = self.__dict__.get("_free")
        if cached is None:
            cached = self.__dict__["_free"] = super().free_symbols
        return cached


def norm_dim(dim, ndim: int) -> int:
    """Map a possibly negative torch ``dim`` onto ``range(ndim)`` (0-d tensors accept 0 and -1)."""
    size = max(ndim, 1)
    d = int(dim)
    if not -size <= d < size:
        raise unsupported(f"dim {d} is out of range for a {ndim}-d tensor")
    return d % size


def norm_dims(dim, ndim: int) -> tuple[int, ...]:
    """Normalise a torch ``dim`` argument (None, int, tuple/list) to sorted axes.

    None and the empty tuple mean "all dimensions", as in torch reductions.
    """
    if dim is None or (isinstance(dim, (tuple, list)) and len(dim) == 0):
        return tuple(range(ndim))
    if isinstance(dim, (tuple, list)):
        axes = sorted({norm_dim(d, ndim) for d in dim})
    else:
        axes = [norm_dim(dim, ndim)]
    return tuple(a for a in axes if a < ndim)


def reduce(x, dim, keepdim: bool, combine) -> np.ndarray:
    """Reduce the axes named by ``dim`` with ``combine(list_of_elements) -> expr``."""
    x = as_obj(x)
    axes = norm_dims(dim, x.ndim)
    kept = [a for a in range(x.ndim) if a not in axes]
    moved = np.transpose(x, kept + list(axes))
    outer_shape = moved.shape[: len(kept)]
    count = math.prod(moved.shape[len(kept):])
    rows = moved.reshape(math.prod(outer_shape), count)
    out = np.empty(len(rows), dtype=object)
    for i, row in enumerate(rows):
        out[i] = combine(list(row))
    out = out.reshape(outer_shape)
    if keepdim:
        out = out.reshape(tuple(1 if a in axes else n for a, n in enumerate(x.shape)))
    return out


def reduced_count(x: np.ndarray, dim) -> int:
    """Number of elements each output of a reduction over ``dim`` combines."""
    return math.prod(x.shape[a] for a in norm_dims(dim, x.ndim))


def scan(x, dim, step) -> np.ndarray:
    """Apply ``step(list) -> list`` to every 1-d slice along ``dim`` (for cumsum-like maps)."""
    x = as_obj(x)
    if x.ndim == 0:
        return scalar_array(step([x[()]])[0])
    axis = norm_dim(dim, x.ndim)
    moved = np.moveaxis(x, axis, -1)
    out = np.empty(moved.shape, dtype=object)
    for idx in np.ndindex(moved.shape[:-1]):
        out[idx] = step(list(moved[idx]))
    return np.moveaxis(out, -1, axis)


def is_boolean(value) -> bool:
    """True for Python/numpy bools and SymPy truth values or relationals.

    (``sympy.Symbol`` subclasses ``Boolean``, so that class cannot be used.)
    """
    return isinstance(value, (bool, np.bool_, sympy.core.relational.Relational,
                              sympy.logic.boolalg.BooleanAtom,
                              sympy.logic.boolalg.BooleanFunction))


def as_cond(c) -> np.ndarray:
    """Return a condition as an object array of SymPy booleans (true, false or relationals)."""
    def one(v):
        if isinstance(v, (bool, np.bool_)):
            return sympy.true if v else sympy.false
        if is_boolean(v):
            return v
        if isinstance(v, (sympy.Number, numbers.Number)):
            return sympy.true if v != 0 else sympy.false
        raise unsupported(f"cannot use {type(v).__name__} value {v!r} as a condition")

    arr = c if isinstance(c, np.ndarray) else scalar_array(c)
    out = np.empty(arr.shape, dtype=object)
    for idx, v in np.ndenumerate(arr):
        out[idx] = one(v)
    return out


def select(cond, a, b) -> sympy.Basic:
    """``a`` where ``cond`` holds else ``b``; a Piecewise only when ``cond`` is symbolic."""
    if cond is sympy.true:
        return a
    if cond is sympy.false:
        return b
    return sympy.Piecewise((a, cond), (b, True))


def index_array(index) -> np.ndarray:
    """Return an integer index argument (numpy array, list, int) as a numpy int array."""
    arr = np.asarray(index)
    if arr.dtype == object:
        arr = np.vectorize(int, otypes=[np.int64])(arr) if arr.size else arr.astype(np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        raise unsupported(f"expected an integer index array, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def shape_args(args) -> tuple[int, ...]:
    """Read torch's two spellings of a size: ``f(x, 2, 3)`` and ``f(x, (2, 3))``."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = args[0]
    return tuple(int(a) for a in args)


def is_array_arg(value) -> bool:
    """True for operands (object arrays, SymPy expressions), False for ints/tuples naming dims."""
    if isinstance(value, np.ndarray):
        return value.dtype == object or np.issubdtype(value.dtype, np.floating)
    return isinstance(value, sympy.Basic) and not isinstance(value, sympy.Integer)
