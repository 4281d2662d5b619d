"""Finite differences: accuracy against exact, honest error estimates, methods, domains, batching, sampling."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from verifier import Runner, make_case
from verifier.exact import mirror
from verifier.exact.compiled import exact
from verifier.exact.symbolic import build
from verifier.fd.finite_diff import NOT_SAMPLED, fd_options, finite_differences
from verifier.run.runner import _round
from verifier.torch_side.autograd import forward_float64


def setup(case, dtype="float64"):
    """(f, point, wrt, weights, exact Jᵀv) for a case, the way the runner prepares them."""
    model = build(case)
    values = {spec.name: spec.values() for spec in case.inputs}
    point = {spec.name: _round(values[spec.name], dtype) for spec in case.inputs if spec.dtype is None}
    weights = None if case.grad_output is None else _round(case.grad_output.values(model.output.shape), dtype)
    return forward_float64(case, model.structural), point, model.wrt, weights, exact(model, point, weights).vjp


def max_rel(values, ex):
    return max(float(np.max(np.abs(values[n] - ex[n]))) / float(np.max(np.abs(ex[n]))) for n in ex)


def bounded(fd, ex, fraction=1.0):
    """The error estimate bounds the true error on at least ``fraction`` of the elements."""
    hits = sum(int(np.sum(np.abs(fd.values[n] - ex[n]) <= fd.error_estimate[n])) for n in ex)
    return hits >= fraction * sum(ex[n].size for n in ex)


SMOOTH = [
    pytest.param({"x": {"shape": [16], "sample": "normal", "seed": 1}}, "F.softmax(x, dim=0)", "central-richardson",
                 id="softmax-richardson"),
    pytest.param({"x": {"shape": [3, 4], "sample": "normal", "seed": 2}}, "torch.tanh(x) * x", "complex-step",
                 id="tanh-complex-step"),
    pytest.param({"a": {"shape": [3, 4], "sample": "normal", "seed": 3}, "b": {"shape": [4, 2], "sample": "normal"}},
                 "a @ b", "complex-step", id="matmul-two-inputs"),
    pytest.param({"x": {"shape": [10], "sample": "normal", "seed": 4}}, "F.gelu(x)", "central-richardson",
                 id="gelu-richardson"),
    pytest.param({"x": {"shape": [2, 6], "sample": "normal", "seed": 5}}, "F.layer_norm(x, [6])",
                 "central-richardson", id="layer_norm"),
]


@pytest.mark.parametrize("inputs, forward, method", SMOOTH)
def test_estimates_are_far_better_than_gradcheck_and_bound_their_error(inputs, forward, method):
    case = make_case("t.fd", inputs, forward=forward, grad_output="random")
    f, point, wrt, weights, ex = setup(case)
    fd = finite_differences(f, point, wrt, weights, **fd_options(case))
    assert fd.method == method
    assert all(set(fd.methods[n].ravel()) == {method} for n in wrt)
    # gradcheck's eps=1e-6 central difference is ~1e-10 off on these; the new estimates are 1000x closer
    assert max_rel(fd.values, ex) < 1e-12
    assert bounded(fd, ex)
    assert all(np.all(fd.steps[n] > 0) for n in wrt)


def test_richardson_alone_is_accurate_and_bounded_where_the_complex_step_would_be_used():
    case = make_case("t.fd", {"x": {"shape": [8], "sample": "normal", "seed": 9}},
                     forward="torch.exp(x) * torch.sin(x)", grad_output="random")
    f, point, wrt, weights, ex = setup(case)
    rich = finite_differences(f, point, wrt, weights, **{**fd_options(case), "complex_step": False})
    assert rich.method == "central-richardson"
    assert max_rel(rich.values, ex) < 1e-12 and bounded(rich, ex)
    cs = finite_differences(f, point, wrt, weights, **fd_options(case))
    assert cs.method == "complex-step"
    assert max_rel(cs.values, ex) < 1e-15 and bounded(cs, ex)


@pytest.mark.parametrize("forward, why", [
    pytest.param("F.softmax(x, dim=0)", "'softmax' is not marked analytic", id="non-analytic-function"),
    pytest.param("torch.abs(x).sum()", "'abs' is not marked analytic", id="kink"),
])
def test_complex_step_is_refused_by_the_mirror_table(forward, why):
    case = make_case("t.fd", {"x": [0.5, -1.0, 2.0]}, forward=forward, grad_output="random")
    opts = fd_options(case)
    assert opts["complex_step"] is False and why in opts["complex_step_reason"]
    f, point, wrt, weights, ex = setup(case)
    fd = finite_differences(f, point, wrt, weights, **opts)
    assert "complex-step" not in fd.method and any(why in note for note in fd.notes)


def test_a_python_callable_torch_side_never_takes_the_complex_step():
    import sympy as sp
    case = make_case("t.fd", {"x": [0.5, 1.0]}, torch=torch.exp, sympy=lambda x: np.vectorize(sp.exp)(x))
    assert fd_options(case)["complex_step"] is False


@pytest.mark.parametrize("function, forward, why", [
    # torch.var of complex numbers is real (it uses |z|², not z²): the complex step would give 0
    pytest.param("var", "torch.var(x)", "returns real numbers", id="real-valued"),
    # F.normalize divides by the real norm |z|: complex, but not holomorphic
    pytest.param("normalize", "F.normalize(x, dim=0)", "disagrees with Richardson", id="non-holomorphic"),
])
def test_the_probe_catches_a_complex_forward_that_is_not_holomorphic(monkeypatch, function, forward, why):
    entry = mirror.FUNCTIONS[function]
    monkeypatch.setitem(mirror.FUNCTIONS, function, dataclasses.replace(entry, analytic=True))
    case = make_case("t.fd", {"x": {"shape": [6], "sample": "normal", "seed": 3}}, forward=forward,
                     grad_output="random")
    opts = fd_options(case)
    assert opts["complex_step"] is True
    f, point, wrt, weights, ex = setup(case)
    fd = finite_differences(f, point, wrt, weights, **opts)
    assert fd.method == "central-richardson"
    assert any(why in note and "not holomorphic" in note for note in fd.notes), fd.notes
    assert max_rel(fd.values, ex) < 1e-12


class Recording:
    """Wraps f and records the smallest and largest input value it was called with."""

    def __init__(self, f, name):
        self.f, self.name, self.low, self.high = f, name, np.inf, -np.inf

    def __call__(self, args):
        x = args[self.name]
        self.low = min(self.low, float(torch.min(x.real if x.is_complex() else x)))
        self.high = max(self.high, float(torch.max(x.real if x.is_complex() else x)))
        return self.f(args)


@pytest.mark.parametrize("forward, values, domain, methods", [
    pytest.param("torch.log(x)", [1e-7, 1e-3, 0.5, 3.0], [0, float("inf")], {"bounded-central-richardson"},
                 id="log-near-0"),
    pytest.param("torch.sqrt(x)", [1e-9, 0.2, 4.0], [0, float("inf")], {"bounded-central-richardson"},
                 id="sqrt-near-0"),
    pytest.param("torch.acos(x)", [0.9999999, -0.99999, 0.3], [-1, 1], {"bounded-central-richardson"},
                 id="acos-near-1"),
    pytest.param("torch.exp(x)", [1e-9, 0.5], [0, float("inf")], {"one-sided-richardson"},
                 id="smooth-past-the-bound-goes-one-sided"),
])
def test_stencils_never_leave_the_declared_domain(forward, values, domain, methods):
    case = make_case("t.dom", {"x": {"value": values, "domain": domain}}, forward=forward, grad_output="ones")
    f, point, wrt, weights, ex = setup(case)
    rec = Recording(f, "x")
    fd = finite_differences(rec, point, wrt, weights, **{**fd_options(case), "complex_step": False})
    assert domain[0] < rec.low and rec.high < domain[1]
    assert methods <= set(fd.methods["x"].ravel())
    assert np.all(np.isfinite(fd.values["x"]))
    assert bounded(fd, ex)
    # near the bound the derivative is large (1/x, 1/sqrt(1-x²)): still good to 1e-8 relative
    assert np.all(np.abs(fd.values["x"] - ex["x"]) <= 1e-8 * np.abs(ex["x"]))


def test_gradcheck_style_steps_would_leave_the_domain_here():
    """The reason for domain-aware stencils: x - 1e-6 < 0 for log at 1e-7 gives NaN."""
    x = torch.tensor([1e-7], dtype=torch.float64)
    assert torch.isnan(torch.log(x - 1e-6)).all()


def test_perturbed_points_are_evaluated_in_a_few_batched_calls():
    case = make_case("t.batch", {"x": {"shape": [64], "sample": "normal"}}, forward="F.softmax(x, dim=0)",
                     grad_output="random")
    f, point, wrt, weights, ex = setup(case)
    fd = finite_differences(f, point, wrt, weights, **fd_options(case))
    assert fd.evaluations >= 64 * 8
    assert fd.calls <= 4
    looped = finite_differences(f, point, wrt, weights, **fd_options(case), batch=False)
    assert looped.calls >= 64 * 8
    np.testing.assert_allclose(looped.values["x"], fd.values["x"], rtol=1e-12, atol=1e-15)


class ExpFunction(torch.autograd.Function):
    """exp as an old-style custom Function: vmap cannot run it."""

    @staticmethod
    def forward(ctx, x):
        return x.exp()

    @staticmethod
    def backward(ctx, g):
        return g


def test_a_forward_vmap_cannot_run_falls_back_to_one_call_per_point_and_says_so():
    import sympy as sp
    case = make_case("t.custom", {"x": [0.1, 0.2, 0.3]}, torch=ExpFunction.apply,
                     sympy=lambda x: np.vectorize(sp.exp, otypes=[object])(x), grad_output="random")
    f, point, wrt, weights, ex = setup(case)
    fd = finite_differences(f, point, wrt, weights)
    assert any("one call per point" in note for note in fd.notes)
    assert max_rel(fd.values, ex) < 1e-12 and bounded(fd, ex)


def test_max_elements_samples_and_says_which():
    case = make_case("t.sample", {"x": {"shape": [10, 10], "sample": "normal"}}, forward="torch.tanh(x)",
                     grad_output="random")
    f, point, wrt, weights, ex = setup(case)
    fd = finite_differences(f, point, wrt, weights, **fd_options(case), max_elements=7, seed=3)
    mask = fd.sampled["x"]
    assert mask.sum() == 7
    assert np.all(np.isfinite(fd.values["x"][mask])) and np.all(np.isnan(fd.values["x"][~mask]))
    assert set(fd.methods["x"][~mask].ravel()) == {NOT_SAMPLED}
    assert any("7 of 100 elements" in note for note in fd.notes)
    np.testing.assert_allclose(fd.values["x"][mask], ex["x"][mask], rtol=1e-14)
    again = finite_differences(f, point, wrt, weights, **fd_options(case), max_elements=7, seed=3)
    assert np.array_equal(again.sampled["x"], mask)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_details_carry_method_step_and_estimate_and_the_summary_counts_sampled_elements(dtype):
    from verifier.report import tables
    case = make_case("t.cols", {"x": {"shape": [5, 4], "sample": "normal"}}, forward="F.softmax(x, dim=1)",
                     grad_output="random", dtypes=[dtype])
    result = Runner(fd_max_elements=6).run(case, dtype)
    assert result.status == "pass", result.message
    rows = result.rows
    taken = rows[rows["fd_method"] != NOT_SAMPLED]
    assert len(taken) == 6 and set(taken["fd_method"]) == {"central-richardson"}
    assert (taken["fd_step"] > 0).all() and (taken["fd_error_estimate"] > 0).all()
    # the differences run in float64 whatever the case dtype: as accurate in a float32 case
    assert (taken["fd_abs_err"] <= 1e-12).all()
    summary = tables.summary([result])
    assert summary.loc[0, "fd_elements"] == 6 and summary.loc[0, "fd_not_sampled"] == 14
    assert summary.loc[0, "fd_outside_tol"] == 0
    assert "6 of 20 elements" in summary.loc[0, "fd_note"]


def test_a_forward_that_raises_at_perturbed_points_is_reported_not_raised():
    def f(args):
        x = args["x"]
        if not torch.equal(x, torch.tensor([1.0, 2.0], dtype=x.dtype)):
            raise ValueError("refuses other points")
        return x * 2
    fd = finite_differences(f, {"x": np.array([1.0, 2.0])}, ("x",), None, batch=False)
    assert np.all(np.isnan(fd.values["x"])) and fd.method == "failed"
    assert any("refuses other points" in note for note in fd.notes)


@pytest.mark.parametrize("forward, inputs, expected", [
    pytest.param("torch.exp(x) * y", {"x": [1.0, 2.0], "y": [3.0, 4.0]}, ("x", "y"), id="product"),
    pytest.param("torch.where(x > 0, x.exp().tanh(), 2 * x)", {"x": [1.0, -2.0]}, ("x",), id="where-methods"),
    pytest.param("F.softmax(x, dim=0)", {"x": [1.0, 2.0]}, (), id="softmax"),
    pytest.param("x.sum() * x", {"x": [1.0, 2.0]}, (), id="reduction"),
    pytest.param("x.T * 2", {"x": [[1.0, 2.0], [3.0, 4.0]]}, (), id="transpose"),
    pytest.param("x[0] * x", {"x": [1.0, 2.0]}, (), id="subscript"),
    pytest.param("x @ x", {"x": [[1.0, 2.0], [3.0, 4.0]]}, (), id="matmul"),
])
def test_elementwise_structure_is_read_from_the_expression(forward, inputs, expected):
    from verifier.fd.elementwise import elementwise_inputs
    assert elementwise_inputs(make_case("t.ew", inputs, forward=forward)) == expected


@pytest.mark.parametrize("forward, method", [
    pytest.param("torch.tanh(x) * x", "complex-step", id="complex-step"),
    pytest.param("F.gelu(x) + F.softplus(2 * x)", "central-richardson", id="richardson"),
])
def test_large_elementwise_inputs_are_perturbed_all_at_once(forward, method):
    case = make_case("t.ew", {"x": {"shape": [1000], "sample": "normal", "seed": 4}}, forward=forward,
                     grad_output="random")
    f, point, wrt, weights, ex = setup(case)
    fd = finite_differences(f, point, wrt, weights, **fd_options(case), max_elements=10)
    assert fd.method == method
    assert fd.sampled["x"].all()                 # every element, whatever max_elements says
    assert fd.evaluations < 200                  # not 8 per element
    assert any("all 1000 elements perturbed at once" in note for note in fd.notes)
    assert max_rel(fd.values, ex) < 1e-12 and bounded(fd, ex, 0.99)   # the documented target: 99%


def test_a_wrong_elementwise_claim_is_caught_and_abandoned():
    case = make_case("t.claim", {"x": {"shape": [300], "sample": "normal"}}, forward="F.softmax(x, dim=0)",
                     grad_output="random")
    f, point, wrt, weights, ex = setup(case)
    fd = finite_differences(f, point, wrt, weights, **{**fd_options(case), "elementwise": ("x",)})
    assert any("disagreed with one at a time" in note for note in fd.notes)
    assert fd.evaluations >= 300 * 8              # fell back to one element at a time
    assert max_rel(fd.values, ex) < 1e-11 and bounded(fd, ex)


def test_a_forward_that_raises_at_the_point_itself_gives_no_fd_and_says_why():
    def f(args):
        raise RuntimeError("no float64 kernel")
    fd = finite_differences(f, {"x": np.array([1.0, 2.0])}, ("x",), None)
    assert fd.method == "failed" and np.all(np.isnan(fd.values["x"]))
    assert any("no float64 kernel" in note for note in fd.notes)


@pytest.mark.parametrize("forward", [
    pytest.param("torch.relu(x - 0.3)", id="relu"),
    pytest.param("torch.abs(x - 0.3) * x", id="abs"),
])
def test_a_kink_within_reach_of_the_first_steps_is_stepped_around(forward):
    """The kink at 0.3 is 0.001 from the point: the first steps (0.03 to 0.004) cross it, the refined ones do not."""
    case = make_case("t.kink_near", {"x": [0.301, 1.0]}, forward=forward, grad_output="random")
    f, point, wrt, weights, ex = setup(case)
    fd = finite_differences(f, point, wrt, weights, **fd_options(case))
    assert fd.method == "central-richardson"
    assert fd.steps["x"][0] < 1e-4 <= fd.steps["x"][1]
    assert max_rel(fd.values, ex) < 1e-9 and bounded(fd, ex)


# --- the complex-step probe, once per case --------------------------------------------------------------

def test_a_probe_memo_carries_the_verdict_to_the_next_dtype_and_the_values_stay_right():
    """The first call probes and stores the verdict; a call at another dtype's point reuses it."""
    case = make_case("t.fd", {"x": {"shape": [3, 4], "sample": "normal", "seed": 2}}, forward="torch.tanh(x) * x",
                     grad_output="random")
    memo = {}
    first = finite_differences(*setup(case)[:4], **fd_options(case), probe_memo=memo)
    assert memo == {"why": ""} and first.method == "complex-step"
    f, point, wrt, weights, ex = setup(case, "float32")
    calls = []
    second = finite_differences(lambda args: calls.append(1) or f(args), point, wrt, weights, **fd_options(case),
                                probe_memo=memo)
    assert second.method == "complex-step" and max_rel(second.values, ex) < 1e-13
    fresh_calls = []
    finite_differences(lambda args: fresh_calls.append(1) or f(args), point, wrt, weights, **fd_options(case))
    assert len(calls) < len(fresh_calls) - 6        # the probe's eight real evaluations are not repeated


