"""What a run on a device adds to a case × dtype: the device allowances, the cross-device column, fd_note.

Torch's side runs on the device (``torch_side/device.py``); the exact side and
the finite differences stay on the CPU. For a device other than the CPU this
module also runs torch's autograd on the CPU at the same point and dtype and
reports ``|device autograd − CPU autograd|`` per element
(``cross_device_abs_err``) beside the exact comparison. That column is
information, never a verdict: the verdict is always device autograd against
the exact value (two devices agreeing on a wrong number is still wrong).
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from ..cases.case import Case, Tolerance
from ..cases.structure import project_all
from ..torch_side.autograd import AutogradResult, run_autograd
from ..torch_side.device import Device, flags
from ..verdict.device_allowance import Allowance, device_allowances, widened


def allowances_for(device: Device, dtype: str, ag: AutogradResult, tol: Tolerance) -> tuple[Tolerance, list[Allowance]]:
    """The tolerance widened by the allowances that can apply to this run, and those allowances."""
    found = device_allowances(device.kind, dtype, flags(device), ag.ops, tol)
    return widened(tol, found), found


def allowance_note(found: list[Allowance]) -> str:
    """'device allowance: tf32_matmul (rtol ...)' for the result's message ('' when none applied)."""
    return "device allowance: " + "; ".join(a.text() for a in found) if found else ""


def fd_where(device: Device, fd_device: Device | None) -> str:
    """Where the finite differences ran, for ``fd_note`` ('' for an all-CPU run)."""
    if fd_device is not None and not fd_device.is_cpu:
        return f"finite differences in float64 on {fd_device.name} (--fd-device); torch's autograd on {device.name}"
    if device.is_cpu:
        return ""
    return f"finite differences in float64 on the CPU; torch's autograd on {device.name}"


def cross_device(case: Case, values: Mapping[str, np.ndarray], weights: Callable, dtype: str,
                 device_ag: AutogradResult, columns: dict) -> tuple[dict, float, str]:
    """The ``cross_device_abs_err`` column (device autograd − CPU autograd), its largest value, and a note.

    The CPU run is torch's own, at the same point, dtype and ``v``; where it
    cannot run (an operation with no CPU kernel in that dtype) the column is
    NaN and the note says why.
    """
    n = len(columns["exact"])
    cpu = run_autograd(case, values, weights, dtype)
    if cpu.error is not None:
        note = f"cross-device: torch on the CPU raised in {cpu.error_stage}: {type(cpu.error).__name__}: {cpu.error}"
        return {"cross_device_abs_err": np.full(n, np.nan)}, float("nan"), note[:300]
    cpu_grads = project_all(case, cpu.grads) if any(s.structure for s in case.inputs) else cpu.grads
    pieces = []
    for name in dict.fromkeys(columns_inputs(columns)):
        dev = np.asarray(device_ag.grads.get(name, np.nan), dtype=np.float64).ravel()
        host = np.asarray(cpu_grads.get(name, np.nan), dtype=np.float64).ravel()
        with np.errstate(invalid="ignore"):
            pieces.append(np.abs(dev - host) if dev.shape == host.shape else np.full(dev.shape, np.nan))
    diff = np.concatenate(pieces) if pieces else np.zeros(0)
    if diff.size != n:         # rows and gradients out of step: say nothing rather than misplace numbers
        return {"cross_device_abs_err": np.full(n, np.nan)}, float("nan"), "cross-device: gradients not comparable"
    finite = diff[np.isfinite(diff)]
    return {"cross_device_abs_err": diff}, float(finite.max()) if finite.size else float("nan"), ""


def columns_inputs(columns: dict) -> list[str]:
    """The inputs of the detail columns in row order (one name, or one per row)."""
    inputs = columns["input"]
    return [inputs] if isinstance(inputs, str) else list(inputs)

