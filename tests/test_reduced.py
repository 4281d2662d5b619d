"""Sums and means of an elementwise body (verifier.exact.reduced) against the element-by-element SymPy model.

The reduced route builds no per-element SymPy: it must give the SymPy route's
output and Jᵀv on every case small enough for both (the library's included),
and still catch a wrong torch backward and a wrong exact rule.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from wrong_backward import wrong_tanh

import verifier
from verifier import load_paths
from verifier.errors import SymbolicError
from verifier.exact import compiled, reduced, vectorised
from verifier.exact.symbolic import build
from verifier.run.runner import Runner

ROOT = Path(__file__).resolve().parent.parent


def _case(expr, **inputs):
    spec = {name: ({"shape": list(shape), "sample": "normal", "seed": k + 1} if isinstance(shape, tuple) else shape)
            for k, (name, shape) in enumerate(inputs.items())}
    return verifier.make_case("t.case", spec, forward=expr, grad_output="random")


def _both(case, weights_seed=3):
    """(reduced route, SymPy route) exact results at the case's point with random weights."""
    fast = reduced.build_reduced(case)
    slow = compiled.compile_model(build(case), case)
    assert fast.output_shape == slow.output_shape
    point = {s.name: s.values() for s in case.inputs if s.dtype is None}
    v = np.random.default_rng(weights_seed).normal(size=slow.output_shape)
    return compiled.exact(fast, point, v), compiled.exact(slow, point, v)


def _assert_agree(a, b):
    np.testing.assert_allclose(a.output, b.output, rtol=1e-14, atol=1e-15)
    assert set(a.vjp) == set(b.vjp)
    for name in b.vjp:
        np.testing.assert_allclose(a.vjp[name], b.vjp[name], rtol=1e-13, atol=1e-14)


REDUCTIONS = [
    pytest.param("(3 * (x + 2) ** 2).mean()", {"x": (4, 5)}, id="seed-mean"),
    pytest.param("(torch.tanh(x) * x + torch.exp(-x ** 2)).sum()", {"x": (17,)}, id="tanh-sum"),
    pytest.param("torch.sum(w * torch.sin(x))", {"x": (6,), "w": (6,)}, id="weighted-sum"),
    pytest.param("(x * b).sum(dim=0)", {"x": (3, 4), "b": (4,)}, id="broadcast-body-dim0"),
    pytest.param("torch.mean(torch.sigmoid(x), dim=-1, keepdim=True)", {"x": (3, 4)}, id="mean-last-keepdim"),
    pytest.param("x.exp().sum(dim=(0, 2))", {"x": (2, 3, 4)}, id="two-axes"),
    pytest.param("(x ** 2).sum((1,), True)", {"x": (3, 4)}, id="positional-dim-keepdim"),
    pytest.param("F.softplus(x).mean(1)", {"x": (5, 3)}, id="mean-positional-dim"),
]


@pytest.mark.parametrize("expr, inputs", REDUCTIONS)
def test_reduced_route_matches_the_sympy_route(expr, inputs):
    case = _case(expr, **inputs)
    assert reduced.split(case) is not None
    fast, slow = _both(case)
    assert fast.route.startswith("elementwise template under")
    _assert_agree(fast, slow)


@pytest.mark.parametrize("expr, inputs", REDUCTIONS[:4])
def test_reduced_jvp_matches_the_sympy_tape(expr, inputs):
    case = _case(expr, **inputs)
    point = {s.name: s.values() for s in case.inputs}
    rng = np.random.default_rng(5)
    direction = {name: rng.normal(size=np.shape(point[name])) for name in point}
    fast = reduced.build_reduced(case).exact_jvp(point, direction)
    slow = compiled.compile_model(build(case), case).exact_jvp(point, direction)
    np.testing.assert_allclose(fast, slow, rtol=1e-13, atol=1e-14)


def test_every_library_reduction_agrees_with_the_sympy_route():
    loaded = load_paths([ROOT / "cases"])
    checked = 0
    for case in loaded.cases:
        if reduced.split(case) is None:
            continue
        try:
            slow_model = build(case)
        except SymbolicError:        # a case whose symbolic side cannot build (an expected error)
            with pytest.raises(Exception):
                reduced.build_reduced(case).exact({s.name: s.values() for s in case.inputs}, None)
            continue
        fast, slow = _both(case)
        _assert_agree(fast, slow)
        assert slow_model.output.shape == fast.output.shape
        checked += 1
    assert checked >= 15, checked          # the library holds ~20 sums and means of elementwise bodies


