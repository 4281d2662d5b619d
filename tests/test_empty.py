"""Issue 12 item 6: tensors with zero elements are checked like any other.

torch handles empty inputs and outputs (the gradient of a zero-element input
has zero elements; an empty output gives every input a zero gradient). The
exact side, the finite differences, the tables and the report follow: zero
elements to compare is a pass, and a wrong gradient next to an empty tensor
is still caught.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import verifier
from verifier.cases.loading import case_from_mapping
from verifier.cli import main
from verifier.run.runner import Runner


def run(inputs, forward, dtype="float64"):
    case = case_from_mapping({"name": "t.empty", "inputs": inputs, "forward": forward, "grad_output": "random"})
    return Runner(cache=None).run(case, dtype)


def normal(*shape, seed=1):
    return {"shape": list(shape), "sample": "normal", "seed": seed}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("inputs, forward, rows", [
    pytest.param({"x": normal(0)}, "cos(x)", 0, id="shape-0"),
    pytest.param({"x": normal(3, 0)}, "cos(x) * 2", 0, id="shape-3x0"),
    pytest.param({"x": normal(3)}, "x.repeat((0,))", 3, id="repeat-0"),
    pytest.param({"x": normal(0)}, "x.sum()", 0, id="sum-of-nothing"),
    pytest.param({"a": normal(2, 0), "b": normal(0, 3, seed=2)}, "a @ b", 0, id="matmul-inner-0"),
    pytest.param({"x": normal(3), "e": normal(0, seed=2)}, "torch.cat([x, e]).exp()", 3, id="cat-with-empty"),
])
def test_empty_tensors_are_checked_and_pass(inputs, forward, rows, dtype):
    result = run(inputs, forward, dtype)
    assert result.status == "pass", result.message
    assert len(result.rows) == rows
    for name, spec in inputs.items():
        assert result.autograd.grads[name].shape == tuple(spec["shape"])


def test_the_empty_output_gives_exact_zero_gradients():
    result = run({"x": normal(3)}, "x.repeat((0,))")
    np.testing.assert_array_equal(result.exact.vjp["x"], np.zeros(3))


class _WrongBackward(torch.autograd.Function):
    """x.repeat(0) with a backward that claims a gradient of ones: wrong (the output is empty)."""

    @staticmethod
    def forward(ctx, x):
        return x.repeat(0)

    @staticmethod
    def backward(ctx, g):
        return torch.ones(3, dtype=g.dtype)


def test_a_wrong_gradient_behind_an_empty_output_is_caught():
    case = verifier.make_case("t.empty_wrong", {"x": normal(3)}, torch=_WrongBackward.apply,
                              sympy="x.repeat((0,))", grad_output="random")
    result = Runner(cache=None).run(case, "float64")
    assert result.status == "fail"
    assert "gradient" in result.message


def test_reports_are_written_for_empty_cases(tmp_path):
    (tmp_path / "empty.yaml").write_text(
        "cases:\n"
        "  - name: empty.vector\n"
        "    inputs: {x: {shape: [0], sample: normal, seed: 1}}\n"
        "    forward: cos(x)\n"
        "    grad_output: random\n"
        "  - name: empty.output\n"
        "    inputs: {x: {shape: [2, 3], sample: normal, seed: 1}}\n"
        "    forward: x[:, 0:0].exp()\n"
        "    grad_output: random\n", encoding="utf-8")
    reports = tmp_path / "reports"
    assert main(["run", str(tmp_path / "empty.yaml"), "--report-dir", str(reports)]) == 0
    html = (reports / "report.html").read_text(encoding="utf-8")
    assert "empty.vector" in html and "empty.output" in html
    assert "empty.output" in (reports / "details.csv").read_text(encoding="utf-8")
