"""The documented torch facts (verifier/verdict/torch_facts.py, docs/torch-findings.md).

Three things are pinned for each fact: torch still does it (measured against 40-digit mpmath or
against what the output depends on; the test fails once torch fixes it, and the entry can go),
the verifier still fails the case (a fact never turns a failure into a pass) and names the
fact, and the fact names nothing it does not explain (a wrong gradient of the same function,
or the same check of another function, carries no note).
"""

from __future__ import annotations

import mpmath
import pytest
import torch
import torch.autograd.forward_ad as fwad

from verifier import Runner, make_case
from verifier.verdict import torch_facts

TRIGAMMA_POINTS = [1.13365, 2.7, 3.3]


def run(name, inputs, forward=None, *, torch_text=None, sympy_text=None, dtype="float64", checks=None):
    extra = {"checks": checks} if checks else {}
    if forward is not None:
        case = make_case(name, inputs, forward=forward, grad_output="random", **extra)
    else:
        case = make_case(name, inputs, torch=torch_text, sympy=sympy_text, grad_output="random", **extra)
    return Runner(cache=None).run(case, dtype)


# --- torch still does it -------------------------------------------------------------------

def test_torchs_float64_trigamma_is_still_only_about_5e_10_accurate():
    mpmath.mp.dps = 40
    x = torch.tensor(TRIGAMMA_POINTS, dtype=torch.float64)
    rel = [abs(torch.polygamma(1, x)[i].item() - float(mpmath.polygamma(1, mpmath.mpf(v)))) /
           float(mpmath.polygamma(1, mpmath.mpf(v))) for i, v in enumerate(x.tolist())]
    assert max(rel) > 1e-10, rel          # float64 rounding would give ~1e-16


def test_torchs_logcumsumexp_jvp_still_adds_1e_13():
    x = torch.tensor([-18.0, 0.0, 1.0], dtype=torch.float64)
    u = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    with fwad.dual_level():
        tangent = fwad.unpack_dual(torch.logcumsumexp(fwad.make_dual(x, u), 0)).tangent
    # exact: d/dt log(exp(x0 + t)) = 1 for the first element; torch divides by exp(-19) + 1e-13
    scaled = mpmath.exp(-19)
    expected_torch = float(scaled / (scaled + mpmath.mpf("1e-13")))
    assert tangent[0].item() != 1.0
    assert tangent[0].item() == pytest.approx(expected_torch, rel=1e-9)


def test_torchs_scatter_reduce_prod_still_has_no_tangent():
    x = torch.tensor([1.5, 2.0, 3.0], dtype=torch.float64)
    src = torch.tensor([2.0, 4.0], dtype=torch.float64)
    with fwad.dual_level():
        y = torch.scatter_reduce(fwad.make_dual(x, torch.ones(3, dtype=torch.float64)), 0, torch.tensor([0, 2]),
                                 fwad.make_dual(src, torch.ones(2, dtype=torch.float64)), "prod")
        assert fwad.unpack_dual(y).tangent is None


def test_torchs_triangular_solve_jvp_still_reads_the_unread_triangle():
    from torch.func import jvp
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(3, 3, dtype=torch.float64, generator=gen).triu() + 3 * torch.eye(3, dtype=torch.float64)
    b = torch.randn(3, 2, dtype=torch.float64, generator=gen)
    lower = torch.randn(3, 3, dtype=torch.float64, generator=gen).tril(-1)     # the part the function never reads
    tangent = jvp(lambda a: torch.triangular_solve(b, a, upper=True).solution, (a,), (lower,))[1]
    modern = jvp(lambda a: torch.linalg.solve_triangular(a, b, upper=True), (a,), (lower,))[1]
    moved = torch.triangular_solve(b, a + lower, upper=True).solution - torch.triangular_solve(b, a, upper=True).solution
    assert moved.abs().max().item() == 0.0 and modern.abs().max().item() == 0.0
    assert tangent.abs().max().item() > 1e-3


TRIANGULAR = {"b": [[1.0, -0.5], [0.25, 2.0], [-1.0, 0.5]],
              "A": [[3.0, 0.5, -1.0], [0.0, 2.5, 0.75], [0.0, 0.0, 4.0]]}


def test_triangular_solve_with_a_declared_triangle_passes_forward_mode():
    inputs = {"b": TRIANGULAR["b"], "A": {"value": TRIANGULAR["A"], "structure": "upper_triangular"}}
    result = run("fact.tri", inputs, "torch.triangular_solve(b, A)")
    assert result.status == "pass", result.message


