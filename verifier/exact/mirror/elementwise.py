"""Elementwise mirrors: out[i] depends only on the matching (broadcast) input elements.

Kinks are written with Abs, Max, Min, sign or Piecewise so the kink detector
(:mod:`verifier.exact.kinks`) can find them; smooth functions are written from their
textbook definitions.

At a kink the derivative does not exist and torch returns a convention. The
mirror encodes that convention, so the exact reference *is* torch's
documented value there:

* a Piecewise boundary belongs to the branch whose derivative torch returns
  (``relu``: ``(x, x > 0), (0, otherwise)`` gives relu'(0) = 0; ``clamp``
  keeps ``x`` on its bounds, derivative 1; ``hardtanh``/``relu6`` give the
  bound, derivative 0);
* ``Abs`` differentiates to ``sign``, and sign(0) = 0 is torch's abs'(0);
* a tie of two arguments of ``Max``/``Min`` (``maximum``) gives each 1/2,
  as torch does.

The one-sided derivatives are computed separately by the kink detector.
"""

from __future__ import annotations

import math

import numpy as np
import sympy
import torch
import torch.nn.functional as F
from sympy import Abs, Rational, exp, log, sqrt
from sympy.core.parameters import distribute

from verifier.errors import ExpressionError

from ._arrays import as_cond, as_obj, emap, extremum, is_boolean, piecewise, relation, select, sym_number, unsupported
from ._table import register

POS = (0.0, float("inf"))
UNIT = (-1.0, 1.0)

# torch's documented SELU constants, as exact decimals.
SELU_ALPHA = Rational(16732632423543772848170429916717, 10**31)
SELU_SCALE = Rational(10507009873554804934193349852946, 10**31)


def _unary(name, f, torch_fn, doc, *, domain=None, analytic=False, aliases=()):
    """Register a one-argument elementwise mirror ``x -> f(x)``."""

    def definition(x):
        # Under distribute(False) (see _table.register), SymPy's minus-sign
        # extraction in odd functions loops forever on f(-x - 2*y): -(-x - 2*y)
        # stays a product with -1. Applying f with distribution on avoids it.
        with distribute(True):
            return emap(f, x)

    definition.__name__ = name
    definition.__doc__ = f"Symbolic {name}: {doc}."
    register(name, torch=torch_fn, doc=doc, elementwise=True, domain=domain,
             analytic=analytic, aliases=aliases)(definition)


def _max(*args):
    """sympy.Max, unevaluated when symbolic (see ``extremum``: evaluation is slow)."""
    return extremum(sympy.Max, args)


def _min(*args):
    """sympy.Min, unevaluated when symbolic (see ``extremum``: evaluation is slow)."""
    return extremum(sympy.Min, args)


def _sigmoid(x):
    return 1 / (1 + exp(-x))


def _clip(x, lo, hi, *, keep_bounds):
    """x clipped to [lo, hi]; ``keep_bounds`` says which branch owns x == lo and x == hi.

    keep_bounds=True: x itself (derivative 1 on the bounds, torch.clamp's
    "subgradient 1" choice); False: the bound (derivative 0, torch's hardtanh
    and relu6, the min-norm subgradient).
    """
    if keep_bounds:
        return piecewise((lo, relation(x, "<", lo)), (hi, relation(x, ">", hi)), (x, True))
    return piecewise((lo, relation(x, "<=", lo)), (hi, relation(x, ">=", hi)), (x, True))


def _relu(x):
    """max(0, x) with torch's relu'(0) = 0: at x = 0 the constant branch is the active one."""
    return piecewise((x, relation(x, ">", 0)), (0, True))


def _hardsigmoid(x):
    """0 / x/6 + 1/2 / 1; torch's derivative is 0 at x = -3 and 3 (the ends go to the flat parts)."""
    return piecewise((0, relation(x, "<=", -3)), (1, relation(x, ">=", 3)), (x / 6 + Rational(1, 2), True))


