"""The symbolic side: element arrays, the case's exact output, Jacobian and Jᵀv.

Every element of every floating input becomes a real SymPy symbol (``x[0,1]``);
index and mask inputs stay integer/bool arrays because they steer structure,
not values. The case's symbolic expression is evaluated over those arrays
with the mirror (:mod:`verifier.mirror`), giving the output as an object array
of SymPy expressions. The model does not depend on the dtype: constants are
symbols too, and get their (dtype-rounded) values only at evaluation.

Exact Jᵀv comes from two routes that must agree (:func:`exact`):

* small cases: the symbolic Jacobian ``J[i, j] = ∂y_i/∂x_j`` contracted with
  ``v``, and, separately, the symbolic derivative of the scalar ``Σ v⊙y``;
* larger cases: a reverse sweep over the shared expression graph
  (:mod:`verifier.evaluation`), which is the scalar route without building
  ``n`` derivative expressions; the Jacobian route is then skipped and the
  result says so.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any, Mapping

import mpmath
import numpy as np
import sympy as sp
from sympy.core.parameters import distribute

from . import mirror
from .case import Case
from .errors import CaseError, SymbolicError
from .evaluation import PRECISION_DIGITS, Evaluator, reverse_sweep
from .language import Reading

_COMPARE = {ast.Lt: np.less, ast.LtE: np.less_equal, ast.Gt: np.greater,
            ast.GtE: np.greater_equal, ast.Eq: np.equal, ast.NotEq: np.not_equal}

# Cases up to this many Jacobian entries (outputs × differentiated inputs) take
# both symbolic routes; larger ones use the reverse sweep alone.
JACOBIAN_ENTRY_LIMIT = 1024


def element_symbols(name: str, shape: tuple[int, ...]) -> np.ndarray:
    """An object array of real symbols named ``name[i,j]`` (``name`` for a scalar)."""
    out = np.empty(shape, dtype=object)
    for idx in np.ndindex(*shape):
        label = f"{name}[{','.join(map(str, idx))}]" if shape else name
        out[idx] = sp.Symbol(label, real=True)
    return out


def as_object_array(value: Any) -> np.ndarray:
    """Wrap a symbolic result (array, SymPy scalar or number) as an object array."""
    if isinstance(value, np.ndarray) and value.dtype == object:
        return value
    if isinstance(value, np.ndarray):
        return np.vectorize(_to_sympy, otypes=[object])(value) if value.size else value.astype(object)
    arr = np.empty((), dtype=object)
    arr[()] = _to_sympy(value)
    return arr


def _to_sympy(value: Any) -> sp.Basic:
    if isinstance(value, sp.Basic):
        return value
    if isinstance(value, (bool, np.bool_)):
        return sp.Integer(int(value))
    if isinstance(value, (int, np.integer)):
        return sp.Integer(int(value))
    if isinstance(value, (float, np.floating)):
        return sp.Rational(float(value))        # the float's exact binary value
    raise SymbolicError(f"the symbolic result contains a {type(value).__name__}, not a number or expression")


class SymbolicReading(Reading):
    """Evaluates a case expression over symbolic element arrays with the mirror."""

    def __init__(self, variables: Mapping[str, Any]) -> None:
        self.variables = variables

    def literal(self, value: Any) -> Any:
        if isinstance(value, float):
            return sp.Rational(repr(value))     # 0.1 means one tenth, as written
        return value

    def call(self, name: str, args: list, kwargs: dict) -> Any:
        return mirror.resolve(name).sym(*args, **kwargs)

    def binop(self, op: type, left: Any, right: Any) -> Any:
        if op is ast.MatMult:
            return mirror.resolve("matmul").sym(left, right)
        left, right = _sympify_scalar(left), _sympify_scalar(right)
        return super().binop(op, left, right)

    def compare(self, op: type, left: Any, right: Any) -> Any:
        # numpy's `>` on object arrays asks each SymPy relational for a truth
        # value; with dtype=object it keeps the relationals instead.
        return _COMPARE[op](left, right, dtype=object)

    def prop(self, obj: Any, name: str) -> Any:
        arr = as_object_array(obj)
        return arr.T if name == "T" else np.swapaxes(arr, -1, -2)


def _sympify_scalar(value: Any) -> Any:
    # Python's int/int is a float; keep arithmetic on plain numbers exact.
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return sp.Integer(value)
    return value


@dataclass
class SymbolicModel:
    """A case's symbolic output over its element arrays (dtype independent)."""

    symbols: dict[str, np.ndarray]            # floating inputs -> symbol arrays
    structural: dict[str, np.ndarray]         # index / mask inputs -> their values
    output: np.ndarray                        # object array of SymPy expressions
    wrt: tuple[str, ...]                      # differentiated inputs, in order
    _jacobian: dict[str, np.ndarray] | None = field(default=None, repr=False)

    @property
    def n_entries(self) -> int:
        return self.output.size * sum(self.symbols[name].size for name in self.wrt)

    def jacobian(self) -> dict[str, np.ndarray]:
        """Symbolic ∂y/∂x per input, shaped ``y.shape + x.shape`` (cached)."""
        if self._jacobian is None:
            flat = self.output.ravel()
            self._jacobian = {}
            for name in self.wrt:
                syms = self.symbols[name]
                jac = np.empty(flat.shape + syms.shape, dtype=object)
                for i, y in enumerate(flat):
                    for idx in np.ndindex(*syms.shape):
                        jac[(i,) + idx] = sp.diff(y, syms[idx])
                self._jacobian[name] = jac.reshape(self.output.shape + syms.shape)
        return self._jacobian


