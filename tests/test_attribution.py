"""Attribution both ways (a wrong backward is autograd's, a noisy forward is FD's) and ULP distances."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
import torch

from verifier import Runner, make_case
from verifier.report import tables
from verifier.run.runner import _round
from verifier.verdict.attribution import KINDS, attribute, ulp, ulp_distance
from verifier.verdict.compare import DEFAULT_TOLERANCES, EPSILON

X = [[0.5, -1.25], [2.0, 0.75]]


def sym_exp(x):
    return np.vectorize(sp.exp, otypes=[object])(x)


@pytest.mark.parametrize("dtype, spacing_at_one", [
    pytest.param("float64", 2.0 ** -52, id="float64"),
    pytest.param("float32", 2.0 ** -23, id="float32"),
    pytest.param("float16", 2.0 ** -10, id="float16"),
    pytest.param("bfloat16", 2.0 ** -7, id="bfloat16"),
])
def test_ulp_is_the_dtypes_spacing(dtype, spacing_at_one):
    assert ulp(np.array(1.0), dtype) == spacing_at_one
    assert ulp(np.array(1.75), dtype) == spacing_at_one
    assert ulp(np.array(-2.0), dtype) == 2 * spacing_at_one
    assert ulp(np.array(0.5), dtype) == spacing_at_one / 2
    if dtype != "bfloat16":   # numpy knows the IEEE formats: agree with it across magnitudes and subnormals
        np_dtype = getattr(np, dtype)
        tiny = float(np.finfo(np_dtype).smallest_subnormal)
        values = np.array([3.0, 1e-3, 123.456, tiny, 0.0], dtype=np_dtype).astype(np.float64)
        np.testing.assert_array_equal(ulp(values, dtype), np.spacing(values.astype(np_dtype)).astype(np.float64))


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16"])
def test_ulp_distance_counts_representable_steps(dtype):
    np_dtype = getattr(np, dtype)
    exact = np.array([1.0, 3.0, -0.1], dtype=np_dtype)
    two_up = np.nextafter(np.nextafter(exact, np_dtype(np.inf)), np_dtype(np.inf))
    dist = ulp_distance(two_up.astype(np.float64), exact.astype(np.float64), dtype)
    np.testing.assert_allclose(dist, 2.0)
    assert ulp_distance(np.array([np.inf]), np.array([np.inf]), dtype)[0] == 0.0


def test_the_rule_gives_every_kind():
    exact = np.array([1.0, 1.0, 1.0, 1.0, 1.0])
    fd = np.array([1.0, 1.0 + 1e-9, 1.0 + 1e-12, 1.0 + 1e-3, np.nan])
    estimate = np.array([1e-15, 1e-12, 1e-11, 1e-2, np.nan])
    ok = np.array([False, True, True, True, True])
    fd_ok = np.abs(fd - exact) <= 1e-6
    sampled = np.array([True, True, True, True, False])
    kind, within = attribute(ok, fd, exact, estimate, fd_ok, sampled)
    # wrong autograd wins; FD beyond its estimate; all agree; FD within its estimate but outside tolerance; no FD
    assert list(kind) == ["autograd_wrong", "fd_inaccurate", "all_agree", "fd_inaccurate", "fd_not_sampled"]
    assert list(within) == [True, False, True, True, False]


class WrongExp(torch.autograd.Function):
    """exp whose backward is off by a factor 1.001 on element (0, 1)."""

    @staticmethod
    def forward(ctx, x):
        y = x.exp()
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        grad = g * y
        grad[0, 1] = grad[0, 1] * 1.001
        return grad


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_wrong_backward_is_blamed_on_autograd(dtype):
    case = make_case("t.wrong_backward", {"x": X}, torch=WrongExp.apply, sympy=sym_exp, grad_output="random",
                     dtypes=[dtype])
    result = Runner().run(case, dtype)
    assert result.status == "fail"
    rows = result.rows.set_index("index")
    assert rows.loc["(0, 1)", "attribution"] == "autograd_wrong"
    # the finite difference agreed with exact there: the blame is autograd's alone
    assert rows.loc["(0, 1)", "fd_within_estimate"] and rows.loc["(0, 1)", "fd_ok"]
    assert set(rows.drop(index="(0, 1)")["attribution"]) == {"all_agree"}
    # 1.001 in float32 is ~8000 ulps of float32; in float64 ~4.5e12 ulps of float64
    # ulps of the allowance's scale: a row passes up to rtol/eps (84 float32, 1.8e5 float64)
    pass_line = DEFAULT_TOLERANCES[dtype].rtol / EPSILON[dtype]
    assert rows.loc["(0, 1)", "ulp_err"] > 5 * pass_line
    assert (rows.drop(index="(0, 1)")["ulp_err"] <= pass_line).all()
    summary = tables.summary([result])
    assert summary.loc[0, "autograd_wrong"] == 1 and summary.loc[0, "all_agree"] == 3


def noisy_exp(x0: np.ndarray):
    """exp(x) whose forward picks up ~1e-6 relative noise away from x0 (none at x0 itself), outside autograd."""
    anchor = torch.as_tensor(x0, dtype=torch.float64)

    def f(x):
        noise = (1e-6 * torch.sin(1e9 * (x.to(torch.float64) - anchor))).detach().to(x.dtype)
        return torch.exp(x) * (1 + noise)
    return f


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_noisy_forward_is_blamed_on_finite_differences_not_autograd(dtype):
    x0 = _round(np.array(X), dtype)
    case = make_case("t.noisy_forward", {"x": X}, torch=noisy_exp(x0), sympy=sym_exp, grad_output="random",
                     dtypes=[dtype])
    result = Runner().run(case, dtype)
    # autograd (and the forward at the point) are right: the case passes ...
    assert result.status == "pass", result.message
    rows = result.rows
    assert rows["ok"].all()
    # ... and the poor finite differences are attributed to the finite differences
    assert set(rows["attribution"]) == {"fd_inaccurate"}
    assert (rows["fd_rel_err"] > 1e-6).all()
    summary = tables.summary([result])
    assert summary.loc[0, "autograd_wrong"] == 0 and summary.loc[0, "fd_inaccurate"] == 4


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_same_function_without_noise_agrees_everywhere(dtype):
    case = make_case("t.clean", {"x": X}, forward="torch.exp(x)", grad_output="random", dtypes=[dtype])
    rows = Runner().run(case, dtype).rows
    assert set(rows["attribution"]) == {"all_agree"}
    assert set(rows["fd_method"]) == {"complex-step"}
    # autograd within a couple of ulps of its dtype; the complex step within a few float64 ulps
    assert (rows["ulp_err"] <= 2).all()
    assert (rows["fd_abs_err"] <= 4 * np.spacing(np.abs(rows["exact"]))).all()


def test_report_counts_every_kind_per_case(tmp_path):
    from verifier.report.writing import write_reports
    wrong = make_case("t.w", {"x": X}, torch=WrongExp.apply, sympy=sym_exp, grad_output="random")
    right = make_case("t.r", {"x": X}, forward="torch.exp(x)", grad_output="random")
    results = [Runner().run(wrong, "float64"), Runner(fd_max_elements=3).run(right, "float64")]
    paths = write_reports(results, tmp_path)
    import pandas as pd
    summary = pd.read_csv(paths["summary"]).set_index("case")
    assert summary.loc["t.w", list(KINDS)].tolist() == [1, 0, 3, 0, 0]
    assert summary.loc["t.r", list(KINDS)].tolist() == [0, 0, 3, 0, 1]
    details = pd.read_csv(paths["details"])
    assert {"ulp_err", "fd_ulp_err", "fd_within_estimate", "attribution"} <= set(details.columns)
    html = paths["html"].read_text()
    assert "autograd_wrong" in html and "fd_not_sampled" in html


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_an_element_at_a_declared_kink_is_attributed_to_the_kink(dtype):
    case = make_case("t.kink", {"x": [-1.0, 0.0, 2.0]}, forward="torch.relu(x)", grad_output="ones",
                     kink="relu at x[1] = 0: relu'(0) = 0", dtypes=[dtype])
    result = Runner().run(case, dtype)
    assert result.status == "pass", result.message
    rows = result.rows.set_index("index")
    # the FD across the kink is the midpoint 0.5, not exact's 0: that is what it must be there
    assert rows.loc["(1,)", "finite_diff"] == pytest.approx(0.5)
    assert rows.loc["(1,)", "attribution"] == "at_kink"
    assert set(rows.drop(index="(1,)")["attribution"]) == {"all_agree"}
    assert tables.summary([result]).loc[0, "at_kink"] == 1
