"""The forward-mode check: torch's J·u by forward AD, along a seeded random direction u, against the exact J·u.

``y.backward(v)`` only exercises reverse mode. Forward mode has its own
derivative formulas in torch (``torch.autograd.forward_ad``; custom
Functions supply a ``jvp``), so it gets its own check: one random
direction u per case (seeded, and rounded to the case's dtype so both
sides use the same u), torch's tangent of the output, and the exact J·u
from a tangent sweep over the symbolic graph (:mod:`verifier.exact.tangent`).
Tolerances are the case's gradient tolerances.

When torch has no forward-mode formula for an operation the check is
skipped, with torch's message: that is a missing feature, not a wrong number.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch
import torch.autograd.forward_ad as fwad

from ..cases.case import Case, Tolerance
from ..cases.structure import project
from ..errors import CaseError
from ..exact.cache import cached_arrays, cached_text
from ..exact.tangent import at_kink, exact_jvp
from ..verdict.compare import non_finite, within
from .autograd import TORCH_DTYPES, make_leaves, to_numpy, torch_callable
from .device import Device

#: Seeds of the random directions (forward mode uses u, second order w).
FORWARD_SEED = 4_2024
MISMATCHES_SHOWN = 3


@dataclass
class DirectionalResult:
    """One directional check at one dtype: torch's values against exact, and the verdict."""

    name: str                       # "forward_mode" | "second_order"
    status: str                     # "pass" | "fail" | "non_finite" | "skip"
    detail: str = ""
    exact: dict[str, np.ndarray] | None = None
    torch: dict[str, np.ndarray] | None = None
    direction: dict[str, np.ndarray] | None = None
    max_abs_err: float = float("nan")
    max_rel_err: float = float("nan")
    elements: int = 0


def directions(case: Case, dtype: str, seed: int) -> dict[str, np.ndarray]:
    """A standard-normal direction per differentiated input, rounded to ``dtype`` (exactly representable there).

    A structured input's direction is projected onto its structure (symmetric, triangular).
    """
    out = {}
    for k, spec in enumerate(s for s in case.inputs if s.differentiated):
        shape = np.shape(spec.value) if spec.value is not None else tuple(spec.shape)
        raw = np.random.default_rng([seed, k]).normal(size=shape)
        if spec.structure and raw.ndim >= 2:       # a direction within the input's structure (cases/structure.py)
            raw = project(spec.structure, raw)
        out[spec.name] = torch.as_tensor(raw, dtype=TORCH_DTYPES[dtype]).to(torch.float64).numpy()
    return out


def compare(name: str, label: str, torch_vals: Mapping[str, np.ndarray], exact_vals: Mapping[str, np.ndarray],
            tol: Tolerance, direction: Mapping[str, np.ndarray], magnitude: Mapping[str, np.ndarray] | None = None,
            *, accept_non_finite: bool = False) -> DirectionalResult:
    """Element-wise verdicts (the gradient's rule, ``rtol·M + atol`` with ``magnitude`` M) folded into one result.

    Without a magnitude for a key the allowance uses |exact| (tighter). A value
    that is inf or nan on either side or in the allowance makes the result
    ``non_finite`` (unless accepted), never a pass.
    """
    bad, total, worst_abs, worst_rel, unfinished = [], 0, 0.0, 0.0, 0
    for key, ex in exact_vals.items():
        got = np.asarray(torch_vals[key], dtype=np.float64).reshape(ex.shape)
        ok, allowed = within(got, ex, tol, (magnitude or {}).get(key), accept_non_finite=accept_non_finite)
        if not accept_non_finite:
            nf = non_finite(got, ex, np.broadcast_to(allowed, ex.shape))
            unfinished += int(nf.sum())
            ok = ok | nf
        with np.errstate(invalid="ignore"):
            err = np.abs(got - ex)
        total += ex.size
        worst_abs = max(worst_abs, float(np.nanmax(err, initial=0.0)) if np.isfinite(err).all() else np.inf)
        scale = float(np.max(np.abs(ex), initial=0.0))
        worst_rel = max(worst_rel, worst_abs / scale if scale > 0 else (0.0 if worst_abs == 0 else np.inf))
        for idx in zip(*np.nonzero(~ok)) if ex.ndim else ([()] if not ok else []):
            bad.append(f"{key}{tuple(int(i) for i in idx)}: exact {ex[idx]:.17g}, torch {got[idx]:.17g}, "
                       f"error {err[idx]:.3g} > tolerance {np.broadcast_to(allowed, ex.shape)[idx]:.3g}")
    status = "fail" if bad else "non_finite" if unfinished else "pass"
    result = DirectionalResult(name, status, exact=dict(exact_vals), torch=dict(torch_vals),
                               direction=dict(direction), max_abs_err=worst_abs, max_rel_err=worst_rel,
                               elements=total)
    if bad:
        result.detail = (f"{label} differs from exact at {len(bad)} / {total} elements "
                         f"({100.0 * len(bad) / max(1, total):.0f}%); " + "; ".join(bad[:MISMATCHES_SHOWN]))
    if unfinished:
        result.detail = "; ".join(filter(None, [result.detail, (
            f"{label}: {unfinished} / {total} elements are inf or nan (exact, torch or allowance): an overflow "
            "or a pole, nothing to check there; state `accept: [non_finite]` if the case means it")]))
    return result