def test_torchs_trunc_division_still_truncates_the_rounded_quotient():
    # 1 / 0.1 (the doubles) is 9.99999999999999944... exactly; fl() rounds it to 10
    from fractions import Fraction
    assert Fraction(1.0) / Fraction(0.1) < 10
    for dtype in (torch.float64, torch.float32):
        a, b = torch.tensor([1.0], dtype=dtype), torch.tensor([0.1], dtype=dtype)
        assert torch.div(a, b, rounding_mode="trunc").item() == 10.0
        assert torch.div(a, b, rounding_mode="floor").item() == 9.0          # through fmod: exact


TRUNC_DIV = {"a": {"value": [1.0, 3.7], "requires_grad": False}, "b": {"value": [0.1, 1.5], "requires_grad": False},
             "x": [2.0, -1.0]}


# --- the verifier fails the case and names the fact ---------------------------------------

def _named(result, fact, check):
    assert result.status == "fail", result.message
    failed = {c.name: c.detail for c in result.checks if not c.ok}
    assert check in failed, result.message
    assert f"known torch fact '{fact}'" in failed[check]
    assert "docs/torch-findings.md" in result.message


@pytest.mark.parametrize("inputs, forward, fact, check", [
    pytest.param({"x": TRIGAMMA_POINTS}, "torch.mvlgamma(x, 1)", "trigamma-float64", "second_order",
                 id="mvlgamma-second-order"),
    pytest.param({"x": TRIGAMMA_POINTS}, "torch.digamma(x)", "trigamma-float64", "gradient", id="digamma-gradient"),
    pytest.param({"x": [-2.5, 0.5, 2.5]}, "F.hardsigmoid(x)", "hardsigmoid-float32-sixth", "gradient",
                 id="hardsigmoid-gradient"),
    pytest.param({"x": [-2.5, 0.5, 2.5]}, "F.hardsigmoid(x)", "hardsigmoid-float32-sixth", "forward_mode",
                 id="hardsigmoid-forward-mode"),
    pytest.param({"x": [-18.0, 0.0, 1.0]}, "torch.logcumsumexp(x, 0)", "logcumsumexp-jvp-eps", "forward_mode",
                 id="logcumsumexp-forward"),
    pytest.param({"x": [1.5, 2.0, 3.0], "s": [2.0, 4.0], "i": {"value": [0, 2], "dtype": "int64"}},
                 "torch.scatter_reduce(x, 0, i, s, 'prod')", "scatter_reduce-prod-no-tangent", "forward_mode",
                 id="scatter_reduce-prod-forward"),
    pytest.param({"x": TRIGAMMA_POINTS}, "torch.polygamma(1, x)", "trigamma-float64", "forward",
                 id="polygamma-1-forward"),
    pytest.param(TRIANGULAR, "torch.triangular_solve(b, A)", "triangular_solve-jvp-unread-triangle",
                 "forward_mode", id="triangular_solve-forward"),
    pytest.param(TRUNC_DIV, "x * torch.div(a, b, rounding_mode='trunc')", "div-trunc-rounded-quotient", "forward",
                 id="div-trunc-forward"),
])
def test_a_torch_fact_fails_the_case_and_is_named(inputs, forward, fact, check):
    _named(run("fact", inputs, forward), fact, check)


def test_the_same_ops_pass_where_torch_is_right():
    # float32's allowance covers trigamma's 5e-10; scatter_reduce with 'sum' has a forward formula
    assert run("fact.ok", {"x": TRIGAMMA_POINTS}, "torch.mvlgamma(x, 1)", dtype="float32").status == "pass"
    ok = run("fact.ok", {"x": [1.5, 2.0, 3.0], "s": [2.0, 4.0], "i": {"value": [0, 2], "dtype": "int64"}},
             "torch.scatter_reduce(x, 0, i, s, 'sum')")
    assert ok.status == "pass", ok.message


# --- a fact explains nothing else -----------------------------------------------------------

def test_a_wrong_gradient_of_a_fact_function_is_not_excused():
    # mvlgamma's gradient is digamma, which torch has right: the trigamma fact must not name it
    result = run("fact.wrong", {"x": TRIGAMMA_POINTS}, torch_text="torch.mvlgamma(x, 1)",
                 sympy_text="torch.mvlgamma(x, 1) * 1.001", checks={"second_order": False})
    assert result.status == "fail"
    assert "known torch fact" not in result.message


