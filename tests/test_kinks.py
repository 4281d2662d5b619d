"""The kink detector: finds non-differentiable points, their one-sided derivatives, and judges FD there.

Each check has a twin that must fail: a torch gradient off torch's convention
at the kink, an undeclared kink, a declared kink at a smooth point, and a
finite difference that does not land on the midpoint.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sympy as sp
import torch

from verifier import Runner, make_case
from verifier.exact.evaluation import Evaluator
from verifier.exact.kinks import candidates, detect, rule
from verifier.exact.mirror import resolve
from verifier.exact.symbolic import build
from verifier.verdict.kinks import annotate

DTYPES = [pytest.param("float64", id="float64"), pytest.param("float32", id="float32")]


def run(forward, inputs, *, kink=None, dtype="float64", **fields):
    extra = {"kink": kink} if kink else {}
    case = make_case("t.kink", inputs, forward=forward, **extra, **fields)
    return Runner().run(case, dtype)


def kink_rows(result) -> pd.DataFrame:
    return result.rows[result.rows["kink"].astype(bool)]


# --- what the detector finds ---------------------------------------------------------------

KINKS = [
    # forward, x, kink index, left, right, torch's convention (the exact reference)
    pytest.param("torch.relu(x)", [-1.0, 0.0, 2.0], (1,), 0.0, 1.0, 0.0, id="relu"),
    pytest.param("torch.abs(x)", [-1.5, 0.0, 2.0], (1,), -1.0, 1.0, 0.0, id="abs"),
    pytest.param("torch.clamp(x, -1, 1)", [-1.0, 0.5], (0,), 0.0, 1.0, 1.0, id="clamp-lower"),
    pytest.param("F.hardtanh(x)", [0.5, 1.0], (1,), 1.0, 0.0, 0.0, id="hardtanh-upper"),
    pytest.param("F.relu6(x)", [6.0, 3.0], (0,), 1.0, 0.0, 0.0, id="relu6-top"),
    pytest.param("F.leaky_relu(x, 0.25)", [0.0, 1.0], (0,), 0.25, 1.0, 0.25, id="leaky_relu"),
    pytest.param("F.elu(x, alpha=0.5)", [0.0, 1.0], (0,), 0.5, 1.0, 0.5, id="elu"),
    pytest.param("F.hardswish(x)", [-3.0, 1.0], (0,), 0.0, -0.5, 0.0, id="hardswish"),
    pytest.param("torch.amax(x).reshape(1)", [1.0, 3.0, 3.0, 3.0], (2,), 0.0, 1.0, 1 / 3, id="amax-3-tie"),
    pytest.param("x.max().reshape(1)", [2.0, 2.0, -1.0], (0,), 0.0, 1.0, 0.5, id="max-2-tie"),
    pytest.param("torch.maximum(x, x.flip(0))", [1.0, 2.0, 1.0], (0,), 0.0, 2.0, 1.0, id="maximum-tie"),
    pytest.param("torch.norm(x).reshape(1)", [0.0, 0.0], (1,), -1.0, 1.0, 0.0, id="norm-at-zero"),
    pytest.param("torch.linalg.vector_norm(x, ord='inf').reshape(1)", [-2.0, 2.0, 1.0], (0,), -1.0, 0.0, -0.5,
                 id="inf-norm-tie"),
    pytest.param("torch.where(x > 0, x, 0.25 * x)", [0.0, 1.0], (0,), 0.25, 1.0, 0.25, id="where"),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("forward, x, index, left, right, convention", KINKS)
def test_kink_found_with_one_sided_derivatives_and_torch_convention(forward, x, index, left, right,
                                                                    convention, dtype):
    r = run(forward, {"x": x}, kink="on purpose", dtype=dtype, grad_output="ones")
    assert r.status == "pass", r.message
    rows = kink_rows(r)
    at = rows[rows["index"] == str(index)]
    assert len(at) == 1, rows
    row = at.iloc[0]
    assert row["kink_left"] == pytest.approx(left, abs=1e-15)
    assert row["kink_right"] == pytest.approx(right, abs=1e-15)
    assert row["exact"] == pytest.approx(convention, abs=1e-15)
    # the central difference lands on the midpoint (up to its O(h) error), not on the convention,
    # and is not flagged
    assert row["finite_diff"] == pytest.approx((left + right) / 2, abs=1e-5)
    assert bool(row["fd_ok"])
    assert "kink: " in r.message and "left" in r.message


def test_a_point_off_the_kink_has_no_kink_rows():
    r = run("torch.relu(x)", {"x": [-1.0, 0.5, 2.0]}, grad_output="ones")
    assert r.status == "pass" and not r.rows["kink"].any() and r.message == ""
    assert r.kinks is not None and r.kinks.candidates == []


def test_one_sided_derivatives_carry_the_weights_v():
    """The one-sided values are those of g = sum(v * y): v = -0.5 scales and flips them."""
    r = run("torch.relu(x)", {"x": [0.0, 1.0]}, kink="relu at 0", grad_output=[-0.5, 2.0])
    row = kink_rows(r).iloc[0]
    assert (row["kink_left"], row["kink_right"]) == (0.0, -0.5)
    assert row["kink_rule"] == "left (min-norm)"


def test_candidates_are_read_at_the_point_inside_conditions():
    """amax's tie sits inside the Eq conditions of its tie-splitting form; the walk finds it."""
    case = make_case("t.c", {"x": [1.0, 3.0, 3.0]}, forward="x.amax()")
    model = build(case)
    values = dict(zip(model.symbols["x"].ravel(), [1.0, 3.0, 3.0]))
    found = candidates(list(model.output.ravel()), Evaluator(values))
    assert any("Max tie of 2" in text for _, text in found), found
    values = dict(zip(model.symbols["x"].ravel(), [1.0, 3.0, 2.0]))
    assert not any("tie" in text for _, text in candidates(list(model.output.ravel()), Evaluator(values)))