def torch_jvp(case: Case, values: Mapping[str, np.ndarray], dtype: str,
              direction: Mapping[str, np.ndarray], device: Device | None = None) -> np.ndarray:
    """torch's J·u: the output's tangent under ``torch.autograd.forward_ad`` (on ``device``), as float64."""
    fn = torch_callable(case)
    tensors = [t.detach() for t in make_leaves(case, values, dtype, device)]
    with warnings.catch_warnings(), fwad.dual_level():
        # torch's forward AD of a custom Function warns about torch.jit.script internally; not ours to show
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=DeprecationWarning)
        args = [fwad.make_dual(t, torch.as_tensor(direction[spec.name], dtype=t.dtype, device=t.device))
                if spec.differentiated
                else t for spec, t in zip(case.inputs, tensors)]
        y = fn(*args)
        if not isinstance(y, torch.Tensor):
            raise CaseError(f"the torch side returned a {type(y).__name__}, not a tensor", case=case.name)
        tangent = fwad.unpack_dual(y).tangent
        out_shape = tuple(y.shape)
    if tangent is None:                       # the output does not depend on the inputs
        return np.zeros(out_shape)
    return to_numpy(tangent)


def kink_at(model, point: Mapping[str, np.ndarray], cache=None) -> str:
    """'' when the point is smooth, else where it is a kink; compiled models screen it on their tape first.

    ``cache`` (a :class:`verifier.exact.cache.Cache`) keeps the answer at the point.
    """
    compute = (lambda: model.kink_text(point)) if hasattr(model, "kink_text") else (lambda: at_kink(model, point))
    return cached_text(cache, model, point, "kink_text", compute)


def kink_skip(check: str, what: str, why: str, model, point, cache, kink: str | None) -> DirectionalResult | None:
    """A ``skip`` for ``check`` when the point is a kink (``why``) or has no exact ``what``; None to go on.

    ``kink``: what :func:`kink_at` said at the point, when the caller already asked.
    """
    try:
        kink = kink_at(model, point, cache) if kink is None else kink
    except CaseError as exc:
        return DirectionalResult(check, "skip", f"no exact {what}: {exc.message}")
    if kink:
        return DirectionalResult(check, "skip", f"the point is a kink ({kink}): {why}")
    return None


def check_forward_mode(case: Case, model, values: Mapping[str, np.ndarray], point: Mapping[str, np.ndarray],
                       dtype: str, tol: Tolerance, *, seed: int = FORWARD_SEED, cache=None,
                       kink: str | None = None, device: Device | None = None) -> DirectionalResult:
    """torch's forward-mode J·u (on ``device``, None: the CPU) against the exact J·u, for one case at one dtype.

    ``cache`` (a :class:`verifier.exact.cache.Cache`) keeps the exact J·u at the
    point and direction; torch's forward AD always runs. ``kink``: what
    :func:`kink_at` said at the point, when the caller already asked.
    """
    why = "forward mode's convention there is torch's choice, not an exact value"
    if skip := kink_skip("forward_mode", "J·u", why, model, point, cache, kink):
        return skip
    u = directions(case, dtype, seed)
    try:
        got = torch_jvp(case, {**values, **point}, dtype, u, device)
    except CaseError:
        raise
    except Exception as exc:   # no forward-mode formula: a missing feature, reported as a skip
        return DirectionalResult("forward_mode", "skip",
                                 f"torch cannot run forward-mode AD here: {type(exc).__name__}: {str(exc)[:200]}")
    try:
        # compiled models sweep their tape; a SymbolicModel walks SymPy
        exact = model.exact_jvp if hasattr(model, "exact_jvp") else (lambda p, d: exact_jvp(model, p, d))
        bound = getattr(model, "exact_jvp_bound", None)     # None (a SymbolicModel): |exact|, tighter
        arrays = cached_arrays(cache, model, point, None, "jvp-m",
                               lambda: {"y": exact(point, u), **({"M": bound(point, u)} if bound else {})}, extra=u)
    except CaseError as exc:
        return DirectionalResult("forward_mode", "skip", f"no exact J·u: {exc.message}")
    mag = {"y": arrays["M"]} if "M" in arrays else None
    return compare("forward_mode", "J·u (forward AD)", {"y": got}, {"y": arrays["y"]}, tol, u, mag,
                   accept_non_finite="non_finite" in case.accept)
