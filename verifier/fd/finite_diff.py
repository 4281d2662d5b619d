"""Finite-difference estimates of Jᵀv, each with its own error estimate, behind one function.

The estimate differentiates the scalar g(x) = Σ v⊙f(x) along each input
element, always in float64 (complex128 for the complex step) whatever the
case's dtype: the finite difference is an independent witness of the
*mathematics*, and float64 keeps its rounding small.

Two methods, chosen per case and recorded per element (``FDResult.methods``):

* **complex step** — Im g(x + i·h·e_j) / h with h ≈ 1e-20·max(1, |x_j|). No
  difference is taken, so nothing cancels and the truncation error (h²) is
  far below float64's resolution: the value is good to a few ulps. It needs
  g to be analytic and torch to run it on complex numbers, so it is used
  only when the caller says so (:func:`fd_options`: every function the case
  calls is marked analytic in the mirror) *and* a probe along a random
  direction agrees with Richardson differences. Its error estimate comes
  from a second evaluation with a step 3/4 as large: the rounding of the
  two differs, and their gap shows it.
* **Richardson-extrapolated differences** (:mod:`verifier.fd.richardson`) —
  central differences at four halving steps, extrapolated, the candidate
  with the smallest error estimate kept; near a declared domain bound the
  stencil is shrunk (bounded central) or turned away from the bound
  (one-sided), whichever estimates better.

Perturbed points are evaluated in batches (:mod:`verifier.fd.batch`).
``max_elements`` samples that many elements per input (seeded); the others
get NaN and the method ``not sampled``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np
import torch

from ..exact import mirror
from . import elementwise as fd_elementwise
from .batch import Objective
from .richardson import (
    BASE_STEP,
    COMPLEX,
    DOMAIN_FRACTION,
    EPS64,
    FAILED,
    LEVELS,
    METHODS,
    NOISE_ULPS,
    estimate,
    extrapolate,
)

#: The complex step relative to max(1, |x_j|): tiny, since nothing cancels.
COMPLEX_STEP = 2.0 ** -66          # ≈ 1.4e-20
#: The second complex step, as a fraction of the first (not a power of two, so the rounding differs).
COMPLEX_STEP_SECOND = 0.75
#: The complex-step estimate never claims better than this many ulps of the value (and of the
#: input's largest value: rounding follows the size of the terms a derivative is made of).
COMPLEX_STEP_ULPS = 4.0
#: The complex-step probe must agree with Richardson to this relative size (an analytic forward
#: agrees to ~1e-12; torch's complex implementation of a non-holomorphic op is off by O(1)).
PROBE_RTOL = 1e-7

NOT_SAMPLED = "not sampled"

#: Inputs with more elements than this take all-at-once differences when the case is elementwise in them
#: (below it, one element at a time is cheap and needs no structural claim).
ELEMENTWISE_MIN = 256


@dataclass
class FDResult:
    """Estimates of Jᵀv per input, with the method, step and error estimate of each element."""

    values: dict[str, np.ndarray]
    method: str                                   # the methods used, joined by '+'
    steps: dict[str, np.ndarray]
    error_estimate: dict[str, np.ndarray] | None = None
    methods: dict[str, np.ndarray] = field(default_factory=dict)   # per element (object arrays)
    sampled: dict[str, np.ndarray] = field(default_factory=dict)   # per element: FD computed here
    notes: list[str] = field(default_factory=list)                 # fallbacks and sampling, in words
    evaluations: int = 0                          # points at which g was evaluated
    calls: int = 0                                # torch forward calls (a batch counts once)
    used: set[str] = field(default_factory=set, repr=False)       # the methods some element used
    single_method: dict[str, str] = field(default_factory=dict)    # input -> its one method, when it has one


def fd_options(case) -> dict:
    """The keyword options :func:`finite_differences` takes from a case: domains and the complex step."""
    domains = {spec.name: spec.domain for spec in case.inputs if spec.domain is not None}
    allowed, why = complex_step_allowed(case)
    return {"domains": domains, "complex_step": allowed, "complex_step_reason": why,
            "elementwise": fd_elementwise.elementwise_inputs(case)}


def complex_step_allowed(case) -> tuple[bool, str]:
    """Whether the case's torch side is analytic by the mirror table, and if not, why."""
    used = getattr(case.torch_fn, "functions", None)
    if used is None:
        return False, "the torch side is a Python callable, not a case expression"
    for name in sorted(used):
        if name in case.functions:
            return False, f"'{name}' is a custom function"
        try:
            entry = mirror.resolve(name)
        except Exception:
            return False, f"'{name}' has no mirror entry"
        if not entry.analytic:
            return False, f"'{entry.canonical}' is not marked analytic"
    return True, ""


