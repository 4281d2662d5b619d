"""Run one case at one dtype through the three sides and collect the verdicts.

A wrong gradient is a *result* (status ``fail``); a case that cannot run is a
result too (status ``error`` with the message). Nothing here lets one case's
problem stop the others.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np
import pandas as pd
import torch

from ..cases.case import Case
from ..cases.structure import projected
from ..errors import CaseError, Refused, SymbolicError
from ..exact import kinks as _kinks
from ..exact.cache import Cache, default_cache
from ..exact.compiled import prepare
from ..exact.numeric.model import refuse_ill_conditioned
from ..exact.symbolic import ExactResult, SymbolicModel
from ..exact.values import cached_exact, cached_kinks
from ..fd.finite_diff import FDResult, fd_options
from ..fd.structured import structured_finite_differences
from ..torch_side.autograd import TORCH_DTYPES, AutogradResult, forward_float64, run_autograd
from ..torch_side.complex_autograd import is_complex_run
from ..torch_side.device import DeviceUnavailable, describe, resolve
from ..torch_side.forward_mode import DirectionalResult, check_forward_mode, kink_at
from ..torch_side.second_order import check_second_order
from ..verdict import kinks as kink_verdict
from ..verdict import torch_facts
from ..verdict.attribution import kink_attribution
from ..verdict.compare import (
    DETAIL_COLUMNS,
    element_columns,
    tolerance_for,
)
from ..verdict.device_allowance import names as allowance_names
from . import on_device
from .checks import Check, case_checks
from .complex_run import run_complex
from .jacobian import REPORT_ENTRIES, jacobian_at
from .reduced_fd import body_finite_differences

#: Finite differences are taken on at most this many elements per input (a
#: seeded sample above it, which the report states); None takes them all.
FD_MAX_ELEMENTS = 1024


_FROZEN = False
# What kinks.kink_columns() adds where no element is at a kink.
_NO_KINK = {"kink": False, "kink_left": np.nan, "kink_right": np.nan, "kink_rule": ""}


def _freeze_baseline() -> None:
    """Once per process: collect, then freeze what is alive (torch, SymPy, pandas, loaded cases).

    Those objects live for the whole run; frozen, the cyclic collector stops
    rescanning them in every full collection (~10 % of a warm small case).
    Only the first Runner does it, after a collection, so no garbage is pinned.
    """
    global _FROZEN
    if not _FROZEN:
        _FROZEN = True
        gc.collect()
        gc.freeze()


# Copying an empty frame costs 1/25 of building one (0.3 ms a result, 10 % of a warm small case).
_NO_ROWS = pd.DataFrame(columns=DETAIL_COLUMNS)


@dataclass
class CaseResult:
    """Everything one case × dtype produced; the reports are built from these."""

    case: Case
    dtype: str
    status: str                                   # pass | fail | non_finite | error | skip | timeout
    message: str = ""
    # the detail rows' columns (compare.element_columns); ``rows`` is the DataFrame, built when first asked for
    columns: dict | None = field(default=None, repr=False)
    checks: list[Check] = field(default_factory=list)
    grad_fn: str | None = None
    route: str = ""
    seconds: float = 0.0
    autograd: AutogradResult | None = None
    exact: ExactResult | None = None
    fd: FDResult | None = None
    forward_mode: DirectionalResult | None = None
    second_order: DirectionalResult | None = None
    kinks: _kinks.KinkReport | None = None        # what the kink detector found at the point
    stats: dict | None = None                     # digest.stats over every element (set by digest.summarise)
    heat: list | None = None                      # heatgrid.grids over every element (idem)
    full_table: str | None = None                 # the parquet file holding every row (digest.write_full)
    jacobian: dict | None = None                  # exact J per input at the point: small cases that did not pass
    device: str = "cpu"                           # where torch's side ran (docs/devices.md)
    device_info: dict | None = None               # torch_side.device.describe: name, capability, flags
    allowance: str = ""                           # the device allowances applied (verdict/device_allowance.py)
    cross_device_max_abs_err: float = float("nan")   # max |device autograd − CPU autograd|
    refused: bool = False                         # an error that is a deliberate refusal (errors.Refused), not a crash
    _frame: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.case.name

    @property
    def rows(self) -> pd.DataFrame:
        """One row per input × element (compare.DETAIL_COLUMNS, plus the kink columns)."""
        if self._frame is None:
            self._frame = pd.DataFrame(self.columns) if self.columns else _NO_ROWS.copy()
        return self._frame

    @rows.setter
    def rows(self, frame: pd.DataFrame) -> None:
        self._frame, self.columns = frame, None
        self.stats = self.heat = None             # computed again from the new rows when asked

    def __getstate__(self) -> dict:
        # a result crosses processes as its columns: the frame is rebuilt where it is needed
        state = dict(self.__dict__)
        if state.get("columns") is not None:
            state["_frame"] = None
        return state


class Runner:
    """Runs cases, caching each case's symbolic model across dtypes (and on disk, see cache.py).

    ``cache``: True for the default disk cache (``VERIFIER_CACHE=off`` turns it
    off), False for none, or a :class:`verifier.exact.cache.Cache`. ``fd_overrides``
    replace entries of ``finite_diff.fd_options(case)`` (the speed benchmark
    samples a 10⁶-element case with ``{"elementwise": (), "batch": False}``).
    """

    def __init__(self, *, fd_max_elements: int | None = FD_MAX_ELEMENTS, forward_mode: bool = True,
                 second_order: bool = True, cache=True, fd_overrides: dict | None = None,
                 device: str | None = None) -> None:
        _freeze_baseline()
        self._models: dict[int, tuple[Case, object]] = {}
        self._probes: dict[int, tuple[Case, dict]] = {}   # per case: the complex-step probe's verdict
        self.fd_max_elements = fd_max_elements
        # run-wide switches of the optional checks; a case can switch each off for itself (`checks:`)
        self.forward_mode = forward_mode
        self.second_order = second_order
        self.cache = default_cache() if cache is True else (cache if isinstance(cache, Cache) else None)
        self.fd_overrides = dict(fd_overrides or {})
        self.device = device          # the run's device for cases without their own `device:` (None: cpu)

    def model(self, case: Case):
        """The case's symbolic side (a compiled tape or an elementwise template; see compiled.prepare)."""
        hit = self._models.get(id(case))
        if hit is None or hit[0] is not case:
            hit = (case, prepare(case, self.cache))
            self._models[id(case)] = hit
        return hit[1]

    def _probe_memo(self, case: Case) -> dict:
        """The case's complex-step probe verdict, shared by its dtypes (see finite_diff.finite_differences)."""
        hit = self._probes.get(id(case))
        if hit is None or hit[0] is not case:
            hit = self._probes[id(case)] = (case, {})
        return hit[1]

    def run(self, case: Case, dtype: str) -> CaseResult:
        start = time.perf_counter()
        try:
            result = self._run(case, dtype)
        except DeviceUnavailable as exc:   # a case asking for a device this machine lacks: skipped, with why
            result = CaseResult(case, dtype, "skip", f"{exc.message} {exc.hint}",
                                device=str(case.device or self.device))
        except CaseError as exc:
            result = CaseResult(case, dtype, "error", exc.message + (f" {exc.hint}" if exc.hint else ""),
                                refused=isinstance(exc, Refused))
        except Exception as exc:  # a broken case never stops the run
            result = CaseResult(case, dtype, "error", f"{type(exc).__name__}: {exc}")
        result.seconds = time.perf_counter() - start
        return result

    def run_all(self, cases: Iterable[Case]) -> Iterator[CaseResult]:
        for case in cases:
            for dtype in case.dtypes:
                yield self.run(case, dtype)

    def _run(self, case: Case, dtype: str) -> CaseResult:
        if is_complex_run(case, dtype):         # complex inputs or dtype: the realified route (complex.md)
            _complex_on_cpu(resolve(case.device or self.device))
            return run_complex(case, dtype, CaseResult, _expected_error)
        values = {spec.name: spec.values() for spec in case.inputs}
        point = {spec.name: _round(values[spec.name], dtype) for spec in case.inputs if spec.dtype is None}
        repeat = int(case.options.get("repeat", 1))
        device = resolve(case.device or self.device)
        # torch runs first: when a case cannot run, torch's own message is the clearest report
        ag = run_autograd(case, {**values, **point}, lambda shape: _weights(case, shape, dtype), dtype,
                          repeat=repeat, device=device)
        if ag.complex_output and case.expect.error is None:    # real inputs, complex output (polar, 1j·x)
            _complex_on_cpu(device)
            return run_complex(case, dtype, CaseResult, _expected_error)
        result = CaseResult(case, dtype, "pass", grad_fn=ag.grad_fn, autograd=ag, device=device.name,
                            device_info=None if device.is_cpu else describe(device))
        if case.expect.error is not None:
            return _expected_error(result, ag, case.expect.error)
        if ag.error is not None:
            result.status = "error"
            result.message = f"torch raised in {ag.error_stage}: {type(ag.error).__name__}: {ag.error}"
            return result
        model = self.model(case)
        weights = ag.weights
        if model.output_shape != ag.output_shape:
            raise SymbolicError(f"the symbolic output has shape {list(model.output_shape)} but torch's has "
                                f"{list(ag.output_shape)}",
                                hint="The two readings must compute the same function; check 'torch'/'sympy'.")
        # structured inputs (cases/structure.py): gradients compared projected onto the structure, FD within it
        ex, ag = projected(case, cached_exact(self.cache, model, point, weights), ag)
        result.exact, result.route, result.autograd = ex, ex.route, ag
        fd_device = resolve(case.fd_device) if case.fd_device else None       # `verifier run --fd-device`
        fd_args = {**fd_options(case), **self.fd_overrides, "max_elements": self.fd_max_elements,
                   "probe_memo": self._probe_memo(case)}
        # sums of elementwise bodies: differences of the body alone, on the CPU (not when FD is sent to a device)
        fd = ((None if fd_device else body_finite_differences(case, model, point, weights, dtype, **fd_args))
              or structured_finite_differences(case, forward_float64(case, model.structural, fd_device), point,
                                               model.wrt, weights, dtype, **fd_args))
        result.fd = fd
        if where := on_device.fd_where(device, fd_device):
            fd.notes.insert(0, where)       # first: fd_note is cut to 120 characters in the summary
        tol, allowed = on_device.allowances_for(device, dtype, ag, tolerance_for(case, dtype))
        result.allowance = allowance_names(allowed)
        refuse_ill_conditioned(ex.condition, tol.rtol, dtype)       # numeric-exact route: κ capped per dtype
        # the tape already knows when nothing is near a kink: skip the SymPy-walking detector then
        result.kinks = cached_kinks(self.cache, model, point, weights, ex.may_kink)
        accept = "non_finite" in case.accept
        columns = element_columns(case, dtype, ex.vjp, ag.grads, fd, tol, magnitude=ex.magnitude,
                                  accept_non_finite=accept)
        if result.kinks.elements:      # the kink columns and the rejudged FD verdicts, before the one frame
            n = len(columns["exact"])
            columns.update(kink_verdict.kink_columns(columns, result.kinks, n, tol, declared=bool(case.kink)))
            columns["attribution"] = kink_attribution(columns, n)
        else:
            columns.update(_NO_KINK)
        notes = [on_device.allowance_note(allowed)]
        if not device.is_cpu:         # torch on the CPU beside it: the cross-device column (information only)
            cross, result.cross_device_max_abs_err, note = on_device.cross_device(
                case, {**values, **point}, lambda shape: _weights(case, shape, dtype), dtype, ag, columns)
            columns.update(cross, device=device.name, allowance=result.allowance)
            notes.append(note)
        result.columns = columns
        result.checks = case_checks(case, dtype, columns, ag, ex, tol)
        if len(columns["exact"]):          # the gradient check's row in checks.csv carries its numbers too
            gradient = result.checks[0]
            gradient.max_abs_err = _nanmax(columns["abs_err"])
            gradient.max_rel_err = _nanmax(columns["rel_err"])
            gradient.elements = len(columns["exact"])
        kink = (kink_verdict.verdict(case.kink, result.kinks, result.rows, strict=case.strict_kinks)
                if case.kink or result.kinks.elements else None)
        if kink is not None:
            result.checks.append(Check("kink", kink.ok, "" if kink.ok else kink.detail))
            notes.append(kink.note)
        if ag.accumulated:
            result.rows = _with_accumulated(result.rows, ag.accumulated)
            notes.append(_accumulation_note(ag, int(case.options.get("repeat", 1))))
        result.checks += self._directional(result, model, values, point, weights, tol, device)
        failed = [c for c in result.checks if not c.ok]
        if failed:
            # a wrong number is a failure; values that are only inf or nan are their own outcome
            result.status = "non_finite" if all(c.non_finite for c in failed) else "fail"
            for c in failed:     # a documented torch fact names the cause; the check still fails
                c.detail = torch_facts.annotated(case, dtype, c.name, c.detail, c.max_rel_err, c.non_finite)
            result.message = "; ".join([*(f"{c.name}: {c.detail}" for c in failed), *filter(None, notes[:1])])
            result.jacobian = _small_jacobian(model, point)
        else:   # a passing run still reports what it showed (kinks, accumulation)
            result.message = "; ".join(n for n in notes if n)
        return result

    def _directional(self, result: CaseResult, model: SymbolicModel, values, point, weights, tol,
                     device=None) -> list[Check]:
        """The forward-mode and second-order checks that are switched on, as check rows."""
        case, dtype, out = result.case, result.dtype, []
        forward = self.forward_mode and case.check_enabled("forward_mode", dtype)
        second = self.second_order and case.check_enabled("second_order", dtype)
        kink = _kink_text(model, point, self.cache) if forward and second else None    # asked once for both
        if forward:
            result.forward_mode = check_forward_mode(case, model, values, point, dtype, tol, cache=self.cache,
                                                     kink=kink, device=device)
            out.append(_as_check(result.forward_mode))
        if second:
            result.second_order = check_second_order(case, model, values, point, weights, dtype, tol,
                                                     cache=self.cache, kink=kink, device=device)
            out.append(_as_check(result.second_order))
        return out


