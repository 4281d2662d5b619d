"""The second-order check: double backward's Hessian-vector product against the exact H·w.

For s(x) = Σ v⊙y (the scalar behind ``y.backward(v)``), torch computes
H·w by differentiating its own gradient: ``g = grad(s, x, create_graph=True)``
then ``grad(Σ g⊙w, x)``. That exercises every backward formula's own
derivative (the double-backward formulas, or a custom Function's backward
written in differentiable ops). The exact H·w is the reverse sweep of the
exact directional derivative Σ v⊙(J·w), evaluated at the point in 40 digits:

* on the case's tape (:mod:`verifier.exact.hvp_tape`: the tangent of every
  node appended as tape nodes, then swept backwards; forward over reverse,
  no SymPy per case) for every model with a tape;
* from SymPy's symbolic directional derivative of the per-element graph
  (:func:`symbolic_hvp`, :func:`verifier.exact.tangent.symbolic_tangent`)
  for the others (elementwise templates, reductions of them), and as the
  second route the tests compare the tape route with.

The check runs for cases up to ``SECOND_ORDER_LIMIT`` Jacobian entries and
is skipped (and says so) above it.
"""

from __future__ import annotations

import weakref
from typing import Mapping

import mpmath
import numpy as np
import sympy as sp
import torch

from ..cases.case import Case, Tolerance
from ..cases.structure import project_all
from ..errors import CaseError
from ..exact import bounds, hvp_tape, sweep
from ..exact.cache import cached_arrays
from ..exact.compiled import CompiledModel, compile_model
from ..exact.evaluation import PRECISION_DIGITS, real_value
from ..exact.symbolic import SymbolicModel
from ..exact.tangent import symbolic_tangent
from ..exact.tape import compile_tape, symbol_leaves
from .autograd import make_leaves, torch_callable
from .device import Device
from .forward_mode import FORWARD_SEED, DirectionalResult, compare, directions, kink_skip

#: Cases with more Jacobian entries (outputs × differentiated input elements) skip the check.
SECOND_ORDER_LIMIT = 65536

# leaf names of the direction's elements on the H·w tape, and the keys of the rounding bounds
_DIRECTION, _BOUND = hvp_tape.DIRECTION, hvp_tape.BOUND

# model id -> (weak reference to the model, direction symbols, symbolic tangent of each output)
_TANGENTS: dict[int, tuple] = {}


def _tangent(model) -> tuple[dict[str, np.ndarray], list]:
    """Direction symbols per input and the outputs' directional derivatives along them (cached per model)."""
    hit = _TANGENTS.get(id(model))
    if hit is not None and hit[0]() is model:
        return hit[1], hit[2]
    dirs = {name: np.array([sp.Dummy(f"w_{name}_{i}", real=True) for i in range(model.symbols[name].size)],
                           dtype=object).reshape(model.symbols[name].shape) for name in model.wrt}
    mapping = {s: d for name in model.wrt for s, d in zip(model.symbols[name].ravel(), dirs[name].ravel())}
    tangents = symbolic_tangent(model.output.ravel().tolist(), mapping)
    ref = weakref.ref(model, lambda _, key=id(model): _TANGENTS.pop(key, None))
    _TANGENTS[id(model)] = (ref, dirs, tangents)
    return dirs, tangents


def exact_hvp(model, point: Mapping[str, np.ndarray], weights: np.ndarray | None,
              direction: Mapping[str, np.ndarray], *, digits: int = PRECISION_DIGITS) -> dict[str, np.ndarray]:
    """The exact Hessian of Σ v⊙y times ``direction`` per differentiated input, and its rounding bounds.

    Keys: each input's H·w, and ``"M:" + name`` its rounding bound (the
    allowance's M, :mod:`verifier.exact.magnitude`). On the model's tape when
    it has one (:mod:`verifier.exact.hvp_tape`), else :func:`symbolic_hvp`.
    """
    if isinstance(model, SymbolicModel):
        if model._compiled is None:
            model._compiled = compile_model(model)
        tape, shape = model._compiled.tape, model.output.shape
        shapes = {name: arr.shape for name, arr in model.symbols.items()}
    elif isinstance(model, CompiledModel):
        tape, shape, shapes = model.tape, model.output_shape, model.shapes
    else:
        return symbolic_hvp(model, point, weights, direction, digits=digits)
    v = np.ones(shape) if weights is None else np.broadcast_to(weights, shape)
    return hvp_tape.exact_hvp(tape, shapes, model.wrt, point, np.asarray(v, dtype=np.float64).ravel().tolist(),
                              direction, digits)


