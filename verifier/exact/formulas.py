"""Elementwise templates: one scalar SymPy expression stands for every element of a large case.

When a case's expression only combines its inputs with elementwise
functions (``verifier.exact.mirror.FUNCTIONS[name].elementwise``) and elementwise
arithmetic, output element ``i`` is the same scalar function ``f`` of the
(broadcast) input elements at ``i``. The symbolic side then needs ``f`` once,
built over one scalar symbol per input, instead of 10⁶ expressions. Exact
Jᵀv comes from two routes over that template, evaluated for every element
with :mod:`verifier.exact.vectorised` (float64 numpy arithmetic by default; numpy's
extended ``longdouble`` with ``real=numpy.longdouble``, 10-30x slower):

* the reverse sweep of ``f``'s graph, seeded with the weights ``v``;
* SymPy's derivative ``∂f/∂x`` (differentiated once), times ``v``.

They must agree. A few elements, spread over the array, are also evaluated
in 40-digit mpmath (:mod:`verifier.exact.sweep`) to show that the vectorised
arithmetic is as good as it claims; the deviation goes into the route text.
Inputs that are broadcast get their gradients summed over the broadcast axes.
"""

from __future__ import annotations

import ast
import math

import mpmath
import numpy as np
import sympy as sp
from sympy.core.parameters import distribute

from ..cases.case import Case
from ..cases.language import MODULE_PREFIXES, dotted, written_name
from ..errors import CaseError, SymbolicError
from . import magnitude, mirror, sweep, vectorised
from .evaluation import real_value
from .symbolic import ExactResult, OnDemandModel, SymbolicReading, as_object_array
from .tape import Tape, compile_tape

# Elementwise cases with at least this many output elements use a template.
# Smaller ones keep the full symbolic model (its Jacobian route, `explain`).
TEMPLATE_MIN_ELEMENTS = 4096
CHUNK = 1 << 16          # elements per vectorised pass: bounds memory to a few MB per node
SAMPLES = 16             # elements re-evaluated in 40 digits
# |route A - route B| and |vectorised - 40 digits| must stay within AGREE·(1 + |value|):
# a few float64 roundings per node (eps 2.2e-16) with headroom for mild cancellation,
# and still 40x below the float64 comparison tolerance (rtol 4e-11).
AGREE = 1e-12


def is_elementwise(case: Case) -> bool:
    """True when the case's symbolic expression is elementwise in all its floating inputs."""
    fn = case.sympy_fn
    if not hasattr(fn, "tree"):
        return False            # a Python callable: its structure is unknown
    floating = {spec.name for spec in case.inputs if spec.dtype is None}
    if not fn.variables <= floating:
        return False            # index or mask inputs steer structure elementwise templates lack
    return _elementwise(fn.tree.body)


def _elementwise(node: ast.AST) -> bool:
    if isinstance(node, (ast.Constant, ast.Name)):
        return True
    if isinstance(node, ast.BinOp):
        return not isinstance(node.op, ast.MatMult) and _elementwise(node.left) and _elementwise(node.right)
    if isinstance(node, ast.UnaryOp):
        return _elementwise(node.operand)
    if isinstance(node, ast.Compare):
        return _elementwise(node.left) and all(_elementwise(c) for c in node.comparators)
    if isinstance(node, ast.Call):
        func = node.func
        parts = list(node.args) + [kw.value for kw in node.keywords]
        if isinstance(func, ast.Attribute) and dotted(func.value) not in MODULE_PREFIXES:
            parts.append(func.value)          # a method call: the receiver is an operand too
        name = written_name(func)
        try:
            elementwise = name is not None and mirror.resolve(name).elementwise
        except CaseError:
            return False
        return elementwise and all(_elementwise(p) for p in parts)
    return False    # indexing, .T, tuples, lists: structure a template cannot express


