"""False alarms and crashes found by benchmarks/opinfo_sweep.py, each pinned by its OpInfo sample.

Every sample is written as the case the sweep builds from it (float64, random grad_output).
Where a wrong gradient is possible, a planted wrong twin (the exact side of a different
function) must still fail: a fix that makes the right case pass must not make every case pass.
"""

from __future__ import annotations

import pytest

from verifier import Runner, make_case

X0 = {"value": 0.5, "requires_grad": True}
S0 = {"value": -1.25, "requires_grad": True}
X1 = {"value": [0.5], "requires_grad": True}
S1 = {"value": [-1.25], "requires_grad": True}
I1 = {"value": [0], "dtype": "int64"}


def run(name, inputs, forward=None, *, torch=None, sympy=None):
    if forward is not None:
        case = make_case(name, inputs, forward=forward, grad_output="random")
    else:
        case = make_case(name, inputs, torch=torch, sympy=sympy, grad_output="random")
    return Runner(cache=None).run(case, "float64")


# index_add / index_copy / index_fill / index_reduce on a 0-d input: torch treats it as one
# element along dim 0; the mirror raised numpy's AxisError (op_db samples 0-2 of each).
LOW_DIM = [
    pytest.param({"x": X0, "i": I1, "s": S0}, "torch.index_add(x, 0, i, s, alpha=-1)", id="index_add-0d"),
    pytest.param({"x": X0, "i": I1, "s": S0}, "torch.index_add(x, -1, i, s, alpha=2)", id="index_add-0d-dim-1"),
    pytest.param({"x": X0, "i": I1, "s": S0}, "torch.index_copy(x, 0, i, s)", id="index_copy-0d"),
    pytest.param({"x": X0, "i": I1}, "torch.index_fill(x, 0, i, -4.826984902407649)", id="index_fill-0d"),
    pytest.param({"x": X0, "i": I1, "s": S0}, "torch.index_reduce(x, 0, i, s, 'prod', include_self=True)",
                 id="index_reduce-prod-0d"),
    pytest.param({"x": X0, "i": I1, "s": S0}, "torch.index_reduce(x, 0, i, s, 'mean', include_self=False)",
                 id="index_reduce-mean-0d"),
    pytest.param({"x": X0, "i": I1, "s": S0}, "torch.index_reduce(x, 0, i, s, 'amax', include_self=True)",
                 id="index_reduce-amax-0d"),
    pytest.param({"x": X1, "i": I1, "s": S1}, "torch.index_reduce(x, 0, i, s, 'amin', include_self=True)",
                 id="index_reduce-amin-1d"),
]


@pytest.mark.parametrize("inputs, forward", LOW_DIM)
def test_index_ops_on_a_0d_input_follow_torchs_shape_rule(inputs, forward):
    result = run("opinfo.index", inputs, forward)
    assert result.status == "pass", result.message


@pytest.mark.parametrize("torch_text, wrong", [
    pytest.param("torch.index_add(x, 0, i, s, alpha=-1)", "torch.index_add(x, 0, i, s, alpha=2)", id="alpha"),
    pytest.param("torch.index_copy(x, 0, i, s)", "torch.index_add(x, 0, i, s)", id="copy-vs-add"),
    pytest.param("torch.index_reduce(x, 0, i, s, 'prod', include_self=True)",
                 "torch.index_reduce(x, 0, i, s, 'prod', include_self=False)", id="include_self"),
])
def test_a_wrong_0d_index_gradient_is_still_caught(torch_text, wrong):
    result = run("opinfo.index.wrong", {"x": X0, "i": I1, "s": S0}, torch=torch_text, sympy=wrong)
    assert result.status == "fail", result.message


# linalg.inv / pinv (and det, cholesky, which share the batching) of an empty batch: torch returns
# an empty result; the mirror indexed the first matrix of the batch (IndexError).
@pytest.mark.parametrize("shape, forward", [
    pytest.param([0, 2, 2], "torch.linalg.inv(x)", id="inv"),
    pytest.param([0, 3, 2], "torch.linalg.pinv(x)", id="pinv-tall"),
    pytest.param([0, 2, 3], "torch.linalg.pinv(x)", id="pinv-wide"),
    pytest.param([0, 2, 2], "torch.linalg.det(x)", id="det"),
    pytest.param([2, 0, 2, 2], "torch.linalg.inv(x).sum() + x.sum()", id="inv-sum"),
])
def test_linalg_of_an_empty_batch_is_checked(shape, forward):
    result = run("opinfo.linalg.empty", {"x": {"shape": shape, "fill": 0, "requires_grad": True}}, forward)
    assert result.status == "pass", result.message