def _hardswish(x):
    """0 / x(x+3)/6 / x; torch's derivative is 0 at x = -3 and 1 at x = 3 (the outer branches own the ends)."""
    return piecewise((0, relation(x, "<=", -3)), (x, relation(x, ">=", 3)), (x * (x + 3) / 6, True))


def _positive_branch(x, negative):
    """``x`` for x > 0, ``negative`` otherwise: the shape of elu/celu/leaky_relu.

    x = 0 belongs to ``negative``: torch's elu/selu/leaky_relu backward take
    the negative branch's derivative there (alpha, scale*alpha, the slope).
    """
    return piecewise((x, relation(x, ">", 0)), (negative, True))


_UNARY = [
    # name, definition, torch callable, doc, domain, analytic, aliases
    ("exp", exp, torch.exp, "exp(x)", None, True, ()),
    ("exp2", lambda x: 2**x, torch.exp2, "2**x", None, True, ()),
    ("log", log, torch.log, "log(x)", POS, True, ()),
    ("log2", lambda x: log(x) / log(2), torch.log2, "log(x) / log(2)", POS, True, ()),
    ("log10", lambda x: log(x) / log(10), torch.log10, "log(x) / log(10)", POS, True, ()),
    ("log1p", lambda x: log(1 + x), torch.log1p, "log(1 + x)", (-1.0, float("inf")), True, ()),
    ("expm1", lambda x: exp(x) - 1, torch.expm1, "exp(x) - 1", None, True, ()),
    ("sqrt", sqrt, torch.sqrt, "sqrt(x)", POS, True, ()),
    ("rsqrt", lambda x: 1 / sqrt(x), torch.rsqrt, "1 / sqrt(x)", POS, True, ()),
    # 1/x has a pole at 0; the positive half-line is where sampling is safe.
    ("reciprocal", lambda x: 1 / x, torch.reciprocal, "1 / x (pole at 0)", POS, True, ()),
    ("square", lambda x: x**2, torch.square, "x**2", None, True, ()),
    ("neg", lambda x: -x, torch.neg, "-x", None, True, ("negative",)),
    ("abs", Abs, torch.abs, "|x|", None, False, ("absolute",)),
    ("sign", sympy.sign, torch.sign, "sign(x) in {-1, 0, 1}", None, False, ()),
    ("sin", sympy.sin, torch.sin, "sin(x)", None, True, ()),
    ("cos", sympy.cos, torch.cos, "cos(x)", None, True, ()),
    ("tan", sympy.tan, torch.tan, "tan(x)", (-math.pi / 2, math.pi / 2), True, ()),
    ("asin", sympy.asin, torch.asin, "asin(x)", UNIT, True, ("arcsin",)),
    ("acos", sympy.acos, torch.acos, "acos(x)", UNIT, True, ("arccos",)),
    ("atan", sympy.atan, torch.atan, "atan(x)", None, True, ("arctan",)),
    ("sinh", sympy.sinh, torch.sinh, "sinh(x)", None, True, ()),
    ("cosh", sympy.cosh, torch.cosh, "cosh(x)", None, True, ()),
    ("tanh", sympy.tanh, torch.tanh, "tanh(x)", None, True, ()),
    ("asinh", sympy.asinh, torch.asinh, "asinh(x)", None, True, ("arcsinh",)),
    ("acosh", sympy.acosh, torch.acosh, "acosh(x)", (1.0, float("inf")), True, ("arccosh",)),
    ("atanh", sympy.atanh, torch.atanh, "atanh(x)", UNIT, True, ("arctanh",)),
    ("sigmoid", _sigmoid, torch.sigmoid, "1 / (1 + exp(-x))", None, True, ("expit",)),
    ("erf", sympy.erf, torch.erf, "erf(x)", None, False, ()),
    ("erfc", sympy.erfc, torch.erfc, "1 - erf(x)", None, False, ()),
    ("silu", lambda x: x * _sigmoid(x), F.silu, "x * sigmoid(x)", None, True, ()),
    ("mish", lambda x: x * sympy.tanh(log(1 + exp(x))), F.mish, "x * tanh(log(1 + exp(x)))",
     None, False, ()),
    ("selu", lambda x: SELU_SCALE * _positive_branch(x, SELU_ALPHA * (exp(x) - 1)), F.selu,
     "scale * (x if x > 0 else alpha * (exp(x) - 1)), torch's alpha and scale", None, False, ()),
    ("relu", _relu, torch.relu, "max(0, x); relu'(0) = 0 as in torch", None, False, ()),
    ("relu6", lambda x: _clip(x, 0, 6, keep_bounds=False), F.relu6,
     "min(max(0, x), 6); derivative 0 at x = 0 and x = 6 as in torch", None, False, ()),
    ("softsign", lambda x: x / (1 + Abs(x)), F.softsign, "x / (1 + |x|)", None, False, ()),
    ("logsigmoid", lambda x: -log(1 + exp(-x)), F.logsigmoid, "-log(1 + exp(-x))",
     None, False, ()),
    ("hardsigmoid", _hardsigmoid, F.hardsigmoid,
     "min(max(0, x/6 + 1/2), 1); derivative 0 at x = +-3 as in torch", None, False, ()),
    ("hardswish", _hardswish, F.hardswish,
     "x * min(max(0, x + 3), 6) / 6; derivative 0 at x = -3 and 1 at x = 3 as in torch",
     None, False, ()),
    ("tanhshrink", lambda x: x - sympy.tanh(x), F.tanhshrink, "x - tanh(x)", None, True, ()),
    ("sinc", lambda x: sympy.sinc(sympy.pi * x), torch.sinc,
     "sin(pi x) / (pi x), 1 at x = 0", None, True, ()),
]

