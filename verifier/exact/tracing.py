"""Run a user's torch function on symbols: the stand-in array behind an omitted ``sympy_fn``.

Torch's ``__torch_function__`` protocol lets any object that defines it stand
in for a tensor: ``torch.exp(a)``, ``F.softmax(a, dim=0)`` and even
``tensor * a`` hand the call to ``type(a).__torch_function__`` instead of
running a kernel. :class:`SymbolicArray` answers each such call with the
symbolic mirror of the same name (:func:`verifier.exact.mirror.resolve`), so a
Python function written against torch computes, on symbols, the mathematical
definition of every function it calls (DESIGN, idea 6).

Every operation goes through :class:`verifier.exact.symbolic.SymbolicReading`, the
same reading a case expression gets, so a traced function and the same
expression in a YAML case give the same symbolic output. A call with no
mirror raises :class:`verifier.errors.UnknownFunctionError` naming it; the
user then passes ``sympy_fn`` instead.
"""

from __future__ import annotations

import ast
import inspect
from collections import namedtuple
from typing import Any, Callable

import numpy as np
import sympy as sp
import torch

from ..errors import ExpressionError, SymbolicError, UnknownFunctionError
from . import mirror
from .mirror._arrays import as_obj, scalar_array, sym_number
from .symbolic import SymbolicReading

_READING = SymbolicReading({})

# Tensor operators torch dispatches by their function name (``tensor * a`` arrives as "mul").
_BINARY = {"add": ast.Add, "sub": ast.Sub, "mul": ast.Mult, "div": ast.Div, "true_divide": ast.Div,
           "pow": ast.Pow, "matmul": ast.MatMult}
_COMPARE = {"gt": ast.Gt, "ge": ast.GtE, "lt": ast.Lt, "le": ast.LtE, "eq": ast.Eq, "ne": ast.NotEq,
            "greater": ast.Gt, "greater_equal": ast.GtE, "less": ast.Lt, "less_equal": ast.LtE}
# Prefixes of torch's C names for submodule functions (torch.special.expit is "special_expit").
_C_PREFIXES = ("special_", "linalg_", "fft_", "nn_")
# Calls that do not change values: the symbolic side is exact, so dtype and device casts are identities.
_IDENTITY = frozenset({"float", "double", "to", "type", "cpu", "cuda", "contiguous", "clone",
                       "requires_grad_", "retain_grad"})
# torch returns (values, indices) from these when given a dim; the mirror gives the values.
_WITH_INDICES = frozenset({"max", "min"})
ValuesIndices = namedtuple("ValuesIndices", ["values", "indices"])

_HINT = ("Pass sympy_fn with the function's mathematical definition, or use only the functions "
         "`verifier functions` lists.")


def _torch_names() -> dict[int, str]:
    """Mirror name of each torch callable the mirror table wraps (by identity)."""
    names = {}
    for name in [*mirror.FUNCTIONS, *mirror.qualified_names()]:
        names.setdefault(id(mirror.resolve(name).torch), name)     # torch.linalg.norm is not torch.norm
    return names


_BY_IDENTITY: dict[int, str] | None = None


def mirror_name(func: Callable) -> str:
    """The name under which a torch callable's symbolic mirror is looked up."""
    global _BY_IDENTITY
    if _BY_IDENTITY is None:
        _BY_IDENTITY = _torch_names()
    if id(func) in _BY_IDENTITY:
        return _BY_IDENTITY[id(func)]
    name = getattr(func, "__name__", repr(func))
    for prefix in _C_PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


