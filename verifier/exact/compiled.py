"""A case's symbolic side compiled to a tape, and exact Jᵀv from it at a point.

:mod:`verifier.exact.symbolic` builds the SymPy graph; this module flattens
it into a :class:`~verifier.exact.tape.Tape` (:func:`compile_model`), which
:func:`prepare` takes from the disk cache when it can (or replaces by one
scalar template, :mod:`verifier.exact.formulas`, for large elementwise
cases). :func:`exact` evaluates the tape at the point in 40-digit mpmath
(:mod:`verifier.exact.sweep`) by two routes that must agree for small cases:
the reverse sweep of ∂(Σ v⊙y)/∂x and the symbolic Jacobian contracted with v.
"""

from __future__ import annotations

from typing import Mapping

import mpmath
import numpy as np

from ..cases.case import Case
from ..errors import SymbolicError
from . import bounds, formulas, lowering, reduced, rule_check, sweep
from .evaluation import PRECISION_DIGITS, real_value
from .mirror.decompositions import NumericOnly
from .numeric.model import NumericModel, uses_numeric_route
from .symbolic import ExactResult, OnDemandModel, SymbolicModel, build
from .tape import CONST, Tape, compile_tape, symbol_leaves

# The route of small cases built per operation: two graphs, swept, must agree
SMALL_ROUTE = "reverse sweeps over the per-operation and per-element graphs (agree)"

# Cases up to this many Jacobian entries (outputs × differentiated inputs) take
# both symbolic routes; larger ones use the reverse sweep alone.
JACOBIAN_ENTRY_LIMIT = 1024
# ... as long as differentiating them stays cheap: entries × tape nodes (a
# scalar logsumexp over 1024 elements has 1024 entries, each an O(n) diff).
JACOBIAN_COST_LIMIT = 200_000
# ... and as long as SymPy's expression *trees* stay small: ``diff`` and its
# canonicalising walk meet a shared subexpression once per use. The max over n
# elements keeps its n-argument Max inside n tie indicators: n^2 tree nodes from
# about 5n graph nodes, so n = 100 (2M) took 11 s on this route and 0.5 s on the
# sweep. Differentiated elements × tree nodes of the outputs; the limit keeps
# max over about 65 elements on both routes. Rational trees cost more per node
# than Max: linalg.solve of a 5x5 system (op_db's sample, 777k) spent 115 s in
# diff on a loaded 2-core machine, layer_norm over 32 elements (1.4M) 143 s, max
# over 85 elements (1.3M) 9 s; the sweep alone runs the whole solve case in 2 s.
JACOBIAN_TREE_LIMIT = 600_000
_TREE_CAP = 1 << 40


def _tree_size(tape: Tape, roots) -> int:
    """Nodes of the roots' expression trees (shared subexpressions counted once per use), capped."""
    size: list[int] = []
    for a in tape.args:               # children are always emitted before their parents
        size.append(min(1 + sum(size[j] for j in a), _TREE_CAP))
    return sum(size[r] for r in roots)


class CompiledModel(OnDemandModel):
    """A case's symbolic side flattened into a :class:`~verifier.exact.tape.Tape` (no SymPy needed to evaluate).

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
        self.per_op = False          # True: built by lowering.lower, without per-element SymPy
        self.second: Tape | None = None   # small per-op cases: the per-element SymPy graph, the second route
        self._active_second = None
        self.key = None              # the disk-cache key, when the cache is in use
        if case is None:        # compiled straight from a SymbolicModel
            self.shapes = {name: arr.shape for name, arr in model.symbols.items()}
            self.structural, self.wrt = model.structural, model.wrt
            return
        self.shapes = {spec.name: tuple(np.shape(spec.value) if spec.value is not None else spec.shape)
                       for spec in case.inputs if spec.dtype is None}
        self.structural = {spec.name: spec.values() for spec in case.inputs if spec.dtype is not None}
        self.wrt = tuple(spec.name for spec in case.inputs if spec.differentiated)

    def _values(self, point, digits: int) -> list:
        """Every node's value at ``point`` (40-digit mpmath), kept for the last point: the gradient, the
        kink screen and forward mode's J·u and its bound all start from the same forward pass."""
        names = sorted({name for name, _ in self.tape.leaves})
        key = (digits, mpmath.mp.dps, tuple((n, np.asarray(point[n], dtype=np.float64).tobytes()) for n in names))
        last = getattr(self, "_last_values", None)
        if last is not None and last[0] == key:
            return last[1]
        vals = sweep.forward(self.tape, sweep.leaf_values(self.tape, point))
        self._last_values = (key, vals)
        return vals

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
            return np.array([real_value(t, "J·u") for t in out], dtype=np.float64).reshape(self.output_shape)

    def exact_jvp_bound(self, point, direction, *, digits: int = PRECISION_DIGITS) -> np.ndarray:
        """The rounding bound M of each element of J·u (see :mod:`verifier.exact.magnitude`), like the output."""
        n_out = int(np.prod(self.output_shape, dtype=int))
        with mpmath.workdps(digits):
            vals = self._values(point, digits)
            flat = {name: np.abs(np.asarray(direction[name], dtype=np.float64)).ravel().tolist() for name in self.wrt}
            leaf_t = [mpmath.mpf(flat[name][k]) if name in flat else None for name, k in self.tape.leaves]
            out = bounds.tangent_bound(self.tape, vals, leaf_t, self.tape.roots[:n_out])
            return np.array([_bound_float(t) for t in out], dtype=np.float64).reshape(self.output_shape)

    @property
    def n_entries(self) -> int:
        size = int(np.prod(self.output_shape, dtype=int))
        return size * sum(int(np.prod(self.shapes[name], dtype=int)) for name in self.wrt)

    def to_data(self) -> dict:
        data = {"tape": self.tape.to_data(), "output_shape": list(self.output_shape),
                "jacobian": self.has_jacobian, "per_op": self.per_op}
        if self.second is not None:
            data["second"] = self.second.to_data()
        return data