def wants_template(case: Case) -> bool:
    """True when the case is elementwise and large enough for a template to pay off."""
    if not is_elementwise(case):
        return False
    shapes = [tuple(_shape(spec)) for spec in case.inputs if spec.name in case.sympy_fn.variables]
    try:
        size = math.prod(np.broadcast_shapes(*shapes)) if shapes else 1
    except ValueError:
        return False             # cannot broadcast: let the ordinary path report it
    return size >= TEMPLATE_MIN_ELEMENTS


def _shape(spec) -> tuple[int, ...]:
    return np.shape(spec.value) if spec.value is not None else tuple(spec.shape)


class TemplateModel(OnDemandModel):
    """A case's symbolic side as one scalar template plus the broadcast shapes."""

    kind = "template"

    def __init__(self, case: Case, tape: Tape, template: sp.Basic | None = None) -> None:
        self.case = case
        self.tape = tape
        self.template = template
        self.shapes = {spec.name: tuple(_shape(spec)) for spec in case.inputs if spec.dtype is None}
        used = [self.shapes[name] for name in case.sympy_fn.variables]
        self.output_shape = tuple(np.broadcast_shapes(*used)) if used else ()
        self.wrt = tuple(spec.name for spec in case.inputs if spec.differentiated)
        self.structural: dict = {}

    @property
    def n_entries(self) -> int:
        return math.prod(self.output_shape) * sum(math.prod(self.shapes[n]) for n in self.wrt)

    def kink_text(self, point, **_) -> str:
        """'' when no element is near a kink (vectorised screen); else the full detector's description."""
        every = ("<", "<=", ">", ">=", "==", "!=")
        if all(vectorised.kink_free(self.tape, values, self.tape.roots[0], relations=every)
               for _, values in _chunks(self, point)):
            return ""
        from .tangent import at_kink
        return at_kink(self, point)

    def exact_jvp(self, point, direction, **_) -> np.ndarray:
        """J·u for every element: Σ over inputs of ∂f/∂x (the template's symbolic derivatives) times u."""
        droots = derivative_roots(self)
        shape, out = self.output_shape, []
        dirs = {name: np.broadcast_to(np.asarray(direction[name], dtype=np.float64), shape).reshape(-1)
                for name in droots}
        for sl, values in _chunks(self, point):
            total = np.zeros(sl.stop - sl.start)
            for name, r in droots.items():
                total = total + np.broadcast_to(values[0][self.tape.roots[r]], total.shape) * dirs[name][sl]
            out.append(total)
        return np.concatenate(out).reshape(shape) if out else np.zeros(shape)

    def exact_jvp_bound(self, point, direction, **_) -> np.ndarray:
        """The rounding bound M of each J·u element: Σ over inputs of (E[∂f/∂x] + 2|∂f/∂x|)·|u|."""
        droots = derivative_roots(self)
        shape, out = self.output_shape, []
        dirs = {name: np.abs(np.broadcast_to(np.asarray(direction[name], dtype=np.float64), shape).reshape(-1))
                for name in droots}
        for sl, values in _chunks(self, point):
            errs = magnitude.forward_errors(self.tape, values[0],
                                            lambda i, op: vectorised.local_partials(self.tape, values, i, op))
            total = np.zeros(sl.stop - sl.start)
            for name, r in droots.items():
                node = self.tape.roots[r]
                total = total + (np.broadcast_to(errs[node], total.shape)
                                 + 2 * np.abs(np.broadcast_to(values[0][node], total.shape))) * dirs[name][sl]
            out.append(total)
        return np.concatenate(out).reshape(shape) if out else np.zeros(shape)


def _chunks(model: "TemplateModel", point):
    """(slice, vectorised.forward values) over the output's elements, CHUNK at a time."""
    shape = model.output_shape
    n = math.prod(shape)
    columns = {name: np.ascontiguousarray(np.broadcast_to(np.asarray(point[name], dtype=np.float64),
                                                          shape)).reshape(-1)
               for name, _ in model.tape.leaves}
    for start in range(0, n, CHUNK):
        sl = slice(start, min(n, start + CHUNK))
        yield sl, vectorised.forward(model.tape, vectorised.leaf_arrays(
            model.tape, {k: c[sl] for k, c in columns.items()}))