class SymbolicArray:
    """A stand-in for a tensor whose elements are SymPy expressions.

    Wraps a numpy object array (or, for index inputs, an integer/bool array).
    Torch functions, operators, methods and indexing on it return new
    ``SymbolicArray`` objects computed with the symbolic mirror.
    """

    __slots__ = ("data",)

    def __init__(self, data: np.ndarray) -> None:
        self.data = data

    # -- the protocol ---------------------------------------------------------------------
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        return call(mirror_name(func), list(args), dict(kwargs or {}))

    # -- what a tensor answers about itself -------------------------------------------------
    @property
    def shape(self) -> torch.Size:
        return torch.Size(self.data.shape)

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def T(self) -> "SymbolicArray":
        return _wrap(_READING.prop(self.data, "T"))

    @property
    def mT(self) -> "SymbolicArray":
        return _wrap(_READING.prop(self.data, "mT"))

    @property
    def dtype(self) -> torch.dtype:
        if self.data.dtype == object:
            return torch.float64
        return torch.bool if self.data.dtype == bool else torch.int64

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    @property
    def requires_grad(self) -> bool:
        return self.data.dtype == object

    def size(self, dim: int | None = None):
        return self.shape if dim is None else self.shape[dim]

    def dim(self) -> int:
        return self.data.ndim

    def numel(self) -> int:
        return int(self.data.size)

    def __len__(self) -> int:
        return len(self.data)

    def __iter__(self):
        return (SymbolicArray(row) for row in self.data)

    def __repr__(self) -> str:
        return f"SymbolicArray(shape={list(self.data.shape)})"

    def __bool__(self):
        raise SymbolicError("a traced function branched on a tensor value (`if`, `and`, `or`)",
                            hint="Use torch.where(...) for a condition, or pass sympy_fn.")

    # -- methods: x.sum(dim=0), x.exp(), x.float(), ... ----------------------------------------
    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        if name in _IDENTITY:
            return lambda *args, **kwargs: self
        if name in _BINARY or name in _COMPARE:
            return lambda *args, **kwargs: call(name, [self, *args], kwargs)
        if name.endswith("_"):
            raise _in_place(name)
        try:
            mirror.resolve(name)
        except UnknownFunctionError:
            raise _unknown(f"Tensor.{name}") from None
        return lambda *args, **kwargs: call(name, [self, *args], kwargs)

    def __getitem__(self, key):
        return _wrap(_READING.index(self.data, _unwrap(key)))

    # -- operators ---------------------------------------------------------------------------
    def _binop(self, op, other, reflected=False):
        left, right = _operand(self), _operand(other)
        if reflected:
            left, right = right, left
        return _wrap(_READING.binop(op, left, right))

    def __neg__(self): return _wrap(_READING.unary(ast.USub, _operand(self)))
    def __pos__(self): return self
    def __abs__(self): return call("abs", [self], {})

    def _compare(self, op, other):
        return _wrap(_READING.compare(op, _operand(self), _operand(other)))

    def __gt__(self, o): return self._compare(ast.Gt, o)
    def __ge__(self, o): return self._compare(ast.GtE, o)
    def __lt__(self, o): return self._compare(ast.Lt, o)
    def __le__(self, o): return self._compare(ast.LtE, o)
    __hash__ = object.__hash__   # == and != stay identity: torch code rarely compares tensors with ==


# Python's arithmetic operators, each with its reflected twin (x + 2 and 2 + x).
for _name, _op in {"add": ast.Add, "sub": ast.Sub, "mul": ast.Mult, "truediv": ast.Div, "pow": ast.Pow,
                   "matmul": ast.MatMult}.items():
    setattr(SymbolicArray, f"__{_name}__", lambda self, o, _op=_op: self._binop(_op, o))
    setattr(SymbolicArray, f"__r{_name}__", lambda self, o, _op=_op: self._binop(_op, o, True))


def call(name: str, args: list, kwargs: dict) -> Any:
    """Carry out one torch call on symbolic arrays with the mirror of ``name``."""
    if name in _IDENTITY and args:
        return args[0]
    if name in _BINARY and len(args) == 2 and not kwargs:
        return _wrap(_READING.binop(_BINARY[name], _operand(args[0]), _operand(args[1])))
    if name in _COMPARE and len(args) == 2 and not kwargs:
        return _wrap(_READING.compare(_COMPARE[name], _operand(args[0]), _operand(args[1])))
    if name.endswith("_") and not name.endswith("__"):
        raise _in_place(name)
    try:
        fn = mirror.resolve(name)
    except UnknownFunctionError:
        raise _unknown(name) from None
    args, kwargs = _unwrap(args), _fit_kwargs(fn, name, _unwrap(kwargs))
    try:
        result = fn.sym(*args, **kwargs)
    except (ExpressionError, SymbolicError):
        raise
    except TypeError as exc:
        raise ExpressionError(f"the mirror of '{name}' does not take these arguments: {exc}",
                              hint=_HINT) from None
    result = _wrap(result)
    if name in _WITH_INDICES and (len(args) > 1 and isinstance(args[1], int) or "dim" in kwargs):
        return ValuesIndices(result, None)   # torch's (values, indices); indices have no symbolic meaning
    return result