def test_a_wrong_gradient_next_to_an_empty_batch_is_still_caught():
    # The empty batch contributes nothing; the other input's wrong gradient must still fail.
    inputs = {"x": {"shape": [0, 2, 2], "fill": 0, "requires_grad": True},
              "y": {"value": [0.5, -1.5], "requires_grad": True}}
    result = run("opinfo.linalg.empty.wrong", inputs, torch="torch.linalg.inv(x).sum() + (y * y).sum()",
                 sympy="torch.linalg.inv(x).sum() + (y * y * y).sum()")
    assert result.status == "fail", result.message


# linalg.pinv(A, rtol=1.0) (op_db sample 1): torch cuts every singular value below rtol * sigma_max
# (here all of them: the output is 0); the mirror ignored the cut-off and failed the case. A
# cut-off has no closed form: it is refused, saying so; the default and 0 keep running.
PINV_A = [[2.0, 0.5], [0.25, 1.5], [1.0, -1.0]]


@pytest.mark.parametrize("forward, what", [
    pytest.param("torch.linalg.pinv(x, rtol=1.0)", "rtol 1", id="rtol"),
    pytest.param("torch.linalg.pinv(x, atol=0.5)", "atol", id="atol"),
    pytest.param("torch.linalg.pinv(x, rtol=r)", "rtol (a tensor)", id="rtol-tensor"),
])
def test_a_pinv_cut_off_is_refused_with_a_reason(forward, what):
    result = run("opinfo.pinv.cut", {"x": PINV_A, "r": {"value": 1.0, "requires_grad": False}}, forward)
    assert result.status == "error"
    assert f"pinv: {what}" in result.message and "Leave atol and rtol unset" in result.message


@pytest.mark.parametrize("forward", ["torch.linalg.pinv(x)", "torch.linalg.pinv(x, rtol=None)",
                                     "torch.linalg.pinv(x, atol=0.0, rtol=0)"])
def test_pinv_without_a_cut_off_still_runs(forward):
    result = run("opinfo.pinv", {"x": PINV_A}, forward)
    assert result.status == "pass", result.message


def test_a_wrong_pinv_gradient_is_still_caught():
    result = run("opinfo.pinv.wrong", {"x": PINV_A}, torch="torch.linalg.pinv(x)",
                 sympy="torch.linalg.pinv(x * 1.0001)")
    assert result.status == "fail", result.message


# msort of op_db's 8000-element sample ran past every time limit (n^2 rank comparisons): refused
# at build, saying how many elements are supported; short sorts still run and still catch a bug.
def test_a_sort_too_long_for_the_rank_formula_is_refused_at_once():
    from verifier.exact.mirror.selection import SORT_MAX
    result = run("opinfo.msort.long", {"x": {"shape": [8000], "sample": "normal", "seed": 1}}, "torch.msort(x)")
    assert result.status == "error"
    assert "sorting 8000 elements along one dim is not supported" in result.message
    assert f"at most {SORT_MAX} elements" in result.message


@pytest.mark.parametrize("forward", ["torch.msort(x)", "torch.sort(x, 0, descending=True)", "torch.topk(x, 2, 0)"])
def test_short_sorts_still_run(forward):
    result = run("opinfo.msort", {"x": {"shape": [5, 3], "sample": "normal", "seed": 2}}, forward)
    assert result.status == "pass", result.message


def test_a_wrong_sort_gradient_is_still_caught():
    result = run("opinfo.msort.wrong", {"x": {"shape": [5, 3], "sample": "normal", "seed": 2}},
                 torch="torch.msort(x)", sympy="torch.msort(x * 1.001)")
    assert result.status == "fail", result.message


# linalg.solve of op_db's 5x5 samples timed out: SymPy's diff of the elimination's rational trees
# (777k tree nodes x elements) took minutes; such cases now take the reverse sweep alone.
SOLVE_A = [[3.1, 0.2, -0.5, 0.3, 0.1], [0.4, 2.7, 0.2, -0.6, 0.3], [-0.2, 0.5, 3.3, 0.1, -0.4],
           [0.6, -0.1, 0.2, 2.9, 0.5], [0.1, 0.3, -0.4, 0.2, 3.5]]
SOLVE_B = [0.5, -1.0, 1.5, 0.25, -0.75]


def test_a_5x5_solve_takes_the_sweep_route_and_is_checked():
    from verifier.exact import compiled
    from verifier.exact.symbolic import build
    case = make_case("opinfo.solve", {"a": SOLVE_A, "b": SOLVE_B}, forward="torch.linalg.solve(a, b)")
    assert not compiled.compile_model(build(case), case).has_jacobian
    result = run("opinfo.solve", {"a": SOLVE_A, "b": SOLVE_B}, "torch.linalg.solve(a, b)")
    assert result.status == "pass", result.message


