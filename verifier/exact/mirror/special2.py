"""More special functions: the regularised incomplete gamma functions and the normal CDF.

igamma(a, x) = P(a, x) = (1 / Gamma(a)) int_0^x t^(a-1) e^(-t) dt (DLMF 8.2.4)
and igammac(a, x) = Q(a, x) = 1 - P(a, x). Their derivative in x is the
integrand over Gamma(a) (the fundamental theorem of calculus), in closed form.
Their derivative in a has no closed form SymPy's evaluators can read (a
Meijer G): it is ``IgammaDa``, evaluated by mpmath's high-precision numerical
differentiation of P in a (50 digits). torch differentiates x only (its
derivative in a is not implemented): a case gives ``a`` with
``requires_grad: false``; one that differentiates it gets torch's own error.
ndtr(x) = (1 + erf(x / sqrt 2)) / 2, the standard normal CDF (DLMF 7.2.1, 7.18).

``NUMERIC`` names each new SymPy function with its mpmath evaluation; the
exact side's evaluators read their tables from it.
"""

from __future__ import annotations

import mpmath
import sympy
import torch
from sympy import erf, exp, sqrt

from ._arrays import emap
from ._table import register
from .elementwise import POS


def _p(a, x):
    return mpmath.gammainc(a, 0, x, regularized=True)


def _dp_da(a, x):
    with mpmath.workdps(max(50, mpmath.mp.dps)):
        return mpmath.diff(lambda s: _p(s, x), a)


class _Numeric(sympy.Function):
    """A function SymPy evaluates (``evalf``) through its mpmath definition in ``NUMERIC``."""

    nargs = 2

    def _eval_evalf(self, prec):
        if not all(arg.is_number for arg in self.args):
            return None
        with mpmath.workprec(prec):
            value = NUMERIC[type(self)](*(mpmath.mpf(arg._eval_evalf(prec)) for arg in self.args))
        return sympy.Float(value, precision=prec)


class IgammaDa(_Numeric):
    """dP(a, x)/da, evaluated numerically (no closed form the evaluators read)."""


class RegularizedLowerGamma(_Numeric):
    """P(a, x) = lowergamma(a, x) / Gamma(a)."""

    def fdiff(self, argindex=1):
        a, x = self.args
        return IgammaDa(a, x) if argindex == 1 else exp(-x) * x ** (a - 1) / sympy.gamma(a)


class RegularizedUpperGamma(_Numeric):
    """Q(a, x) = uppergamma(a, x) / Gamma(a) = 1 - P(a, x)."""

    def fdiff(self, argindex=1):
        a, x = self.args
        return -IgammaDa(a, x) if argindex == 1 else -exp(-x) * x ** (a - 1) / sympy.gamma(a)


#: SymPy function class -> its mpmath evaluation (read by the exact side's evaluators).
NUMERIC = {RegularizedLowerGamma: _p, RegularizedUpperGamma: lambda a, x: 1 - _p(a, x), IgammaDa: _dp_da}


@register("igamma", torch=torch.igamma, elementwise=True, domain=POS,
          doc="P(a, x) = int_0^x t^(a-1) e^-t dt / Gamma(a), a > 0, x > 0 (DLMF 8.2.4)")
def igamma(input, other):
    return emap(RegularizedLowerGamma, input, other)


@register("igammac", torch=torch.igammac, elementwise=True, domain=POS,
          doc="Q(a, x) = 1 - P(a, x) = int_x^inf t^(a-1) e^-t dt / Gamma(a), a > 0, x > 0 (DLMF 8.2.4)")
def igammac(input, other):
    return emap(RegularizedUpperGamma, input, other)


@register("ndtr", torch=torch.special.ndtr, elementwise=True, doc="(1 + erf(x / sqrt 2)) / 2, the normal CDF")
def ndtr(input):
    return emap(lambda x: (1 + erf(x / sqrt(2))) / 2, input)
