"""Issue 12 item 11: torch's own signatures and shape rules, or a sentence saying what is unsupported."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from verifier.cases.loading import case_from_mapping
from verifier.exact import mirror
from verifier.run.runner import Runner

X = [[1.0, -2.0, 0.5], [3.0, 0.25, -1.5]]


def run(forward, x=X, dtype="float64"):
    case = case_from_mapping({"name": "t.signature", "inputs": {"x": x}, "forward": forward,
                              "grad_output": "random"})
    return Runner(cache=None).run(case, dtype)


@pytest.mark.parametrize("forward, torch_value", [
    ("torch.linalg.norm(x, None)", lambda t: torch.linalg.norm(t, None)),
    ("torch.flip(x, dims=(0, 1))", lambda t: torch.flip(t, dims=(0, 1))),
    ("x.flip(dims=(1,))", lambda t: t.flip(dims=(1,))),
    ("torch.permute(x, dims=(1, 0))", lambda t: torch.permute(t, dims=(1, 0))),
    ("x.permute(1, 0)", lambda t: t.permute(1, 0)),
    ("torch.reshape(x, shape=(3, 2))", lambda t: torch.reshape(t, shape=(3, 2))),
    ("x.view(size=(6,))", lambda t: t.view(size=(6,))),
    ("x.repeat(repeats=(2, 1))", lambda t: t.repeat(repeats=(2, 1))),
    ("x[0:1].expand(size=(3, 3))", lambda t: t[0:1].expand(size=(3, 3))),
    ("torch.squeeze(x.unsqueeze(0), ())", lambda t: torch.squeeze(t.unsqueeze(0), ())),
    ("torch.squeeze(x.unsqueeze(0))", lambda t: torch.squeeze(t.unsqueeze(0))),
    ("torch.index_select(x[0, 1], 0, idx)", lambda t: torch.index_select(t[0, 1], 0, torch.tensor([0]))),
    ("torch.linalg.vector_norm(x, 0)", lambda t: torch.linalg.vector_norm(t, 0)),
    ("torch.linalg.vector_norm(x, -1.5, dim=1)", lambda t: torch.linalg.vector_norm(t, -1.5, dim=1)),
])
def test_torch_call_forms_are_matched_in_value_and_shape(forward, torch_value):
    inputs = {"x": X}
    if "idx" in forward:
        inputs["idx"] = {"value": [0], "dtype": "int64"}
    case = case_from_mapping({"name": "t.signature", "inputs": inputs, "forward": forward,
                              "grad_output": "random"})
    result = Runner(cache=None).run(case, "float64")
    assert result.status == "pass", result.message
    expected = torch_value(torch.tensor(X, dtype=torch.float64)).numpy()
    assert result.exact.output.shape == expected.shape
    np.testing.assert_allclose(result.exact.output, expected, rtol=1e-12)


def test_squeeze_with_an_empty_dim_tuple_squeezes_nothing():
    x = np.empty((1, 3, 1), dtype=object)
    x[...] = 0
    assert mirror.resolve("torch.squeeze").sym(x, ()).shape == (1, 3, 1)
    assert mirror.resolve("torch.squeeze").sym(x).shape == (3,)


@pytest.mark.parametrize("forward, sentence", [
    ("F.interpolate(x[None, None], size=(1, 2), mode='bilinear', antialias=True)", "antialias=True is not supported"),
])
def test_unsupported_forms_are_refused_with_a_sentence(forward, sentence):
    result = run(forward)
    assert result.status == "error"
    assert sentence in result.message
    assert "Traceback" not in result.message


def test_vector_norm_refuses_a_matrix_order_in_a_sentence():
    with pytest.raises(Exception, match="vector norm: ord='fro' is not a number"):
        mirror.resolve("torch.linalg.vector_norm").sym(np.array([1, 2], dtype=object), "fro")


def test_a_call_form_the_mirror_lacks_names_the_function_and_the_problem(monkeypatch):
    """When torch takes a call that the mirror cannot, the error names the torch function and the argument."""
    entry = mirror.SPELLINGS["torch.linalg.diagonal"]
    monkeypatch.setitem(mirror.SPELLINGS, "torch.linalg.diagonal",
                        dataclasses.replace(entry, sym=lambda x, *, offset=0: entry.sym(x, offset=offset)))
    result = run("torch.linalg.diagonal(x, dim1=0, dim2=1)")
    assert result.status == "error"
    assert "the mirror of torch.linalg.diagonal cannot take this call" in result.message
    assert "dim1" in result.message


def test_a_wrong_shape_rule_is_caught(monkeypatch):
    """If the mirror of index_select made a 0-d input 1-d (the old bug), the run reports the shapes."""
    case = case_from_mapping({"name": "t.shape", "inputs": {"x": X, "idx": {"value": [0], "dtype": "int64"}},
                              "forward": "torch.index_select(x[0, 1], 0, idx)", "grad_output": "random"})
    entry = mirror.FUNCTIONS["index_select"]        # torch.index_select shares this entry's mirror
    wrong = lambda x, dim, index: np.atleast_1d(entry.sym(x, dim, index))  # noqa: E731
    monkeypatch.setitem(mirror.FUNCTIONS, "index_select", dataclasses.replace(entry, sym=wrong))
    result = Runner(cache=None).run(case, "float64")
    assert result.status == "error" and "shape [1] but torch's has []" in result.message
