"""``assert_gradients``: verify a torch function's gradients from inside a test suite.

In the spirit of ``torch.testing.assert_close``: it returns quietly (with the
result tables) when autograd agrees with the exact Jᵀv, and raises one
documented exception, :class:`verifier.GradientMismatch` (an
``AssertionError``), with the same sectioned text the pytest plugin prints
when it does not. Misuse (inputs that are not numbers, a symbolic side that
cannot be built) raises :class:`verifier.CaseError` (a ``ValueError``) before
anything runs.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import numpy as np
import pandas as pd
import torch

from .cases.case import Tolerance
from .cases.registry import make_case
from .errors import CaseError, GradientMismatch
from .exact.tracing import trace
from .report import tables
from .run.runner import CaseResult, Runner
from .torch_side.complex_autograd import is_complex_run
from .verdict.failure import callable_name, describe_all


class ResultTables(NamedTuple):
    """The two result tables of a check, as the reports have them.

    ``summary``: one row per dtype (status, largest errors); ``details``:
    one row per gradient element (exact, autograd, finite difference, errors).
    ``results`` keeps the :class:`verifier.CaseResult` objects behind them.
    """

    summary: pd.DataFrame
    details: pd.DataFrame
    results: list[CaseResult]


def assert_gradients(
    torch_fn: Callable[..., torch.Tensor],
    sympy_fn: Callable[..., Any] | Mapping[str, Any] | None = None,
    inputs: Mapping[str, Any] | None = None,
    *,
    grad_output: Any = None,
    dtypes: Sequence[str] = ("float64",),
    tolerance: Mapping[str, Tolerance | Mapping[str, float] | tuple[float, float]] | None = None,
    name: str | None = None,
) -> ResultTables:
    """Check ``torch_fn``'s gradients against the exact ones; raise ``GradientMismatch`` if they differ.

    ``inputs`` maps names to values (tensors, numpy arrays, nested lists or
    numbers; integer and bool tensors or arrays become index/mask inputs) or to input
    specs of the case format (``{"shape": [3], "sample": "normal"}``,
    ``{"value": ..., "requires_grad": False}``). ``torch_fn`` receives torch
    tensors in that order; ``sympy_fn`` receives the symbolic element arrays
    (numpy object arrays of SymPy symbols) in that order and returns the
    symbolic output. Without ``sympy_fn``, ``torch_fn`` itself is traced on
    symbols, which works when every torch function it calls has a mirror
    (``verifier functions``). ``assert_gradients(torch_fn, inputs)`` is
    accepted too.

    ``grad_output`` is the ``v`` of ``y.backward(v)``: a value of the
    output's shape, ``"ones"``, ``"random"``, or None for ``y.backward()``
    (scalar outputs). ``tolerance`` overrides the per-dtype defaults
    (``verifier.DEFAULT_TOLERANCES``), e.g. ``{"float32": (1e-4, 1e-5)}`` as
    (rtol, atol). ``dtypes="input"`` runs in the tensor inputs' own dtype.

    The torch side runs on the tensor inputs' device (a CUDA input is checked
    on CUDA, with the cross-device column and the device allowances of
    ``docs/devices.md``); only their values are copied to the CPU, for the
    exact side and the finite differences.
    """
    __tracebackhide__ = True   # pytest shows the caller's line, not this function's
    if inputs is None and isinstance(sympy_fn, Mapping):
        sympy_fn, inputs = None, sympy_fn
    if inputs is None:
        raise CaseError("assert_gradients needs inputs: a mapping from names to values",
                        hint="e.g. assert_gradients(f, None, {'x': torch.randn(3)})")
    if not callable(torch_fn):
        raise CaseError(f"torch_fn must be callable, not {type(torch_fn).__name__}")
    case_name = name or _name_of(torch_fn)
    device = _device_of(inputs)            # the torch side runs where the tensors are (docs/devices.md)
    if isinstance(dtypes, str):            # dtypes="float32" means one dtype, not seven letters
        dtypes = _input_dtypes(inputs) if dtypes == "input" else (dtypes,)
    fields: dict[str, Any] = {"dtypes": list(dtypes)}
    if grad_output is not None:
        fields["grad_output"] = grad_output if isinstance(grad_output, str) else _plain_values(grad_output)
    if tolerance:
        fields["tolerance"] = {dtype: _tolerance(tol) for dtype, tol in tolerance.items()}
    case = make_case(case_name, {key: _input_spec(key, value) for key, value in inputs.items()},
                     torch=torch_fn, sympy=sympy_fn if sympy_fn is not None else trace(torch_fn), **fields)
    if device != "cpu":
        case = dataclasses.replace(case, device=device)
    runner = Runner()
    if not any(is_complex_run(case, dtype) for dtype in case.dtypes):    # the complex route builds its own
        runner.model(case)   # a symbolic side that cannot be built is misuse: CaseError here, not a failed check
    results = [runner.run(case, dtype) for dtype in case.dtypes]
    detail = tables.details(results)
    out = ResultTables(tables.summary(results, detail), detail, results)
    failed = [r for r in results if r.status not in ("pass", "skip")]
    if failed:
        raise GradientMismatch(describe_all(failed), out)
    return out


def _device_of(inputs: Mapping[str, Any]) -> str:
    """The device of the tensor inputs ('cpu' without any); a CaseError when they are on different devices."""
    found = {str(v.device) if v.device.type != "mps" else "mps": k
             for k, v in inputs.items() if isinstance(v, torch.Tensor)}
    if len(found) > 1:
        raise CaseError(f"the tensor inputs are on different devices ({', '.join(f'{k}: {d}' for d, k in found.items())})",
                        hint="Put every tensor input on the device the function is to be checked on.")
    return next(iter(found), "cpu")


def _input_dtypes(inputs: Mapping[str, Any]) -> tuple[str, ...]:
    """``dtypes="input"``: the floating dtypes of the tensor inputs (float64 when there is none)."""
    found = [str(v.dtype).removeprefix("torch.") for v in inputs.values()
             if isinstance(v, torch.Tensor) and v.is_floating_point()]
    return tuple(dict.fromkeys(found)) or ("float64",)


def _name_of(fn: Callable) -> str:
    """A valid case name from the callable's name (``MyFunction.apply``, ``test_x.<locals>.f``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", callable_name(fn)).strip("_")[:200] or "function"