def compile_model(model: SymbolicModel, case: Case | None = None) -> CompiledModel:
    """Flatten ``model`` (and, for small cases, its symbolic Jacobian) into a tape."""
    leaves = symbol_leaves(model.symbols)
    roots = model.output.ravel().tolist()
    tape = compile_tape(roots, leaves)
    wrt_elements = sum(model.symbols[name].size for name in model.wrt)
    jacobian = (model.n_entries <= JACOBIAN_ENTRY_LIMIT
                and model.n_entries * len(tape) <= JACOBIAN_COST_LIMIT
                and wrt_elements * _tree_size(tape, tape.roots) <= JACOBIAN_TREE_LIMIT)
    if jacobian:
        jac = model.jacobian()
        extra = [e for name in model.wrt
             for e in jac[name].reshape(model.output.size, model.symbols[name].size).ravel().tolist()]
        tape = compile_tape(roots, leaves, extra_roots=extra)
    return CompiledModel(case, tape, model.output.shape, jacobian, model)


def prepare(case: Case, cache=None):
    """The case's symbolic side, ready to evaluate: a template, a cached tape, or a fresh build.

    ``cache`` is a :class:`verifier.exact.cache.Cache` (or None for no disk cache).
    """
    if uses_numeric_route(case):      # decompositions without a closed form (docs/numeric-exact.md)
        return NumericModel(case)
    try:
        return _symbolic(case, cache)
    except NumericOnly:               # a Python case that calls one
        return NumericModel(case)


def _symbolic(case: Case, cache):
    if formulas.wants_template(case):
        return formulas.build_template(case)
    if reduced.wants_reduced(case, JACOBIAN_ENTRY_LIMIT + 1):
        return reduced.build_reduced(case)   # a sum/mean of an elementwise body: the template under it
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
                compiled.per_op = data.get("per_op") is True
                if "second" in data:
                    compiled.second = Tape.from_data(data["second"])
                elif compiled.per_op and compiled.n_entries <= JACOBIAN_ENTRY_LIMIT:
                    raise ValueError("a small per-operation tape without its second route")
                return compiled
            except (KeyError, TypeError, ValueError, AttributeError):
                cache.malformed(key)  # a malformed entry is a miss
    compiled = _lowered(case) or compile_model(build(case), case)
    if cache is not None and key:
        cache.store(key, compiled.to_data())
        compiled.key = key
    return compiled


def _lowered(case: Case) -> CompiledModel | None:
    """The tape built per operation (lowering.py); None when the lowering cannot read the case.

    Small cases (at most JACOBIAN_ENTRY_LIMIT entries) also get the per-element
    SymPy model's tape (without its symbolic Jacobian) as ``second``: both
    graphs are swept and must agree (:func:`exact`), and the sweep's built-in
    derivative rules are checked against SymPy's (:mod:`verifier.exact.rule_check`).
    """
    try:
        tape, shape = lowering.lower(case)
    except lowering.Unsupported:
        return None
    compiled = CompiledModel(case, tape, shape, False)
    compiled.per_op = True
    if compiled.n_entries <= JACOBIAN_ENTRY_LIMIT:
        model = build(case)
        if model.output.shape != compiled.output_shape:
            return None                 # the SymPy model's reading wins; it keeps its own routes
        compiled.second = compile_tape(model.output.ravel().tolist(), symbol_leaves(model.symbols))
        compiled._model = model
    return compiled


