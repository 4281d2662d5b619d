"""The sectioned failure text for each way a case can fail (what the plugin and the API print)."""

from __future__ import annotations

import pytest

from verifier import Runner, make_case
from verifier.verdict.failure import describe, element

DTYPES = [pytest.param("float64", id="float64"), pytest.param("float32", id="float32")]


def _result(dtype="float64", **fields):
    name = fields.pop("name", "f.case")
    inputs = fields.pop("inputs", {"x": [[1.0, 2.0], [3.0, 4.0]]})
    return Runner().run(make_case(name, inputs, dtypes=[dtype], **fields), dtype)


@pytest.mark.parametrize("index, expected", [pytest.param("(0, 1)", "[0, 1]", id="matrix"),
                                             pytest.param("(3,)", "[3]", id="vector"),
                                             pytest.param("()", "", id="scalar")])
def test_elements_read_as_python_indexing(index, expected):
    assert element(index) == expected


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_wrong_expectation_alone_is_listed_under_other_checks(dtype):
    result = _result(dtype, forward="(3 * x).sum()", expect={"grad_fn": "MeanBackward0"})
    assert result.status == "fail"
    text = describe(result)
    assert text.startswith(f"Gradient check failed: case 'f.case' [{dtype}]")
    assert "Other failed checks\n  expect.grad_fn: expected grad_fn MeanBackward0, got SumBackward0" in text
    assert "Mismatched elements" not in text          # the gradient itself was right


def test_an_expected_error_that_was_not_raised():
    result = _result(forward="(3 * x).sum()", expect={"error": "grad can be implicitly created"})
    text = describe(result)
    assert "expect.error: expected torch to raise an error containing 'grad can be implicitly created'" in text


def test_large_inputs_are_described_not_printed():
    result = _result(inputs={"x": {"shape": [50], "sample": "normal", "seed": 7}},
                     torch="(2 * x**2).sum()", sympy="(x**2).sum()")
    text = describe(result)
    assert "x: shape [50], float64, sampled normal (seed 7)" in text
    assert "Mismatched elements: 50 / 50 (100%)" in text
    first = text.split("First mismatching elements\n")[1].splitlines()
    assert len([line for line in first if line.startswith("  x[")]) == 5        # the first five only


def test_a_scalar_input():
    result = _result(inputs={"x": 1.5}, torch="2 * x**2", sympy="x**2")
    text = describe(result)
    assert "x: shape [], float64, values 1.5" in text
    assert "Max absolute difference: 3 at x\n" in text