for _row in _UNARY:
    _unary(_row[0], _row[1], _row[2], _row[3], domain=_row[4], analytic=_row[5], aliases=_row[6])


def _num(value, name):
    """A scalar keyword argument as a SymPy number, with a clear error for tensors."""
    try:
        return sym_number(value)
    except ExpressionError as err:  # re-raised naming the argument
        raise unsupported(f"argument '{name}' must be a number: {err.message}") from None


@register("logit", torch=torch.logit, doc="log(p / (1 - p)); eps clamps p to [eps, 1 - eps] "
          "(the clamp passes the gradient on its bounds, as in torch)",
          elementwise=True, domain=(0.0, 1.0))
def logit(x, eps=None):
    """log(p/(1-p)), with torch's optional clamp of p into [eps, 1-eps]."""
    def log_odds(p):
        return log(p / (1 - p))

    if eps is None:
        return emap(log_odds, x)
    e = _num(eps, "eps")
    return emap(lambda p: log_odds(_clip(p, e, 1 - e, keep_bounds=True)), x)


def _clamp_one(v, lo, hi):
    """min(max(v, lo), hi) as one flat Piecewise (either bound may be None).

    On a bound the branch is ``v`` itself: torch's clamp_backward passes the
    gradient to x there ("subgradient 1") and gives a tensor bound none. When
    lo > hi the result is hi, as in torch. (A nested Piecewise would make
    SymPy rewrite the outer condition into an ITE, which the evaluator does
    not read.)
    """
    branches = []
    if lo is not None and hi is not None:
        branches.append((hi, relation(lo, ">", hi)))
    if lo is not None:
        branches.append((lo, relation(v, "<", lo)))
    if hi is not None:
        branches.append((hi, relation(v, ">", hi)))
    return piecewise(*branches, (v, True))


@register("clamp", torch=torch.clamp, elementwise=True, aliases=("clip",),
          doc="min(max(x, min), max); either bound may be omitted or a tensor; derivative 1 "
              "(to x) on the bounds, as in torch")
