"""High-precision evaluation and the reverse sweep, against SymPy's own diff/evalf."""

from __future__ import annotations

import mpmath
import pytest
import sympy as sp

from verifier.errors import SymbolicError
from verifier.exact.evaluation import Evaluator, reverse_sweep

a, b, c = sp.symbols("a b c", real=True)
POINT = {a: 0.7, b: -1.3, c: 2.1}
S = sp.exp(a) + sp.exp(b) + sp.exp(c)

EXPRESSIONS = [
    pytest.param([sp.exp(a) / S, sp.exp(b) / S, sp.exp(c) / S], id="softmax"),
    pytest.param([a * b * c, a ** 2 * sp.sin(b)], id="products"),
    pytest.param([c ** b, 2 ** a], id="symbolic-exponent"),
    pytest.param([sp.atan2(a, c), sp.erf(b) * sp.log(c)], id="two-arg-and-special"),
    pytest.param([sp.Max(a, 0) + sp.Abs(b) + sp.Min(c, 1)], id="kinks-off-the-kink"),
    pytest.param([sp.Piecewise((a * b, a > 0), (a + b, True))], id="piecewise"),
    pytest.param([sp.sqrt(c) * sp.tanh(a) - sp.acosh(c) / sp.asinh(b)], id="mixed"),
]


@pytest.mark.parametrize("outputs", EXPRESSIONS)
def test_values_match_sympy_evalf(outputs):
    with mpmath.workdps(40):
        ev = Evaluator(POINT)
        for y in outputs:
            want = sp.N(y.subs({k: sp.Rational(v) for k, v in POINT.items()}), 40)
            assert abs(ev(y) - mpmath.mpf(str(want))) < mpmath.mpf(10) ** -30 * (1 + abs(ev(y)))


@pytest.mark.parametrize("outputs", EXPRESSIONS)
def test_sweep_matches_symbolic_diff_of_the_weighted_sum(outputs):
    weights = [1.5, -0.25, 3.0][:len(outputs)]
    scalar = sum(sp.Rational(w) * y for w, y in zip(weights, outputs))
    with mpmath.workdps(40):
        ev = Evaluator(POINT)
        got = reverse_sweep(outputs, weights, [a, b, c], ev)
        for sym, value in zip([a, b, c], got):
            want = Evaluator(POINT)(sp.diff(scalar, sym))
            assert abs(value - want) < mpmath.mpf(10) ** -30 * (1 + abs(want))


def test_sweep_catches_a_wrong_reference():
    """The comparison above can fail: a gradient off by 1e-12 is far outside its bound."""
    with mpmath.workdps(40):
        ev = Evaluator(POINT)
        (got,) = reverse_sweep([sp.exp(a)], [1.0], [a], ev)
        assert abs(got * (1 + mpmath.mpf(1e-12)) - ev(sp.exp(a))) > mpmath.mpf(10) ** -30


def test_deep_chains_do_not_hit_the_recursion_limit():
    xs = sp.symbols("x0:3000", real=True)
    chain = xs[0]
    for x in xs[1:]:
        chain = sp.sin(chain) + x
    point = {x: 0.1 for x in xs}
    with mpmath.workdps(20):
        grads = reverse_sweep([chain], [1.0], [xs[0], xs[-1]], Evaluator(point))
    assert grads[1] == 1 and 0 < grads[0] < 1


def test_shared_subexpressions_are_swept_once():
    xs = sp.symbols("x0:512", real=True)
    total = sp.Add(*[sp.exp(x) for x in xs])
    outs = [sp.exp(x) / total for x in xs]
    with mpmath.workdps(30):
        ev = Evaluator({x: 0.01 * i for i, x in enumerate(xs)})
        grads = reverse_sweep(outs, [1.0] * len(xs), xs, ev)
    # softmax sums to one, so the gradient of its sum is zero
    assert max(abs(g) for g in grads) < 1e-25


def test_outside_the_domain_is_a_clear_error():
    with pytest.raises(SymbolicError, match="division by zero"):
        Evaluator({a: 0.0})(1 / a)


@pytest.mark.parametrize("jump", [sp.sign, sp.Heaviside, sp.floor, sp.ceiling], ids=lambda f: f.__name__)
def test_piecewise_constant_functions_have_derivative_zero_between_their_jumps(jump):
    """One rule table (local_partials) serves both sweeps; a step function passes no derivative."""
    from verifier.exact.tangent import tangent_sweep
    expr = jump(a) * b + a ** 2
    with mpmath.workdps(40):
        ev = Evaluator(POINT)
        grad = reverse_sweep([expr], [1.0], [a, b], ev)
        dot = tangent_sweep([expr], {a: 1.0, b: 0.0}, ev)
    assert grad[0] == 2 * mpmath.mpf(0.7) and grad[1] == ev(jump(a))
    assert dot[0] == grad[0]
