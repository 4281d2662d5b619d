"""The device allowances: their numbers, where they apply, and that they never let a plainly wrong gradient pass."""

from __future__ import annotations

import numpy as np
import pytest

from verifier.cases.case import Tolerance
from verifier.verdict.compare import DEFAULT_TOLERANCES, within
from verifier.verdict.device_allowance import (
    TF32_EPS,
    TF32_RTOL,
    device_allowances,
    reduction_factor,
    widened,
)

F32, F16 = DEFAULT_TOLERANCES["float32"], DEFAULT_TOLERANCES["float16"]
ON = {"tf32_matmul": True, "tf32_cudnn": True, "fp16_reduced_precision_reduction": True,
      "bf16_reduced_precision_reduction": True}


def test_tf32_rtol_is_eps_tf32_to_the_two_thirds_rounded_up():
    assert TF32_EPS == 2.0 ** -10                  # 10 explicit mantissa bits
    assert TF32_EPS ** (2 / 3) <= TF32_RTOL < 1.1 * TF32_EPS ** (2 / 3)
    assert TF32_RTOL == F16.rtol                   # the same mantissa as float16, the same rule


@pytest.mark.parametrize("kind, dtype, flags, ops, expected", [
    ("cuda", "float32", ON, {"matmul": 8}, ["tf32_matmul"]),
    ("cuda", "float32", ON, {"linear": 8, "conv2d": 3}, ["tf32_matmul", "tf32_cudnn"]),
    ("cuda", "float32", {**ON, "tf32_matmul": False}, {"matmul": 8}, []),        # switched off
    ("cuda", "float32", ON, {"tanh": 8, "sum": 8}, []),                           # no GEMM ran
    ("cuda", "float64", ON, {"matmul": 8}, []),                                   # TF32 is float32 only
    ("cpu", "float32", ON, {"matmul": 8}, []),                                    # not a CUDA device
    ("mps", "float16", ON, {"matmul": 64}, []),
    ("cuda", "float16", ON, {"matmul": 64}, ["fp16_reduced_reduction"]),
    ("cuda", "bfloat16", ON, {"bmm": 64}, ["bf16_reduced_reduction"]),
    ("cuda", "float16", ON, {"matmul": 3}, []),                                   # rho(3) = 2/2: no widening
    ("cuda", "float16", ON, {"matmul": 4}, ["fp16_reduced_reduction"]),           # rho(4) = 3/2
    ("cuda", "float16", {**ON, "fp16_reduced_precision_reduction": False}, {"matmul": 64}, []),
])
def test_allowances_apply_only_where_they_can(kind, dtype, flags, ops, expected):
    tol = DEFAULT_TOLERANCES[dtype]
    assert [a.name for a in device_allowances(kind, dtype, flags, ops, tol)] == expected


def test_the_reduction_factor_is_sequential_over_pairwise_roundings():
    assert reduction_factor(1) == reduction_factor(2) == 1.0
    assert reduction_factor(64) == pytest.approx(63 / 6)
    assert reduction_factor(1000) == pytest.approx(999 / 10)
    (a,) = device_allowances("cuda", "float16", ON, {"matmul": 64}, F16)
    assert a.rtol == pytest.approx(F16.rtol * 63 / 6)


def test_a_case_tolerance_looser_than_tf32_is_kept():
    loose = Tolerance(rtol=0.05, atol=1e-6)
    assert device_allowances("cuda", "float32", ON, {"matmul": 8}, loose) == []
    assert widened(loose, []) == loose


def test_the_tf32_allowance_is_per_element_and_still_catches_a_wrong_value():
    """One large element does not widen the others; an error of 5 % fails at an element whose M is |exact|."""
    (tf32,) = device_allowances("cuda", "float32", ON, {"mm": 16}, F32)
    tol = widened(F32, [tf32])
    assert tol.atol == F32.atol and tol.rtol == TF32_RTOL
    exact = np.array([1.0, 1e6, 2.0])
    magnitude = np.abs(exact)
    right = exact * (1 + np.array([2e-3, -4e-3, 3e-3]))       # TF32-sized rounding: passes
    assert within(right, exact, tol, magnitude)[0].all()
    wrong = exact * np.array([1.05, 1.0, 1.0])                 # 5 % off at the small element, beside a large one
    assert within(wrong, exact, tol, magnitude)[0].tolist() == [False, True, True]
    assert not within(exact * (1 + 2e-3), exact, F32, magnitude)[0].any()   # float32 without TF32 catches it
