"""The symbolic side: element arrays, the case's exact output, Jacobian and Jᵀv.

Every element of every floating input becomes a real SymPy symbol (``x[0,1]``);
index and mask inputs stay integer/bool arrays because they steer structure,
not values. The case's symbolic expression is evaluated over those arrays
with the mirror (:mod:`verifier.mirror`), giving the output as an object array
of SymPy expressions. The model does not depend on the dtype: constants are
symbols too, and get their (dtype-rounded) values only at evaluation.

The output graph (and, for small cases, the symbolic Jacobian) is then
flattened into a :class:`~verifier.tape.Tape` (:func:`compile_model`), which
:func:`prepare` takes from the disk cache when it can. Exact Jᵀv comes from
the tape, evaluated at the point in 40-digit mpmath (:mod:`verifier.sweep`):

* the scalar route ∂(Σ v⊙y)/∂x, as a reverse sweep over the shared
  expression graph (one pass, not ``n`` derivative expressions);
* small cases also: the symbolic Jacobian ``J[i, j] = ∂y_i/∂x_j`` contracted
  with ``v``. The two routes must agree; larger cases skip the Jacobian and
  the result's ``route`` says so.

Large elementwise cases never build per-element expressions at all: they use
one scalar template (:mod:`verifier.templates`).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any, Mapping

import mpmath
import numpy as np
import sympy as sp
from sympy.core.parameters import distribute

from . import mirror, sweep
from .case import Case
from .errors import CaseError, SymbolicError
from .evaluation import PRECISION_DIGITS
from .language import Reading
from .tape import CONST, Tape, compile_tape, symbol_leaves

_COMPARE = {ast.Lt: np.less, ast.LtE: np.less_equal, ast.Gt: np.greater,
            ast.GtE: np.greater_equal, ast.Eq: np.equal, ast.NotEq: np.not_equal}

# Cases up to this many Jacobian entries (outputs × differentiated inputs) take
# both symbolic routes; larger ones use the reverse sweep alone.
JACOBIAN_ENTRY_LIMIT = 1024
# ... as long as differentiating them stays cheap: entries × tape nodes (a
# scalar logsumexp over 1024 elements has 1024 entries, each an O(n) diff).
JACOBIAN_COST_LIMIT = 200_000


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


@dataclass
class ExactResult:
    """Exact values at one point, rounded to float64 for comparison."""

    output: np.ndarray
    vjp: dict[str, np.ndarray]
    route: str
    route_gap: float | None = None             # max |Jacobian route - scalar route|
    may_kink: bool = True                      # False: no Abs/Max/Piecewise boundary is near a kink here


class CompiledModel:
    """A case's symbolic side flattened into a :class:`~verifier.tape.Tape` (no SymPy needed to evaluate).

    The tape's first roots are the output elements (row-major); when
    ``jacobian`` is set, the symbolic Jacobian entries follow (per input in
    ``wrt``, output-major). The SymPy model itself is kept when at hand and
    rebuilt on demand otherwise (``output``, ``symbols``, ``jacobian()``:
    ``explain`` and kink detection read those), so a model loaded from the
    disk cache stands in for a :class:`SymbolicModel` everywhere.
    """

    kind = "tape"

    def __init__(self, case: Case | None, tape: Tape, output_shape: tuple[int, ...], jacobian: bool,
                 model: SymbolicModel | None = None) -> None:
        self.case = case
        self.tape = tape
        self.output_shape = tuple(output_shape)
        self.has_jacobian = jacobian
        self._model = model
        self._active = None          # sweep.active_nodes, made on first use
        self.key = None              # the disk-cache key, when the cache is in use
        if case is None:        # compiled straight from a SymbolicModel
            self.shapes = {name: arr.shape for name, arr in model.symbols.items()}
            self.structural, self.wrt = model.structural, model.wrt
            return
        self.shapes = {spec.name: tuple(np.shape(spec.value) if spec.value is not None else spec.shape)
                       for spec in case.inputs if spec.dtype is None}
        self.structural = {spec.name: spec.values() for spec in case.inputs if spec.dtype is not None}
        self.wrt = tuple(spec.name for spec in case.inputs if spec.differentiated)

    def symbolic(self) -> SymbolicModel:
        """The SymPy model (built again if this one came from the cache)."""
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

    def _values(self, point, digits: int) -> list:
        return sweep.forward(self.tape, sweep.leaf_values(self.tape, point))

    def kink_text(self, point, *, digits: int = PRECISION_DIGITS) -> str:
        """'' when the tape shows no kink near the point; otherwise the SymPy detector's description."""
        n_out = int(np.prod(self.output_shape, dtype=int))
        with mpmath.workdps(digits):
            if sweep.kink_free(self.tape, self._values(point, digits), self.tape.roots[:n_out],
                               relations=("<", "<=", ">", ">=", "==", "!=")):
                return ""
        from .tangent import at_kink
        return at_kink(self, point, digits=digits)

    def exact_jvp(self, point, direction, *, digits: int = PRECISION_DIGITS) -> np.ndarray:
        """The exact J·u at ``point`` (forward mode over the tape), shaped like the output."""
        n_out = int(np.prod(self.output_shape, dtype=int))
        with mpmath.workdps(digits):
            vals = self._values(point, digits)
            flat = {name: np.asarray(direction[name], dtype=np.float64).ravel().tolist() for name in self.wrt}
            leaf_t = [mpmath.mpf(flat[name][k]) if name in flat else None for name, k in self.tape.leaves]
            out = sweep.tangent(self.tape, vals, leaf_t, self.tape.roots[:n_out])
            return np.array([_real(t, "J·u") for t in out], dtype=np.float64).reshape(self.output_shape)

    @property
    def n_entries(self) -> int:
        size = int(np.prod(self.output_shape, dtype=int))
        return size * sum(int(np.prod(self.shapes[name], dtype=int)) for name in self.wrt)

    def to_data(self) -> dict:
        return {"tape": self.tape.to_data(), "output_shape": list(self.output_shape),
                "jacobian": self.has_jacobian}


