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
    from verifier.language import parse
    assert parse(f"f(x, {text!r})", known_functions=lambda n: True, variables=frozenset({"x"}))


def test_the_tape_converts_numbers_only():
    from verifier.errors import SymbolicError
    from verifier.tape import _basic
    assert _basic(0.5) == sp_rational_half()
    with pytest.raises(SymbolicError, match="holds a str"):
        _basic("__import__('os')")


def sp_rational_half():
    import sympy
    return sympy.Rational(1, 2)
