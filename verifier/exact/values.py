"""Exact values and kink reports at a point, through the cache.

The tape cache (:mod:`verifier.exact.cache`) keys compiled graphs; this
module also keeps what a tape gives at one point (the 40-digit Jᵀv, the
kink report), keyed by the tape's key plus the point's and weights' bytes.
"""

from __future__ import annotations

import numpy as np

from . import kinks
from .cache import Cache, _values_key
from .compiled import exact
from .symbolic import ExactResult


def cached_exact(cache: Cache | None, model, point, weights):
    """``compiled.exact(model, point, weights)``, from the cache when this exact question was answered before.

    The key is the tape's key plus the bytes of every float input at the point
    (as the dtype rounded it) and of the weights, so a hit is the same
    computation on the same numbers: a re-run of an unchanged suite skips
    the 40-digit evaluation too. Templates (10⁶ values) are never stored.
    """
    key = _values_key(cache, model, point, weights, "values")
    if key is None:
        return exact(model, point, weights)
    data = cache.load(key)
    if data is not None:
        try:
            shapes = data["shapes"]
            return ExactResult(np.array(data["output"], dtype=np.float64).reshape(data["output_shape"]),
                               {k: np.array(v, dtype=np.float64).reshape(shapes[k]) for k, v in data["vjp"].items()},
                               str(data["route"]), data["route_gap"], bool(data["may_kink"]),
                               # entries from before the rounding bounds lack these keys: a miss, never a looser check
                               {k: _bound(data["magnitude"][k], shapes[k]) for k in data["vjp"]},
                               _bound(data["output_magnitude"], data["output_shape"]))
        except (KeyError, TypeError, ValueError, AttributeError):
            cache.malformed(key)         # malformed or old: compute again
    result = exact(model, point, weights)
    cache.store(key, {"output": result.output.ravel().tolist(), "output_shape": list(result.output.shape),
                      "vjp": {k: v.ravel().tolist() for k, v in result.vjp.items()},
                      "shapes": {k: list(v.shape) for k, v in result.vjp.items()},
                      "route": result.route, "route_gap": result.route_gap, "may_kink": result.may_kink,
                      "magnitude": {k: v.ravel().tolist() for k, v in (result.magnitude or {}).items()},
                      "output_magnitude": (None if result.output_magnitude is None
                                           else result.output_magnitude.ravel().tolist())})
    return result


def _bound(values, shape) -> np.ndarray:
    """A stored rounding bound; it must be there, numbers, ≥ 0 (a negative or missing one is refused: a miss)."""
    arr = np.array(values, dtype=np.float64).reshape(shape)
    if not (arr >= 0).all():          # nan, negative: never trust an entry that could shrink or void the allowance
        raise ValueError("malformed rounding bound")
    return arr


def cached_kinks(cache: Cache | None, model, point, weights, may_kink: bool):
    """``kinks.detect(model, point, weights)`` when ``may_kink`` (else an empty report), cached like values.

    The detector walks the SymPy graph, so on a cached tape it would build
    SymPy again in every run; its report at a point is as deterministic as
    the exact values there.
    """
    if not may_kink:
        return kinks.KinkReport()
    key = _values_key(cache, model, point, weights, "kinks/coupled")     # entries carry ``coupled`` (e[6])
    data = cache.load(key) if key else None
    if data is not None:
        try:
            return kinks.KinkReport(
                [str(c) for c in data["candidates"]],
                [kinks.ElementKink(str(e[0]), tuple(int(i) for i in e[1]), float(e[2]), float(e[3]),
                                   float(e[4]), tuple(str(t) for t in e[5]), tuple(str(t) for t in e[6]))
                 for e in data["elements"]])
        except (KeyError, TypeError, ValueError, IndexError, AttributeError):
            cache.malformed(key)
    report = kinks.detect(model, point, weights)
    if key:
        cache.store(key, {"candidates": report.candidates,
                          "elements": [[e.input, list(e.index), e.left, e.right, e.curvature_jump,
                                        list(e.sources), list(e.coupled)] for e in report.elements]})
    return report