def build(case: Case) -> SymbolicModel:
    """Evaluate the case's symbolic expression over fresh element arrays."""
    symbols, structural, variables = {}, {}, {}
    for spec in case.inputs:
        if spec.dtype is None:
            shape = np.shape(spec.value) if spec.value is not None else tuple(spec.shape)
            symbols[spec.name] = variables[spec.name] = element_symbols(spec.name, tuple(shape))
        else:
            structural[spec.name] = variables[spec.name] = spec.values()
    fn = case.sympy_fn
    try:
        # distribute(False): keep `x - x.mean()` as one sum, not n expanded copies
        with distribute(False):
            if callable(fn) and not hasattr(fn, "evaluate"):
                result = fn(*[variables[spec.name] for spec in case.inputs])
            else:
                result = fn.evaluate(SymbolicReading(variables))
    except CaseError:
        raise
    except RecursionError:
        raise SymbolicError("the symbolic expression is too deep to build",
                            hint="Use smaller inputs for this case.") from None
    except Exception as exc:
        raise SymbolicError(f"the symbolic side failed: {type(exc).__name__}: {exc}",
                            hint="Check the expression's shapes and arguments against the torch side.") from None
    output = as_object_array(result)
    wrt = tuple(spec.name for spec in case.inputs if spec.differentiated)
    return SymbolicModel(symbols, structural, output, wrt)


@dataclass
class ExactResult:
    """Exact values at one point, rounded to float64 for comparison."""

    output: np.ndarray
    vjp: dict[str, np.ndarray]
    route: str
    route_gap: float | None = None             # max |Jacobian route - scalar route|


def exact(model: SymbolicModel, point: Mapping[str, np.ndarray], weights: np.ndarray | None,
          *, digits: int = PRECISION_DIGITS) -> ExactResult:
    """Exact output and Jᵀv at ``point`` (float inputs by name) with weights ``weights``."""
    with mpmath.workdps(digits):
        values = {}
        for name, syms in model.symbols.items():
            values.update(zip(syms.ravel().tolist(), np.asarray(point[name], dtype=np.float64).ravel().tolist()))
        ev = Evaluator(values)
        flat = model.output.ravel()
        out_mp = [ev(y) for y in flat]
        output = np.array([_real(val, "output") for val in out_mp], dtype=np.float64).reshape(model.output.shape)
        v = np.ones(model.output.shape) if weights is None else np.broadcast_to(weights, model.output.shape)
        v_flat = [float(w) for w in np.asarray(v, dtype=np.float64).ravel()]
        if model.n_entries <= JACOBIAN_ENTRY_LIMIT:
            return _two_routes(model, ev, output, v_flat)
        wrt_syms = [s for name in model.wrt for s in model.symbols[name].ravel()]
        grads = reverse_sweep(flat, v_flat, wrt_syms, ev)
        return ExactResult(output, _split(model, grads), "reverse sweep over the expression graph")


def _two_routes(model: SymbolicModel, ev: Evaluator, output: np.ndarray, v_flat: list) -> ExactResult:
    jac = model.jacobian()
    v_exact = [sp.Rational(w) for w in v_flat]
    scalar = sp.Add(*[w * y for w, y in zip(v_exact, model.output.ravel()) if w != 0])
    vjp, gap = {}, 0.0
    for name in model.wrt:
        syms = model.symbols[name]
        j = jac[name].reshape(model.output.size, syms.size)
        by_jacobian = [mpmath.fsum(mpmath.mpf(w) * ev(j[i, k]) for i, w in enumerate(v_flat) if w != 0)
                       for k in range(syms.size)]
        by_scalar = [ev(sp.diff(scalar, s)) for s in syms.ravel()]
        for a, b in zip(by_jacobian, by_scalar):
            scale = 1 + abs(_real(b, "gradient"))
            diff = float(abs(a - b))
            gap = max(gap, diff)
            if diff > scale * 10.0 ** (-PRECISION_DIGITS // 2):
                raise SymbolicError(
                    f"the Jacobian route and the scalar route disagree for '{name}' ({a} vs {b})",
                    hint="This is a bug in the symbolic engine; please report the case.")
        vjp[name] = np.array([_real(b, "gradient") for b in by_scalar], dtype=np.float64).reshape(syms.shape)
    return ExactResult(output, vjp, "symbolic Jacobian and scalar derivative (agree)", gap)


def _split(model: SymbolicModel, grads: list) -> dict[str, np.ndarray]:
    out, start = {}, 0
    for name in model.wrt:
        shape = model.symbols[name].shape
        size = int(np.prod(shape, dtype=int))
        out[name] = np.array([_real(g, "gradient") for g in grads[start:start + size]],
                             dtype=np.float64).reshape(shape)
        start += size
    return out


def _real(value, what: str) -> float:
    if isinstance(value, mpmath.mpc):
        if abs(value.imag) > 1e-30 * (1 + abs(value.real)):
            raise SymbolicError(f"the exact {what} is complex ({value}) at this point",
                                hint="Sample the inputs inside the function's domain.")
        value = value.real
    return float(value)

