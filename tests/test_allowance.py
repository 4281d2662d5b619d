"""Issue 12, items 1, 2, 5, 8, 9: the per-element allowance rtol·M_i + atol and the non-finite outcome.

Each test here failed on main before the allowance: a wrong gradient passed
beside a large element, an overflow passed, an infinite expectation passed,
torch's rounding of an exact zero failed the second-order check, and an
exact ~0 reported a ulp error of 1e307.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch
from corpus.elementwise import CubeThird, CubeThirdPlusOne
from torch.autograd import Function

import verifier
from verifier import GradientMismatch, Runner, assert_gradients, make_case
from verifier.cli import main
from verifier.errors import CaseError
from verifier.exact.cache import Cache
from verifier.verdict.compare import DEFAULT_TOLERANCES, EPSILON, allowance, within


def _cube(fn, xs, dtype, **fields):
    return make_case("t.cube", {"x": xs}, torch=fn.apply, sympy="x**3 / 3", grad_output="ones",
                     dtypes=[dtype], checks={"forward_mode": False, "second_order": False}, **fields)


SMALL = [0.5, -1.0, 1.5]


@pytest.mark.parametrize("large, dtype", [(2000.0, "float32"), (2e13, "float64")])
def test_one_large_element_no_longer_hides_an_error_of_one_in_the_others(large, dtype):
    """Item 1: the bug fails alone and beside the large element; the right backward passes beside it."""
    alone = Runner(cache=False).run(_cube(CubeThirdPlusOne, SMALL, dtype), dtype)
    beside = Runner(cache=False).run(_cube(CubeThirdPlusOne, SMALL + [large], dtype), dtype)
    right = Runner(cache=False).run(_cube(CubeThird, SMALL + [large], dtype), dtype)
    assert alone.status == "fail" and beside.status == "fail", beside.message
    assert beside.rows["ok"].tolist()[:3] == [False, False, False]
    assert "all_agree" not in beside.rows["attribution"].tolist()[:3]
    # the allowance of the small elements is their own: rtol·M + atol with M ≈ a few |x²|, never ~large²
    assert (beside.rows["tolerance"].to_numpy()[:3] < 1e-3).all()
    assert right.status == "pass", right.message


@pytest.mark.parametrize("large, dtype", [(2000.0, "float32"), (2e13, "float64")])
def test_assert_gradients_catches_the_error_beside_a_large_element(large, dtype):
    with pytest.raises(GradientMismatch):
        assert_gradients(CubeThirdPlusOne.apply, lambda x: x**3 / 3, {"x": np.array(SMALL + [large])},
                         grad_output="ones", dtypes=[dtype])
    assert_gradients(CubeThird.apply, lambda x: x**3 / 3, {"x": np.array(SMALL + [large])},
                     grad_output="ones", dtypes=[dtype])


def test_the_allowance_is_per_element_and_never_below_the_old_relative_part():
    tol = DEFAULT_TOLERANCES["float64"]
    exact = np.array([0.25, 4e26])
    allowed = allowance(exact, tol, np.array([0.5, 8e26]))
    assert allowed[0] == pytest.approx(tol.rtol * 0.5 + tol.atol)
    # without a bound (a route that cannot give one) |exact| is the scale: tighter, never looser
    assert allowance(exact, tol)[0] == pytest.approx(tol.rtol * 0.25 + tol.atol)
    # a bound below |exact| (corrupt) cannot shrink the relative part
    assert allowance(exact, tol, np.zeros(2))[1] >= tol.rtol * 4e26
    # an error of 1 on an element whose true gradient is 0 fails in every dtype
    for dtype, t in DEFAULT_TOLERANCES.items():
        assert not within(np.array([1.0]), np.array([0.0]), t, np.array([0.0]))[0][0], dtype


@pytest.mark.parametrize("dtype, logits", [("float32", [1000.0, 1001.0, 999.5, 1000.25]),
                                           ("float64", [1e4, 1e4 + 1, 1e4 - 0.5, 1e4 + 0.25])])
def test_cancellation_does_not_alarm(dtype, logits):
    """softmax with large logits and x - mean(x) with large x: exact ~0 elements beside large terms pass."""
    for forward, v in (("F.softmax(x, dim=0)", "random"), ("F.softmax(x, dim=0)", "ones"),
                       ("x - x.mean()", "ones"), ("(x.sum() - x.sum()) * x + x * 3", "random")):
        case = make_case("t.cancel", {"x": logits}, forward=forward, grad_output=v, dtypes=[dtype])
        result = Runner(cache=False).run(case, dtype)
        assert result.status == "pass", (forward, result.message)


def test_a_wrong_gradient_with_cancellation_is_still_caught():
    """The bound is not a license: softmax's backward off by 1e-3 relative at large logits is caught."""

    class Softmax(Function):
        @staticmethod
        def forward(ctx, x):
            y = torch.softmax(x, 0)
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, g):
            (y,) = ctx.saved_tensors
            return y * (g - (g * y).sum()) * 1.001

    case = make_case("t.softmax_bug", {"x": [1000.0, 1001.0, 999.5, 1000.25]}, torch=Softmax.apply,
                     sympy="F.softmax(x, dim=0)", grad_output="random", dtypes=["float64", "float32"],
                     checks={"forward_mode": False, "second_order": False})
    for dtype in case.dtypes:
        assert Runner(cache=False).run(case, dtype).status == "fail"


