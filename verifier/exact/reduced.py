"""Sums and means of an elementwise body: the template route under a reduction.

``(3*(x+2)**2).mean()``, ``(w * torch.tanh(x)).sum(dim=1)``: the output is
``c · Σ_{i∈R} f(x_i)`` over the reduced axes ``R`` of an elementwise body
``f`` (``c = 1`` for sum, ``1/N`` for mean). Its Jᵀv is elementwise again:
``∂/∂x_i (Σ_o v_o y_o) = c · v_{o(i)} · f'(x_i)``, where ``o(i)`` is the
output element ``i`` is reduced into. So the body is one scalar template
(:mod:`verifier.exact.formulas`) evaluated with weights ``c · v`` broadcast
back over the reduced axes: the template's two routes (its reverse sweep
and SymPy's ``∂f/∂x``) must agree for every element, and sixteen elements
are re-evaluated in 40 digits, exactly as for an elementwise case. No
per-element SymPy expression is built.

The output is the sum of the body's float64 values: ``math.fsum`` (the
exactly rounded sum of those values) for a full reduction, numpy's pairwise
sum in extended precision for reductions over some axes; then one division
by ``N`` for a mean. ``c · v`` is rounded to float64 once (relative error
2⁻⁵³, far under the float64 comparison tolerance).
"""

from __future__ import annotations

import ast
import dataclasses
import math

import numpy as np

from ..cases.case import Case
from ..cases.language import MODULE_PREFIXES, Expression, dotted
from ..errors import CaseError
from . import formulas, mirror
from .symbolic import ExactResult, OnDemandModel

REDUCTIONS = ("sum", "mean")


@dataclasses.dataclass(frozen=True)
class Reduction:
    """The root call: which reduction, over which axes of the body, and the body's expression."""

    kind: str                               # "sum" or "mean"
    dim: tuple[int, ...] | None             # None: every axis
    keepdim: bool
    body: ast.AST


def split(case: Case) -> Reduction | None:
    """The case's root reduction over an elementwise body, or None when the expression is not one."""
    fn = case.sympy_fn
    if not hasattr(fn, "tree"):
        return None
    floating = {spec.name for spec in case.inputs if spec.dtype is None}
    if not fn.variables <= floating:
        return None
    node = fn.tree.body
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
    try:
        kind = mirror.resolve(name).name if name else None
    except CaseError:
        return None
    if kind not in REDUCTIONS:
        return None
    args = list(node.args)
    if isinstance(func, ast.Attribute) and dotted(func.value) not in MODULE_PREFIXES:
        args.insert(0, func.value)
    if not args or len(args) > 3:
        return None
    body, rest = args[0], args[1:]
    options = dict(zip(("dim", "keepdim"), rest))
    for kw in node.keywords:
        if kw.arg not in ("dim", "keepdim") or kw.arg in options:
            return None                       # dtype=..., out=...: leave them to the full model
        options[kw.arg] = kw.value
    try:
        dim = ast.literal_eval(options["dim"]) if "dim" in options else None
        keepdim = ast.literal_eval(options["keepdim"]) if "keepdim" in options else False
    except ValueError:
        return None
    if isinstance(dim, int) and not isinstance(dim, bool):
        dim = (dim,)
    if dim == ():
        dim = None
    ok_dim = dim is None or (isinstance(dim, (tuple, list)) and all(type(d) is int for d in dim))
    if not ok_dim or not isinstance(keepdim, bool) or not formulas._elementwise(body):
        return None
    return Reduction(kind, None if dim is None else tuple(dim), keepdim, body)


def body_case(case: Case, red: Reduction) -> Case:
    """The case with its expression replaced by the reduction's elementwise body."""
    names = {n.id for n in ast.walk(red.body) if isinstance(n, ast.Name)} & set(case.sympy_fn.variables)
    body = Expression(ast.unparse(red.body), ast.Expression(body=red.body), frozenset(names), frozenset())
    return dataclasses.replace(case, sympy_fn=body)


def wants_reduced(case: Case, min_entries: int) -> bool:
    """True for a sum/mean of an elementwise body whose Jacobian has at least ``min_entries`` entries."""
    red = split(case)
    if red is None:
        return False
    shapes = [tuple(formulas._shape(s)) for s in case.inputs if s.name in case.sympy_fn.variables]
    try:
        body_shape = tuple(np.broadcast_shapes(*shapes)) if shapes else ()
        axes = _axes(red.dim, len(body_shape))
    except ValueError:
        return False                          # bad shapes or dims: the full model reports them
    out = math.prod(n for k, n in enumerate(body_shape) if k not in axes)
    entries = out * sum(math.prod(formulas._shape(s)) for s in case.inputs if s.differentiated)
    return entries >= min_entries