def clamp(x, min=None, max=None):
    """Clamp between optional scalar or tensor bounds (max wins when min > max, as in torch)."""
    if min is None and max is None:
        return as_obj(x)
    if min is None:
        return emap(lambda v, hi: _clamp_one(v, None, hi), x, max)
    if max is None:
        return emap(lambda v, lo: _clamp_one(v, lo, None), x, min)
    return emap(_clamp_one, x, min, max)


@register("pow", torch=torch.pow, elementwise=True, domain=POS, analytic=True,
          doc="x ** y (either side may be a scalar)")
def pow_(x, exponent):
    """Power; a positive base keeps non-integer exponents real."""
    return emap(sympy.Pow, x, exponent)


@register("atan2", torch=torch.atan2, elementwise=True, aliases=("arctan2",),
          doc="atan2(y, x): the angle of the point (x, y)")
def atan2(y, x):
    """Two-argument arctangent, first argument is y as in torch."""
    return emap(sympy.atan2, y, x)


@register("maximum", torch=torch.maximum, elementwise=True, doc="max(a, b)")
def maximum(a, b):
    """Elementwise maximum."""
    return emap(_max, a, b)


@register("minimum", torch=torch.minimum, elementwise=True, doc="min(a, b)")
def minimum(a, b):
    """Elementwise minimum."""
    return emap(_min, a, b)


def _is_condition(value) -> bool:
    """True for bool arrays/tensors and arrays of SymPy booleans (relationals)."""
    if isinstance(value, torch.Tensor):
        return value.dtype == torch.bool
    if isinstance(value, np.ndarray):
        if value.dtype == bool:
            return True
        return value.dtype == object and value.size > 0 and all(map(is_boolean, value.flat))
    return is_boolean(value)


@register("where", torch=torch.where, elementwise=True,
          doc="a where cond else b (Piecewise when cond is symbolic)")
def where(first, second, third):
    """``where(cond, a, b)``, or the method form ``a.where(cond, b)`` (the boolean one is cond)."""
    cond, a, b = first, second, third
    if not _is_condition(first) and _is_condition(second):
        cond, a = second, first
    return emap(select, as_cond(cond), a, b)


@register("Tensor.where", torch=torch.Tensor.where, bare=False, elementwise=True,
          doc="x.where(cond, y): x where cond else y")
def where_method(x, condition, y):
    """The method form: the receiver is the value where the condition holds."""
    return emap(select, as_cond(condition), x, y)


@register("masked_fill", torch=torch.masked_fill, elementwise=True,
          doc="value where mask else x")
def masked_fill(x, mask, value):
    """Replace the elements selected by ``mask`` (bool array or symbolic condition) by ``value``."""
    return emap(select, as_cond(mask), value, x)


@register("add", torch=torch.add, elementwise=True, analytic=True, doc="x + alpha * other")
def add(x, other, alpha=1):
    """Sum, with torch's ``alpha`` scaling of the second operand."""
    a = _num(alpha, "alpha")
    return emap(lambda u, v: u + a * v, x, other)


@register("sub", torch=torch.sub, elementwise=True, analytic=True, aliases=("subtract",),
          doc="x - alpha * other")
def sub(x, other, alpha=1):
    """Difference, with torch's ``alpha`` scaling of the second operand."""
    a = _num(alpha, "alpha")
    return emap(lambda u, v: u - a * v, x, other)


@register("mul", torch=torch.mul, elementwise=True, analytic=True, aliases=("multiply",),
          doc="x * other")
def mul(x, other):
    """Product."""
    return emap(lambda u, v: u * v, x, other)


def rounded_quotient(u, v, rounding_mode):
    """floor(u / v) or trunc(u / v) of the exact quotient: piecewise constant, derivative 0 between
    the jumps (SymPy's floor/ceiling carry that rule, see composites.py); torch's gradient is 0."""
    q = u / v
    if rounding_mode == "floor":
        return sympy.floor(q)
    return piecewise((sympy.floor(q), relation(q, ">=", 0)), (sympy.ceiling(q), True))


