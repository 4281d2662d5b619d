"""Elementwise composites and piecewise functions: addcmul ... hypot, fmod/remainder, floor/ceil/round/trunc.

Each is its textbook or torch-documented formula (in ``doc``). Rounding
functions are written with SymPy's floor/ceiling, constant between their
jumps, so their derivative is 0 wherever it exists (torch's gradient of
floor/ceil/round/trunc/sign is 0 everywhere); a jump is a kink the detector
finds. Where torch picks a side at a tie the Piecewise says which:
fmax/fmin give a tie to the first argument (torch's backward masks
``self >= other``), threshold and hardshrink give the boundary the constant branch.
"""

from __future__ import annotations

import numpy as np
import sympy
import torch
import torch.nn.functional as F
from sympy import Abs, Rational, ceiling, floor, log, pi, sqrt

from ._arrays import as_obj, emap, norm_dim, piecewise, relation, sym_number
from ._table import register
from .elementwise import POS, clamp


def _zero_derivative(self, s):
    return sympy.S.Zero


# SymPy leaves d floor(x)/dx as an unevaluated Derivative, which no evaluator can read. floor
# and ceiling are constant between their jumps: their derivative is 0 wherever it exists (and
# torch's gradient of floor/ceil/round/trunc is 0 everywhere). This sets that rule on SymPy's
# classes, process-wide; the tape's own rule (tape._partial) says the same.
sympy.floor._eval_derivative = _zero_derivative
sympy.ceiling._eval_derivative = _zero_derivative


def _elementwise(name, torch_fn, doc, *, domain=None, analytic=False, aliases=(), prepare=None, finish=None):
    """register(..., elementwise=True); analytic only where torch also runs on complex inputs
    (the complex-step finite difference calls torch with them)."""
    return register(name, torch=torch_fn, doc=doc, elementwise=True, domain=domain, analytic=analytic,
                    aliases=aliases, prepare=prepare, finish=finish)


@_elementwise("addcmul", torch.addcmul, "input + value * tensor1 * tensor2", analytic=True)
def addcmul(input, tensor1, tensor2, value=1):
    v = sym_number(value)
    return emap(lambda a, b, c: a + v * b * c, input, tensor1, tensor2)


@_elementwise("addcdiv", torch.addcdiv, "input + value * tensor1 / tensor2", analytic=True)
def addcdiv(input, tensor1, tensor2, value=1):
    v = sym_number(value)
    return emap(lambda a, b, c: a + v * b / c, input, tensor1, tensor2)


@_elementwise("lerp", torch.lerp, "input + weight * (end - input)", analytic=True)
def lerp(input, end, weight):
    return emap(lambda a, b, w: a + w * (b - a), input, end, weight)


@_elementwise("hypot", torch.hypot, "sqrt(a^2 + b^2)")
def hypot(input, other):
    return emap(lambda a, b: sqrt(a**2 + b**2), input, other)


@_elementwise("logaddexp2", torch.logaddexp2, "log2(2^a + 2^b)")
def logaddexp2(input, other):
    return emap(lambda a, b: log(2**a + 2**b) / log(2), input, other)


@_elementwise("xlog1py", torch.special.xlog1py, "x * log(1 + y), for y > -1 (torch's 0 at x = 0 "
              "is not modelled)")
def xlog1py(input, other):
    return emap(lambda a, b: a * log(1 + b), input, other)


@_elementwise("copysign", torch.copysign, "|a| with the sign of b (b = +0 counts as positive); "
              "no gradient to b")
def copysign(input, other):
    return emap(lambda a, b: Abs(a) * piecewise((1, relation(b, ">=", 0)), (-1, True)), input, other)


@_elementwise("fmax", torch.fmax, "max(a, b) for non-NaN inputs; a tie goes to a (torch masks a >= b)")
def fmax(input, other):
    return emap(lambda a, b: piecewise((a, relation(a, ">=", b)), (b, True)), input, other)