@pytest.mark.parametrize("function, forward", [pytest.param("normalize", "F.normalize(x, dim=0)", id="normalize")])
def test_a_failed_probe_is_remembered_and_said_at_the_next_dtype(monkeypatch, function, forward):
    entry = mirror.FUNCTIONS[function]
    monkeypatch.setitem(mirror.FUNCTIONS, function, dataclasses.replace(entry, analytic=True))
    case = make_case("t.fd", {"x": {"shape": [6], "sample": "normal", "seed": 3}}, forward=forward,
                     grad_output="random")
    memo = {}
    finite_differences(*setup(case)[:4], **fd_options(case), probe_memo=memo)
    assert "disagrees with Richardson" in memo["why"]
    f, point, wrt, weights, ex = setup(case, "float32")
    fd = finite_differences(f, point, wrt, weights, **fd_options(case), probe_memo=memo)
    assert fd.method == "central-richardson" and max_rel(fd.values, ex) < 1e-12
    assert any("first dtype" in note and "not holomorphic" in note for note in fd.notes), fd.notes


def test_a_remembered_probe_is_redone_where_the_complex_forward_stops_matching_the_real_one():
    """A stored success is not trusted blindly: a complex forward whose real part is off gets probed again."""
    case = make_case("t.fd", {"x": {"shape": [5], "sample": "normal", "seed": 1}}, forward="torch.sin(x) * x",
                     grad_output="random")
    f, point, wrt, weights, ex = setup(case)

    def broken(args):      # right on real inputs; on complex ones the real part is shifted by 1
        y = f(args)
        return y + 1 if y.is_complex() else y

    memo = {"why": ""}
    fd = finite_differences(broken, point, wrt, weights, **fd_options(case), probe_memo=memo)
    assert fd.method == "central-richardson" and "real part differs" in memo["why"]
    assert max_rel(fd.values, ex) < 1e-12