def exact(model, point: Mapping[str, np.ndarray], weights: np.ndarray | None,
          *, digits: int = PRECISION_DIGITS) -> ExactResult:
    """Exact output and Jᵀv at ``point`` (float inputs by name) with weights ``weights``.

    ``model`` is what :func:`build` or :func:`prepare` returned.
    """
    if isinstance(model, NumericModel):
        return model.exact(point, weights)
    if getattr(model, "kind", None) == "template":
            return formulas.exact(model, point, weights)
    if isinstance(model, reduced.ReducedModel):
        return model.exact(point, weights)
    if isinstance(model, SymbolicModel):
        if model._compiled is None:
            model._compiled = compile_model(model)
        model = model._compiled
    tape = model.tape
    n_out = int(np.prod(model.output_shape, dtype=int))
    with mpmath.workdps(digits):
        vals = (model._values(point, digits) if isinstance(model, CompiledModel)
                else sweep.forward(tape, sweep.leaf_values(tape, point)))
        out_mp = [sweep.value(vals, r, "output") for r in tape.roots[:n_out]]
        output = np.array([real_value(val, "output") for val in out_mp], dtype=np.float64).reshape(model.output_shape)
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
        errs, leaf_bounds = bounds.gradient_bounds(tape, vals, seeds, model._active,
                                                   upto=_output_graph_end(tape, n_out))
        magnitude = {k: _to_float(g, model.shapes[k]) for k, g in _by_input(model, tape, leaf_bounds).items()}
        out_mag = np.array([_bound_float(errs[r]) for r in tape.roots[:n_out]],
                           dtype=np.float64).reshape(model.output_shape)
        if getattr(model, "second", None) is not None:
            gap = _second_graph(model, point, out_mp, by_sweep, seeds, digits)
            rule_check.check_rules(tape, vals, digits)
            return ExactResult(output, {k: _to_float(g, model.shapes[k]) for k, g in by_sweep.items()},
                               SMALL_ROUTE, gap, may_kink=may_kink, magnitude=magnitude, output_magnitude=out_mag)
        if not model.has_jacobian:
            return ExactResult(output, {k: _to_float(g, model.shapes[k]) for k, g in by_sweep.items()},
                               lowering.ROUTE if getattr(model, "per_op", False)
                               else "reverse sweep over the expression graph", may_kink=may_kink,
                               magnitude=magnitude, output_magnitude=out_mag)
        result = _two_routes(model, vals, by_sweep, v_flat, output, digits)
        result.may_kink, result.magnitude, result.output_magnitude = may_kink, magnitude, out_mag
        return result


def _second_graph(model: CompiledModel, point, out_mp: list, by_sweep: dict, seeds: dict, digits: int) -> float:
    """Sweep the per-element graph too; its output and Jᵀv must match the per-operation graph's."""
    second, n_out = model.second, len(out_mp)
    vals = sweep.forward(second, sweep.leaf_values(second, point))
    if model._active_second is None:
        model._active_second = sweep.active_nodes(second, model.wrt)
    by_root = dict(zip(model.tape.roots[:n_out], range(n_out)))
    seeds2: dict = {}
    for r, w in seeds.items():
        r2 = second.roots[by_root[r]]
        seeds2[r2] = seeds2.get(r2, 0) + w
    grads = _by_input(model, second, sweep.backward(second, vals, seeds2, model._active_second))
    pairs = [(a, sweep.value(vals, r, "output")) for a, r in zip(out_mp, second.roots[:n_out])]
    pairs += [(a, b) for name in model.wrt for a, b in zip(by_sweep[name], grads[name])]
    gap = 0.0
    for a, b in pairs:
        diff = float(abs(a - b))
        gap = max(gap, diff)
        if diff > (1 + float(abs(b))) * 10.0 ** (-digits // 2):
            raise SymbolicError(f"the per-operation and per-element graphs disagree ({a} vs {b})",
                                hint="This is a bug in the symbolic engine; please report the case.")
    return gap


def _output_graph_end(tape: Tape, n_out: int) -> int:
    """One past the last node of the outputs' graph and its derivative nodes (a symbolic Jacobian follows)."""
    last = max(tape.roots[:n_out], default=-1)
    for ds in tape.dargs.values():
        last = max(last, *ds) if ds else last
    return last + 1


def _bound_float(e) -> float:
    return float("inf") if e is None else float(abs(e))


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
            scale = 1 + abs(real_value(b, "gradient"))
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
    return np.array([real_value(g, "gradient") for g in values], dtype=np.float64).reshape(shape)


