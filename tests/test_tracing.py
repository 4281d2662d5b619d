"""Tracing torch functions on symbols gives what the same case expression gives."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
import torch
import torch.nn.functional as F

from verifier.cases.language import parse
from verifier.errors import ExpressionError, SymbolicError, UnknownFunctionError
from verifier.exact.evaluation import Evaluator
from verifier.exact.symbolic import SymbolicReading, element_symbols
from verifier.exact.tracing import SymbolicArray, trace

X = element_symbols("x", (2, 3))
W = element_symbols("w", (3,))
POINT = dict(zip([*X.ravel(), *W.ravel()], [0.3, -1.2, 0.7, 1.9, -0.4, 0.05, 0.6, -0.8, 1.1]))

SAME_AS_EXPRESSION = [
    pytest.param("F.softmax(x, dim=1)", lambda x, w: F.softmax(x, dim=1), id="softmax"),
    pytest.param("(3*(x+2)**2).mean()", lambda x, w: (3 * (x + 2) ** 2).mean(), id="seed-mean"),
    pytest.param("torch.tanh(x) @ w", lambda x, w: torch.tanh(x) @ w, id="matmul"),
    pytest.param("F.relu(x).sum(dim=0)", lambda x, w: F.relu(x).sum(dim=0), id="relu-inplace-kwarg"),
    pytest.param("torch.where(x > 0, x, 0.5 * x)", lambda x, w: torch.where(x > 0, x, 0.5 * x), id="where"),
    pytest.param("x[0] * w - w / 2", lambda x, w: x[0] * w - w / 2, id="index-and-operators"),
    pytest.param("F.mse_loss(x[1], w)", lambda x, w: F.mse_loss(x[1], w), id="mse-weight-kwarg"),
    pytest.param("torch.max(x, dim=1)", lambda x, w: torch.max(x, dim=1).values, id="max-values"),
    pytest.param("torch.special.expit(x).T", lambda x, w: torch.special.expit(x).T, id="special-prefix"),
    pytest.param("F.gelu(x, approximate='tanh')", lambda x, w: F.gelu(x, approximate="tanh"), id="gelu-tanh"),
    pytest.param("torch.linalg.vector_norm(w)", lambda x, w: torch.linalg.vector_norm(w), id="linalg-prefix"),
    pytest.param("2 - x", lambda x, w: 2 - x, id="reflected"),
    pytest.param("x.exp().log1p().sum(1)", lambda x, w: x.exp().log1p().sum(1), id="methods"),
    pytest.param("torch.cat([w, w]) * 2", lambda x, w: torch.cat([w, w]) * 2, id="list-argument"),
]


def _values(arr):
    ev = Evaluator(POINT)
    return np.array([float(ev(e)) for e in np.asarray(arr, dtype=object).ravel()])


@pytest.mark.parametrize("source, fn", SAME_AS_EXPRESSION)
def test_traced_function_matches_the_case_expression(source, fn):
    expected = parse(source, variables=frozenset({"x", "w"})).evaluate(SymbolicReading({"x": X, "w": W}))
    expected = np.asarray(expected, dtype=object)
    got = trace(fn)(X, W)
    assert got.shape == expected.shape
    np.testing.assert_allclose(_values(got), _values(expected), rtol=1e-15)


@pytest.mark.parametrize("dtype", [pytest.param(torch.float64, id="float64"), pytest.param(torch.float32, id="float32")])
def test_constant_tensors_enter_as_their_exact_values(dtype):
    t = torch.tensor([1.0, 2.0, 0.1], dtype=dtype)
    got = trace(lambda x, w: t * w)(X, W)
    assert got[2] == sp.Rational(float(t[2])) * W[2]        # the binary value torch holds, exactly


def test_a_tensor_answers_shape_questions():
    a = SymbolicArray(X)
    assert a.shape == torch.Size([2, 3]) and a.size(1) == 3 and a.dim() == 2 and a.numel() == 6
    assert a.dtype == torch.float64 and len(a) == 2


@pytest.mark.parametrize("fn, error, match", [
    pytest.param(lambda x, w: torch.special.spherical_bessel_j0(x), UnknownFunctionError, "calls 'spherical_bessel_j0'",
                 id="no-mirror"),
    pytest.param(lambda x, w: x.detach(), UnknownFunctionError, "calls 'Tensor.detach'", id="detach"),
    pytest.param(lambda x, w: x.add_(1), SymbolicError, "in-place 'add_'", id="in-place"),
    pytest.param(lambda x, w: x if x.sum() > 0 else w, SymbolicError, "branched on a tensor value", id="branch"),
    pytest.param(lambda x, w: F.relu(x, inplace=True), ExpressionError, "no argument 'inplace'", id="kwarg"),
    pytest.param(lambda x, w: (x, w), SymbolicError, "returned a tuple", id="tuple"),
])
def test_what_cannot_be_traced_says_so(fn, error, match):
    with pytest.raises(error, match=match):
        trace(fn)(X, W)
