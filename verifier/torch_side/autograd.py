"""The torch side: leaf tensors of the case's dtype, the forward, ``y.backward(v)``.

Records what the seed lesson teaches to look at: the output's ``grad_fn``
class, each leaf's ``is_leaf``/``grad_fn``, each input's ``.grad``, and the
error torch raised, if any.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import torch

from ..cases.case import Case
from ..cases.language import Reading
from ..cases.user_functions import load_functions
from ..errors import CaseError
from ..exact import mirror
from .device import Device, OpRecorder, to_device

TORCH_DTYPES = {
    "float64": torch.float64, "float32": torch.float32,
    "float16": torch.float16, "bfloat16": torch.bfloat16,
    "int64": torch.int64, "int32": torch.int32, "bool": torch.bool,
}


class TorchReading(Reading):
    """Evaluates a case expression with torch tensors."""

    def __init__(self, variables: Mapping[str, Any], custom: Mapping[str, Callable] | None = None) -> None:
        self.variables = variables
        self.custom = custom or {}

    def call(self, name: str, args: list, kwargs: dict) -> Any:
        if name in self.custom:
            return self.custom[name](*args, **kwargs)
        return mirror.resolve(name).call_torch(*args, **kwargs)


def torch_callable(case: Case) -> Callable[..., Any]:
    """The case's torch function as a Python callable over tensors in input order."""
    fn = case.torch_fn
    if callable(fn) and not hasattr(fn, "evaluate"):
        return fn
    custom = load_functions(case)
    names = [spec.name for spec in case.inputs]

    def run(*tensors):
        return fn.evaluate(TorchReading(dict(zip(names, tensors)), custom))
    return run


@dataclass
class AutogradResult:
    """What torch computed for one case at one dtype."""

    output: np.ndarray | None = None              # forward value, as float64
    output_shape: tuple[int, ...] | None = None
    weights: np.ndarray | None = None             # the v passed to backward (None: no argument)
    grads: dict[str, np.ndarray] = field(default_factory=dict)
    grad_fn: str | None = None
    leaves: dict[str, tuple[bool, str | None]] = field(default_factory=dict)   # is_leaf, grad_fn
    error: BaseException | None = None
    error_stage: str | None = None                # "forward" | "backward"
    accumulated: dict[str, np.ndarray] = field(default_factory=dict)           # .grad after a 2nd backward
    complex_output: bool = False                  # the output is complex: the run goes the complex route
    ops: dict[str, int] = field(default_factory=dict)   # torch functions the forward called (device allowances)


def make_leaves(case: Case, values: Mapping[str, np.ndarray], dtype: str,
                device: Device | None = None) -> list[torch.Tensor]:
    """Input tensors on ``device`` (None: the CPU): floating ones in ``dtype`` (differentiated ones as leaves).

    Always copies (``torch.tensor``, never ``as_tensor``): a tensor sharing
    memory with ``values`` would let an in-place op on the torch side change
    the point the exact side and the finite differences read afterwards.
    """
    tensors = []
    for spec in case.inputs:
        if spec.dtype is not None:
            tensors.append(to_device(torch.tensor(np.asarray(values[spec.name]), dtype=TORCH_DTYPES[spec.dtype]),
                                     device))
        else:   # moved before requires_grad_: the leaf is the tensor on the device
            t = to_device(torch.tensor(np.asarray(values[spec.name]), dtype=TORCH_DTYPES[dtype]), device)
            tensors.append(t.requires_grad_(spec.differentiated))
    return tensors


def run_autograd(case: Case, values: Mapping[str, np.ndarray],
                 weights: Callable[[tuple[int, ...]], np.ndarray | None], dtype: str, *,
                 repeat: int = 1, retain_graph: bool | None = None, device: Device | None = None) -> AutogradResult:
    """Forward, then ``y.backward(v)`` with ``v = weights(y.shape)`` (no argument when that is None).

    On ``device`` (None: the CPU) when given; the values come back to the CPU as float64.

    ``repeat`` > 1 calls backward again on the same graph, which shows
    accumulation into ``.grad`` (2x after two calls) or, without
    ``retain_graph``, torch's error about a freed graph.
    """
    result = AutogradResult()
    fn = torch_callable(case)
    tensors = make_leaves(case, values, dtype, device)
    names = [spec.name for spec in case.inputs]
    result.leaves = {n: (t.is_leaf, type(t.grad_fn).__name__ if t.grad_fn else None)
                     for n, t in zip(names, tensors)}
    recorder = OpRecorder() if device is not None and not device.is_cpu else None
    try:
        if recorder is None:
            y = fn(*tensors)
        else:
            with recorder:
                y = fn(*tensors)
    except Exception as exc:  # torch's own error is the result here
        result.error, result.error_stage = exc, "forward"
        return result
    finally:
        result.ops = recorder.ops if recorder is not None else {}
    if not isinstance(y, torch.Tensor):
        raise CaseError(f"the torch side returned a {type(y).__name__}, not a tensor", case=case.name,
                        hint="Make the expression return one tensor.")
    result.output = y.detach().cpu().to(torch.float64).numpy().copy() if y.is_floating_point() else None
    result.grad_fn = type(y.grad_fn).__name__ if y.grad_fn is not None else None
    result.output_shape = tuple(y.shape)
    result.complex_output = y.is_complex()
    result.weights = weights(tuple(y.shape))
    v = None if result.weights is None else torch.as_tensor(result.weights, dtype=y.dtype, device=y.device)
    if retain_graph is None:
        retain_graph = repeat > 1 and case.options.get("retain_graph", True)
    try:
        for i in range(repeat):
            y.backward(v, retain_graph=retain_graph if i < repeat - 1 else None)
            if i == 0:
                result.grads = _grads(names, tensors)
    except Exception as exc:
        result.error, result.error_stage = exc, "backward"
        return result
    if repeat > 1:
        result.accumulated = _grads(names, tensors)
    return result


def _grads(names, tensors) -> dict[str, np.ndarray]:
    out = {}
    for n, t in zip(names, tensors):
        if t.requires_grad and t.is_leaf:
            g = t.grad
            out[n] = np.zeros(tuple(t.shape)) if g is None else to_numpy(g)
    return out


def forward_float64(case: Case, structural: Mapping[str, np.ndarray],
                    device: Device | None = None) -> Callable[[Mapping[str, torch.Tensor]], torch.Tensor]:
    """The torch forward in float64 as ``f(floating inputs by name) -> output``, for finite differences.

    On the CPU unless ``device`` is given (``--fd-device``): then the inputs go
    to the device and the output comes back to the CPU.
    """
    fn = torch_callable(case)
    moved = device is not None and device.tensor.type != "cpu"

    def f(floats: Mapping[str, torch.Tensor]) -> torch.Tensor:
        args = []
        for spec in case.inputs:
            if spec.dtype is None:
                args.append(to_device(floats[spec.name], device))
            else:
                args.append(to_device(torch.tensor(np.asarray(structural[spec.name]),
                                                   dtype=TORCH_DTYPES[spec.dtype]), device))
        with torch.no_grad():
            y = fn(*args)
        return y.cpu() if moved and isinstance(y, torch.Tensor) else y
    return f


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """A gradient as a float64 array; torch's efficient zero tensors (sgn's backward at 0, ...) refuse .numpy()."""
    t = t.detach()
    if getattr(t, "_is_zerotensor", lambda: False)():
        return np.zeros(tuple(t.shape))
    return t.cpu().to(torch.float64).numpy().copy()     # copied to the CPU first: MPS has no float64
