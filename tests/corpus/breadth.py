"""Planted bugs in the functions added for derivatives.yaml coverage: igamma, igammac, ndtr, Tensor.unfold,
and the audit's last refusals: lgamma below 0, div's rounding modes.

The correct backwards are written from the definitions: d/dx P(a, x) is the
integrand x^(a-1) e^-x / Gamma(a) (DLMF 8.2.4), Q = 1 - P, ndtr' is the normal
density, and an unfolded element gets the sum of the gradients of every
window holding it. lgamma = log|Gamma(x)| has the slope digamma(x) on both sides of 0; a
rounded quotient is piecewise constant, so a * floor(a / b) has the gradient floor(a / b) in a and 0 in b.
"""

from __future__ import annotations

import math

import torch
from torch.autograd import Function

from .registry import Planted, plant

A = {"value": [0.7, 2.5, 1.3, 4.0], "requires_grad": False}
X = {"value": [0.4, 1.9, 3.1, 2.2]}


def _density(a, x):
    return torch.exp(-x + (a - 1) * torch.log(x) - torch.lgamma(a))


class Igamma(Function):
    """P(a, x), differentiated in x; Igammac reuses it with Q = 1 - P (SIGN -1)."""

    SIGN = 1

    @staticmethod
    def value(a, x):
        return torch.igamma(a, x)

    @classmethod
    def forward(cls, ctx, a, x):
        ctx.save_for_backward(a, x)
        return cls.value(a, x)

    @classmethod
    def backward(cls, ctx, g):
        a, x = ctx.saved_tensors
        return None, cls.SIGN * g * _density(a, x)


class IgammaNoGamma(Igamma):
    @classmethod
    def backward(cls, ctx, g):
        a, x = ctx.saved_tensors
        return None, g * torch.exp(-x + (a - 1) * torch.log(x))      # BUG: the 1/Gamma(a) factor forgotten


plant(Planted("igamma-no-gamma", "factor", "igamma's x-gradient without its 1/Gamma(a)", Igamma, IgammaNoGamma,
              {"a": A, "x": X}, "torch.igamma(a, x)"))


class Igammac(Igamma):
    SIGN = -1

    @staticmethod
    def value(a, x):
        return torch.igammac(a, x)


class IgammacSign(Igammac):
    SIGN = 1                                                   # BUG: Q = 1 - P, but the sign of P' was kept


plant(Planted("igammac-sign", "sign", "igammac's x-gradient with P's sign", Igammac, IgammacSign,
              {"a": A, "x": X}, "torch.igammac(a, x)"))


class Ndtr(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.special.ndtr(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.exp(-x * x / 2) / math.sqrt(2 * math.pi)


class NdtrSqrtPi(Ndtr):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.exp(-x * x / 2) / math.sqrt(math.pi)        # BUG: sqrt(pi) for sqrt(2 pi)


plant(Planted("ndtr-sqrt-pi", "factor", "ndtr's density normalised by sqrt(pi)", Ndtr, NdtrSqrtPi,
              {"x": {"value": [-1.2, 0.3, 0.8, 2.1]}}, "torch.special.ndtr(x)"))


class Unfold(Function):
    """x.unfold(0, 3, 2) of a 5-vector: windows [0, 1, 2] and [2, 3, 4] share element 2."""

    @staticmethod
    def forward(ctx, x):
        return x.unfold(0, 3, 2).clone()

    @staticmethod
    def backward(ctx, g):
        out = g.new_zeros(5)
        for i in range(2):
            out[2 * i:2 * i + 3] += g[i]
        return out


class UnfoldOverwrite(Unfold):
    @staticmethod
    def backward(ctx, g):
        out = g.new_zeros(5)
        for i in range(2):
            out[2 * i:2 * i + 3] = g[i]                              # BUG: overwrites the shared element
        return out


plant(Planted("unfold-overwrite", "one-element", "Tensor.unfold's backward overwrites an overlapping element",
              Unfold, UnfoldOverwrite, {"x": {"value": [0.3, -1.1, 0.7, 1.9, -0.4]}}, "x.unfold(0, 3, 2)"))


class Lgamma(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.lgamma(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.digamma(x)


class LgammaOfAbs(Lgamma):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.digamma(x.abs())                            # BUG: digamma(|x|), wrong below 0


# one positive point, 3.7, where torch's float64 trigamma (the correct twin's double backward) happens to be
# within the allowance; at 1.0 or 1.3 it is not (torch fact trigamma-float64, docs/torch-findings.md)
plant(Planted("lgamma-abs-digamma", "negative-only", "lgamma's slope digamma(|x|): right above 0 only",
              Lgamma, LgammaOfAbs, {"x": {"value": [-2.5, -0.5, -1.3, 3.7]}}, "torch.lgamma(x)"))


class FloorDivTimes(Function):
    """a * floor(a / b): the rounded quotient is piecewise constant (torch's gradient through it is 0)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * torch.div(a, b, rounding_mode="floor")

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return g * torch.div(a, b, rounding_mode="floor"), torch.zeros_like(b)


class FloorDivStraightThrough(FloorDivTimes):
    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        q = torch.div(a, b, rounding_mode="floor")
        return g * (q + a / b), g * (-a * a / (b * b))               # BUG: floor's slope taken as 1


plant(Planted("floor-div-straight-through", "product-rule",
              "a * floor(a / b) differentiated as if floor were the identity (an extra product-rule term)",
              FloorDivTimes, FloorDivStraightThrough,
              {"a": {"value": [3.7, -3.7, 5.0, -0.5]}, "b": {"value": [1.5, 1.5, -2.0, 0.3]}},
              "a * torch.div(a, b, rounding_mode='floor')"))
