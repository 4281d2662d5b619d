"""Loading case files: good files give Cases, bad ones give one-line errors with file, line and case."""

from __future__ import annotations

import pytest

from verifier import load_file, make_case
from verifier.case import InputSpec

GOOD = """
defaults:
  dtypes: [float64, float32]
cases:
  - name: a.exp
    inputs:
      x: [[1.0, 2.0], [3.0, 4.0]]
      w: {shape: [2, 2], sample: normal, seed: 3}
      c: {shape: [2], fill: 0.5, requires_grad: false}
      i: {value: [1, 0], dtype: int64}
    forward: (x * w).exp().sum(dim=0) * c
    grad_output: ones
    tolerance: {float32: {rtol: 1e-4, atol: 1e-6}}
    expect: {grad_fn: MulBackward0}
"""


def test_a_good_file_loads_every_field(write_case):
    result = load_file(write_case(GOOD))
    assert not result.errors
    (case,) = result.cases
    assert case.dtypes == ("float64", "float32")
    assert [s.name for s in case.inputs] == ["x", "w", "c", "i"]
    assert case.input("c").requires_grad is False and case.input("i").dtype == "int64"
    assert case.input("w").values().shape == (2, 2)
    assert case.tolerance["float32"].rtol == 1e-4
    assert case.expect.grad_fn == "MulBackward0"
    assert case.source.endswith("case.yaml:5")


def test_python_and_yaml_give_the_same_case(write_case):
    from_file = load_file(write_case(GOOD)).cases[0]
    from_python = make_case(
        "a.exp",
        {"x": [[1.0, 2.0], [3.0, 4.0]], "w": {"shape": [2, 2], "sample": "normal", "seed": 3},
         "c": {"shape": [2], "fill": 0.5, "requires_grad": False}, "i": {"value": [1, 0], "dtype": "int64"}},
        forward="(x * w).exp().sum(dim=0) * c", grad_output="ones", dtypes=["float64", "float32"],
        tolerance={"float32": {"rtol": 1e-4, "atol": 1e-6}}, expect={"grad_fn": "MulBackward0"})
    assert from_python.source is None
    import dataclasses
    assert from_python == dataclasses.replace(from_file, source=None)


BAD = [
    pytest.param("cases:\n  - name: a\n    inputs: {x: [1.0}\n", "invalid YAML", 3, id="malformed-yaml"),
    pytest.param("cases:\n  - name: a\n    inputs: {x: 1.0}\n    forward: sofmax(x)\n",
                 "unknown function 'sofmax' at column 1 (did you mean 'softmax'?)", 4, id="unknown-function"),
    pytest.param("cases:\n  - name: a\n    forward: x\n", "'inputs' is a required field", 2, id="missing-field"),
    pytest.param("cases:\n  - name: a\n    inputs: {x: 1.0}\n    inputs: {x: 2.0}\n    forward: x\n",
                 "duplicate key 'inputs'", 4, id="duplicate-key"),
    pytest.param("cases:\n  - name: a\n    inputs: {x: 1.0}\n    froward: x\n",
                 "unknown field 'froward' (did you mean 'forward'?)", 4, id="unknown-field"),
    pytest.param("cases:\n  - name: a\n    inputs: {x: {value: [1.0, 2.0], shape: [3]}}\n    forward: x\n",
                 "says shape [3] but its value has shape [2]", 3, id="shape-contradiction"),
    pytest.param("cases:\n  - name: a\n    inputs: {x: [[1.0, 2.0], [3.0]]}\n    forward: x\n",
                 "ragged", 3, id="ragged"),
    pytest.param("cases:\n  - name: a\n    inputs: {x: {value: [0.0, 1.0], domain: [0, .inf]}}\n    forward: log(x)\n",
                 "outside its declared domain", 3, id="outside-domain"),
    pytest.param("cases:\n  - name: a\n    inputs: {x: 1.0}\n    dtypes: [float8]\n    forward: x\n",
                 "float8", 4, id="bad-dtype"),
    pytest.param("cases:\n  - name: a\n    inputs: {x: 1.0}\n    forward: x.__class__\n",
                 "the attribute '.__class__' at column 3 is not allowed", 4, id="refused-expression"),
    pytest.param("cases:\n  - name: a\n    inputs: {x: 1.0}\n    forward: y + 1\n",
                 "unknown name 'y' at column 1", 4, id="unknown-input"),
    pytest.param("- just a list\n", "must hold a mapping", None, id="not-a-mapping"),
    pytest.param("cases:\n  - name: a\n    inputs: {x: 1.0}\n    forward: x\n    expect: {grad: {z: 1.0}}\n",
                 "expect.grad names 'z'", 5, id="expect-unknown-input"),
]


@pytest.mark.parametrize("text, words, line", BAD)
def test_bad_files_give_one_line_errors(write_case, text, words, line):
    path = write_case(text)
    result = load_file(path)
    assert not result.cases
    (err,) = result.errors
    message = str(err)
    assert words in message
    assert "\n" not in message and "Traceback" not in message
    assert message.startswith(str(path) + (f":{line}:" if line else ":"))
    if "name: a" in text and line is not None and "invalid YAML" not in words and "duplicate" not in words:
        assert "case 'a'" in message


def test_one_broken_case_leaves_the_others_loadable(write_case):
    text = GOOD + "  - name: b.bad\n    inputs: {x: 1.0}\n    forward: nosuch(x)\n"
    result = load_file(write_case(text))
    assert [c.name for c in result.cases] == ["a.exp"]
    assert "case 'b.bad'" in str(result.errors[0])


def test_uniform_sampling_defaults_to_the_domain():
    spec = InputSpec("x", (1000,), sample="uniform", domain=(1.0, 3.0))
    values = spec.values()
    assert values.min() > 1.0 and values.max() < 3.0
