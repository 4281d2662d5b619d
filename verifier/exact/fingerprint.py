"""What a function computes, as a digest that is the same in every process: the cache key's mirror part.

A function's bytecode is not enough: two definitions that differ only in a
captured variable (``lambda e: k * e`` with another ``k``), a default
argument or a helper they call share their bytecode. :func:`digest` covers,
recursively, a function's code (nested code objects by content), its
defaults and keyword defaults, the values in its closure cells, and every
global it names: functions and classes of this package (or a user's
module) by their own digest, SymPy's, numpy's, mpmath's and the standard
library's by their qualified name (their versions are in the key), plain values (numbers, strings, tuples, SymPy
objects, numpy arrays) by content.

A value whose content cannot be stated deterministically (an arbitrary
object whose ``repr`` holds a memory address, a generator, an open file)
raises :class:`Unkeyable`; the caller then does not cache the case at all
rather than risk a stale entry.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import sys
import types

import numpy as np
import sympy

# Pinned by the versions in the key: named, never walked. Everything else (this package, a user's module,
# a test's lambda) is walked by content.
_LIBRARIES = {"builtins", "sympy", "mpmath", "numpy", "torch", "_operator"}
_MAX_ITEMS = 10_000            # values walked per digest: a huge captured table is refused, not hashed slowly


class Unkeyable(Exception):
    """A function reachable from a case holds something with no deterministic content."""


def digest(obj) -> str:
    """SHA-256 over what ``obj`` (usually a function) computes, as far as it can be told; may raise Unkeyable."""
    walker = _Walker()
    return hashlib.sha256(walker.token(obj).encode()).hexdigest()


class _Walker:
    def __init__(self) -> None:
        self.seen: dict[int, int] = {}      # id -> order of first visit (a cycle refers back by order)
        self.items = 0

    def token(self, obj) -> str:
        self.items += 1
        if self.items > _MAX_ITEMS:
            raise Unkeyable("too many values reachable to fingerprint")
        if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes)):
            return f"{type(obj).__name__}:{obj!r}"
        if isinstance(obj, types.ModuleType):
            return f"module:{obj.__name__}"
        if type(obj) is object:              # a sentinel (``_NOT_GIVEN = object()``): only its identity counts
            return "object()"
        if isinstance(obj, contextvars.ContextVar):   # run-time state set around calls (the numeric route's
            return f"contextvar:{obj.name}"           # notes and gauges), not part of any definition
        if id(obj) in self.seen:
            return f"ref:{self.seen[id(obj)]}"
        self.seen[id(obj)] = len(self.seen)
        if isinstance(getattr(type(obj), "_fingerprint_by_name_", None), str):   # a memo table: its name, not contents
            return f"{_qualified(type(obj))}:{type(obj)._fingerprint_by_name_}"
        if isinstance(obj, (tuple, list)):
            return f"{type(obj).__name__}[" + ",".join(self.token(v) for v in obj) + "]"
        if isinstance(obj, (set, frozenset)):
            return f"{type(obj).__name__}{{" + ",".join(sorted(self.token(v) for v in obj)) + "}"
        if isinstance(obj, dict):
            return "dict{" + ",".join(sorted(f"{self.token(k)}:{self.token(v)}" for k, v in obj.items())) + "}"
        if isinstance(obj, (types.FunctionType, type, types.BuiltinFunctionType, np.ufunc)) and _library(obj):
            return f"named:{_qualified(obj)}"
        if isinstance(obj, types.FunctionType):
            return self.function(obj)
        if isinstance(obj, types.MethodType):
            return f"method({self.token(obj.__func__)},{self.token(obj.__self__)})"
        if isinstance(obj, functools.partial):
            return f"partial({self.token(obj.func)},{self.token(obj.args)},{self.token(obj.keywords)})"
        if isinstance(obj, type):
            return self.cls(obj)
        if isinstance(obj, property):        # a class member: what its accessors compute
            return f"property({self.token(obj.fget)},{self.token(obj.fset)},{self.token(obj.fdel)})"
        if isinstance(obj, (staticmethod, classmethod)):
            return f"{type(obj).__name__}({self.token(obj.__func__)})"
        if isinstance(obj, sympy.Basic):
            return f"sympy:{sympy.srepr(obj)}"
        if isinstance(obj, np.ndarray):
            if obj.dtype == object:
                return f"ndarray{obj.shape}[" + ",".join(self.token(v) for v in obj.ravel().tolist()) + "]"
            return f"ndarray:{obj.dtype.str}{obj.shape}:{hashlib.sha256(np.ascontiguousarray(obj).tobytes()).hexdigest()}"
        if isinstance(obj, (types.BuiltinFunctionType, np.ufunc)) or (callable(obj) and _library(obj)):
            return f"named:{_qualified(obj)}"
        if hasattr(obj, "__dataclass_fields__"):
            return (f"{_qualified(type(obj))}(" +
                    ",".join(f"{k}={self.token(getattr(obj, k))}" for k in obj.__dataclass_fields__) + ")")
        text = repr(obj)
        if " at 0x" in text or type(obj).__repr__ is object.__repr__:
            raise Unkeyable(f"a {type(obj).__name__} has no deterministic content")
        return f"{_qualified(type(obj))}:{text}"

    def function(self, fn: types.FunctionType) -> str:
        parts = [f"{fn.__module__}.{fn.__qualname__}", self.code(fn.__code__),
                 self.token(fn.__defaults__), self.token(fn.__kwdefaults__)]
        for cell in fn.__closure__ or ():
            try:
                parts.append(self.token(cell.cell_contents))
            except ValueError:               # a cell not yet filled
                parts.append("empty-cell")
        names = sorted(_names(fn.__code__))
        for name in names:
            if name in fn.__globals__:
                parts.append(f"{name}={self.token(fn.__globals__[name])}")
        wrapped = getattr(fn, "__wrapped__", None)
        if wrapped is not None:
            parts.append(self.token(wrapped))
        return "fn(" + "|".join(parts) + ")"

    def cls(self, cls: type) -> str:
        members = [f"{k}={self.token(v)}" for k, v in sorted(vars(cls).items())
                   if not k.startswith("__") or k in ("__init__", "__call__", "__new__")]
        return f"class:{_qualified(cls)}(" + ",".join(members) + ")"

    def code(self, code: types.CodeType) -> str:
        """Bytecode, constants (nested code by content) and names: stable across processes."""
        consts = [self.code(c) if isinstance(c, types.CodeType) else f"{type(c).__name__}:{c!r}"
                  for c in code.co_consts]
        return hashlib.sha256(code.co_code + repr((consts, code.co_names, code.co_varnames,
                                                    code.co_freevars)).encode()).hexdigest()


def _names(code: types.CodeType) -> set[str]:
    out = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            out |= _names(const)
    return out


def _library(obj) -> bool:
    """Code of Python's standard library or of a library whose version is in the key (SymPy, numpy, ...)."""
    module = getattr(obj, "__module__", None)
    if not isinstance(module, str):
        return False
    top = module.split(".", 1)[0]
    return top in _LIBRARIES or top in sys.stdlib_module_names


def _qualified(obj) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__name__)}"