def finite_differences(f: Callable[[Mapping[str, torch.Tensor]], torch.Tensor],
                       point: Mapping[str, np.ndarray], wrt: tuple[str, ...],
                       weights: np.ndarray | None, dtype: str = "float64", *,
                       domains: Mapping[str, tuple[float, float] | None] | None = None,
                       complex_step: bool = False, complex_step_reason: str = "",
                       elementwise: tuple[str, ...] = (), max_elements: int | None = None, seed: int = 0,
                       batch: bool = True, probe_memo: dict | None = None) -> FDResult:
    """Jᵀv of ``f`` at ``point`` (float64 arrays by name) along each element of the inputs ``wrt``.

    ``f`` maps floating input tensors by name to the output. ``dtype`` is
    the case's dtype (differences always run in float64). ``domains`` gives
    open intervals the stencils must stay inside. ``complex_step`` says the
    caller vouches that ``f`` is analytic (it is still probed).
    ``elementwise`` names inputs in which ``f`` is elementwise: large ones
    are perturbed all at once (:mod:`verifier.fd.elementwise`, confirmed
    on a few elements). ``max_elements`` caps the elements per input
    otherwise (a seeded sample). ``probe_memo``, a dict the caller keeps per
    function (the runner: per case), holds the complex-step probe's verdict:
    the first call probes and stores it, later calls (the same case at its
    other dtypes, whose points differ only by rounding) reuse it. Whether
    torch's complex forward is holomorphic is a property of the function, and
    every complex-step value still carries its own two-step error estimate.
    """
    del dtype   # every dtype differentiates in float64; kept for the interface
    domains = domains or {}
    # copies: the torch forward must never write into the point the exact side reads
    base = {k: torch.tensor(np.asarray(v, dtype=np.float64)) for k, v in point.items()}
    w = None if weights is None else torch.as_tensor(np.asarray(weights, dtype=np.float64))
    result = FDResult({}, "", {}, {})
    try:
        real = Objective(f, base, w, batch=batch)
    except Exception as exc:   # the float64 forward fails at the point itself: no FD, said so
        result.notes.append(f"finite differences failed: the float64 forward raised {type(exc).__name__}: {exc}")
        for name in wrt:
            n = int(base[name].numel())
            _store(result, name, tuple(base[name].shape), np.arange(n), *np.full((3, n), np.nan),
                   np.full(n, FAILED, dtype=np.int8))
        result.method = "failed"
        return result
    chosen = {name: _sample(int(base[name].numel()), max_elements, seed) for name in wrt}
    cobj = None
    if complex_step:
        cobj, why = _memo_probe(probe_memo, f, base, w, real, wrt, domains, seed)
        if cobj is None:
            result.notes.append(f"complex step not used: {why}")
    elif complex_step_reason:
        result.notes.append(f"complex step not used: {complex_step_reason}")
    for name in wrt:
        shape = tuple(base[name].shape)
        sel = chosen[name]
        x = base[name].reshape(-1).numpy()
        if name in elementwise and shape == real.out_shape and x.size > ELEMENTWISE_MIN:
            found = _all_at_once(real, cobj, name, x, domains.get(name), seed, result.notes)
            if found is not None:
                _store(result, name, shape, np.arange(x.size), *found)
                continue
        try:
            if cobj is not None:
                val, err, step, labels = _complex(cobj, name, x, sel)
            else:
                val, err, step, labels = _richardson(real, name, x, sel, domains.get(name))
        except Exception as exc:   # a forward that fails at a perturbed point: reported, not raised
            result.notes.append(f"finite differences failed for '{name}': {type(exc).__name__}: {exc}")
            val = err = step = np.full(len(sel), np.nan)
            labels = np.full(len(sel), FAILED, dtype=np.int8)
        _store(result, name, shape, sel, val, err, step, labels)
        if len(sel) < int(np.prod(shape, dtype=int)):
            result.notes.append(f"'{name}': finite differences on {len(sel)} of {int(np.prod(shape, dtype=int))} "
                                f"elements (max_elements={max_elements}, seed {seed})")
    for obj in (real, cobj):
        if obj is not None:
            result.evaluations += obj.points
            result.calls += obj.calls
            if obj.fallback and obj.fallback != "batching switched off":
                result.notes.append(f"batched evaluation fell back to {obj.fallback}")
    result.method = "+".join(sorted(result.used)) or "none"
    return result


