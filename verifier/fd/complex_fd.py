"""Finite differences of a complex case: the real and imaginary part of each element perturbed separately.

The realified loss ``L(p) = Σ_j Re(conj(v_j)·f(p)_j)`` is a real function of
the real parameters ``p`` (Re and Im of each complex element, each real
element). Its partial derivatives are central differences with one
Richardson step, computed in complex128/float64:

    D(h) = (L(p + h·e) − L(p − h·e)) / 2h,   R = (4·D(h/2) − D(h)) / 3,

with ``h = 2⁻¹⁰·max(1, |p_k|)`` (the O(h⁴) truncation and the
``eps/h`` rounding balance near there) and the error estimate
``|R − D(h/2)|`` plus the rounding error ``4·eps·(S₊ + S₋)/2h`` of the
difference quotients, ``S`` the sum of the terms' moduli |v_j·y_j| (the
factor 4 covers the forward's own rounding of each term); the estimates of
the two parts of a complex element add. The complex step is not used: it needs an analytic
function of real inputs, and Re/Im/conj are not analytic. A complex input's
estimate is ``∂L/∂x + i·∂L/∂y``, torch's convention (docs/complex.md).
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
import torch

from .finite_diff import FDResult

METHOD = "central+richardson (Re, Im separately)"
EPS = float(np.finfo(np.float64).eps)


def complex_finite_differences(f: Callable[[Mapping[str, np.ndarray]], torch.Tensor],
                               point: Mapping[str, np.ndarray], wrt: tuple[str, ...], complex_inputs: set[str],
                               weights: np.ndarray | None) -> FDResult:
    base = {n: np.array(v, dtype=np.complex128 if n in complex_inputs else np.float64) for n, v in point.items()}

    def loss(values) -> tuple[float, float]:
        """L and Σ|terms of L| (the scale of its rounding error)."""
        y = f(values).resolve_conj().resolve_neg().to(torch.complex128).numpy()
        v = np.ones(y.shape) if weights is None else np.asarray(weights)
        terms = np.real(np.conj(v) * y)
        return float(np.sum(terms)), float(np.sum(np.abs(np.conj(v) * y)))

    values, steps, estimates, evaluations = {}, {}, {}, 0
    for name in wrt:
        x = base[name]
        g = np.zeros(x.shape, dtype=x.dtype)
        step, est = np.zeros(x.shape), np.zeros(x.shape)
        for idx in np.ndindex(*x.shape):
            parts = (1.0, 1j) if name in complex_inputs else (1.0,)
            for unit in parts:
                p = x[idx] * np.conj(unit)
                h = 2.0 ** -10 * max(1.0, abs(np.real(p)))

                def central(step_size, unit=unit, idx=idx):
                    hi, lo = dict(base), dict(base)
                    hi[name], lo[name] = x.copy(), x.copy()
                    hi[name][idx] += step_size * unit
                    lo[name][idx] -= step_size * unit
                    (up, up_scale), (down, down_scale) = loss(hi), loss(lo)
                    # the difference quotient and its rounding error: 4·eps·(Σ|terms|₊ + Σ|terms|₋) / 2h
                    return (up - down) / (2 * step_size), 4 * EPS * (up_scale + down_scale) / (2 * step_size)

                (d1, round1), (d2, round2) = central(h), central(h / 2)
                r = (4 * d2 - d1) / 3
                evaluations += 4
                g[idx] += r * unit if name in complex_inputs else r
                # truncation (the Richardson gap) plus rounding, of each part; the parts' errors add up
                est[idx] += abs(r - d2) + (4 * round2 + round1) / 3
                step[idx] = h
        values[name], steps[name], estimates[name] = g, step, est
    return FDResult(values, METHOD, steps, error_estimate=estimates,
                    sampled={n: np.ones(np.shape(v), dtype=bool) for n, v in values.items()},
                    single_method={n: METHOD for n in values}, evaluations=evaluations, calls=evaluations,
                    used={METHOD})
