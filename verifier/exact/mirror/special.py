"""Special functions: digamma, polygamma, mvlgamma, erfinv, ndtri, log_ndtr, erfcx, i0, i0e, i1, i1e,
zeta, xlogy-like limits aside.

Each is its defining formula over SymPy's special functions (DLMF numbers in ``doc``):
digamma = psi = d/dx log Gamma (5.2.2), the multivariate log-gamma
log Gamma_p(x) = p(p-1)/4 log pi + sum_{j<p} log Gamma(x - j/2), the normal quantile
ndtri(p) = sqrt(2) erfinv(2p - 1), log_ndtr(x) = log(erfc(-x/sqrt 2)/2), the scaled
complementary error function erfcx(x) = exp(x^2) erfc(x), the modified Bessel functions
I_0, I_1 (10.25.2) and their scaled forms exp(-|x|) I_nu(x), and Hurwitz's zeta(x, q)
(25.11.1; torch differentiates q only).
"""

from __future__ import annotations

import sympy
import torch
from sympy import Abs, Rational, erfc, exp, log, pi, sqrt

from ._arrays import emap, sym_number
from ._table import register
from .elementwise import POS, UNIT


def _special(name, torch_fn, doc, *, domain=None, aliases=()):
    return register(name, torch=torch_fn, doc=doc, elementwise=True, domain=domain, aliases=aliases)


@_special("digamma", torch.digamma, "psi(x) = d/dx log Gamma(x), for x > 0", domain=POS, aliases=("psi",))
def digamma(input):
    return emap(lambda x: sympy.polygamma(0, x), input)


@_special("polygamma", torch.polygamma, "psi^(n)(x), the n-th derivative of digamma, x > 0",
          domain=POS)
def polygamma(n, input):
    k = int(n)
    return emap(lambda x: sympy.polygamma(k, x), input)


@_special("mvlgamma", torch.mvlgamma, "p(p-1)/4 log(pi) + sum_{j<p} log Gamma(x - j/2), for x > (p-1)/2",
          domain=POS)
def mvlgamma(input, p):
    p = int(p)
    return emap(lambda x: Rational(p * (p - 1), 4) * log(pi) + sympy.Add(*[sympy.loggamma(x - Rational(j, 2))
                                                                             for j in range(p)]), input)


@_special("erfinv", torch.erfinv, "the inverse of erf on (-1, 1)", domain=UNIT)
def erfinv(input):
    return emap(sympy.erfinv, input)


@_special("ndtri", torch.special.ndtri, "sqrt(2) erfinv(2p - 1): the standard normal quantile", domain=(0.0, 1.0))
def ndtri(input):
    return emap(lambda p: sqrt(2) * sympy.erfinv(2 * p - 1), input)


@_special("log_ndtr", torch.special.log_ndtr, "log(erfc(-x / sqrt 2) / 2): log of the normal CDF")
def log_ndtr(input):
    return emap(lambda x: log(erfc(-x / sqrt(2)) / 2), input)


@_special("erfcx", torch.special.erfcx, "exp(x^2) erfc(x)")
def erfcx(input):
    return emap(lambda x: exp(x**2) * erfc(x), input)


@_special("i0", torch.i0, "I_0(x), the modified Bessel function of the first kind")
def i0(input):
    return emap(lambda x: sympy.besseli(0, x), input)


@_special("i1", torch.special.i1, "I_1(x)")
def i1(input):
    return emap(lambda x: sympy.besseli(1, x), input)


@_special("i0e", torch.special.i0e, "exp(-|x|) I_0(x)")
def i0e(input):
    return emap(lambda x: exp(-Abs(x)) * sympy.besseli(0, x), input)


@_special("i1e", torch.special.i1e, "exp(-|x|) I_1(x)")
def i1e(input):
    return emap(lambda x: exp(-Abs(x)) * sympy.besseli(1, x), input)


@_special("zeta", torch.special.zeta, "Hurwitz zeta(x, q) = sum_k (k + q)^-x, x > 1, q > 0")
def zeta(input, other):
    return emap(lambda s, q: sympy.zeta(sym_number(s), q), input, other)