def test_a_wrong_5x5_solve_gradient_is_still_caught():
    result = run("opinfo.solve.wrong", {"a": SOLVE_A, "b": SOLVE_B}, torch="torch.linalg.solve(a, b)",
                 sympy="torch.linalg.solve(a.T, b)")
    assert result.status == "fail", result.message


# index_put with a bool mask (op_db sample 1) was refused ("expected an integer index array");
# torch indexes with the mask's nonzero positions.
MASK_INPUTS = {"x": {"shape": [5, 5], "sample": "normal", "seed": 3},
               "m": {"value": [1, 1, 0, 1, 0], "dtype": "bool"},
               "w": {"value": [1, 0, 0, 1, 1], "dtype": "bool"},
               "v": {"shape": [5], "sample": "normal", "seed": 4}}


@pytest.mark.parametrize("accumulate", [False, True])
def test_index_put_with_a_bool_mask(accumulate):
    result = run("opinfo.index_put.mask", MASK_INPUTS, f"torch.index_put(x, (m,), v, accumulate={accumulate})")
    assert result.status == "pass", result.message


def test_index_put_with_the_wrong_mask_is_caught():
    result = run("opinfo.index_put.mask.wrong", MASK_INPUTS, torch="torch.index_put(x, (m,), v)",
                 sympy="torch.index_put(x, (w,), v)")
    assert result.status == "fail", result.message


# F.pad(x, (1, 2), 'reflect') of a (0, 3, 3) input (op_db sample 2): the size check also read the
# unpadded empty dim ("padding must be smaller than the dim it pads"); torch pads it.
def test_reflect_pad_of_an_input_with_an_empty_unpadded_dim():
    result = run("opinfo.pad.reflect", {"x": {"shape": [0, 3, 3], "fill": 0, "requires_grad": True}},
                 "F.pad(x, (1, 2), 'reflect')")
    assert result.status == "pass", result.message


def test_reflect_pad_as_wide_as_the_dim_is_still_refused_by_the_mirror():
    import numpy as np
    import sympy

    from verifier.errors import ExpressionError
    from verifier.exact.mirror.resample import pad
    x = np.array(sympy.symbols("a:6"), dtype=object).reshape(2, 3)
    with pytest.raises(ExpressionError, match="reflect padding must be smaller"):
        pad(x, (3, 0), "reflect")
    assert pad(np.empty((0, 3, 3), dtype=object), (1, 2), "reflect").shape == (0, 3, 6)


def test_a_wrong_reflect_pad_is_still_caught():
    result = run("opinfo.pad.reflect.wrong", {"x": {"shape": [1, 3], "sample": "normal", "seed": 5}},
                 torch="F.pad(x, (1, 2), 'reflect')", sympy="F.pad(x, (1, 2), 'replicate')")
    assert result.status == "fail", result.message


# The sweep's refusals: each says what is unsupported and what to do instead.
def _refusal(call):
    from verifier.errors import ExpressionError
    with pytest.raises(ExpressionError) as info:
        call()
    return info.value


def test_the_sweeps_refusals_say_what_to_do():
    import numpy as np
    import sympy

    from verifier.exact.mirror import elementwise, factors, resample

    def symbols(*shape):
        return np.array(sympy.symbols(f"s:{int(np.prod(shape))}"), dtype=object).reshape(shape)

    cases = [
        (lambda: elementwise.div(symbols(2), symbols(2), rounding_mode="round"), "rounding_mode='round'",
         "'floor' or 'trunc'"),
        (lambda: factors.householder_product(symbols(2, 3, 2), symbols(2, 2)), "only a 2-d A", "A[0]"),
        (lambda: resample.grid_sample(symbols(1, 1, 2, 2), symbols(1, 2, 2, 2), padding_mode="border"),
         "padding_mode='border'", "padding_mode='zeros'"),
        (lambda: factors.pinv(symbols(3, 2), rtol=0.5), "pinv: rtol", "Leave atol and rtol unset"),
    ]
    for call, what, todo in cases:
        err = _refusal(call)
        assert what in err.message, err.message
        assert todo in (err.hint or ""), err.hint


def test_pinv_hermitian_of_a_symmetric_input_still_runs():
    # op_db's linalg.pinv.hermitian samples: A + A^T with structure: symmetric, as the sweep writes them
    a = {"value": [[2.0, 0.5, 0.25], [0.5, 1.5, -0.5], [0.25, -0.5, 3.0]], "structure": "symmetric"}
    result = run("opinfo.pinv.hermitian", {"x": a}, "torch.linalg.pinv(x, hermitian=True)")
    assert result.status == "pass", result.message
    wrong = run("opinfo.pinv.hermitian.wrong", {"x": a}, torch="torch.linalg.pinv(x, hermitian=True)",
                sympy="torch.linalg.pinv(x * 1.0001)")
    assert wrong.status == "fail", wrong.message