def _input_spec(key: str, value: Any) -> Any:
    """One input as the case format writes it (a literal, or a spec with its index dtype)."""
    if isinstance(value, Mapping):
        return {k: _plain_values(v) if k == "value" else v for k, v in value.items()}
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        if value.is_complex():            # a complex input at its own dtype (docs/complex.md)
            return {"value": value.to(torch.complex128).tolist(), "dtype": str(value.dtype).split(".")[-1]}
        if value.dtype == torch.bool:
            return {"value": value.to(torch.int64).tolist(), "dtype": "bool"}
        if not value.is_floating_point():
            return {"value": value.tolist(), "dtype": "int64"}
        return value.to(torch.float64).tolist()
    arr = np.asarray(value)
    if arr.dtype == bool:
        return {"value": arr.astype(np.int64).tolist(), "dtype": "bool"}
    if np.issubdtype(arr.dtype, np.integer) and isinstance(value, np.ndarray):
        return {"value": arr.tolist(), "dtype": "int64"}
    try:
        return arr.astype(np.complex128 if np.iscomplexobj(arr) else np.float64).tolist()
    except (TypeError, ValueError):
        raise CaseError(f"input '{key}' is not numeric ({type(value).__name__})",
                        hint="Give a tensor, a numpy array, a nested list of numbers or a number.") from None


def _plain_values(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        return value.to(torch.complex128 if value.is_complex() else torch.float64).tolist()
    if isinstance(value, np.ndarray):
        return value.astype(np.complex128 if np.iscomplexobj(value) else np.float64).tolist()
    return value


def _tolerance(tol: Any) -> dict[str, float]:
    if isinstance(tol, Tolerance):
        return {"rtol": tol.rtol, "atol": tol.atol}
    if isinstance(tol, Mapping):
        return dict(tol)
    rtol, atol = tol
    return {"rtol": float(rtol), "atol": float(atol)}