def _all_at_once(real: Objective, cobj: Objective | None, name: str, x: np.ndarray, domain, seed: int,
                 notes: list[str]):
    """All-at-once estimates for every element, confirmed one at a time on a few; None if they disagree."""
    try:
        if cobj is not None:
            found = fd_elementwise.complex_step(cobj, name, x, COMPLEX_STEP, COMPLEX_STEP_SECOND, COMPLEX_STEP_ULPS)
        else:
            found = fd_elementwise.richardson(real, name, x, domain)
        check = _sample(x.size, fd_elementwise.CONFIRM_ELEMENTS, seed)
        reference = _complex(cobj, name, x, check) if cobj is not None else _richardson(real, name, x, check,
                                                                                         domain)
    except Exception as exc:
        notes.append(f"'{name}': all-at-once differences failed ({type(exc).__name__}: {exc}); one at a time")
        return None
    why = fd_elementwise.confirm(found, reference, check)
    if why:
        notes.append(f"'{name}': all-at-once differences disagreed with one at a time at {why}; one at a time")
        return None
    notes.append(f"'{name}': all {x.size} elements perturbed at once (elementwise), confirmed one at a time on "
                 f"{len(check)}")
    return found


def _sample(numel: int, max_elements: int | None, seed: int) -> np.ndarray:
    if max_elements is None or numel <= max_elements:
        return np.arange(numel)
    return np.sort(np.random.default_rng(seed).choice(numel, size=max(0, int(max_elements)), replace=False))


_NAMES = np.array((NOT_SAMPLED, *METHODS), dtype=object)   # method code + 1 -> name; 0: not sampled


def _store(result: FDResult, name, shape, sel, val, err, step, codes) -> None:
    size = int(np.prod(shape, dtype=int))
    full = {key: np.full(size, np.nan) for key in ("v", "e", "s")}
    index = np.zeros(size, dtype=np.int8)
    sampled = np.zeros(size, dtype=bool)
    full["v"][sel], full["e"][sel], full["s"][sel], index[sel], sampled[sel] = val, err, step, codes + 1, True
    methods = _NAMES[index]
    codes_used = np.unique(index)
    result.used.update(_NAMES[code] for code in codes_used if code > 0)
    if len(codes_used) == 1:
        result.single_method[name] = _NAMES[codes_used[0]]
    result.values[name] = full["v"].reshape(shape)
    result.error_estimate[name] = full["e"].reshape(shape)
    result.steps[name] = full["s"].reshape(shape)
    result.methods[name] = methods.reshape(shape)
    result.sampled[name] = sampled.reshape(shape)


def _richardson(obj: Objective, name: str, x: np.ndarray, sel: np.ndarray, domain):
    """Best Richardson estimate per selected element (value, error estimate, step, method code)."""
    xs = x[sel]

    def evaluate(stencil, rows):
        points = stencil.offsets.shape[1]
        g = np.full(stencil.offsets.shape, np.nan)
        offsets = torch.as_tensor(stencil.offsets[rows].ravel())
        g[rows] = obj.along(name, np.repeat(sel[rows], points), offsets).numpy().reshape(-1, points)
        return g

    return estimate(xs, domain, evaluate, float(obj.value), lambda slopes: _noise(obj, xs, slopes, len(x)))


def _noise(obj: Objective, xs: np.ndarray, slopes: np.ndarray, numel: int) -> float:
    """How far one evaluation of g may be off by rounding.

    Rounding is relative to the size of the terms g sums, which the output
    alone can hide (a bilinear form xᵀAy can be small while its terms are
    not). Two measures of that size, the larger kept: Σ|v⊙f| at the point,
    and Σ_j |x_j·∂g/∂x_j| over this input (the terms of a multilinear g;
    from the finest plain quotients, scaled up when elements are sampled).
    """
    finite = np.isfinite(slopes)
    terms = float(np.sum(np.abs(xs[finite] * slopes[finite]))) * numel / max(1, int(finite.sum()))
    return NOISE_ULPS * EPS64 * max(obj.magnitude, abs(float(obj.value.real)), terms)