@_elementwise("fmin", torch.fmin, "min(a, b) for non-NaN inputs; a tie goes to a (torch masks a <= b)")
def fmin(input, other):
    return emap(lambda a, b: piecewise((a, relation(a, "<=", b)), (b, True)), input, other)


@_elementwise("nan_to_num", torch.nan_to_num, "x for finite x (NaN/inf replacements are constants)",
              analytic=True)
def nan_to_num(input, nan=0.0, posinf=None, neginf=None):
    return emap(lambda a: a, input)


@_elementwise("clamp_min", torch.clamp_min, "max(x, min); derivative 1 (to x) on the bound, as clamp")
def clamp_min(input, min):
    return clamp(input, min=min)


@_elementwise("clamp_max", torch.clamp_max, "min(x, max); derivative 1 (to x) on the bound, as clamp")
def clamp_max(input, max):
    return clamp(input, max=max)


@_elementwise("rsub", torch.rsub, "other - alpha * input", analytic=True)
def rsub(input, other, alpha=1):
    a = sym_number(alpha)
    return emap(lambda x, y: y - a * x, input, other)


@_elementwise("deg2rad", torch.deg2rad, "x * pi / 180")
def deg2rad(input):
    return emap(lambda x: x * pi / 180, input)


@_elementwise("rad2deg", torch.rad2deg, "x * 180 / pi")
def rad2deg(input):
    return emap(lambda x: x * 180 / pi, input)


@_elementwise("ldexp", torch.ldexp, "x * 2^other", analytic=True)
def ldexp(input, other):
    return emap(lambda x, e: x * 2**e, input, other)


def _trunc(x):
    return piecewise((floor(x), relation(x, ">=", 0)), (ceiling(x), True))


def _round_half_even(x):
    """floor(x + 1/2), one less at a tie x + 1/2 = r with r odd (round half to even, torch's rule)."""
    r = floor(x + Rational(1, 2))
    tie = sympy.And(sympy.Eq(x + Rational(1, 2), r, evaluate=False),
                    sympy.Eq(2 * floor(r / 2), r - 1, evaluate=False))
    return piecewise((r - 1, tie), (r, True))


@_elementwise("floor", torch.floor, "largest integer <= x (derivative 0 between jumps)")
def floor_(input):
    return emap(floor, input)


@_elementwise("ceil", torch.ceil, "smallest integer >= x (derivative 0 between jumps)")
def ceil(input):
    return emap(ceiling, input)


@_elementwise("trunc", torch.trunc, "floor(x) for x >= 0, ceil(x) below (derivative 0 between jumps)",
              aliases=("fix",))
def trunc(input):
    return emap(_trunc, input)


@_elementwise("round", torch.round, "nearest integer, ties to even (derivative 0 between jumps)")
def round_(input, decimals=0):
    if decimals:
        scale = sympy.Integer(10) ** int(decimals)
        return emap(lambda x: _round_half_even(x * scale) / scale, input)
    return emap(_round_half_even, input)


@_elementwise("frac", torch.frac, "x - trunc(x)")
def frac(input):
    return emap(lambda x: x - _trunc(x), input)


@_elementwise("fmod", torch.fmod, "a - b * trunc(a / b) (C's fmod: the sign of a)")
def fmod(input, other):
    return emap(lambda a, b: a - b * _trunc(a / b), input, other)


@_elementwise("remainder", torch.remainder, "a - b * floor(a / b) (Python's %: the sign of b)")
def remainder(input, other):
    return emap(lambda a, b: a - b * floor(a / b), input, other)


@_elementwise("sgn", torch.sgn, "sign(x) for real x")
def sgn(input):
    return emap(sympy.sign, input)


@_elementwise("threshold", F.threshold, "x if x > threshold else value (the boundary takes value)")
def threshold(input, threshold, value, inplace=False):
    t, v = sym_number(threshold), sym_number(value)
    return emap(lambda x: piecewise((x, relation(x, ">", t)), (v, True)), input)


