"""Finite differences of a sum or mean through its elementwise body (verifier.run.reduced_fd).

They must agree with the whole function's finite differences within the
error estimates, be refused where they do not apply, and leave a planted
wrong backward caught on the 10⁶-element rows.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from wrong_backward import wrong_tanh

import verifier
from verifier.exact import compiled, mirror, reduced
from verifier.fd.finite_diff import fd_options, finite_differences
from verifier.run.reduced_fd import body_finite_differences
from verifier.run.runner import Runner
from verifier.torch_side.autograd import forward_float64


def _case(expr, **inputs):
    spec = {name: {"shape": list(shape), "sample": "normal", "seed": k + 1} for k, (name, shape) in enumerate(inputs.items())}
    return verifier.make_case("t.case", spec, forward=expr, grad_output="random")


def _setup(case):
    model = reduced.build_reduced(case)
    point = {s.name: s.values() for s in case.inputs if s.dtype is None}
    v = np.random.default_rng(5).normal(size=model.output_shape)
    return model, point, v


@pytest.mark.parametrize("expr, inputs", [
    ("(torch.tanh(x) * x + torch.exp(-x ** 2)).sum()", {"x": (300,)}),
    ("(3 * (x + 2) ** 2).mean()", {"x": (20, 15)}),
    ("torch.sum(w * torch.sin(x), dim=1)", {"x": (6, 50), "w": (6, 50)}),
    ("torch.mean(x.abs() * x, dim=-1, keepdim=True)", {"x": (4, 80)}),
])
def test_body_differences_agree_with_the_whole_functions(expr, inputs):
    case = _case(expr, **inputs)
    model, point, v = _setup(case)
    body = body_finite_differences(case, model, point, v, "float64", **fd_options(case))
    whole = finite_differences(forward_float64(case, {}), point, model.wrt, v, "float64", **fd_options(case))
    assert body is not None and any("elementwise body" in n for n in body.notes)
    exact = compiled.exact(model, point, v)
    for name in model.wrt:
        a, b = body.values[name], whole.values[name]
        allowed = 8 * (body.error_estimate[name] + whole.error_estimate[name]) + 16 * 2.0 ** -52 * np.abs(b)
        assert np.all(np.abs(a - b) <= allowed), name
        # the body's estimates are no looser than the whole function's, and hold the exact value
        assert np.all(np.abs(a - exact.vjp[name]) <= 8 * body.error_estimate[name] + 1e-15), name


def test_sampled_body_differences_mark_the_other_elements_not_sampled():
    case = _case("(torch.tanh(x) * x).sum()", x=(40, 50))
    model, point, v = _setup(case)
    fd = body_finite_differences(case, model, point, v, "float64", max_elements=8, **fd_options(case))
    sampled = fd.sampled["x"]
    assert sampled.sum() == 8 and np.isnan(fd.values["x"][~sampled]).all()
    assert set(fd.methods["x"][~sampled].ravel()) == {"not sampled"}
    assert np.all(np.abs(fd.values["x"][sampled] - compiled.exact(model, point, v).vjp["x"][sampled])
                  <= 8 * fd.error_estimate["x"][sampled] + 1e-15)


def test_body_differences_are_refused_where_they_do_not_apply():
    model_of = reduced.build_reduced
    broadcast = _case("(x * b).sum(dim=0)", x=(3, 4), b=(4,))          # b feeds 3 terms each
    m, p, v = _setup(broadcast)
    assert body_finite_differences(broadcast, m, p, v, "float64", **fd_options(broadcast)) is None
    other = _case("torch.tanh(x).sum()", x=(30,))
    mixed = dataclasses.replace(other, torch_fn=_case("torch.tanh(x).mean()", x=(30,)).torch_fn)
    m = model_of(other)
    point = {"x": other.input("x").values()}
    assert body_finite_differences(mixed, m, point, None, "float64") is None     # another reduction in torch
    callable_torch = dataclasses.replace(other, torch_fn=lambda x: x.tanh().sum())
    assert body_finite_differences(callable_torch, m, point, None, "float64") is None
    dense = _case("torch.tanh(x @ x.T).sum()", x=(3, 3))
    assert body_finite_differences(dense, compiled.prepare(dense), {"x": dense.input("x").values()}, None,
                                   "float64") is None


def test_a_wrong_backward_on_the_10e6_rows_is_caught(monkeypatch):
    """As benchmarks/cold.py runs them (FD sampled at 8): tanh's backward 0.1 % off at one element fails,
    the right one passes, and the finite differences come from the body."""
    inputs = {"x": {"shape": [1000, 1000], "sample": "normal", "seed": 1}}
    case = verifier.make_case("t.big", inputs, forward="(tanh(x) * x + torch.exp(-x ** 2)).sum()",
                              grad_output="random")
    runner = Runner(cache=False, forward_mode=False, second_order=False, fd_max_elements=8,
                    fd_overrides={"elementwise": (), "batch": False})
    ok = runner.run(case, "float64")
    assert ok.status == "pass", ok.message
    assert any("elementwise body" in n for n in ok.fd.notes)
    entry = mirror.FUNCTIONS["tanh"]
    monkeypatch.setitem(mirror.FUNCTIONS, "tanh", dataclasses.replace(entry, torch=lambda x: wrong_tanh(x, 123_456)))
    bad = runner.run(case, "float64")
    assert bad.status == "fail"
    assert list(bad.rows.loc[~bad.rows["ok"], "index"]) == ["(123, 456)"]
