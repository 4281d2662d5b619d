"""The torch side of a complex case: complex leaves, ``y.backward(v)`` with complex ``v``, complex ``.grad``.

Which inputs are complex, and at which precision, follows docs/complex.md:
under a complex case dtype every floating input is complex of that dtype
(``dtype: real`` keeps one real, at the matching real precision); an input
declared ``dtype: complex64|complex128`` is complex at that dtype whatever
the case dtype. Values, weights and gradients travel as complex128 (or
float64) numpy arrays.
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
import torch

from ..cases.case import COMPLEX_DTYPES, Case
from .autograd import TORCH_DTYPES, AutogradResult, torch_callable

COMPLEX_TORCH = {"complex64": torch.complex64, "complex128": torch.complex128, "complex32": torch.complex32}


def is_complex_run(case: Case, dtype: str) -> bool:
    """Whether this case × dtype takes the complex route (a complex dtype, or an input declared complex)."""
    return dtype in COMPLEX_DTYPES or any(spec.number in COMPLEX_DTYPES for spec in case.inputs)


def real_dtype(dtype: str) -> str:
    """The real dtype of a dtype's parts (float32 for complex64; a real dtype is its own)."""
    return COMPLEX_DTYPES.get(dtype, dtype)


def input_dtypes(case: Case, dtype: str) -> dict[str, str]:
    """The dtype name of each floating input in this run."""
    out = {}
    for spec in case.inputs:
        if spec.dtype is not None:
            continue
        if spec.number in COMPLEX_DTYPES:
            out[spec.name] = spec.number
        elif spec.number == "real":
            out[spec.name] = real_dtype(dtype)
        else:
            out[spec.name] = dtype
    return out


def tolerance_dtype(case: Case, dtype: str) -> str:
    """The coarsest real precision among the run's inputs: its epsilon sets the allowance."""
    order = ("float64", "float32", "bfloat16", "float16")
    parts = [real_dtype(d) for d in input_dtypes(case, dtype).values()] or [real_dtype(dtype)]
    parts.append(real_dtype(dtype))
    return max(parts, key=lambda d: order.index(d) if d in order else 0)


def torch_dtype(name: str) -> torch.dtype:
    return COMPLEX_TORCH.get(name) or TORCH_DTYPES[name]


def rounded(values: np.ndarray, name: str) -> np.ndarray:
    """``values`` as dtype ``name`` holds them, back in complex128 (or float64), exactly."""
    t = torch.as_tensor(np.asarray(values), dtype=torch_dtype(name))
    return t.to(torch.complex128 if t.is_complex() else torch.float64).numpy().copy()


def as_numpy(t: torch.Tensor) -> np.ndarray:
    """A tensor as complex128 (complex) or float64 numpy; torch's efficient zero tensors as zeros."""
    t = t.detach().resolve_conj().resolve_neg()      # torch.conj returns a lazily conjugated view
    if getattr(t, "_is_zerotensor", lambda: False)():
        return np.zeros(tuple(t.shape), dtype=np.complex128 if t.is_complex() else np.float64)
    return t.to(torch.complex128 if t.is_complex() else torch.float64).numpy().copy()


def run_complex_autograd(case: Case, values: Mapping[str, np.ndarray], dtypes: Mapping[str, str],
                         weights: Callable[[tuple[int, ...], bool], np.ndarray | None]) -> AutogradResult:
    """Forward with complex leaves, then ``y.backward(v)``; ``weights(shape, complex_output)`` gives v."""
    result = AutogradResult()
    fn = torch_callable(case)
    tensors = []
    for spec in case.inputs:
        if spec.dtype is not None:
            tensors.append(torch.tensor(np.asarray(values[spec.name]), dtype=TORCH_DTYPES[spec.dtype]))
        else:
            t = torch.tensor(np.asarray(values[spec.name]), dtype=torch_dtype(dtypes[spec.name]))
            tensors.append(t.requires_grad_(spec.differentiated))
    names = [spec.name for spec in case.inputs]
    result.leaves = {n: (t.is_leaf, type(t.grad_fn).__name__ if t.grad_fn else None) for n, t in zip(names, tensors)}
    try:
        y = fn(*tensors)
    except Exception as exc:
        result.error, result.error_stage = exc, "forward"
        return result
    if not isinstance(y, torch.Tensor):
        result.error, result.error_stage = TypeError(f"the torch side returned a {type(y).__name__}"), "forward"
        return result
    result.output = as_numpy(y) if (y.is_floating_point() or y.is_complex()) else None
    result.grad_fn = type(y.grad_fn).__name__ if y.grad_fn is not None else None
    result.output_shape = tuple(y.shape)
    w = weights(tuple(y.shape), y.is_complex())
    v = None
    if w is not None:
        if np.iscomplexobj(w) and not y.is_complex() and np.any(np.imag(w) != 0):
            result.error, result.error_stage = ValueError(
                "grad_output is complex but the output is real: give real weights"), "backward"
            return result
        v = torch.as_tensor(w if y.is_complex() else np.real(w), dtype=y.dtype)
        result.weights = as_numpy(v)
    try:
        y.backward(v)
    except Exception as exc:
        result.error, result.error_stage = exc, "backward"
        return result
    for n, t in zip(names, tensors):
        if t.requires_grad and t.is_leaf:
            result.grads[n] = np.zeros(tuple(t.shape)) if t.grad is None else as_numpy(t.grad)
    return result


def forward_double(case: Case, dtypes: Mapping[str, str], structural: Mapping[str, np.ndarray]):
    """The torch forward in complex128/float64, ``f(values by name) -> output``, for finite differences."""
    fn = torch_callable(case)

    def f(values: Mapping[str, np.ndarray]) -> torch.Tensor:
        args = []
        for spec in case.inputs:
            if spec.dtype is not None:
                args.append(torch.tensor(np.asarray(structural[spec.name]), dtype=TORCH_DTYPES[spec.dtype]))
            else:
                wide = torch.complex128 if dtypes[spec.name] in COMPLEX_DTYPES else torch.float64
                args.append(torch.tensor(np.asarray(values[spec.name]), dtype=wide))
        with torch.no_grad():
            return fn(*args)
    return f
