"""torch returns an efficient zero tensor as some gradients (sgn's); it is checked like any other, not a crash."""

from __future__ import annotations

import torch

from verifier import Runner, make_case


class SignWithSlope(torch.autograd.Function):
    """sign(x) with a made-up slope of 1 in backward: a wrong gradient where the true one is 0."""

    @staticmethod
    def forward(ctx, x):
        return torch.sgn(x)

    @staticmethod
    def backward(ctx, g):
        return g


def test_a_zero_tensor_gradient_is_checked_and_passes():
    case = make_case("zt.sgn", {"x": [1.5, -2.0, 0.25]}, forward="torch.sgn(x)", grad_output="random")
    for dtype in ("float64", "float32"):
        result = Runner(cache=False).run(case, dtype)
        assert result.status == "pass", result.message


def test_a_wrong_gradient_where_torch_would_give_a_zero_tensor_is_caught():
    case = make_case("zt.bad", {"x": [1.5, -2.0, 0.25]}, torch=SignWithSlope.apply, sympy="torch.sgn(x)",
                     grad_output="random")
    assert Runner(cache=False).run(case, "float64").status == "fail"
