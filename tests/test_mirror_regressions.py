"""Mirror bugs found in use, each pinned by the case that exposed it."""

from __future__ import annotations

import pytest

from verifier import Runner, make_case

ODD_FUNCTIONS = ["sin", "tan", "sinh", "tanh", "asin", "atan", "asinh", "atanh", "erf", "erfc", "abs"]


@pytest.mark.parametrize("fn", [pytest.param(f, id=f) for f in ODD_FUNCTIONS])
def test_odd_functions_of_a_negated_sum_build(fn):
    # SymPy's minus-sign extraction looped forever on f(-x - 2*y) with distribution off.
    case = make_case(f"neg.{fn}", {"x": [0.125, 0.25], "y": [0.0625, 0.1875]},
                     forward=f"torch.{fn}(-x - 2*y).sum()")
    result = Runner().run(case, "float64")
    assert result.status == "pass", result.message


EVIL = "__import__('os').system('touch pw')"   # under 64 characters: the length limit is not what stops it


@pytest.mark.parametrize("template", [
    pytest.param("where(x > 0, {s}, x).sum()", id="where"),
    pytest.param("add(x, {s}).sum()", id="add"),
    pytest.param("clamp(x, min={s}).sum()", id="clamp-kwarg"),
    pytest.param("einsum({s}, x)", id="einsum"),
    pytest.param("F.mse_loss(x, x, reduction={s})", id="reduction"),
])
def test_strings_that_could_be_sympified_into_code_are_refused(tmp_path, monkeypatch, template):
    # SymPy constructors sympify strings (eval). The language refuses any string
    # that could spell a call, whatever function it is passed to.
    from verifier.errors import ExpressionError
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "pw"
    source = template.format(s=repr(EVIL))
    with pytest.raises(ExpressionError, match="the string"):
        make_case("evil", {"x": [1.0, 2.0]}, torch="x.sum()", sympy=source)
    assert not marker.exists()


@pytest.mark.parametrize("text", ["ij,jk->ik", "mean", "batchmean", "tanh", "fro", "-inf", "none"])
def test_the_strings_functions_need_still_parse(text):
    from verifier.cases.language import parse
    assert parse(f"f(x, {text!r})", known_functions=lambda n: True, variables=frozenset({"x"}))


def test_the_tape_converts_numbers_only():
    from verifier.errors import SymbolicError
    from verifier.exact.tape import _basic
    assert _basic(0.5) == sp_rational_half()
    with pytest.raises(SymbolicError, match="holds a str"):
        _basic("__import__('os')")


def sp_rational_half():
    import sympy
    return sympy.Rational(1, 2)


def test_a_matmul_of_plain_factors_is_built_unevaluated_and_equals_the_evaluated_sum():
    """mirror.linalg._dot skips SymPy's canonicalisation for symbols and nonzero numbers; the sum is the same."""
    import numpy as np
    import sympy as sp

    from verifier.exact.mirror import linalg
    x = np.array(sp.symbols("x0:4", real=True), dtype=object)
    w = np.array([sp.Rational(1, 3), sp.Integer(0), sp.Float(2.5), sp.Integer(-7)], dtype=object)
    fast = linalg._dot(x, np.array([sp.Rational(1, 3), sp.Integer(5), sp.Float(2.5), x[0]], dtype=object))
    assert isinstance(fast, sp.Add) and len(fast.args) == 4           # built as given: nothing collected
    assert sp.simplify(fast - (x[0] / 3 + 5 * x[1] + 2.5 * x[2] + x[3] * x[0])) == 0
    with_zero = linalg._dot(x, w)                                        # a zero factor: the evaluated route
    assert with_zero == x[0] / 3 + sp.Float(2.5) * x[2] - 7 * x[3]
    assert linalg._dot(w, w) == sp.Rational(1, 9) + sp.Float(6.25) + 49


@pytest.mark.parametrize("expr", ["x @ w", "x @ x.T", "(x @ w).sum() * x[0, 0]"])
def test_matmuls_of_inputs_pass_and_a_wrong_one_fails(expr):
    inputs = {"x": {"shape": [3, 4], "sample": "normal", "seed": 1},
              "w": {"shape": [4, 2], "sample": "normal", "seed": 2, "requires_grad": False}}
    right = make_case("mm.right", inputs, forward=expr, grad_output="random")
    assert Runner(cache=False).run(right, "float64").status == "pass"
    wrong = make_case("mm.wrong", inputs, torch=f"({expr}) * 1.001", sympy=expr, grad_output="random")
    assert Runner(cache=False).run(wrong, "float64").status == "fail"


def test_a_nan_number_stays_nan_never_zero():
    """sympy.Rational(float('nan')) is 0: a NaN argument (a nan fill value, a nan constant) read as 0 could
    turn a non-finite output into a finite one that agrees with torch's mistake."""
    import math

    import numpy as np
    import sympy

    from verifier.exact.mirror._arrays import sym_number
    for nan in (float("nan"), np.float32("nan"), np.array(float("nan"))):
        assert sym_number(nan) is sympy.nan
    assert sym_number(0.5) == sympy.Rational(1, 2) and sym_number(-math.inf) is sympy.S.NegativeInfinity