def symbolic_hvp(model, point: Mapping[str, np.ndarray], weights: np.ndarray | None,
                 direction: Mapping[str, np.ndarray], *, digits: int = PRECISION_DIGITS) -> dict[str, np.ndarray]:
    """:func:`exact_hvp` by SymPy: Σ v⊙(J·w) built as SymPy's directional derivative of the per-element graph.

    That expression is compiled to a tape whose leaves are the inputs'
    elements and the direction's, and swept backwards like the gradient.
    Builds the per-element SymPy model (slow for large cases): the route for
    models without a tape, and the tests' second route.
    """
    dirs, tangents = _tangent(model)
    v = np.ones(model.output.shape) if weights is None else np.broadcast_to(weights, model.output.shape)
    v_exact = [sp.Rational(float(w)) for w in np.asarray(v, dtype=np.float64).ravel()]
    scalar = sp.Add(*[w * t for w, t in zip(v_exact, tangents) if w != 0])
    out = {name: np.zeros(model.symbols[name].shape) for name in model.wrt}
    out.update({_BOUND + name: np.zeros(model.symbols[name].shape) for name in model.wrt})
    if not isinstance(scalar, sp.Basic) or scalar.is_Number:
        return out                                           # H·w is 0 structurally
    leaves = symbol_leaves({**model.symbols, **{_DIRECTION + name: dirs[name] for name in model.wrt}})
    tape = compile_tape([scalar], leaves)
    at = {**{name: point[name] for name in model.symbols},
          **{_DIRECTION + name: np.asarray(direction[name], dtype=np.float64) for name in model.wrt}}
    with mpmath.workdps(digits):
        vals = sweep.forward(tape, sweep.leaf_values(tape, at))
        sweep.value(vals, tape.roots[0], "directional derivative")
        active = sweep.active_nodes(tape, model.wrt)
        seeds = {tape.roots[0]: mpmath.mpf(1)}
        grads = sweep.backward(tape, vals, seeds, active)
        _, leaf_bounds = bounds.gradient_bounds(tape, vals, seeds, active)
        for (name, k), g, b in zip(tape.leaves, grads, leaf_bounds):
            if name in model.wrt:
                out[name].flat[k] = real_value(g, "H·w")
                out[_BOUND + name].flat[k] = float("inf") if b is None else float(abs(b))
    return out


def torch_hvp(case: Case, values: Mapping[str, np.ndarray], weights: np.ndarray | None, dtype: str,
              direction: Mapping[str, np.ndarray], device: Device | None = None) -> dict[str, np.ndarray]:
    """torch's H·w by double backward (``create_graph=True``, on ``device``), per differentiated input, as float64."""
    fn = torch_callable(case)
    tensors = make_leaves(case, values, dtype, device)
    wrt = [(spec.name, t) for spec, t in zip(case.inputs, tensors) if spec.differentiated]
    y = fn(*tensors)
    s = y.sum() if weights is None else (y * torch.as_tensor(weights, dtype=y.dtype, device=y.device)).sum()
    grads = torch.autograd.grad(s, [t for _, t in wrt], create_graph=True, allow_unused=True)
    terms = [(g * torch.as_tensor(direction[name], dtype=g.dtype, device=g.device)).sum()
             for (name, _), g in zip(wrt, grads) if g is not None and g.requires_grad]
    zeros = {name: np.zeros(tuple(t.shape)) for name, t in wrt}
    if not terms:                               # the gradient is constant: H = 0
        return zeros
    second = torch.autograd.grad(sum(terms), [t for _, t in wrt], allow_unused=True)
    # force=True: torch may hand back a ZeroTensor (abs has second derivative 0), which numpy() refuses
    return {name: zeros[name] if h is None else h.detach().cpu().to(torch.float64).numpy(force=True).copy()
            for (name, _), h in zip(wrt, second)}


def check_second_order(case: Case, model, values: Mapping[str, np.ndarray], point: Mapping[str, np.ndarray],
                       weights: np.ndarray | None, dtype: str, tol: Tolerance, *,
                       seed: int = FORWARD_SEED + 1, limit: int = SECOND_ORDER_LIMIT,
                       cache=None, kink: str | None = None, device: Device | None = None) -> DirectionalResult:
    """Double backward's H·w (on ``device``) against the exact H·w, for one case at one dtype (skipped above ``limit``).

    ``cache`` (a :class:`verifier.exact.cache.Cache`) keeps the exact H·w at the
    point and direction, as it keeps exact Jᵀv; torch's side always runs.
    ``kink``: what :func:`~verifier.torch_side.forward_mode.kink_at` said, when known.
    """
    if model.n_entries > limit:
        return DirectionalResult("second_order", "skip",
                                 f"{model.n_entries} Jacobian entries, over the second-order limit of {limit}")
    why = "second derivatives there are a convention, not an exact value"
    if skip := kink_skip("second_order", "H·w", why, model, point, cache, kink):
        return skip
    w = directions(case, dtype, seed)
    try:
        got = torch_hvp(case, {**values, **point}, weights, dtype, w, device)
    except Exception as exc:   # no double-backward formula: a missing feature, reported as a skip
        return DirectionalResult("second_order", "skip",
                                 f"torch cannot differentiate twice here: {type(exc).__name__}: {str(exc)[:200]}")
    try:
        ex = cached_arrays(cache, model, point, weights, "hvp-m", lambda: exact_hvp(model, point, weights, w), extra=w)
    except CaseError as exc:
        return DirectionalResult("second_order", "skip", f"no exact H·w: {exc.message}")
    values = {k: v for k, v in ex.items() if not k.startswith(_BOUND)}
    bounds = {k[len(_BOUND):]: v for k, v in ex.items() if k.startswith(_BOUND)}
    # H·w is a gradient: a structured input's is compared projected onto its structure, as the gradient is
    # (the projection of a bound on |H·w| is a bound on the projected H·w: averages and masks of it)
    return compare("second_order", "H·w (double backward)", project_all(case, got), project_all(case, values), tol,
                   w, project_all(case, bounds), accept_non_finite="non_finite" in case.accept)
