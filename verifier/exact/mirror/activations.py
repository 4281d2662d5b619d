"""Activation functions with parameters: softplus, GELU, ELU, CELU, leaky ReLU, hardtanh.

Each is written from the formula torch documents for it (quoted in ``doc``);
the branch points use the helpers of :mod:`.elementwise` so that the kink
detector finds them and torch's convention at the kink is the one written.
"""

from __future__ import annotations

import sympy
import torch.nn.functional as F
from sympy import Rational, exp, log, sqrt

from ._arrays import emap, unsupported
from ._table import register
from .elementwise import _clip, _num, _positive_branch


@register("softplus", torch=F.softplus, elementwise=True,
          doc="log(1 + exp(beta x)) / beta (torch's linear regime above `threshold` "
              "is not modelled)")
def softplus(x, beta=1, threshold=20):
    """(1/beta) log(1 + exp(beta x)); torch's switch to x above threshold is a ~exp(-20) change."""
    b = _num(beta, "beta")
    return emap(lambda v: log(1 + exp(b * v)) / b, x)


@register("gelu", torch=F.gelu, elementwise=True,
          doc="x * Phi(x), Phi(x) = (1 + erf(x/sqrt 2))/2; approximate='tanh': "
              "x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))")
def gelu(x, approximate="none"):
    """Exact or tanh-approximated GELU, as torch documents them."""
    if approximate == "none":
        return emap(lambda v: v * (1 + sympy.erf(v / sqrt(2))) / 2, x)
    if approximate == "tanh":
        k = sqrt(2 / sympy.pi)
        c = Rational(44715, 10**6)
        return emap(lambda v: v * (1 + sympy.tanh(k * (v + c * v**3))) / 2, x)
    raise unsupported(f"gelu: unknown approximate={approximate!r}",
                      hint="Use approximate='none' or 'tanh'.")


def _refuse_inplace(inplace, name):
    """inplace=True given positionally (the language refuses the keyword): torch would overwrite its input."""
    if inplace:
        raise unsupported(f"{name}: inplace=True makes torch write into its input, which a case cannot check",
                          hint="Drop the inplace argument.")


@register("elu", torch=F.elu, elementwise=True, doc="x if x > 0 else alpha (exp(x) - 1)")
def elu(x, alpha=1, inplace=False):
    """Exponential linear unit."""
    _refuse_inplace(inplace, "elu")
    a = _num(alpha, "alpha")
    return emap(lambda v: _positive_branch(v, a * (exp(v) - 1)), x)


@register("celu", torch=F.celu, elementwise=True,
          doc="x if x > 0 else alpha (exp(x / alpha) - 1)")
def celu(x, alpha=1, inplace=False):
    """Continuously differentiable ELU."""
    _refuse_inplace(inplace, "celu")
    a = _num(alpha, "alpha")
    return emap(lambda v: _positive_branch(v, a * (exp(v / a) - 1)), x)


@register("leaky_relu", torch=F.leaky_relu, elementwise=True,
          doc="x if x > 0 else negative_slope x")
def leaky_relu(x, negative_slope=Rational(1, 100), inplace=False):
    """Leaky ReLU, default slope 0.01."""
    _refuse_inplace(inplace, "leaky_relu")
    s = _num(negative_slope, "negative_slope")
    return emap(lambda v: _positive_branch(v, s * v), x)


@register("hardtanh", torch=F.hardtanh, elementwise=True,
          doc="min(max(x, min_val), max_val); derivative 0 on the bounds, as in torch")
def hardtanh(x, min_val=-1, max_val=1, inplace=False):
    """Clamp to [min_val, max_val], default [-1, 1]; torch's derivative is 0 at x = min_val, max_val."""
    _refuse_inplace(inplace, "hardtanh")
    lo, hi = _num(min_val, "min_val"), _num(max_val, "max_val")
    return emap(lambda v: _clip(v, lo, hi, keep_bounds=False), x)
