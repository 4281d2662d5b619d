"""Planted bugs in elementwise functions of one input.

Each correct Function is written as a careful person would; its buggy twin
subclasses it and overrides only what the bug touches, with the bug marked.
"""

from __future__ import annotations

import torch
from torch.autograd import Function

from .registry import Planted, plant

MIXED = [0.7, -1.3, 0.25, -0.4, 1.1]          # both signs, away from 0 and from kinks
POSITIVE = [0.6, 1.4, 2.2, 0.9]


# --- factor -------------------------------------------------------------------

class Exp(Function):
    @staticmethod
    def forward(ctx, x):
        y = torch.exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y


class ExpOff1001(Exp):
    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y * 1.001                   # BUG: a stray factor 1.001 (a rounded constant left in)


plant(Planted("exp-factor-1.001", "factor", "exp backward scaled by 1.001", Exp, ExpOff1001,
              {"x": MIXED}, "exp(x)"))


class HalfSquare(Function):
    """x**2 / 2, whose derivative is x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x / 2

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * x


class HalfSquareForgotHalf(HalfSquare):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * g * x                       # BUG: differentiated x**2, forgot the 1/2


plant(Planted("half-square-factor-2", "factor", "d(x^2/2) written as 2x", HalfSquare, HalfSquareForgotHalf,
              {"x": MIXED}, "x**2 / 2"))


class Softplus(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.nn.functional.softplus(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.sigmoid(x)


class SoftplusBeta(Softplus):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.sigmoid(x) * 0.5      # BUG: a beta=2 implementation's 1/beta left in


plant(Planted("softplus-factor-half", "factor", "softplus backward halved", Softplus, SoftplusBeta,
              {"x": MIXED}, "log(1 + exp(x))"))


# --- product rule -------------------------------------------------------------

class XExp(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * torch.exp(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (1 + x) * torch.exp(x)


class XExpMissingTerm(XExp):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * x * torch.exp(x)            # BUG: d(x e^x) lost its e^x term


plant(Planted("x-exp-product-rule", "product-rule", "d(x e^x) = x e^x (the e^x term missing)", XExp,
              XExpMissingTerm, {"x": MIXED}, "x * exp(x)"))


class XSin(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * torch.sin(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (torch.sin(x) + x * torch.cos(x))


class XSinMissingTerm(XSin):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * x * torch.cos(x)            # BUG: the sin(x) term of the product rule is missing


plant(Planted("x-sin-product-rule", "product-rule", "d(x sin x) = x cos x (sin x missing)", XSin,
              XSinMissingTerm, {"x": MIXED}, "x * sin(x)"))


class Lorentz(Function):
    """x / (1 + x^2): the quotient rule is a product rule with a reciprocal."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x / (1 + x * x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        d = 1 + x * x
        return g * (1 - x * x) / (d * d)


class LorentzMissingTerm(Lorentz):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g / (1 + x * x)                 # BUG: treated the denominator as a constant


plant(Planted("quotient-rule", "product-rule", "d(x/(1+x^2)) without the denominator's derivative", Lorentz,
              LorentzMissingTerm, {"x": MIXED}, "x / (1 + x**2)"))


# --- sign ---------------------------------------------------------------------