def _complex(obj: Objective, name: str, x: np.ndarray, sel: np.ndarray):
    """Complex-step value per selected element, its error estimate from a second step."""
    h = COMPLEX_STEP * np.maximum(1.0, np.abs(x[sel]))
    offsets = np.stack([h, COMPLEX_STEP_SECOND * h], axis=1)
    g = obj.along(name, np.repeat(sel, 2), torch.as_tensor(1j * offsets.ravel())).numpy().reshape(-1, 2)
    d = g.imag / offsets
    value = d[:, 0]
    scale = np.max(np.abs(value)) if value.size else 0.0
    err = np.abs(d[:, 0] - d[:, 1]) + COMPLEX_STEP_ULPS * EPS64 * (np.abs(value) + scale)
    return value, err, h, np.full(len(sel), COMPLEX, dtype=np.int8)


def _memo_probe(memo: dict | None, f, base, w, real: Objective, wrt, domains, seed):
    """:func:`_probe`, or the verdict ``memo`` holds (with a complex Objective at this point).

    A stored success is still checked here: the complex forward's real part
    must match the real forward at this point, else the probe runs again.
    """
    if memo and memo.get("why"):
        return None, memo["why"] + " (probed at this case's first dtype)"
    if memo and memo.get("why") == "":
        try:
            cobj = _complex_objective(f, base, w)
            if cobj.value.is_complex() and _same_real_part(cobj, real):
                return cobj, ""
        except Exception:   # noqa: BLE001 - probed again below, which reports why
            pass
    cobj, why = _probe(f, base, w, real, wrt, domains, seed)
    if memo is not None:
        memo["why"] = why
    return cobj, why


def _same_real_part(cobj: Objective, real: Objective) -> bool:
    return abs(float(cobj.value.real) - float(real.value)) <= 1e3 * EPS64 * (real.magnitude + 1e-300)


def _complex_objective(f, base, w) -> Objective:
    cbase = {k: v.to(torch.complex128) if v.is_floating_point() else v for k, v in base.items()}
    return Objective(f, cbase, w)


def _probe(f, base, w, real: Objective, wrt, domains, seed):
    """A complex Objective if the complex step agrees with Richardson along a random direction, else (None, why)."""
    rng = np.random.default_rng([seed, 7])
    direction = {name: torch.as_tensor(rng.normal(size=tuple(base[name].shape))) for name in wrt}
    # the real probe's step: BASE_STEP, shrunk so x ± h·u stays inside every declared domain
    h = BASE_STEP
    for name in wrt:
        lo, hi = domains.get(name) or (-np.inf, np.inf)
        x, u = base[name].numpy(), np.abs(direction[name].numpy()) + 1e-300
        room = DOMAIN_FRACTION * np.min(np.minimum(x - lo, hi - x) / u, initial=np.inf)
        h = min(h, 2.0 ** np.floor(np.log2(room)) if np.isfinite(room) else h)
    steps = h * 2.0 ** -np.arange(LEVELS)
    quotients = []
    for step in steps:
        plus = real.at({n: base[n] + step * direction[n] for n in wrt})
        minus = real.at({n: base[n] - step * direction[n] for n in wrt})
        quotients.append(float(plus - minus) / (2 * step))
    noise = NOISE_ULPS * EPS64 * real.magnitude
    value, err, _ = extrapolate(np.array([quotients]), noise / steps[None, :], tuple(range(2, 2 * LEVELS, 2)))
    try:
        cobj = _complex_objective(f, base, w)
        hc = COMPLEX_STEP
        g = cobj.at({n: cobj.base[n] + 1j * hc * direction[n] for n in wrt})
    except Exception as exc:
        return None, f"torch cannot run the forward on complex inputs ({type(exc).__name__}: {str(exc)[:100]})"
    if not g.is_complex():
        return None, "the complex forward returns real numbers, so it is not holomorphic"
    derivative = float(g.imag) / hc
    if not _same_real_part(cobj, real):
        return None, "the complex forward's real part differs from the real forward"
    if not abs(derivative - value[0]) <= max(100 * err[0], PROBE_RTOL * (abs(value[0]) + abs(derivative))):
        return None, (f"the complex step disagrees with Richardson differences along a random direction "
                      f"({derivative:.17g} vs {value[0]:.17g}): torch's complex forward is not holomorphic here")
    return cobj, ""