def test_the_runner_probes_once_per_case_and_still_catches_a_wrong_gradient_at_every_dtype(monkeypatch):
    from verifier.fd import finite_diff
    probes = []
    real_probe = finite_diff._probe
    monkeypatch.setattr(finite_diff, "_probe", lambda *a: probes.append(1) or real_probe(*a))
    spec = {"x": {"shape": [4], "sample": "normal", "seed": 1}}
    right = make_case("t.right", spec, forward="torch.tanh(x) * x", grad_output="random",
                      dtypes=["float64", "float32"])
    runner = Runner(cache=False, forward_mode=False, second_order=False)
    assert [runner.run(right, d).status for d in right.dtypes] == ["pass", "pass"]
    assert len(probes) == 1
    assert all(r.fd.method == "complex-step" for r in [runner.run(right, d) for d in right.dtypes])

    class WrongTanh(torch.autograd.Function):      # tanh with its derivative 0.1 % too large
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return torch.tanh(x)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * (1 - torch.tanh(x) ** 2) * 1.001

    monkeypatch.setitem(mirror.FUNCTIONS, "tanh", dataclasses.replace(mirror.FUNCTIONS["tanh"],
                                                                      torch=WrongTanh.apply))
    wrong = make_case("t.wrong", spec, forward="torch.tanh(x) * x", grad_output="random",
                      dtypes=["float64", "float32"])
    results = [runner.run(wrong, d) for d in wrong.dtypes]
    assert [r.status for r in results] == ["fail", "fail"], [r.message for r in results]
    assert all(r.fd.method == "complex-step" for r in results)
    assert len(probes) == 2