def test_a_fact_is_limited_to_its_function_check_dtype_and_argument():
    def case(forward):
        return make_case("c", {"x": [1.5, 2.0, 3.0], "s": [2.0, 4.0], "i": {"value": [0, 2], "dtype": "int64"}},
                         forward=forward)
    prod, amax = case("torch.scatter_reduce(x, 0, i, s, 'prod')"), case("torch.scatter_reduce(x, 0, i, s, 'amax')")
    assert [f.name for f in torch_facts.facts_for(prod, "float64", "forward_mode")] == [
        "scatter_reduce-prod-no-tangent"]
    assert torch_facts.facts_for(prod, "float64", "gradient") == []
    assert torch_facts.facts_for(amax, "float64", "forward_mode") == []
    mv = make_case("m", {"x": TRIGAMMA_POINTS}, forward="torch.mvlgamma(x, 1)")
    assert torch_facts.facts_for(mv, "float64", "gradient") == []          # digamma is accurate
    assert torch_facts.facts_for(mv, "float32", "second_order") == []
    assert [f.name for f in torch_facts.facts_for(mv, "float64", "second_order", 3e-10)] == ["trigamma-float64"]
    two = make_case("p", {"x": TRIGAMMA_POINTS}, forward="torch.polygamma(2, x)")     # accurate: no note
    assert torch_facts.facts_for(two, "float64", "forward") == []


def test_a_fact_explains_only_errors_of_its_measured_size():
    """A wrong gradient of a fact's function in the fact's own check and dtype is not named: a fact with a
    measured size explains no larger (nor an unknown) relative error."""
    mv = make_case("m", {"x": TRIGAMMA_POINTS}, forward="torch.mvlgamma(x, 1)")
    assert torch_facts.facts_for(mv, "float64", "second_order", 1e-3) == []
    assert torch_facts.facts_for(mv, "float64", "second_order", None) == []
    hs = make_case("h", {"x": [-2.5, 0.5, 2.5]}, forward="F.hardsigmoid(x)")
    assert [f.name for f in torch_facts.facts_for(hs, "float64", "gradient", 2.98e-8)] == ["hardsigmoid-float32-sixth"]
    assert torch_facts.facts_for(hs, "float64", "gradient", 1e-6) == []


@pytest.mark.parametrize("check", ["gradient", "forward_mode"])
def test_a_wrong_hardsigmoid_gradient_is_not_named_a_torch_fact(check):
    """0.1 % off in float64, the fact's own check and dtype: a fail, without the fact's note."""
    case = make_case("hs.wrong", {"x": [-2.5, 0.5, 2.5]}, torch="F.hardsigmoid(x)",
                     sympy="F.hardsigmoid(x) * 1.001", grad_output="random")
    result = Runner(cache=None).run(case, "float64")
    failed = {c.name: c for c in result.checks if not c.ok}
    assert result.status == "fail" and check in failed, result.message
    assert "known torch fact" not in failed[check].detail


def test_torchs_hardsigmoid_forward_mode_still_uses_float32s_sixth():
    """The jvp is the backward formula: J·u = u/6 with float32's 1/6 (2.98e-8 relative) in float64."""
    from torch.func import jvp
    x, u = torch.tensor([0.5, -1.0], dtype=torch.float64), torch.ones(2, dtype=torch.float64)
    tangent = jvp(torch.nn.functional.hardsigmoid, (x,), (u,))[1]
    rel = ((tangent - 1 / 6) / (1 / 6)).abs().max().item()
    assert 2.9e-8 < rel < 3.0e-8, rel


def test_every_fact_is_documented():
    from pathlib import Path
    text = (Path(__file__).resolve().parents[1] / torch_facts.DOC).read_text()
    for fact in torch_facts.FACTS:
        assert f"`{fact.name}`" in text, fact.name


# --- logcumsumexp's float32 backward in log space (the full audit of 2026-12-03) --------------------

LARGE = [10000.0, 2.0, 9997.0, 0.5, 10001.0, -3.0, 9999.5]


def _logcumsumexp_grads(x32, v):
    """(torch's float32 gradient, a float32 gradient without log-space differences, the exact one, |J|ᵀ|v|)."""
    def grad(x, w):
        a = x.clone().requires_grad_()
        torch.logcumsumexp(a, 0).backward(w)
        return a.grad.double()
    x64 = x32.double()
    n = len(x32)
    m = torch.cummax(x32, 0).values
    e = torch.exp(x32[None, :] - m[:, None]) * torch.tril(torch.ones(n, n))     # e[j, i] = exp(x_i - m_j)
    stable = ((e / e.sum(1, keepdim=True)) * v.float()[:, None]).sum(0).double()
    return grad(x32, v.float()), stable, grad(x64, v), grad(x64, v.abs())