def compile_model(model: SymbolicModel, case: Case | None = None) -> CompiledModel:
    """Flatten ``model`` (and, for small cases, its symbolic Jacobian) into a tape."""
    leaves = symbol_leaves(model.symbols)
    roots = model.output.ravel().tolist()
    tape = compile_tape(roots, leaves)
    jacobian = (model.n_entries <= JACOBIAN_ENTRY_LIMIT
                and model.n_entries * len(tape) <= JACOBIAN_COST_LIMIT)
    if jacobian:
        jac = model.jacobian()
        extra = [e for name in model.wrt for e in jac[name].reshape(model.output.size, -1).ravel().tolist()]
        tape = compile_tape(roots, leaves, extra_roots=extra)
    return CompiledModel(case, tape, model.output.shape, jacobian, model)


def prepare(case: Case, cache=None):
    """The case's symbolic side, ready to evaluate: a template, a cached tape, or a fresh build.

    ``cache`` is a :class:`verifier.cache.Cache` (or None for no disk cache).
    """
    from . import templates
    if templates.wants_template(case):
        return templates.build_template(case)
    key = None
    if cache is not None:
        from .cache import case_key
        key = case_key(case, "tape")
        data = cache.load(key) if key else None
        if data is not None:
            try:
                compiled = CompiledModel(case, Tape.from_data(data["tape"]), tuple(data["output_shape"]),
                                         bool(data["jacobian"]))
                compiled.key = key
                return compiled
            except (KeyError, TypeError, ValueError):
                pass                  # a malformed entry is a miss
    compiled = compile_model(build(case), case)
    if cache is not None and key:
        cache.store(key, compiled.to_data())
        compiled.key = key
    return compiled


