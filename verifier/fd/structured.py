"""Finite differences within an input's structure (symmetric, SPD, triangular).

A structured input (:mod:`verifier.cases.structure`) is differenced in its
parameters θ, not element by element: the forward is wrapped as
θ ↦ f(S(θ)), where S fills the matrix from θ (a symmetric matrix from its
lower triangle, so A_ij and A_ji move together; a triangular one from its own
triangle, the other left 0), and :func:`~verifier.fd.finite_diff.finite_differences`
runs on that. Each ∂g/∂θ_p is then mapped back to the projected gradient
P(G) the other sides are compared in: P(G)_e = (∂g/∂θ_p) / count_p for the
entries e that θ_p fills (its error estimate likewise). Entries a triangular
structure holds at 0 are no parameters: no difference is taken there
(method ``outside structure``, not sampled), and P(G) is 0 on every side.

S is linear, so the complex step and the error estimates carry over as they are.
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
import torch

from ..cases.structure import parameters
from .finite_diff import FDResult, finite_differences

OUTSIDE = "outside structure"


def structured_finite_differences(case, f: Callable[[Mapping[str, torch.Tensor]], torch.Tensor],
                                  point: Mapping[str, np.ndarray], wrt: tuple[str, ...],
                                  weights: np.ndarray | None, dtype: str = "float64", **options) -> FDResult:
    """:func:`finite_differences`, with every structured input of ``case`` differenced in its parameters."""
    structured = {spec.name: spec.structure for spec in case.inputs
                  if spec.structure and spec.name in wrt and np.ndim(point[spec.name]) >= 2}
    if not structured:
        return finite_differences(f, point, wrt, weights, dtype, **options)
    maps = {name: parameters(structure, np.shape(point[name])[-1]) for name, structure in structured.items()}
    theta = dict(point)
    for name, (free, _, _) in maps.items():
        x = np.asarray(point[name], dtype=np.float64)
        theta[name] = x.reshape(x.shape[:-2] + (x.shape[-2] * x.shape[-1],))[..., free]   # no -1: a batch may be empty
    fill = {name: torch.as_tensor(np.where(owner >= 0, owner, free.size), dtype=torch.long)
            for name, (free, owner, _) in maps.items()}
    shapes = {name: np.shape(point[name])[-2:] for name in maps}

    def g(floats: Mapping[str, torch.Tensor]) -> torch.Tensor:
        args = dict(floats)
        for name, index in fill.items():
            t = floats[name]
            padded = torch.cat([t, torch.zeros_like(t[..., :1])], dim=-1)    # index free.size: an entry held at 0
            args[name] = padded[..., index].reshape(t.shape[:-1] + tuple(shapes[name]))
        return f(args)

    options = dict(options)
    options["elementwise"] = tuple(n for n in options.get("elementwise", ()) if n not in structured)
    result = finite_differences(g, theta, wrt, weights, dtype, **options)
    for name, (free, owner, count) in maps.items():
        _unfold(result, name, np.shape(point[name]), owner, count)
        result.notes.append(f"'{name}': finite differences in its {structured[name]} structure's {free.size} "
                            f"parameters per matrix, compared as the projected gradient")
    return result


def _unfold(result: FDResult, name: str, shape: tuple[int, ...], owner: np.ndarray, count: np.ndarray) -> None:
    """Per-parameter tables of ``name`` back to the matrix's shape, as the projected gradient."""
    inside = owner >= 0
    at = np.where(inside, owner, 0)
    per = np.where(inside, 1.0 / count[at], np.nan)

    def spread(table, scale=None, outside=np.nan):
        table = np.asarray(table)
        flat = table[..., at]
        if scale is not None:
            flat = flat * scale
        flat = np.where(inside, flat, outside)
        return flat.reshape(shape)

    result.values[name] = spread(result.values[name], per)
    if result.error_estimate and name in result.error_estimate:
        result.error_estimate[name] = spread(result.error_estimate[name], per)
    result.steps[name] = spread(result.steps[name])
    result.methods[name] = spread(result.methods[name].astype(object), outside=OUTSIDE).astype(object)
    result.sampled[name] = spread(result.sampled[name], outside=False).astype(bool)
    if not inside.all():
        result.single_method.pop(name, None)