def test_torchs_float32_logcumsumexp_backward_still_loses_the_outputs_rounding():
    x = torch.tensor(LARGE, dtype=torch.float32)
    v = torch.tensor([0.3, -1.2, 0.8, 1.5, -0.7, 0.4, -1.1], dtype=torch.float64)
    torch32, stable, exact, scale = _logcumsumexp_grads(x, v)
    u, seen = 2.0 ** -24, scale > 0             # the small elements' exp(x_i - y_j) underflow: gradient 0
    assert ((torch32 - exact).abs() / scale)[seen].max().item() / u > 1000     # torch: ~1e4 units of 2^-24
    assert ((stable - exact).abs() / scale)[seen].max().item() / u < 50        # float32 can do it to ~1


def test_the_logcumsumexp_fact_names_float32_at_large_inputs_and_float64_still_catches_a_wrong_gradient():
    inputs = {"x": {"value": LARGE, "requires_grad": True}}
    result = run("fact.lcse", inputs, "torch.logcumsumexp(x, 0)", dtype="float32")
    _named(result, "logcumsumexp-backward-log-space", "gradient")
    assert run("fact.lcse", inputs, "torch.logcumsumexp(x, 0)").status == "pass"       # float64
    small = run("fact.lcse", {"x": {"value": [1.0, 2.0, -0.5], "requires_grad": True}}, "torch.logcumsumexp(x, 0)",
                dtype="float32")
    assert small.status == "pass", small.message                                      # no large input: no fact
    wrong = run("fact.lcse.wrong", inputs, torch_text="torch.logcumsumexp(x, 0)",
                sympy_text="torch.logcumsumexp(x, 0) * 1.001")
    failed = {c.name: c.detail for c in wrong.checks if not c.ok}
    assert wrong.status == "fail" and "known torch fact" not in failed["gradient"], wrong.message
    from verifier.audit.table import outcome
    assert outcome(wrong) == "unexplained"


# --- scatter_reduce(reduce='prod')'s float32 double backward (op_db's sample 1, written out) ----------------

SR_X = [[-4.826984902407649, -7.582430495695129, -0.6046891126565539, -1.5411692216498662, -1.9719097652168658], [-4.146041530864057, -5.4215280659972755, -4.784169829877467, -4.150805063878843, 7.380839390984031], [5.576059452216908, -8.315684908389088, 4.177597026003685, 2.047386382824099, -4.076012721760325], [-3.063683029231029, -3.342174545322517, -5.439777184204883, 4.480518929058965, 2.685009210157367], [-3.8432258180800494, -3.0355148286483775, -2.146076312776824, -2.6718482427688133, -7.7232222137058715], [-8.596239972526284, -0.524154812497627, -3.2519978374491334, 6.846803848769272, -0.6113253421876204], [8.512023091609862, -3.9030392424287763, 5.370812764172914, -1.1798153561819573, -3.1236837738138137], [8.685287845850093, -7.447757767478217, -6.67991226028405, 0.07684976479617145, -3.9762864810578007], [-0.19296459711253178, -1.4410484284202578, 8.704956403649721, -6.189088570548082, 5.247816827502734], [-5.054033686620959, 4.098306048998678, 5.669103499758022, -6.102503890250265, -7.630780794546761]]
SR_IDX = [[5, 9, 2, 9, 8], [4, 4, 4, 7, 4], [8, 3, 1, 8, 1], [2, 1, 0, 1, 2], [6, 8, 3, 6, 7]]
SR_SRC = [[-6.127846976735512, 0.5886329087259614, -8.016679309730627, 6.350501338142502, 0.37123771033595565], [-8.501911864528664, 8.881640064966652, 5.091308063884989, 2.2682829542038476, 7.965859477001853], [-5.508718606208063, 5.929521921772405, -6.550108688041963, 4.3697425449165594, 8.750419690856972], [-3.0004209767941776, 8.567080406475506, -6.37727772642512, 6.023749307539076, -0.14263441434025048], [-0.08620258275208337, 5.361116377951722, 7.261913172012517, -1.8770140603173509, -1.0866502343265727]]
SR_INPUTS = {"x": {"value": SR_X, "requires_grad": True},
             "idx": {"value": SR_IDX, "dtype": "int64", "requires_grad": False},
             "src": {"value": SR_SRC, "requires_grad": True}}
SR_FORWARD = "torch.scatter_reduce(x, 0, idx, src, 'prod', include_self=True)"