def _complex_on_cpu(device) -> None:
    """The complex route builds CPU tensors: a complex run asked for elsewhere is skipped, never checked on the CPU."""
    if not device.is_cpu:
        raise DeviceUnavailable(f"complex cases run on the CPU only for now, not on {device.name}",
                                hint="Run complex cases without --device (or with device: cpu).")


def _small_jacobian(model, point) -> dict | None:
    """The exact Jacobian at the point for report.html, when it has at most ``REPORT_ENTRIES`` entries.

    Shown only: it never changes the verdict, so a model that cannot build it gives None.
    """
    try:
        return jacobian_at(model, point) if model.n_entries <= REPORT_ENTRIES else None
    except Exception:
        return None


def _kink_text(model, point, cache) -> str | None:
    """forward_mode.kink_at, or None when it cannot say (each check then reports why itself)."""
    try:
        return kink_at(model, point, cache)
    except CaseError:
        return None


def _as_check(d: DirectionalResult) -> Check:
    return Check(d.name, d.status not in ("fail", "non_finite"), d.detail, skipped=d.status == "skip",
                 non_finite=d.status == "non_finite",
                 max_abs_err=None if d.status == "skip" else d.max_abs_err,
                 max_rel_err=None if d.status == "skip" else d.max_rel_err,
                 elements=d.elements or None)