def _in_place(name: str) -> SymbolicError:
    return SymbolicError(f"a traced function calls the in-place '{name}'",
                         hint="Use the out-of-place form (x.add(y), not x.add_(y)), or pass sympy_fn.")


def _unknown(name: str) -> UnknownFunctionError:
    # A method like detach has no near namesake worth suggesting ("det" is not "detach").
    err = "" if name.startswith("Tensor.") else mirror_resolve_error(name)
    return UnknownFunctionError(f"the traced function calls '{name}', which has no symbolic mirror"
                                + (f" ({err})" if err else ""), hint=_HINT)


def mirror_resolve_error(name: str) -> str:
    """The mirror's own suggestion for an unknown name ("did you mean ..."), if any."""
    try:
        mirror.resolve(name.rsplit(".", 1)[-1])
    except UnknownFunctionError as exc:
        return exc.message.split("; ", 1)[1] if "; " in exc.message else ""
    return ""


def _fit_kwargs(fn, name: str, kwargs: dict) -> dict:
    """Drop keyword arguments torch passes by default that the mirror does not declare.

    ``F.relu`` dispatches with ``inplace=False`` and ``F.mse_loss`` with
    ``weight=None``; those are torch's defaults, so dropping them keeps the
    meaning. A non-default value the mirror cannot take is an error.
    """
    try:
        params = inspect.signature(fn.sym).parameters
    except (TypeError, ValueError):
        return kwargs
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return kwargs
    kept = {}
    for key, value in kwargs.items():
        if key in params:
            kept[key] = value
        elif not (value is None or value is False or key.startswith("_")):
            raise ExpressionError(f"the mirror of '{name}' has no argument '{key}' (given {value!r})",
                                  hint=_HINT)
    return kept


def _operand(value: Any) -> Any:
    """An arithmetic operand for the symbolic reading (Python floats as their exact binary value)."""
    value = _unwrap(value)
    if isinstance(value, float):
        return sym_number(value)
    return value


def _unwrap(value: Any) -> Any:
    """Symbolic arrays → their object arrays; constant tensors → exact object/int arrays."""
    if isinstance(value, SymbolicArray):
        return value.data
    if isinstance(value, torch.Tensor):
        data = value.detach().cpu()
        if data.is_floating_point():
            return as_obj(data.to(torch.float64).numpy())
        return data.numpy().copy()
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v) for v in value)
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    return value


def _wrap(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return SymbolicArray(value)
    if isinstance(value, sp.Basic):            # numpy hands back bare objects for 0-d operands
        return SymbolicArray(scalar_array(value))
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return type(value)(_wrap(v) for v in value)
    return value


def trace(torch_fn: Callable[..., Any]) -> Callable[..., np.ndarray]:
    """A symbolic function from ``torch_fn``: object arrays in, the traced object array out."""

    def symbolic(*arrays: np.ndarray) -> np.ndarray:
        out = torch_fn(*[SymbolicArray(a) for a in arrays])
        if isinstance(out, SymbolicArray):
            return out.data
        if isinstance(out, torch.Tensor):
            raise SymbolicError("the traced function returned a plain tensor that does not depend on its inputs",
                                hint="Compute the output from the arguments torch_fn receives, or pass sympy_fn.")
        if isinstance(out, (tuple, list)):
            raise SymbolicError(f"the traced function returned a {type(out).__name__}, not one tensor",
                                hint="Return a single tensor.")
        return out

    symbolic.__name__ = f"traced_{getattr(torch_fn, '__name__', 'fn')}"
    symbolic.__wrapped__ = torch_fn
    return symbolic