def _axes(dim, ndim: int) -> tuple[int, ...]:
    if dim is None:
        return tuple(range(ndim))
    axes = []
    for d in dim:
        if not -max(ndim, 1) <= d < max(ndim, 1):
            raise ValueError(f"dim {d} out of range")
        axes.append(d % max(ndim, 1))
    if len(set(axes)) != len(axes):
        raise ValueError("repeated dim")
    return tuple(sorted(a for a in axes if a < ndim))


class ReducedModel(OnDemandModel):
    """A sum or mean of an elementwise template (see the module doc)."""

    kind = "reduced-template"

    def __init__(self, case: Case, red: Reduction, body: formulas.TemplateModel) -> None:
        self.case, self.red, self.body = case, red, body
        self.shapes, self.wrt, self.structural = body.shapes, body.wrt, {}
        self.axes = _axes(red.dim, len(body.output_shape))
        self.count = math.prod(body.output_shape[a] for a in self.axes)
        self.output_shape = tuple((1 if k in self.axes else n) for k, n in enumerate(body.output_shape)
                                  if red.keepdim or k not in self.axes)

    @property
    def n_entries(self) -> int:
        return math.prod(self.output_shape) * sum(math.prod(self.shapes[n]) for n in self.wrt)

    def body_weights(self, weights) -> np.ndarray:
        """``c · v`` broadcast back over the reduced axes, shaped like the body."""
        v = np.ones(self.output_shape) if weights is None else np.broadcast_to(
            np.asarray(weights, dtype=np.float64), self.output_shape)
        if not self.red.keepdim:
            v = np.expand_dims(v, self.axes)
        v = np.broadcast_to(v, self.body.output_shape)
        return v / self.count if self.red.kind == "mean" else v

    def reduce(self, values: np.ndarray, *, bound: bool = False) -> np.ndarray:
        """``c · Σ`` over the reduced axes of body values (float64 in, float64 out).

        ``bound``: the values are non-negative error bounds; an extended-precision pairwise sum
        (relative error under log₂N·2⁻⁶⁴) scaled up by 2⁻⁵⁰ is an upper bound of their sum, and
        costs a fraction of ``math.fsum`` over 10⁶ Python floats."""
        if bound:
            total = np.sum(values.astype(np.longdouble), axis=self.axes, keepdims=self.red.keepdim)
            total = total * (1 + np.longdouble(2.0) ** -50) / (self.count if self.red.kind == "mean" else 1)
            return np.asarray(total, dtype=np.float64).reshape(self.output_shape)
        if len(self.axes) == values.ndim:
            total = np.array(math.fsum(values.ravel().tolist()))
            total = total.reshape(self.output_shape)
        else:
            total = np.sum(values.astype(np.longdouble), axis=self.axes, keepdims=self.red.keepdim)
        if self.red.kind == "mean":
            total = total / self.count
        return np.asarray(total, dtype=np.float64).reshape(self.output_shape)

    def exact(self, point, weights) -> ExactResult:
        body = formulas.exact(self.body, point, self.body_weights(weights))
        route = body.route.replace("elementwise template over",
                                   f"elementwise template under {self.red.kind} over", 1)
        output = self.reduce(body.output)
        return ExactResult(output, body.vjp, route, body.route_gap, body.may_kink, *self._bounds(body, output))

    def _bounds(self, body: ExactResult, output: np.ndarray):
        """Rounding-error bounds (in units of the dtype's rounding unit, see exact/magnitude.py).

        Jᵀv is the body's elementwise gradient times c·v: the body's bound, plus one rounding for a mean's
        division by N. The output sums the body's values: their bounds plus ⌈log₂ N⌉ roundings of each term
        (pairwise summation), plus one for the mean's division.
        """
        if body.magnitude is None or body.output_magnitude is None:
            return None, None          # no bound from the body: the runner falls back to |exact|
        mean = self.red.kind == "mean"
        vjp = {k: m + np.abs(body.vjp[k]) if mean else m for k, m in body.magnitude.items()}
        terms = np.abs(body.output_magnitude) + math.ceil(math.log2(max(self.count, 1))) * np.abs(body.output)
        out = self.reduce(terms, bound=True) + (np.abs(output) if mean else 0)
        return vjp, out

    def exact_jvp(self, point, direction, **_) -> np.ndarray:
        """J·u: the body's J·u (elementwise), reduced like the output."""
        return self.reduce(self.body.exact_jvp(point, direction))

    def kink_text(self, point, **_) -> str:
        """'' when no body element is near a kink; otherwise the detector's description (of the body)."""
        return self.body.kink_text(point)


def build_reduced(case: Case) -> ReducedModel:
    """The reduction's model: the body's template plus the reduction."""
    red = split(case)
    if red is None:
        raise ValueError(f"case '{case.name}' is not a sum or mean of an elementwise body")
    return ReducedModel(case, red, formulas.build_template(body_case(case, red)))
