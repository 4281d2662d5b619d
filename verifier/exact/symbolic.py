"""The symbolic side: element arrays, the case's exact output, Jacobian and Jᵀv.

Every element of every floating input becomes a real SymPy symbol (``x[0,1]``);
index and mask inputs stay integer/bool arrays because they steer structure,
not values. The case's symbolic expression is evaluated over those arrays
with the mirror (:mod:`verifier.exact.mirror`), giving the output as an object array
of SymPy expressions. The model does not depend on the dtype: constants are
symbols too, and get their (dtype-rounded) values only at evaluation.

The output graph (and, for small cases, the symbolic Jacobian) is then
flattened into a :class:`~verifier.exact.tape.Tape` by :mod:`verifier.exact.compiled`,
which takes it from the disk cache when it can. Exact Jᵀv comes from the
tape, evaluated at the point in 40-digit mpmath (:mod:`verifier.exact.sweep`):

* the scalar route ∂(Σ v⊙y)/∂x, as a reverse sweep over the shared
  expression graph (one pass, not ``n`` derivative expressions);
* small cases also: the symbolic Jacobian ``J[i, j] = ∂y_i/∂x_j`` contracted
  with ``v``. The two routes must agree; larger cases skip the Jacobian and
  the result's ``route`` says so.

Large elementwise cases never build per-element expressions at all: they use
one scalar template (:mod:`verifier.exact.formulas`).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import sympy as sp
from sympy.core.parameters import distribute

from ..cases.case import Case
from ..cases.language import Reading
from ..errors import CaseError, ExpressionError, SymbolicError
from . import mirror

_COMPARE = {ast.Lt: np.less, ast.LtE: np.less_equal, ast.Gt: np.greater,
            ast.GtE: np.greater_equal, ast.Eq: np.equal, ast.NotEq: np.not_equal}

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
        if isinstance(value, complex):          # 2.5j: its parts as written (complex.md)
            return sp.Rational(repr(value.real)) + sp.I * sp.Rational(repr(value.imag))
        return value

    def call(self, name: str, args: list, kwargs: dict) -> Any:
        fn = mirror.resolve(name)
        try:
            return fn.sym(*args, **kwargs)
        except TypeError as exc:      # a call form torch may take but the mirror does not: say which
            text = str(exc).split("() ", 1)[-1]
            raise ExpressionError(f"the mirror of {fn.qualname} cannot take this call: {text}",
                                  hint=f"Call it as torch documents {fn.qualname}; `verifier functions` "
                                       "lists the supported functions and their arguments.") from None

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
        if name in ("real", "imag"):          # torch's .real of a real tensor is itself; .imag refuses it
            return mirror.resolve(name).sym(arr)
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
    _compiled: Any = field(default=None, repr=False)   # its CompiledModel, made on first exact()

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


class OnDemandModel:
    """Mixin for models that stand in for a :class:`SymbolicModel` without holding one.

    ``output``, ``symbols`` and ``jacobian()`` (what ``explain`` and kink
    detection read) come from the element-by-element SymPy model of
    ``self.case``, built on first use and kept in ``self._model``.
    """

    case: Case
    _model: SymbolicModel | None = None

    def symbolic(self) -> SymbolicModel:
        """The SymPy model (built on first use: slow for large cases)."""
        if self._model is None:
            self._model = build(self.case)
        return self._model

    @property
    def output(self) -> np.ndarray:
        return self.symbolic().output

    @property
    def symbols(self) -> dict[str, np.ndarray]:
        return self.symbolic().symbols

    def jacobian(self) -> dict[str, np.ndarray]:
        return self.symbolic().jacobian()


@dataclass
class ExactResult:
    """Exact values at one point, rounded to float64 for comparison."""

    output: np.ndarray
    vjp: dict[str, np.ndarray]
    route: str
    route_gap: float | None = None             # max |Jacobian route - scalar route|
    may_kink: bool = True                      # False: no Abs/Max/Piecewise boundary is near a kink here
    # per input, the rounding bound M of each Jᵀv element (verifier/exact/magnitude.py), in units of the
    # dtype's roundoff: the allowance is rtol·M + atol. None: the route could not give it (the
    # comparison then uses |exact|, tighter, and says so)
    magnitude: dict[str, np.ndarray] | None = None
    output_magnitude: np.ndarray | None = None  # the same for the output's elements
    # the numeric-exact route's condition number κ (a factor of magnitude): the runner refuses a dtype whose
    # rtol·κ would exceed numeric.model.RESOLUTION (docs/numeric-exact.md). None: no decomposition
    condition: float | None = None
