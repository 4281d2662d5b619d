"""Finite differences of a sum or mean of an elementwise body, element by element on the body.

For ``g(x) = Σ_o v_o · c · Σ_{i→o} f(x_i)`` (a sum or mean, ``c = 1`` or
``1/N``, of a body ``f`` that is elementwise in every differentiated
input), ``∂g/∂x_i = c · v_{o(i)} · f'(x_i)``: it depends on element ``i``
alone. Perturbing one element of the whole input (what
:func:`~verifier.fd.finite_diff.finite_differences` does for any case)
evaluates the torch forward over every element for every step, 16 passes
over 10⁶ complex elements for 8 sampled elements; and the rounding of
``g``, a sum of 10⁶ terms, swamps the difference of one term. Here the
torch forward of the *body* is differenced instead, on the elements being
differenced only (a 1-d tensor of the sampled elements, or of all of them,
where the body's all-at-once differences apply), with weights ``c · v``
broadcast back over the reduced axes (:meth:`ReducedModel.body_weights`).
Every element's estimate keeps its own error estimate, from the same
methods (complex step with its two steps, or Richardson with its noise
model) applied to the body's terms.

Taken when the exact side is the reduced template (``ReducedModel``), the
torch expression is itself a sum or mean with the same reduction over an
elementwise body (the language decides that, as for the elementwise
differences), and no differentiated input is broadcast in the body. The
torch reduction itself is then not part of the finite differences (it is
linear; its backward is still compared with the exact Jᵀv like every
gradient). Otherwise None: the caller differences the whole function.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..exact import reduced
from ..fd import elementwise as fd_elementwise
from ..fd.finite_diff import NOT_SAMPLED, FDResult, _sample, finite_differences
from ..torch_side.autograd import forward_float64


def body_finite_differences(case, model, point, weights, dtype, *, max_elements=None, seed: int = 0,
                            **options) -> FDResult | None:
    """Finite differences of ``case`` through its reduction's body (module doc); None when they do not apply."""
    if not isinstance(model, reduced.ReducedModel) or not hasattr(case.torch_fn, "tree") \
            or any(spec.structure for spec in case.inputs):
        return None
    red = reduced.split(dataclasses.replace(case, sympy_fn=case.torch_fn))
    if red is None or (red.kind, red.dim, red.keepdim) != (model.red.kind, model.red.dim, model.red.keepdim):
        return None
    if not fd_elementwise._elementwise(red.body):
        return None
    shape = tuple(model.body.output_shape)
    if any(tuple(np.shape(point[name])) != shape for name in model.wrt):
        return None                     # a broadcast input: its elements feed many terms
    body = reduced.body_case(case, red).sympy_fn
    body = dataclasses.replace(body, functions=case.torch_fn.functions)   # the complex step's analytic test
    body_case = dataclasses.replace(case, torch_fn=body, sympy_fn=body)
    n = int(np.prod(shape, dtype=int))
    sel = _sample(n, max_elements, seed)
    try:
        sub = {name: np.broadcast_to(np.asarray(value, dtype=np.float64), shape).reshape(-1)[sel]
               for name, value in point.items()}
    except ValueError:
        return None                     # an input the body does not use, of another shape
    w = np.asarray(model.body_weights(weights), dtype=np.float64).reshape(-1)[sel]
    options = {**options, "elementwise": tuple(model.wrt)}    # the body is elementwise (checked above)
    structural = {spec.name: spec.values() for spec in case.inputs if spec.dtype is not None}
    fd = finite_differences(forward_float64(body_case, structural), sub, tuple(model.wrt), w, dtype, seed=seed,
                            **options)
    for name in model.wrt:
        _spread(fd, name, shape, sel)
    fd.notes.append(f"finite differences of the {red.kind}'s elementwise body, element by element "
                    f"({sel.size} of {n} elements)")
    return fd


def _spread(fd: FDResult, name: str, shape: tuple[int, ...], sel: np.ndarray) -> None:
    """Per-element tables over the differenced elements back to the input's shape (others: not sampled)."""
    size = int(np.prod(shape, dtype=int))

    def full(table, fill, dtype):
        out = np.full(size, fill, dtype=dtype)
        out[sel] = np.asarray(table).reshape(-1)
        return out.reshape(shape)

    fd.values[name] = full(fd.values[name], np.nan, np.float64)
    if fd.error_estimate and name in fd.error_estimate:
        fd.error_estimate[name] = full(fd.error_estimate[name], np.nan, np.float64)
    fd.steps[name] = full(fd.steps[name], np.nan, np.float64)
    fd.methods[name] = full(fd.methods[name], NOT_SAMPLED, object)
    fd.sampled[name] = full(fd.sampled[name], False, bool)
    if sel.size < size:
        fd.single_method.pop(name, None)