@pytest.mark.parametrize("xs, dtype", [([1.0, -2.0, 0.5, 1e155], "float64"), ([200.0], "float16")])  # 200³ and 3·200² overflow float16; 7e4 itself is refused at load
def test_overflow_is_its_own_outcome_not_a_pass(xs, dtype):
    """Item 2: inf on both sides used to be 'equal' with an inf tolerance on every row."""
    wrong = make_case("t.ovf", {"x": xs}, torch="x**3 + 2*x", sympy="x**3 + 3*x", grad_output="ones",
                      dtypes=[dtype])
    right = make_case("t.ovf", {"x": xs}, forward="x**3 + 2*x", grad_output="ones", dtypes=[dtype])
    got_wrong, got_right = (Runner(cache=False).run(c, dtype) for c in (wrong, right))
    assert got_wrong.status in ("fail", "non_finite") and got_wrong.status != "pass"
    if len(xs) > 1:
        assert got_wrong.status == "fail"          # the finite elements are still judged: 6 vs 5
    assert got_right.status == "non_finite", got_right.message
    assert "non_finite" in got_right.message
    if dtype == "float64":         # 1e155³ is inf even exactly rounded; 3·200² = 120002 is finite in float64
        assert "exact is inf" in got_right.message
    assert "autograd is inf" in got_right.message and "accept: [non_finite]" in got_right.message


def test_a_case_that_accepts_non_finite_values_passes_and_still_fails_a_wrong_gradient():
    xs = [1.0, -2.0, 0.5, 1e155]
    right = make_case("t.ovf", {"x": xs}, forward="x**3 + 2*x", grad_output="ones", accept=["non_finite"])
    wrong = make_case("t.ovf", {"x": xs}, torch="x**3 + 2*x", sympy="x**3 + 3*x", grad_output="ones",
                      accept=["non_finite"])
    assert Runner(cache=False).run(right, "float64").status == "pass"
    assert Runner(cache=False).run(wrong, "float64").status == "fail"


def test_non_finite_exits_with_failure_and_accept_is_in_the_schema(tmp_path, capsys):
    path = tmp_path / "ovf.yaml"
    path.write_text(textwrap.dedent("""\
        cases:
          - name: ovf.cube
            inputs: {x: [1.0, 1.0e+155]}
            forward: x**3 + 2*x
            grad_output: ones
        """))
    assert main(["run", str(path), "--report-dir", str(tmp_path / "r")]) == 1
    assert "non_finite" in (tmp_path / "r" / "summary.csv").read_text()
    path.write_text(path.read_text() + "    accept: [non_finite]\n")
    assert main(["run", str(path), "--report-dir", str(tmp_path / "r2")]) == 0
    path.write_text(path.read_text().replace("[non_finite]", "[overflow]"))
    assert main(["validate", str(path)]) == 2
    assert "accept" in capsys.readouterr().err


@pytest.mark.parametrize("expect", [{"grad": {"x": [float("inf"), 1000.0]}}, {"grad": {"x": [float("nan"), 3]}},
                                    {"output": float("inf")}])
def test_non_finite_expectations_are_refused(expect):
    """Item 5: expect.grad {x: [.inf, 1000]} for a true gradient [3, 3] used to pass."""
    with pytest.raises(CaseError, match="not finite") as info:
        make_case("t.expect", {"x": [1.0, 2.0]}, forward="(3 * x).sum()", expect=expect)
    assert "t.expect" in str(info.value)