def build_template(case: Case) -> TemplateModel:
    """The scalar template ``f`` over one symbol per input, compiled with its symbolic derivatives."""
    names = sorted(case.sympy_fn.variables)
    syms = {name: sp.Symbol(name, real=True) for name in names}
    variables = {}
    for name, s in syms.items():
        arr = np.empty((), dtype=object)
        arr[()] = s
        variables[name] = arr
    try:
        with distribute(False):
            result = as_object_array(case.sympy_fn.evaluate(SymbolicReading(variables)))
    except CaseError:
        raise
    except Exception as exc:
        raise SymbolicError(f"the symbolic side failed: {type(exc).__name__}: {exc}",
                            hint="Check the expression's shapes and arguments against the torch side.") from None
    if result.shape != ():
        raise SymbolicError("an elementwise template did not reduce to one scalar expression",
                            hint="This is a bug in verifier/exact/formulas.py; please report the case.")
    f = result[()]
    wrt = [spec.name for spec in case.inputs if spec.differentiated and spec.name in syms]
    leaves = {s: (name, 0) for name, s in syms.items()}
    tape = compile_tape([f], leaves, extra_roots=[sp.diff(f, syms[name]) for name in wrt])
    return TemplateModel(case, tape, f)


def derivative_roots(model: TemplateModel) -> dict[str, int]:
    """Tape root index of ``∂f/∂x`` per differentiated input used by the template."""
    used = [name for name in model.wrt if name in model.case.sympy_fn.variables]
    return {name: k + 1 for k, name in enumerate(used)}


def exact(model: TemplateModel, point, weights, *, real=np.float64):
    """Exact output and Jᵀv for every element, by the two template routes (see the module doc)."""
    tape, shape = model.tape, model.output_shape
    n = math.prod(shape)
    columns = {name: np.ascontiguousarray(np.broadcast_to(np.asarray(point[name], dtype=np.float64),
                                                          shape)).reshape(-1)
               for name, _ in tape.leaves}
    v = np.ones(n) if weights is None else np.ascontiguousarray(
        np.broadcast_to(np.asarray(weights, dtype=np.float64), shape)).reshape(-1)
    droots = derivative_roots(model)
    leaf_of = {name: k for k, (name, _) in enumerate(tape.leaves)}
    output, out_mag = np.empty(n), np.empty(n)
    by_sweep = {name: np.zeros(n, dtype=real) for name in droots}
    mags = {name: np.zeros(n) for name in droots}
    gap, kink_free = 0.0, True
    for start in range(0, n, CHUNK):
        sl = slice(start, min(n, start + CHUNK))
        values = vectorised.forward(tape, vectorised.leaf_arrays(tape, {k: c[sl] for k, c in columns.items()},
                                                                  real))
        vals = values[0]
        output[sl] = _finite_or_raise(np.broadcast_to(vals[tape.roots[0]], (sl.stop - sl.start,)), "output", start)
        kink_free = kink_free and vectorised.kink_free(tape, values, tape.roots[0])
        seed = v[sl].astype(real)
        adj = vectorised.backward(tape, values, seed, tape.roots[0])
        errs, leaf_bounds = vectorised.bounds(tape, values, seed, tape.roots[0])
        out_mag[sl] = np.broadcast_to(errs[tape.roots[0]], (sl.stop - sl.start,))
        for name in droots:
            mags[name][sl] = np.broadcast_to(leaf_bounds[leaf_of[name]], seed.shape)
        for name, r in droots.items():
            a = np.broadcast_to(adj[leaf_of[name]], seed.shape)
            b = seed * np.broadcast_to(vals[tape.roots[r]], seed.shape)
            _finite_or_raise(a, "gradient", start)
            bad = np.abs(a - b) > AGREE * (1 + np.abs(b))
            if np.any(bad):
                k = int(np.argmax(bad))
                raise SymbolicError(f"the template's reverse sweep and its symbolic derivative disagree for "
                                    f"'{name}' at element {start + k} ({float(a[k])!r} vs {float(b[k])!r})",
                                    hint="This is a bug in the symbolic engine; please report the case.")
            gap = max(gap, float(np.max(np.abs(a - b), initial=0.0)))
            by_sweep[name][sl] = a
    deviation = _sample_check(model, columns, v, output, by_sweep)
    vjp, magnitude = {}, {}
    for name in model.wrt:
        if name in by_sweep:
            vjp[name] = _reduce_to(by_sweep[name].reshape(shape), model.shapes[name]).astype(np.float64)
            # a broadcast input's gradient is a sum of n terms: pairwise summation adds log2(n) roundings
            terms = n // max(1, math.prod(model.shapes[name]))
            magnitude[name] = _reduce_to(mags[name].reshape(shape), model.shapes[name]) * (
                1 + math.ceil(math.log2(terms)) if terms > 1 else 1)
        else:
            vjp[name] = magnitude[name] = np.zeros(model.shapes[name])
    route = (f"elementwise template over {n} elements: reverse sweep and symbolic derivative agree "
             f"({np.dtype(real).name}); {min(SAMPLES, n)} elements re-evaluated in "
             f"{sweep_digits()} digits differ by at most {deviation:.1e} (relative)")
    return ExactResult(output.reshape(shape), vjp, route, gap, may_kink=not kink_free, magnitude=magnitude,
                       output_magnitude=out_mag.reshape(shape))