@pytest.mark.parametrize("expr, reducible", [
    pytest.param("(3 * (x + 2) ** 2).mean()", True, id="seed"),
    pytest.param("torch.sum(x, dim=0, keepdim=True)", True, id="keywords"),
    pytest.param("x.sum(dtype='float64')", False, id="dtype-keyword"),
    pytest.param("F.softmax(x, dim=0).sum()", False, id="softmax-body"),
    pytest.param("x[1:].sum()", False, id="indexing-body"),
    pytest.param("(x @ x).sum()", False, id="matmul-body"),
    pytest.param("x.prod()", False, id="prod"),
    pytest.param("x.sum() * 2", False, id="not-at-the-root"),
    pytest.param("x.sum().sum()", False, id="reduction-in-the-body"),
])
def test_only_root_sums_and_means_of_elementwise_bodies_are_reduced(expr, reducible):
    assert (reduced.split(_case(expr, x=(4,))) is not None) is reducible


def test_small_reductions_keep_the_sympy_model_with_its_jacobian_route():
    assert not reduced.wants_reduced(_case("x.sum()", x=(100,)), compiled.JACOBIAN_ENTRY_LIMIT + 1)
    assert reduced.wants_reduced(_case("x.sum()", x=(2000,)), compiled.JACOBIAN_ENTRY_LIMIT + 1)
    # a reduction over one axis keeps many outputs: the Jacobian has outputs × inputs entries
    assert reduced.wants_reduced(_case("x.sum(dim=1)", x=(40, 30)), compiled.JACOBIAN_ENTRY_LIMIT + 1)
    assert isinstance(compiled.prepare(_case("(3 * (x + 2) ** 2).mean()", x=(100, 100))), reduced.ReducedModel)
    assert not isinstance(compiled.prepare(_case("(3 * (x + 2) ** 2).mean()", x=(4,))), reduced.ReducedModel)



def test_a_wrong_torch_backward_under_a_large_sum_is_caught():
    inputs = {"x": {"shape": [100, 100], "sample": "normal", "seed": 4}}
    right = verifier.make_case("t.right", inputs, torch=lambda x: torch.tanh(x).sum(),
                               sympy="torch.tanh(x).sum()", grad_output="random")
    wrong = verifier.make_case("t.wrong", inputs, torch=lambda x: wrong_tanh(x, 1234).sum(),
                               sympy="torch.tanh(x).sum()", grad_output="random")
    runner = Runner(cache=False, fd_max_elements=8, forward_mode=False, second_order=False)
    ok, bad = runner.run(right, "float64"), runner.run(wrong, "float64")
    assert ok.status == "pass", ok.message
    assert ok.route.startswith("elementwise template under sum over 10000 elements")
    assert bad.status == "fail"
    assert list(bad.rows.loc[~bad.rows["ok"], "index"]) == ["(12, 34)"]


def test_a_wrong_exact_rule_under_a_reduction_is_caught(monkeypatch):
    """A wrong derivative rule in the vectorised sweep: the template's two routes disagree."""
    case = _case("(torch.exp(x) * x).mean()", x=(64, 64))
    model = compiled.prepare(case)
    assert isinstance(model, reduced.ReducedModel)
    point = {"x": case.input("x").values()}
    compiled.exact(model, point, None)
    original = vectorised._rule
    monkeypatch.setattr(vectorised, "_rule", lambda n, xs, y, a: [(a[0], 1.001 * original(n, xs, y, a)[0][1])])
    with pytest.raises(SymbolicError, match="reverse sweep and its symbolic derivative disagree"):
        compiled.exact(model, point, None)


def test_a_wrong_reduction_weight_would_be_caught_against_the_sympy_route(monkeypatch):
    """The cross-check has teeth: a mean that forgot its 1/N differs from the SymPy route."""
    case = _case("(3 * (x + 2) ** 2).mean()", x=(4, 5))
    monkeypatch.setattr(reduced.ReducedModel, "body_weights",
                        lambda self, w: np.broadcast_to(np.ones(self.output_shape), self.body.output_shape))
    fast, slow = _both(case)
    with pytest.raises(AssertionError):
        _assert_agree(fast, slow)