def test_non_finite_expectations_are_refused_in_yaml(tmp_path):
    path = tmp_path / "e.yaml"
    path.write_text("cases:\n  - name: e.inf\n    inputs: {x: [1.0, 2.0]}\n    forward: (3*x).sum()\n"
                    "    expect: {grad: {x: [.inf, 1000]}}\n")
    loaded = verifier.load_file(path)
    assert not loaded.cases and "not finite" in str(loaded.errors[0])


@pytest.mark.parametrize("xs", [[[0.01, -0.02, 0.003]], [[1e-3, -2e-3, 3e-3]]])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_exact_zero_second_derivatives_allow_torchs_cancelling_terms(xs, dtype):
    """Item 8: F.normalize(x, p=0.5, dim=0) over a size-1 dim: H·w is exactly 0, torch returns ±3.6e-12."""
    case = make_case("t.norm", {"x": xs}, forward="F.normalize(x, p=0.5, dim=0)", grad_output="random",
                     dtypes=[dtype])
    result = Runner(cache=False).run(case, dtype)
    second = result.second_order
    assert second.status == "pass", second.detail
    assert all((v == 0).all() for v in second.exact.values())
    assert any((v != 0).any() for v in second.torch.values())     # the rounding really is there


class CubeJvpWrong(Function):
    """x³/3 with a forward-mode jvp off by + u (the directional checks use the same allowance)."""

    @staticmethod
    def forward(x):
        return x * x * x / 3

    @staticmethod
    def setup_context(ctx, inputs, output):
        (ctx.x,) = inputs
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * x * x

    @staticmethod
    def jvp(ctx, u):
        return u * (ctx.x * ctx.x + 1)


@pytest.mark.parametrize("large, dtype", [(2000.0, "float32"), (2e13, "float64")])
def test_forward_mode_uses_the_per_element_allowance(large, dtype):
    case = make_case("t.jvp", {"x": SMALL + [large]}, torch=CubeJvpWrong.apply, sympy="x**3 / 3",
                     grad_output="ones", dtypes=[dtype], checks={"second_order": False})
    result = Runner(cache=False).run(case, dtype)
    assert result.forward_mode.status == "fail", result.forward_mode.detail
    assert result.checks[0].ok                       # the gradient itself is right


def test_ulp_errors_are_meaningful_at_an_exact_zero():
    """Item 9: a passing row whose exact value is ~0 reported max_ulp_err 3.8e307."""
    case = make_case("t.ulp", {"x": [1000.0, 1001.0, 999.5, 1000.25]}, forward="F.softmax(x, dim=0)",
                     grad_output="ones", dtypes=["float64", "float32"])
    for dtype in case.dtypes:
        result = Runner(cache=False).run(case, dtype)
        rows = result.rows
        assert result.status == "pass"
        assert (np.abs(rows["exact"]) < 1e-12).all()
        tol = DEFAULT_TOLERANCES[dtype]
        assert rows["ulp_err"].max() <= tol.rtol / EPSILON[dtype]     # a passing row: at most rtol/eps
        assert np.isfinite(rows["fd_ulp_err"]).all()


def test_ulp_errors_of_a_wrong_gradient_exceed_the_pass_line():
    result = Runner(cache=False).run(_cube(CubeThirdPlusOne, SMALL + [2000.0], "float32"), "float32")
    tol = DEFAULT_TOLERANCES["float32"]
    bad = result.rows[~result.rows["ok"]]
    assert (bad["ulp_err"] > tol.rtol / EPSILON["float32"]).all()


def test_old_cache_entries_without_bounds_are_a_miss_and_bad_bounds_are_refused(tmp_path):
    cache = Cache(tmp_path)
    case = _cube(CubeThirdPlusOne, SMALL + [2000.0], "float32")
    assert Runner(cache=cache).run(case, "float32").status == "fail"
    keys = [p.stem for p in tmp_path.rglob("*.json") if "vjp" in p.read_text()]
    assert keys
    for tamper in ({"magnitude": None}, {"magnitude": {"x": [-1e30] * 4}}, {"output_magnitude": [float("nan")] * 4}):
        for key in keys:            # authentic entries (signed with the user's secret) with the wrong shape
            data = cache.load(key)
            for field, value in tamper.items():
                if value is None:
                    data.pop(field, None)
                else:
                    data[field] = value
            cache.store(key, data)
        result = Runner(cache=cache).run(case, "float32")
        assert result.status == "fail", tamper
        assert (result.rows["tolerance"].to_numpy()[:3] < 1e-3).all()