def sweep_digits() -> int:
    from .evaluation import PRECISION_DIGITS
    return PRECISION_DIGITS


def _finite_or_raise(arr, what: str, start: int):
    nan = np.isnan(arr)
    if np.any(nan):
        k = int(np.argmax(nan))
        raise SymbolicError(f"the exact {what} is undefined (NaN) at element {start + k}",
                            hint="Sample the inputs inside the function's domain.")
    return arr


def _sample_check(model: TemplateModel, columns, v, output, by_sweep) -> float:
    """Largest relative gap between the vectorised values and 40-digit ones on a few elements."""
    tape = model.tape
    n = output.size
    rng = np.random.default_rng(0)
    picks = sorted({0, n - 1, *rng.integers(0, n, size=max(0, SAMPLES - 2)).tolist()})
    leaf_of = {name: k for k, (name, _) in enumerate(tape.leaves)}
    worst = 0.0
    with mpmath.workdps(sweep_digits()):
        for k in picks:
            leaves = [mpmath.mpf(float(columns[name][k])) for name, _ in tape.leaves]
            vals = sweep.forward(tape, leaves)
            y = sweep.value(vals, tape.roots[0], "output")
            grads = sweep.backward(tape, vals, {tape.roots[0]: mpmath.mpf(float(v[k]))})
            pairs = [(output[k], y)] + [(float(by_sweep[name][k]), grads[leaf_of[name]]) for name in by_sweep]
            for got, want in pairs:
                want = real_value(want)
                dev = abs(got - want) / (1 + abs(want)) if math.isfinite(want) else (0.0 if got == want else math.inf)
                if not dev <= AGREE:
                    raise SymbolicError(f"the vectorised template deviates from the {sweep_digits()}-digit "
                                        f"value at element {k} ({got!r} vs {want!r})",
                                        hint="The function is too ill-conditioned here for extended "
                                             "precision; use fewer elements so the 40-digit path runs.")
                worst = max(worst, dev)
    return worst


def _reduce_to(full: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum a broadcast-shaped gradient back onto an input of ``shape`` (the adjoint of broadcasting)."""
    lead = full.ndim - len(shape)
    out = full.sum(axis=tuple(range(lead))) if lead else full
    axes = tuple(k for k, m in enumerate(shape) if m == 1 and out.shape[k] != 1)
    return out.sum(axis=axes, keepdims=True) if axes else out