def _nanmax(values) -> float:
    """The largest value, NaN ignored (as pandas' max); NaN when there is none."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    return float(values.max()) if values.size else float("nan")


def _with_accumulated(rows: pd.DataFrame, accumulated: dict[str, np.ndarray]) -> pd.DataFrame:
    """The detail rows with an ``accumulated`` column: .grad after the repeated backward calls."""
    rows = rows.copy()
    rows["accumulated"] = np.nan
    for name, total in accumulated.items():
        at = rows["input"] == name
        if int(at.sum()) == np.size(total):
            rows.loc[at, "accumulated"] = np.asarray(total, dtype=np.float64).ravel()
    return rows


def _accumulation_note(ag: AutogradResult, repeat: int) -> str:
    """How many times the first call's gradient .grad holds after ``repeat`` calls."""
    ratios = []
    for name, total in ag.accumulated.items():
        first = np.asarray(ag.grads.get(name, np.nan), dtype=np.float64)
        total = np.asarray(total, dtype=np.float64)
        nonzero = np.abs(first) > 0
        ratios.extend((total[nonzero] / first[nonzero]).ravel().tolist())
    if not ratios:
        return f"accumulation: {repeat} backward calls, every gradient element is 0"
    lo, hi = min(ratios), max(ratios)
    span = f"{lo:.6g}x" if f"{lo:.6g}" == f"{hi:.6g}" else f"{lo:.6g}x to {hi:.6g}x"
    return f"accumulation: after {repeat} backward calls .grad is {span} the first call's (expected {repeat}x)"


def _round(values: np.ndarray, dtype: str) -> np.ndarray:
    """The input as the case's dtype holds it, back in float64 (exactly)."""
    return torch.as_tensor(values, dtype=TORCH_DTYPES[dtype]).to(torch.float64).numpy()


def _weights(case: Case, out_shape: tuple[int, ...], dtype: str) -> np.ndarray | None:
    """The weights v as the case's dtype holds them (None: plain ``y.backward()``)."""
    if case.grad_output is None:
        return None
    return _round(case.grad_output.values(out_shape), dtype)


def _expected_error(result: CaseResult, ag: AutogradResult, expected: str) -> CaseResult:
    if ag.error is None:
        result.status = "fail"
        result.message = f"expected torch to raise an error containing {expected!r}, but nothing was raised"
    elif expected not in str(ag.error):
        result.status = "fail"
        result.message = (f"expected an error containing {expected!r}, torch raised "
                          f"{type(ag.error).__name__}: {ag.error}")
    else:
        result.message = f"raised as expected in {ag.error_stage}: {type(ag.error).__name__}: {ag.error}"
    result.checks = [Check("expect.error", result.status == "pass", result.message)]
    return result