@_elementwise("hardshrink", F.hardshrink, "x if |x| > lambd else 0 (the boundary takes 0)")
def hardshrink(input, lambd=0.5):
    k = sym_number(lambd)
    return emap(lambda x: piecewise((x, relation(x, ">", k)), (x, relation(x, "<", -k)), (0, True)), input)


@_elementwise("softshrink", F.softshrink, "x - lambd above lambd, x + lambd below -lambd, else 0")
def softshrink(input, lambd=0.5):
    k = sym_number(lambd)
    return emap(lambda x: piecewise((x - k, relation(x, ">", k)), (x + k, relation(x, "<", -k)), (0, True)),
                input)


@_elementwise("entr", torch.special.entr, "-x log x for x > 0", domain=POS)
def entr(input):
    return emap(lambda x: -x * log(x), input)


def _log_abs_gamma(x):
    """log|Gamma(x)|: log Gamma(x) for x > 0; below, by the reflection formula
    Gamma(x) Gamma(1 - x) = pi / sin(pi x), log(pi) - log|sin(pi x)| - log Gamma(1 - x) (1 - x > 1).
    Its derivative is digamma(x) on both sides (psi(1 - x) - pi cot(pi x) = psi(x)); the poles
    x = 0, -1, -2, ... are where sin(pi x) = 0: the value is +inf there, as torch's."""
    return piecewise((sympy.loggamma(x), relation(x, ">", 0)),
                     (log(pi) - log(Abs(sympy.sin(pi * x))) - sympy.loggamma(1 - x), True))


@_elementwise("lgamma", torch.lgamma, "log|Gamma(x)|: log Gamma(x) for x > 0, by the reflection formula "
              "below (+inf at the poles 0, -1, -2, ...)", aliases=("gammaln",))
def lgamma(input):
    return emap(_log_abs_gamma, input)


@_elementwise("heaviside", torch.heaviside, "0 below 0, 1 above, values at 0 (derivative 0)")
def heaviside(input, values):
    return emap(lambda x, v: sympy.Heaviside(x, v), input, values)


@_elementwise("nextafter", torch.nextafter, "the float after x towards other: x plus at most one ulp "
              "(the step is below every tolerance); no gradient to other")
def nextafter(input, other):
    return emap(lambda x, y: x, input, other)


@_elementwise("angle", torch.angle, "the argument of a real x: 0 for x >= 0, pi below (derivative 0)")
def angle(input):
    return emap(lambda x: piecewise((0, relation(x, ">=", 0)), (pi, True)), input)


@_elementwise("fill", torch.fill, "value everywhere (derivative 0)")
def fill(input, value):
    v = sym_number(value)
    return emap(lambda x: v, input)


@_elementwise("zero_", torch.zero_, "0 everywhere (derivative 0)",
              prepare=lambda a, k: ((a[0].clone(), *a[1:]) if a[0].is_leaf and a[0].requires_grad else a, k))
def zero_(input):
    return emap(lambda x: sympy.S.Zero, input)


@_elementwise("frexp", torch.frexp, finish=lambda out: out.mantissa, doc=
              "the mantissa x / 2^e, e = floor(log2 |x|) + 1 (so 0.5 <= |m| < 1); the mantissa only")
def frexp(input):
    def mantissa(x):
        e = floor(log(Abs(x)) / log(2)) + 1
        return x / 2**e
    return emap(mantissa, input)


@register("glu", torch=F.glu, doc="a * sigmoid(b), a and b the two halves of the input along dim")
def glu(input, dim=-1):
    x = as_obj(input)
    d = norm_dim(dim, x.ndim)
    n = x.shape[d] // 2
    a, b = np.split(x, [n], axis=d)
    return emap(lambda u, v: u / (1 + sympy.exp(-v)), a, b)
