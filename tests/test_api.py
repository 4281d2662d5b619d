"""verifier.assert_gradients on custom autograd Functions: right ones pass, wrong ones are caught."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
import torch
import torch.nn.functional as F

import verifier
from verifier import CaseError, GradientMismatch, UnknownFunctionError, assert_gradients

DTYPES = [pytest.param("float64", id="float64"), pytest.param("float32", id="float32")]


class Softplus(torch.autograd.Function):
    """log(1 + e^x), with the textbook derivative sigmoid(x)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.log1p(torch.exp(x))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * torch.sigmoid(x)


class SoftplusOffByAThousandth(Softplus):
    """The same forward; a backward 0.1 % too large."""

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * torch.sigmoid(x) * 1.001


class LeakyWrongSlope(torch.autograd.Function):
    """leaky_relu(x, 0.1) whose backward uses slope 0.2 on the negative side."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.where(x > 0, x, 0.1 * x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * torch.where(x > 0, torch.ones_like(x), torch.full_like(x, 0.2))


class BackwardRaises(Softplus):
    @staticmethod
    def backward(ctx, grad):
        raise RuntimeError("backward is not implemented yet")


def softplus_definition(x):
    """The mathematical definition, element by element."""
    return np.vectorize(lambda e: sp.log(1 + sp.exp(e)), otypes=[object])(x)


def leaky_definition(x):
    return np.vectorize(lambda e: sp.Piecewise((e, e > 0), (e / 10, True)), otypes=[object])(x)


X = torch.tensor([[0.5, -1.25, 2.0, -0.125], [1.5, -2.5, 0.25, 3.0], [-0.75, 0.0625, -3.0, 1.0]])


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_right_custom_function_passes(dtype):
    out = assert_gradients(Softplus.apply, softplus_definition, {"x": X}, grad_output="random", dtypes=(dtype,))
    assert list(out.summary["status"]) == ["pass"]
    assert list(out.summary["case"]) == ["Softplus.apply"]
    assert len(out.details) == X.numel() and out.details["ok"].all()
    exact = 1 / (1 + np.exp(-X.double().numpy()))          # sigmoid: d softplus / dx
    weights = np.random.default_rng(0).normal(size=X.shape)
    np.testing.assert_allclose(out.details["exact"].to_numpy(), (exact * _rounded(weights, dtype)).ravel(),
                               rtol=1e-12)


def _rounded(values, dtype):
    return torch.as_tensor(values, dtype=getattr(torch, dtype)).double().numpy()


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_wrong_custom_function_is_caught(dtype):
    with pytest.raises(GradientMismatch) as info:
        assert_gradients(SoftplusOffByAThousandth.apply, softplus_definition, {"x": X},
                         grad_output="random", dtypes=(dtype,))
    err = info.value
    assert isinstance(err, AssertionError)
    text = str(err)
    assert f"Gradient check failed: case 'SoftplusOffByAThousandth.apply' [{dtype}]" in text
    assert "Mismatched elements: 12 / 12 (100%)" in text
    assert "Max relative difference: 0.001 at x[" in text
    assert "Finite differences agree with exact on 12 / 12 mismatched elements" in text
    assert list(err.tables.summary["status"]) == ["fail"]
    rel = err.tables.details["rel_err"].to_numpy()
    np.testing.assert_allclose(rel, 1e-3, rtol=1e-3)        # every element is off by exactly 0.1 %


def test_only_the_wrong_elements_are_counted():
    with pytest.raises(GradientMismatch) as info:
        assert_gradients(LeakyWrongSlope.apply, leaky_definition, {"x": X}, grad_output="ones")
    negative = int((X < 0).sum())
    assert f"Mismatched elements: {negative} / 12 ({100 * negative / 12:.0f}%)" in str(info.value)
    bad = info.value.tables.details[~info.value.tables.details["ok"]]
    assert bad["exact"].tolist() == [0.1] * negative and bad["autograd"].tolist() == pytest.approx([0.2] * negative)


def test_sympy_fn_may_be_omitted_when_every_call_has_a_mirror():
    out = assert_gradients(Softplus.apply, {"x": X}, grad_output="random")      # forward traced on symbols
    assert list(out.summary["status"]) == ["pass"]
    with pytest.raises(GradientMismatch, match="Mismatched elements: 12 / 12"):
        assert_gradients(SoftplusOffByAThousandth.apply, inputs={"x": X}, grad_output="random")


def test_a_traced_plain_function_with_two_inputs_and_a_constant():
    w = torch.tensor([[0.5, -1.0], [2.0, 0.25], [-0.5, 1.5], [1.0, 1.0]])
    scale = {"value": [2.0, 3.0], "requires_grad": False}
    out = assert_gradients(lambda x, w, s: F.softmax(torch.tanh(x @ w) * s, dim=1), None,
                           {"x": X, "w": w, "s": scale}, grad_output=torch.ones(3, 2) * 0.5,
                           dtypes=("float64", "float32"))
    assert list(out.summary["status"]) == ["pass", "pass"]
    assert set(out.details["input"]) == {"x", "w"}                          # s is a constant


def test_index_inputs_stay_integer():
    index = torch.tensor([0, 2, 2])
    out = assert_gradients(lambda x, i: (x[i] ** 2).sum(), None, {"x": X[0], "i": index})
    assert out.details["exact"].tolist() == pytest.approx([1.0, 0.0, 8.0, 0.0])   # x[2] picked twice


def test_an_unmirrored_call_without_sympy_fn_is_misuse():
    with pytest.raises(UnknownFunctionError, match="calls 'spherical_bessel_j0', which has no symbolic mirror") as info:
        assert_gradients(lambda x: torch.special.spherical_bessel_j0(x).sum(), None, {"x": X + 5})
    assert isinstance(info.value, ValueError) and not isinstance(info.value, AssertionError)
    assert "sympy_fn" in str(info.value)


def test_a_backward_that_raises_is_reported_as_a_failed_check():
    with pytest.raises(GradientMismatch, match="(?s)could not run.*backward is not implemented yet"):
        assert_gradients(BackwardRaises.apply, softplus_definition, {"x": X}, grad_output="ones")


@pytest.mark.parametrize("bad, message", [
    pytest.param({"x": "abc"}, "input 'x' is not numeric", id="string"),
    pytest.param(None, "needs inputs", id="missing"),
])
def test_bad_inputs_are_misuse(bad, message):
    with pytest.raises(CaseError, match=message):
        assert_gradients(Softplus.apply, softplus_definition, bad)


def test_tolerance_override_is_used():
    loose = {"float64": (1e-2, 0.0)}
    out = assert_gradients(SoftplusOffByAThousandth.apply, softplus_definition, {"x": X}, tolerance=loose,
                           grad_output="ones")
    assert list(out.summary["status"]) == ["pass"]


def test_exported_from_the_package():
    assert verifier.assert_gradients is assert_gradients
    assert verifier.ResultTables is type(assert_gradients(lambda x: (x * x).sum(), None, {"x": [1.0, 2.0]}))