# linalg.pinv.hermitian sample 2: an empty batch of symmetric matrices crashed the structured
# finite differences (reshape(-1) of a zero-size array); it has nothing to compare and passes.
def test_an_empty_batch_of_structured_matrices_is_checked():
    x = {"shape": [0, 3, 3], "fill": 0, "structure": "symmetric"}
    result = run("opinfo.pinv.hermitian.empty", {"x": x}, "torch.linalg.pinv(x, hermitian=True)")
    assert result.status == "pass", result.message
    y = {"value": [0.5, -1.5], "requires_grad": True}
    wrong = run("opinfo.pinv.hermitian.empty.wrong", {"x": x, "y": y},
                torch="torch.linalg.pinv(x, hermitian=True).sum() + (y * y).sum()",
                sympy="torch.linalg.pinv(x, hermitian=True).sum() + (y * y * y).sum()")
    assert wrong.status == "fail", wrong.message


# The full audit of 2026-12-03: median/nanmedian of a 0-d input along dim 0 (op_db sample 1) raised
# IndexError in the mirror; var_mean/std_mean with var's legacy (x, unbiased) form (op_db's 'unbiased'
# variant, sample 0) took the bool for a dim and crashed stacking the mean.
M2 = {"value": [[1.0, 2.0, 4.0], [0.5, 3.0, -1.0]], "requires_grad": True}
SELECTION_FORMS = [
    pytest.param({"x": X0}, "torch.median(x, dim=0, keepdim=True)", id="median-0d-keepdim"),
    pytest.param({"x": X0}, "torch.nanmedian(x, 0)", id="nanmedian-0d"),
    pytest.param({"x": X0}, "torch.kthvalue(x, 1, 0)", id="kthvalue-0d"),
    pytest.param({"x": X0}, "torch.topk(x, 1)", id="topk-0d"),
    pytest.param({"x": M2}, "torch.var_mean(x, True)", id="var_mean-unbiased"),
    pytest.param({"x": M2}, "torch.std_mean(x, False)", id="std_mean-biased"),
    pytest.param({"x": M2}, "torch.var_mean(x, 1, keepdim=True)", id="var_mean-dim-keepdim"),
    pytest.param({"x": M2}, "torch.std_mean(x, dim=0, correction=0)", id="std_mean-correction"),
]


@pytest.mark.parametrize("inputs, forward", SELECTION_FORMS)
def test_selection_and_moments_follow_torchs_call_forms(inputs, forward):
    result = run("opinfo.selection", inputs, forward)
    assert result.status == "pass", result.message


@pytest.mark.parametrize("torch_text, wrong", [
    pytest.param("torch.var_mean(x, True)", "torch.var_mean(x, False)", id="unbiased-vs-biased"),
    pytest.param("torch.std_mean(x, True)", "torch.var_mean(x, True)", id="std-vs-var"),
    pytest.param("torch.median(x, 0, keepdim=True)", "2 * torch.median(x, 0, keepdim=True)", id="median-0d"),
])
def test_a_wrong_selection_or_moment_gradient_is_still_caught(torch_text, wrong):
    inputs = {"x": X0} if "median" in torch_text else {"x": M2}
    result = run("opinfo.selection.wrong", inputs, torch=torch_text, sympy=wrong)
    assert result.status == "fail", result.message


def test_a_mode_too_large_for_the_mirror_is_refused_at_once_with_the_reason():
    """op_db's torch.mode samples (5x5x5) timed out; above MODE_MAX elements the mirror refuses, marked as a refusal."""
    import time
    big = {"x": {"value": [[float(i + 5 * j) / 7 for i in range(5)] for j in range(5)], "requires_grad": True}}
    start = time.perf_counter()
    result = run("opinfo.mode.big", big, "torch.mode(x, 1)")
    assert time.perf_counter() - start < 20
    assert result.status == "error" and result.refused and "mode of 25 elements is not supported" in result.message


def test_a_small_mode_still_runs_and_a_wrong_one_is_caught():
    small = {"x": {"value": [[0.5, -1.25, 2.0], [1.5, 0.25, -0.75]], "requires_grad": True}}
    assert run("opinfo.mode", small, "torch.mode(x, 1)").status == "pass"
    assert run("opinfo.mode.wrong", small, torch="torch.mode(x, 1)", sympy="torch.amax(x, 1)").status == "fail"