@register("div", torch=torch.div, elementwise=True, analytic=True,
          aliases=("divide", "true_divide"),
          doc="x / other; rounding_mode 'floor' / 'trunc': floor / trunc of the exact quotient (derivative 0)")
def div(x, other, rounding_mode=None):
    """True division, or the quotient rounded down (``'floor'``) or towards zero (``'trunc'``)."""
    if rounding_mode is None:
        return emap(lambda u, v: u / v, x, other)
    if rounding_mode not in ("floor", "trunc"):
        raise unsupported(f"div: rounding_mode={rounding_mode!r} is not one of torch's",
                          hint="torch.div takes rounding_mode=None, 'floor' or 'trunc'.")
    return emap(lambda u, v: rounded_quotient(u, v, rounding_mode), x, other)


@register("floor_divide", torch=torch.floor_divide, elementwise=True,
          doc="floor(x / other) of the exact quotient (derivative 0 between the jumps)")
def floor_divide(x, other):
    """torch.floor_divide: torch.div(x, other, rounding_mode='floor')."""
    return emap(lambda u, v: rounded_quotient(u, v, "floor"), x, other)


@register("logaddexp", torch=torch.logaddexp, elementwise=True, analytic=True,
          doc="log(exp(a) + exp(b))")
def logaddexp(a, b):
    """Log of summed exponentials."""
    return emap(lambda u, v: log(exp(u) + exp(v)), a, b)


@register("xlogy", torch=torch.xlogy, elementwise=True,
          doc="x * log(y), for y > 0 (torch's 0 at x = 0 is not modelled)")
def xlogy(x, y):
    """x log y on y > 0."""
    return emap(lambda u, v: u * log(v), x, y)


# --- in-place methods -----------------------------------------------------------------
# The symbolic value of `t.add_(u)` is `t + u`: an expression has no names to
# re-read, so only the value matters. What matters on the torch side is that
# the op really runs in place, so that torch's version counter sees it (a
# tensor saved for backward and then modified must make backward fail).


def _has_tangent(x) -> bool:
    """Whether ``x`` carries a forward-mode tangent (then it is a computed dual tensor)."""
    return torch.autograd.forward_ad.unpack_dual(x).tangent is not None


def refuse_constant(method):
    """A ``prepare`` for ``x.<method>(...)`` that refuses to modify a case input that is a constant."""

    def prepare(args, kwargs):
        x = args[0] if args else None
        if (isinstance(x, torch.Tensor) and torch.is_grad_enabled() and x.is_leaf
                and not x.requires_grad and not _has_tangent(x)):
            # a constant input (no graph, no forward-mode tangent): modifying it
            # would change the values the exact side and the finite differences
            # read afterwards. Under no_grad (finite differences) every tensor
            # looks like this, and the autograd run has already refused it.
            raise unsupported(f"{method} would modify a constant input in place",
                              hint="Apply in-place methods to intermediate results, e.g. (x * 2).add_(1).")
        return args, kwargs

    return prepare


def _inplace(method):
    return dict(torch=getattr(torch.Tensor, method), qualname=f"Tensor.{method}",
                prepare=refuse_constant(method), elementwise=True)


register("add_", **_inplace("add_"),
         doc="in place: x + alpha * other (the value; torch modifies x)")(add)
register("sub_", **_inplace("sub_"),
         doc="in place: x - alpha * other (the value; torch modifies x)")(sub)
register("mul_", **_inplace("mul_"),
         doc="in place: x * other (the value; torch modifies x)")(mul)
register("div_", **_inplace("div_"),
         doc="in place: x / other (the value; torch modifies x)")(div)
register("exp_", **_inplace("exp_"),
         doc="in place: exp(x) (the value; torch modifies x)")(lambda x: emap(exp, x))