# --- the checks fail when they should ----------------------------------------------------------------


def relu_with_slope_at_zero(c: float):
    """relu whose backward returns ``c`` at x = 0 (torch's convention is 0; the generalized gradient [0, 1])."""

    class Relu(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.clamp(min=0)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * ((x > 0).to(g.dtype) + c * (x == 0).to(g.dtype))

    return Relu.apply


def relu_case(c: float, **fields):
    return make_case(f"t.relu_{c}", {"x": [-1.0, 0.0, 2.0]}, torch=relu_with_slope_at_zero(c),
                     sympy=resolve("relu").sym, grad_output="ones", **fields)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("declared", [False, True], ids=["undeclared", "declared"])
@pytest.mark.parametrize("slope", [2.0, -1.0, 1.5])
def test_a_gradient_outside_the_generalized_gradient_at_the_kink_is_caught(slope, declared, dtype):
    """relu'(0) of 2, -1 or 1.5 is no subgradient of relu at 0 ([0, 1]): the case fails, blaming autograd."""
    r = Runner().run(relu_case(slope, **({"kink": "relu at 0"} if declared else {})), dtype)
    assert r.status == "fail", r.message
    assert f"at the kink x[1] torch gives {slope:.17g}, outside the generalized gradient [0, 1]" in r.message
    bad = r.rows[~r.rows["ok"]]
    assert list(bad["index"]) == ["(1,)"]
    assert list(bad["attribution"]) == ["autograd_wrong"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("declared", [False, True], ids=["undeclared", "declared"])
@pytest.mark.parametrize("slope, label", [(0.0, "left (min-norm)"), (0.5, "midpoint"), (1.0, "right"),
                                          (0.25, "between")])
def test_a_gradient_inside_the_generalized_gradient_at_the_kink_passes_as_at_kink(slope, label, declared, dtype):
    """Any relu'(0) in [0, 1] is a subgradient: right, whether or not it is torch's convention (0)."""
    r = Runner().run(relu_case(slope, **({"kink": "relu at 0"} if declared else {})), dtype)
    assert r.status == "pass", r.message
    row = kink_rows(r).iloc[0]
    assert (row["kink_left"], row["kink_right"], row["exact"], row["autograd"]) == (0.0, 1.0, 0.0, slope)
    assert bool(row["ok"]) and row["attribution"] == "at_kink"
    assert f"autograd {slope:.6g} = {label}" in r.message          # which rule autograd took, reported
    assert "exact (torch's convention) 0 = left (min-norm)" in r.message


def test_an_undeclared_right_kink_passes_as_at_kink_and_says_so():
    """The issue's example: relu(x).sum() at x = [-1, 0, 2] is right, so it passes, reported as at_kink."""
    r = run("torch.relu(x).sum()", {"x": [-1.0, 0.0, 2.0]})
    assert r.status == "pass", r.message
    assert list(r.rows["attribution"]) == ["all_agree", "at_kink", "all_agree"]
    assert "x[1] left 0, right 1" in r.message and "undeclared, passed as at_kink" in r.message
    from verifier.report import tables
    assert tables.summary([r]).loc[0, "at_kink"] == 1


@pytest.mark.parametrize("how", ["field", "cli"])
def test_strict_kinks_fails_an_undeclared_kink_and_says_what_to_do(how, tmp_path):
    if how == "field":
        r = run("torch.abs(x)", {"x": [0.0, 1.0]}, grad_output="ones", strict_kinks=True)
        assert r.status == "fail"
        assert "does not declare one; add `kink:`" in r.message and "strict kinks" in r.message
        assert "x[0] left -1, right 1" in r.message
        declared = run("torch.abs(x)", {"x": [0.0, 1.0]}, grad_output="ones", strict_kinks=True, kink="abs at 0")
        assert declared.status == "pass", declared.message
        return
    from verifier.cli import main
    path = tmp_path / "k.yaml"
    path.write_text("cases:\n  - name: t.relu\n    inputs: {x: [-1.0, 0.0, 2.0]}\n"
                    "    forward: torch.relu(x).sum()\n")
    summary = tmp_path / "r" / "summary.csv"
    assert main(["run", str(path), "--report-dir", str(tmp_path / "r"), "--no-progress", "--jobs", "0"]) == 0
    assert pd.read_csv(summary).loc[0, "at_kink"] == 1
    assert main(["run", str(path), "--report-dir", str(tmp_path / "r"), "--no-progress", "--jobs", "0",
                 "--strict-kinks"]) == 1
    assert "does not declare one" in pd.read_csv(summary).loc[0, "message"]


class AbsOfDifference(torch.autograd.Function):
    """|x[0] − x[1]| whose backward returns (1, 1) at a tie: each component in [−1, 1], the vector not in
    the generalized gradient {t·(1, −1): t in [−1, 1]}."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x[0] - x[1]).abs()

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        d = x[0] - x[1]
        return g * (torch.stack([d.sign(), -d.sign()]) if d != 0 else torch.ones_like(x))


@pytest.mark.parametrize("declared", [False, True], ids=["undeclared", "declared"])
def test_a_coupled_kink_is_not_judged_per_element(declared):
    """A candidate moving several elements: per-element intervals would pass (1, 1); it must not."""
    fields = {"kink": "|x0 - x1| at a tie"} if declared else {}
    wrong = make_case("t.absdiff", {"x": [0.5, 0.5]}, torch=AbsOfDifference.apply,
                      sympy=lambda x: abs(x[0] - x[1]), **fields)
    r = Runner().run(wrong, "float64")
    assert r.status == "fail", r.message
    assert r.kinks.elements[0].coupled == ("x[1]",)
    if declared:
        assert "(coupled with x[1]) torch gives 1, torch's convention is 0" in r.message
    else:
        assert "couples several elements" in r.message and "does not decide membership" in r.message


def test_a_coupled_kink_at_torch_convention_passes_when_declared_and_fails_when_not():
    undeclared = run("x.max()", {"x": [2.0, 2.0, -1.0]})
    assert undeclared.status == "fail" and "couples several elements (x[0] with x[1]" in undeclared.message
    declared = run("x.max()", {"x": [2.0, 2.0, -1.0]}, kink="max tie of x[0], x[1]: torch splits evenly")
    assert declared.status == "pass", declared.message
    assert list(declared.rows["attribution"])[:2] == ["at_kink", "at_kink"]


def test_a_declared_kink_at_a_smooth_point_fails():
    r = run("torch.abs(x)", {"x": [0.5, 1.0]}, kink="abs at 0", grad_output="ones")
    assert r.status == "fail" and "the function is differentiable at the point" in r.message


def test_a_candidate_with_equal_one_sided_derivatives_is_not_a_kink():
    """softsign and Huber are C1 where their Abs/Piecewise switch: no kink, nothing to declare."""
    for forward in ("F.softsign(x)", "F.huber_loss(x, x * 0 + 0.5, delta=0.5)"):
        r = run(forward, {"x": [0.0, 1.0]}, grad_output="ones")
        assert r.status == "pass", (forward, r.message)
        assert not r.rows["kink"].any()
        assert "differentiable" in set(r.rows["kink_rule"])
        assert r.rows["fd_ok"].all()


def test_kinks_that_cancel_are_still_kinks_of_torch_gradient():
    """relu(x) - relu(-x) = x: left = right = 1, but torch chains the conventions to 0."""
    r = run("(F.relu(x) - F.relu(-x)).sum()", {"x": [0.0]}, kink="relu(x) and relu(-x) at 0")
    assert r.status == "pass", r.message
    row = kink_rows(r).iloc[0]
    assert (row["kink_left"], row["kink_right"], row["exact"], row["autograd"]) == (1.0, 1.0, 0.0, 0.0)
    assert row["kink_rule"] == "outside [left, right]"
    # undeclared, torch's 0 is judged against the function's derivative 1, and fails
    undeclared = run("(F.relu(x) - F.relu(-x)).sum()", {"x": [0.0]})
    assert undeclared.status == "fail"
    assert "torch gives 0, outside the generalized gradient [1, 1]" in undeclared.message
    assert "declare it with `kink:`" in undeclared.message


def test_fd_at_a_kink_is_judged_against_the_midpoint_and_can_fail():
    r = run("torch.relu(x)", {"x": [0.0, 1.0]}, kink="relu at 0", grad_output="ones")
    rows = r.rows.copy()
    at = rows["kink"].astype(bool)
    assert abs(rows.loc[at, "finite_diff"].iloc[0] - rows.loc[at, "exact"].iloc[0]) > 0.4   # FD is not the convention
    assert rows.loc[at, "fd_ok"].all()
    # an FD value on the convention instead of the midpoint is flagged
    rows.loc[at, "finite_diff"] = rows.loc[at, "exact"]
    rejudged = annotate(rows.drop(columns=["kink", "kink_left", "kink_right", "kink_rule"]), r.kinks)
    assert not rejudged.loc[at, "fd_ok"].any()


def test_the_curvature_jump_allowance_is_what_lets_fd_pass():
    """elu(alpha=0.5) at 0: D(h) = 0.75 - alpha h / 4, farther from the midpoint than the FD tolerance."""
    r = run("F.elu(x, alpha=0.5)", {"x": [0.0]}, kink="elu at 0", grad_output="ones")
    row = kink_rows(r).iloc[0]
    assert abs(row["finite_diff"] - 0.75) > 1e-7          # more than FD_TOLERANCE.atol alone allows
    assert bool(row["fd_ok"])
    el = r.kinks.elements[0]
    assert el.curvature_jump == pytest.approx(-0.5, rel=1e-12)    # g''(0+) - g''(0-) = 0 - alpha


# --- labels and the mirror's conventions --------------------------------------------------------------------


@pytest.mark.parametrize("exact, left, right, label", [
    pytest.param(0.0, 0.0, 1.0, "left (min-norm)", id="relu"),
    pytest.param(1.0, 0.0, 1.0, "right", id="clamp"),
    pytest.param(0.0, -1.0, 1.0, "midpoint (min-norm)", id="abs"),
    pytest.param(1 / 3, 0.0, 1.0, "between", id="amax-tie"),
    pytest.param(1.0, 1.0, 1.0, "left (min-norm)", id="equal-sides"),
    pytest.param(2.0, 0.0, 1.0, "outside [left, right]", id="outside"),
])
def test_rule_labels(exact, left, right, label):
    assert rule(exact, left, right) == label


def test_tie_split_gives_each_of_k_ties_one_kth():
    """Max's own derivative gives each tied pair 1/2 (3/2 in total for three ties); the mirror gives 1/3."""
    x = np.array([sp.Symbol(f"x{i}", real=True) for i in range(4)], dtype=object)
    out = resolve("amax").sym(x)[()]
    point = {s: v for s, v in zip(x, [1, 3, 3, 3])}
    grads = [float(sp.diff(out, s).subs(point)) for s in x]
    assert grads == pytest.approx([0, 1 / 3, 1 / 3, 1 / 3])
    assert float(out.subs(point)) == 3.0
    plain = sp.Max(*x)
    assert float(sp.diff(plain, x[1]).subs(point).subs(sp.Heaviside(0), sp.Rational(1, 2))) == 0.5


def test_detect_reports_nothing_for_smooth_expressions():
    case = make_case("t.s", {"x": [0.0, 1.0]}, forward="torch.exp(x).sum()")
    report = detect(build(case), {"x": np.array([0.0, 1.0])}, None)
    assert report.candidates == [] and report.elements == []


# --- the case field -------------------------------------------------------------------------------


def test_the_kink_field_is_a_non_empty_string(write_case):
    from verifier import load_file
    path = write_case("""
        cases:
          - name: t.k
            inputs: {x: [0.0]}
            forward: torch.relu(x).sum()
            kink: 3
          - name: t.ok
            inputs: {x: [0.0]}
            forward: torch.relu(x).sum()
            kink: relu at 0
    """)
    loaded = load_file(path)
    assert [c.name for c in loaded.cases] == ["t.ok"] and loaded.cases[0].kink == "relu at 0"
    (err,) = loaded.errors
    assert "t.k" in str(err) and "kink" in str(err) and "\n" not in str(err)


# --- the heat maps ----------------------------------------------------------------------------------


def _painted(result):
    """(autograd, FD) max error/allowed ratios of the one input's heat maps."""
    from verifier.report.heatmap import for_case
    maps = {m.side: m for m in for_case(result.rows)}
    return maps["autograd"], maps["finite differences"]


@pytest.mark.parametrize("slope", [0.0, 0.5])
def test_heat_maps_do_not_paint_a_right_kink_red(slope):
    """FD is the midpoint 0.5 at relu's kink and autograd may be any subgradient: nothing is outside."""
    r = Runner().run(relu_case(slope), "float64")
    assert r.status == "pass", r.message
    ag, fd = _painted(r)
    assert ag.outside == 0 and fd.outside == 0, (ag.title, fd.title)


def test_heat_maps_paint_a_wrong_kink_red():
    r = Runner().run(relu_case(2.0), "float64")
    ag, _ = _painted(r)
    assert ag.outside == 1 and ag.max_ratio > 1
    cancel = run("(F.relu(x) - F.relu(-x))", {"x": [0.0, 1.0]}, grad_output="ones")   # exact = autograd = 0 at x[0]
    assert cancel.status == "fail"
    ag, _ = _painted(cancel)
    assert ag.outside == 1, ag.title          # outside [1, 1], though equal to torch's convention