def exact(model, point: Mapping[str, np.ndarray], weights: np.ndarray | None,
          *, digits: int = PRECISION_DIGITS) -> ExactResult:
    """Exact output and Jᵀv at ``point`` (float inputs by name) with weights ``weights``.

    ``model`` is what :func:`build` or :func:`prepare` returned.
    """
    if getattr(model, "kind", None) == "template":
        from . import templates
        return templates.exact(model, point, weights)
    if isinstance(model, SymbolicModel):
        if model._compiled is None:
            model._compiled = compile_model(model)
        model = model._compiled
    tape = model.tape
    n_out = int(np.prod(model.output_shape, dtype=int))
    with mpmath.workdps(digits):
        vals = sweep.forward(tape, sweep.leaf_values(tape, point))
        out_mp = [sweep.value(vals, r, "output") for r in tape.roots[:n_out]]
        output = np.array([_real(val, "output") for val in out_mp], dtype=np.float64).reshape(model.output_shape)
        v = np.ones(model.output_shape) if weights is None else np.broadcast_to(weights, model.output_shape)
        v_flat = [float(w) for w in np.asarray(v, dtype=np.float64).ravel()]
        seeds: dict = {}
        for r, w in zip(tape.roots[:n_out], v_flat):
            if w != 0:
                seeds[r] = seeds.get(r, 0) + mpmath.mpf(w)
        if getattr(model, "_active", None) is None:
            model._active = sweep.active_nodes(tape, model.wrt)
        grads = sweep.backward(tape, vals, seeds, model._active)
        by_sweep = _by_input(model, tape, grads)
        may_kink = not sweep.kink_free(tape, vals, tape.roots[:n_out])
        if not model.has_jacobian:
            return ExactResult(output, {k: _to_float(g, model.shapes[k]) for k, g in by_sweep.items()},
                               "reverse sweep over the expression graph", may_kink=may_kink)
        result = _two_routes(model, vals, by_sweep, v_flat, output, digits)
        result.may_kink = may_kink
        return result


def _by_input(model: CompiledModel, tape: Tape, grads: list) -> dict[str, list]:
    out = {name: [mpmath.mpf(0)] * int(np.prod(model.shapes[name], dtype=int)) for name in model.wrt}
    for (name, k), g in zip(tape.leaves, grads):
        if name in out:
            out[name][k] = g
    return out


def _two_routes(model: CompiledModel, vals: list, by_sweep: dict, v_flat: list, output: np.ndarray,
                digits: int) -> ExactResult:
    """Contract the symbolic Jacobian with v and check it against the reverse sweep."""
    tape = model.tape
    n_out = output.size
    pos, gap, vjp = n_out, 0.0, {}
    weights = [(i, mpmath.mpf(w)) for i, w in enumerate(v_flat) if w != 0]
    for name in model.wrt:
        size = int(np.prod(model.shapes[name], dtype=int))
        roots = tape.roots[pos:pos + n_out * size]
        pos += n_out * size
        for k in range(size):
            # structurally zero entries (most of an elementwise Jacobian) add nothing
            a = mpmath.fsum(w * sweep.value(vals, roots[i * size + k], "Jacobian") for i, w in weights
                            if not _is_zero(tape, roots[i * size + k]))
            b = by_sweep[name][k]
            scale = 1 + abs(_real(b, "gradient"))
            diff = float(abs(a - b))
            gap = max(gap, diff)
            if diff > scale * 10.0 ** (-digits // 2):
                raise SymbolicError(
                    f"the Jacobian route and the scalar route disagree for '{name}' ({a} vs {b})",
                    hint="This is a bug in the symbolic engine; please report the case.")
        vjp[name] = _to_float(by_sweep[name], model.shapes[name])
    return ExactResult(output, vjp, "symbolic Jacobian and reverse sweep (agree)", gap)


def _is_zero(tape: Tape, node: int) -> bool:
    return tape.ops[node] == CONST and tape.extra[node] == "0/1"


def _to_float(values: list, shape: tuple[int, ...]) -> np.ndarray:
    return np.array([_real(g, "gradient") for g in values], dtype=np.float64).reshape(shape)


def _real(value, what: str) -> float:
    if isinstance(value, mpmath.mpc):
        if abs(value.imag) > 1e-30 * (1 + abs(value.real)):
            raise SymbolicError(f"the exact {what} is complex ({value}) at this point",
                                hint="Sample the inputs inside the function's domain.")
        value = value.real
    return float(value)
