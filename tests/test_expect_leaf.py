"""`expect: {leaf: true}` / `grad_fn: null` for leaf outputs, and expect checks that report their own errors."""

from __future__ import annotations

import pytest

from verifier import Runner
from verifier.cases.loading import load_file

CASES = """
cases:
  - name: leaf.{label}
    inputs: {{x: [1.0, 2.0]}}
    forward: {forward}
    grad_output: ones
    expect: {expect}
"""


def _run(tmp_path, label, forward, expect):
    path = tmp_path / f"{label}.yaml"
    path.write_text(CASES.format(label=label, forward=forward, expect=expect), encoding="utf-8")
    loaded = load_file(path)
    assert not loaded.errors, loaded.errors
    return Runner(forward_mode=False, second_order=False).run(loaded.cases[0], "float64")


@pytest.mark.parametrize("expect", ["{leaf: true}", "{grad_fn: null}", "{grad_fn: None}"])
def test_a_leaf_output_can_be_expected(tmp_path, expect):
    right = _run(tmp_path, "right", "x", expect)
    assert right.status == "pass", right.message
    wrong = _run(tmp_path, "wrong", "x * 1", expect)          # not a leaf: MulBackward0
    assert wrong.status == "fail" and "expected a leaf output (no grad_fn), got grad_fn MulBackward0" in wrong.message


def test_a_wrong_stated_gradient_reports_its_own_error(tmp_path):
    result = _run(tmp_path, "stated", "(x**2).sum()", "{grad: {x: [2.0, 5.0]}}")
    assert result.status == "fail"
    check = next(c for c in result.checks if c.name == "expect.grad[x]")
    assert check.max_abs_err == pytest.approx(1.0) and check.max_rel_err == pytest.approx(0.25)
    right = _run(tmp_path, "stated_ok", "(x**2).sum()", "{grad: {x: [2.0, 4.0]}, output: 5.0}")
    assert right.status == "pass"
    assert all(c.max_abs_err == 0 for c in right.checks if c.name.startswith("expect."))
