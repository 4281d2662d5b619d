"""Every check catches a deliberately wrong gradient, next to a right one that passes."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
import torch

from verifier import Runner, make_case

X = [[0.5, -1.25], [2.0, 0.75]]


class WrongExp(torch.autograd.Function):
    """exp whose backward is off by a factor `scale` on one element."""

    scale = 1.001

    @staticmethod
    def forward(ctx, x):
        y = x.exp()
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        grad = g * y
        grad[0, 1] = grad[0, 1] * WrongExp.scale
        return grad


def sym_exp(x):
    return np.vectorize(sp.exp, otypes=[object])(x)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gradient_check_catches_one_wrong_element(dtype):
    case = make_case("t.wrong_exp", {"x": X}, torch=WrongExp.apply, sympy=sym_exp,
                     grad_output="random", dtypes=[dtype])
    r = Runner().run(case, dtype)
    assert r.status == "fail"
    bad = r.rows[~r.rows["ok"]]
    assert list(bad["index"]) == ["(0, 1)"]
    row = bad.iloc[0]
    assert row["rel_err"] == pytest.approx(1e-3, rel=1e-2)
    assert "1 / 4 (25%)" in r.message


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gradient_check_passes_the_right_twin(dtype):
    case = make_case("t.right_exp", {"x": X}, torch=torch.exp, sympy=sym_exp, grad_output="random")
    r = Runner().run(case, dtype)
    assert r.status == "pass", r.message
    assert r.rows["ok"].all() and r.rows["fd_ok"].all()


def test_forward_check_catches_a_wrong_forward():
    case = make_case("t.fwd", {"x": X}, torch=lambda x: x.exp() * 1.01, sympy=sym_exp, grad_output="ones")
    r = Runner().run(case, "float64")
    assert r.status == "fail" and "forward" in r.message


@pytest.mark.parametrize("field, value, right", [
    pytest.param("grad_fn", "MulBackward0", "ExpBackward0", id="grad_fn"),
    pytest.param("output", 1.0, None, id="output"),
    pytest.param("grad", {"x": [[1.0, 1.0], [1.0, 1.0]]}, None, id="grad"),
])
def test_expect_fields_catch_wrong_statements(field, value, right):
    wrong = make_case("t.expect", {"x": X}, forward="x.exp()", grad_output="ones", expect={field: value})
    r = Runner().run(wrong, "float64")
    assert r.status == "fail" and f"expect.{field}" in r.message
    if right is not None:
        ok = make_case("t.expect_ok", {"x": X}, forward="x.exp()", grad_output="ones", expect={field: right})
        assert Runner().run(ok, "float64").status == "pass"


def test_expect_grad_and_output_pass_when_right():
    ok = make_case("t.expect_ok", {"x": [[1.0, 1.0], [1.0, 1.0]]}, forward="(3*(x+2)**2).mean()",
                   expect={"grad": {"x": [[4.5, 4.5], [4.5, 4.5]]}, "output": 27.0})
    assert Runner().run(ok, "float64").status == "pass"


def test_expect_error_fails_when_nothing_is_raised():
    case = make_case("t.noerr", {"x": X}, forward="x.sum()", expect={"error": "only for scalar"})
    r = Runner().run(case, "float64")
    assert r.status == "fail" and "nothing was raised" in r.message


def test_expect_error_fails_on_a_different_error():
    case = make_case("t.othererr", {"x": X}, forward="x * 3", expect={"error": "something else"})
    assert Runner().run(case, "float64").status == "fail"


def test_accumulation_is_checked_and_a_wrong_repeat_count_is_caught(monkeypatch):
    case = make_case("t.acc", {"x": X}, forward="x.exp().sum()", backward={"repeat": 2})
    r = Runner().run(case, "float64")
    assert r.status == "pass", r.message
    np.testing.assert_allclose(r.autograd.accumulated["x"], 2 * r.exact.vjp["x"])
    # a .grad that does not accumulate must be caught
    import verifier.torch_side.autograd as ag
    monkeypatch.setattr(ag, "_grads", lambda names, tensors: {"x": r.autograd.grads["x"]})
    assert Runner().run(case, "float64").status == "fail"


def test_runtime_errors_are_results_not_crashes():
    bad_shape = make_case("t.bcast", {"x": [1.0, 2.0], "y": [1.0, 2.0, 3.0]}, forward="(x * y).sum()")
    bad_v = make_case("t.badv", {"x": [1.0, 2.0]}, forward="x * 2", grad_output=[1.0, 2.0, 3.0])
    for case in (bad_shape, bad_v):
        r = Runner().run(case, "float64")
        assert r.status == "error"
        assert "torch raised" in r.message