class Cos(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.cos(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return -g * torch.sin(x)


class CosWrongSign(Cos):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.sin(x)                # BUG: d cos = -sin, the minus is lost


plant(Planted("cos-sign", "sign", "d cos x = +sin x", Cos, CosWrongSign, {"x": MIXED}, "cos(x)"))


class Tanh(Function):
    @staticmethod
    def forward(ctx, x):
        y = torch.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * (1 - y * y)


class TanhWrongSign(Tanh):
    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * (1 + y * y)                 # BUG: 1 + tanh^2 (that is sec^2, the tan rule)


plant(Planted("tanh-sign", "sign", "d tanh = 1 + tanh^2", Tanh, TanhWrongSign, {"x": MIXED}, "tanh(x)"))


class Reciprocal(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return 1 / x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return -g / (x * x)


class ReciprocalWrongSign(Reciprocal):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g / (x * x)                     # BUG: d(1/x) = -1/x^2, sign dropped


plant(Planted("reciprocal-sign", "sign", "d(1/x) = +1/x^2", Reciprocal, ReciprocalWrongSign, {"x": MIXED},
              "1 / x"))


# --- wrong only for negative inputs ---------------------------------------------

class Abs(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.abs(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * torch.sign(x)


class AbsPositiveOnly(Abs):
    @staticmethod
    def backward(ctx, g):
        return g.clone()                       # BUG: d|x| = 1, true only for x > 0


plant(Planted("abs-negative", "negative-only", "d|x| = 1 everywhere", Abs, AbsPositiveOnly, {"x": MIXED},
              "abs(x)"))


class LeakyRelu(Function):
    SLOPE = 0.1

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.where(x > 0, x, LeakyRelu.SLOPE * x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return torch.where(x > 0, g, LeakyRelu.SLOPE * g)


class LeakyReluDead(LeakyRelu):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return torch.where(x > 0, g, torch.zeros_like(g))   # BUG: ReLU's backward pasted in


plant(Planted("leaky-relu-negative", "negative-only", "leaky ReLU with ReLU's zero slope for x < 0", LeakyRelu,
              LeakyReluDead, {"x": MIXED}, "leaky_relu(x, 0.1)"))


class Elu(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.where(x > 0, x, torch.expm1(x))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return torch.where(x > 0, g, g * torch.exp(x))


class EluForgotExp(Elu):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return torch.where(x > 0, g, g * 1.0)  # BUG: the negative branch's derivative e^x written as 1


plant(Planted("elu-negative", "negative-only", "ELU's derivative e^x replaced by 1 for x < 0", Elu, EluForgotExp,
              {"x": MIXED}, "elu(x)"))


class SignedSquare(Function):
    """x |x|, whose derivative is 2|x|."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * torch.abs(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * g * torch.abs(x)


class SignedSquareAsSquare(SignedSquare):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * g * x                       # BUG: the derivative of x^2, right only for x >= 0


plant(Planted("signed-square-negative", "negative-only", "d(x|x|) written as 2x", SignedSquare,
              SignedSquareAsSquare, {"x": MIXED}, "x * abs(x)"))


# --- ignored grad_output ------------------------------------------------------------

class ExpIgnoresGrad(Exp):
    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return y                               # BUG: returns dy/dx, never multiplied by grad_output


plant(Planted("exp-ignores-grad-output", "ignored-grad-output", "exp backward returns exp(x), not g*exp(x)",
              Exp, ExpIgnoresGrad, {"x": MIXED}, "exp(x)"))


class SoftplusOnes(Softplus):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return torch.ones_like(g) * torch.sigmoid(x)   # BUG: grad_output replaced by ones


plant(Planted("softplus-ones", "ignored-grad-output", "softplus backward uses ones for grad_output", Softplus,
              SoftplusOnes, {"x": MIXED}, "log(1 + exp(x))"))


class SumSquares(Function):
    """Σ x^2: a scalar output, so grad_output is a single number (1 only for a bare backward())."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x * x).sum()

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * g * x


class SumSquaresAssumesOne(SumSquares):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * x                           # BUG: assumes loss.backward() with its implicit 1


plant(Planted("sum-squares-ignores-grad-output", "ignored-grad-output",
              "a scalar function's backward that assumes grad_output = 1", SumSquares, SumSquaresAssumesOne,
              {"x": MIXED}, "(x**2).sum()"))


# --- a forward silently cast ----------------------------------------------------------

class ExpInFloat32(Exp):
    @staticmethod
    def forward(ctx, x):
        y = torch.exp(x.float()).to(x.dtype)   # BUG: computed in float32 "for speed", cast back silently
        ctx.save_for_backward(y)
        return y


plant(Planted("exp-float32-forward", "silent-cast",
              "exp computed in float32 and cast back; backward reuses that output", Exp, ExpInFloat32,
              {"x": MIXED}, "exp(x)", buggy_dtypes=("float64",)))


class TanhInHalf(Tanh):
    @staticmethod
    def forward(ctx, x):
        y = torch.tanh(x.half()).to(x.dtype)   # BUG: a half-precision kernel, cast back silently
        ctx.save_for_backward(y)
        return y


plant(Planted("tanh-half-forward", "silent-cast",
              "tanh computed in float16 and cast back; backward reuses that output", Tanh, TanhInHalf,
              {"x": MIXED}, "tanh(x)"))


class SigmoidInBfloat16(Function):
    @staticmethod
    def forward(ctx, x):
        y = torch.sigmoid(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y * (1 - y)


class SigmoidBfloat16Saved(SigmoidInBfloat16):
    @staticmethod
    def forward(ctx, x):
        y = torch.sigmoid(x)
        ctx.save_for_backward(y.bfloat16())    # BUG: saved in bfloat16 to save memory, read back as is
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * (y * (1 - y)).to(g.dtype)


plant(Planted("sigmoid-bfloat16-saved", "silent-cast",
              "sigmoid's saved output silently cast to bfloat16", SigmoidInBfloat16, SigmoidBfloat16Saved,
              {"x": MIXED}, "sigmoid(x)"))


# --- beside-a-large-element (issue 12, item 1) ----------------------------------------------------
# With atol·max(1, max|exact|) one large element scaled every element's allowance: the error of 1
# at 0.5, -1, 1.5 passed once 2000 (float32) or 2e13 (float64) sat beside them.

class CubeThird(Function):
    """x**3 / 3, whose derivative is x**2."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x * x / 3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * x * x


class CubeThirdPlusOne(CubeThird):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (x * x + 1)                 # BUG: a stray + 1


plant(Planted("cube-third-plus-one-beside-2000", "beside-a-large-element", "d(x^3/3) written as x^2 + 1",
              CubeThird, CubeThirdPlusOne, {"x": [0.5, -1.0, 1.5, 2000.0]}, "x**3 / 3"))


class HalfSquarePlusOne(HalfSquare):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (x + 1)                     # BUG: a stray + 1


plant(Planted("half-square-plus-one-beside-2e13", "beside-a-large-element", "d(x^2/2) written as x + 1",
              HalfSquare, HalfSquarePlusOne, {"x": [0.5, -1.0, 1.5, 2e13]}, "x**2 / 2"))