def _sr_hvp(forward, dtype):
    """H·w of Σ v⊙f(x, src) along (w1, w2), by double backward, in ``dtype``, returned in float64."""
    g = torch.Generator().manual_seed(0)
    x64, src64 = torch.tensor(SR_X, dtype=torch.float64), torch.tensor(SR_SRC, dtype=torch.float64)
    v, w1, w2 = (torch.randn(t.shape, dtype=torch.float64, generator=g) for t in (x64, x64, src64))
    x, src = x64.to(dtype).requires_grad_(), src64.to(dtype).requires_grad_()
    gx, gs = torch.autograd.grad(forward(x, src), (x, src), v.to(dtype), create_graph=True)
    h = torch.autograd.grad((gx * w1.to(dtype)).sum() + (gs * w2.to(dtype)).sum(), (x, src))
    return torch.cat([t.double().flatten() for t in h])


def _sr_torch(x, src):
    return torch.scatter_reduce(x, 0, torch.tensor(SR_IDX), src, "prod", include_self=True)


def _sr_products(x, src):
    """The same products as a chain of multiplications (no division by an input)."""
    rows = [[x[r, c] for c in range(x.shape[1])] for r in range(x.shape[0])]
    for i, row in enumerate(SR_IDX):
        for c, r in enumerate(row):
            rows[r][c] = rows[r][c] * src[i, c]
    return torch.stack([torch.stack(row) for row in rows])


def test_torchs_float32_scatter_reduce_prod_double_backward_is_still_less_accurate_than_products():
    exact = _sr_hvp(_sr_products, torch.float64)
    assert (_sr_hvp(_sr_torch, torch.float64) - exact).abs().max().item() < 1e-14     # float64 agrees
    big = exact.abs() > 1e-2
    rel = {name: ((_sr_hvp(f, torch.float32) - exact).abs() / exact.abs())[big].max().item()
           for name, f in (("torch", _sr_torch), ("products", _sr_products))}
    assert rel["torch"] > 1e-5 and rel["torch"] > 20 * rel["products"], rel   # measured 3.3e-5 vs 7e-7


def test_the_scatter_reduce_prod_fact_names_float32_second_order_and_a_wrong_one_is_not_named():
    result = run("fact.srp", SR_INPUTS, SR_FORWARD, dtype="float32")
    _named(result, "scatter_reduce-prod-double-backward", "second_order")
    assert run("fact.srp", SR_INPUTS, SR_FORWARD, checks={"forward_mode": False}).status == "pass"   # float64
    wrong = run("fact.srp.wrong", SR_INPUTS, torch_text=SR_FORWARD, sympy_text=SR_FORWARD + " * 1.001",
                dtype="float32", checks={"forward_mode": False})
    failed = {c.name: c.detail for c in wrong.checks if not c.ok}
    assert "second_order" in failed and "known torch fact" not in failed["second_order"], wrong.message


# --- a fact about torch's inf/nan names a non_finite check, and only such a fact does -------------------------

def test_logaddexp_nan_double_backward_at_minus_inf_is_named_and_a_nan_elsewhere_is_not():
    # inputs are finite: a -inf operand comes from a mask (the built-in masked.logaddexp, second order on)
    import dataclasses
    from pathlib import Path

    from verifier import load_paths
    from verifier.audit.table import outcome
    case = next(c for c in load_paths([Path(__file__).resolve().parent.parent / "cases" / "masked.yaml"]).cases
                if c.name == "masked.logaddexp")
    nan = Runner(cache=None).run(dataclasses.replace(case, checks={**case.checks, "second_order": True}), "float64")
    failed = {c.name: c for c in nan.checks if not c.ok}
    assert nan.status == "non_finite" and failed["second_order"].non_finite, nan.message
    assert "known torch fact 'logaddexp-double-backward-nan-at-minus-inf'" in failed["second_order"].detail
    assert outcome(nan) == "fact"
    # a non-finite result of another function (an overflow) is not named, and stays unexplained in the audit
    pole = run("fact.overflow", {"x": {"value": [400.0, 1.0], "requires_grad": True}}, "torch.exp(x) ** 2")
    assert pole.status == "non_finite" and "known torch fact" not in pole.message, pole.message
    assert outcome(pole) == "unexplained"
    # a wrong number (finite) in logaddexp's second order is never named by the nan fact
    assert not torch_facts.facts_for(nan.case, "float64", "second_order", 1e-3, non_finite=False) or all(
        not f.non_finite for f in torch_facts.facts_for(nan.case, "float64", "second_order", 1e-3))
