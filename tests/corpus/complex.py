"""Planted bugs in complex backward passes (docs/complex.md), kept apart from ``CORPUS`` (real dtypes).

Torch's convention: for a real loss L, ``z.grad = ∂L/∂x + i·∂L/∂y`` (the
conjugate Wirtinger derivative, times 2); for a holomorphic ``y = f(z)``
with weights ``g`` that is ``g·conj(f'(z))``. The three bugs the issue names:

* forgets a conj: ``g·f'(z)`` instead of ``g·conj(f'(z))``;
* the JAX convention: ``∂L/∂z`` (the conjugate of torch's value) returned;
* drops the imaginary part of the gradient.

Each buggy twin subclasses its correct Function and overrides only the
backward, the bug marked.
"""

from __future__ import annotations

import torch
from torch.autograd import Function

from .registry import Planted

COMPLEX_DTYPES = ("complex128", "complex64")
COMPLEX_KINDS = {
    "forgets-conj": "a backward that forgets a conj",
    "jax-convention": "the JAX convention (∂L/∂z instead of torch's conj)",
    "drops-imag": "a backward that drops the imaginary part",
}
Z = ["1+2j", "-0.5+0.75j", "0.3-1.1j"]
W = ["0.5-1j", "2+0.5j", "-1+0.25j"]

COMPLEX_CORPUS: list[Planted] = []


class ComplexPlanted(Planted):
    """A planted complex bug: its cases (and ``tensors()``) are complex by default."""

    def case(self, fn: type, dtypes=COMPLEX_DTYPES):
        return super().case(fn, dtypes=dtypes)


def _plant(entry: Planted) -> None:
    assert entry.kind in COMPLEX_KINDS and all(e.id != entry.id for e in COMPLEX_CORPUS)
    COMPLEX_CORPUS.append(entry)


# --- forgets a conj ----------------------------------------------------------------

class Mul(Function):
    @staticmethod
    def forward(ctx, z, w):
        ctx.save_for_backward(z, w)
        return z * w

    @staticmethod
    def backward(ctx, g):
        z, w = ctx.saved_tensors
        return g * w.conj(), g * z.conj()


class MulNoConj(Mul):
    @staticmethod
    def backward(ctx, g):
        z, w = ctx.saved_tensors
        return g * w, g * z.conj()                 # BUG: forgets the conj of w


class Exp(Function):
    @staticmethod
    def forward(ctx, z):
        y = torch.exp(z)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y.conj()


class ExpNoConj(Exp):
    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y                               # BUG: forgets the conj of exp(z)


_plant(ComplexPlanted("mul-forgets-conj", "forgets-conj", "z·w backward uses w, not conj(w)", Mul, MulNoConj,
               {"z": Z, "w": W}, "z * w"))
_plant(ComplexPlanted("exp-forgets-conj", "forgets-conj", "exp backward uses exp(z), not conj(exp(z))", Exp, ExpNoConj,
               {"z": Z}, "exp(z)"))


# --- the JAX convention -------------------------------------------------------------

class AbsSquared(Function):
    """|z|², a real output: torch's gradient is 2z·g."""

    @staticmethod
    def forward(ctx, z):
        ctx.save_for_backward(z)
        return (z * z.conj()).real

    @staticmethod
    def backward(ctx, g):
        (z,) = ctx.saved_tensors
        return 2 * g * z


class AbsSquaredJax(AbsSquared):
    @staticmethod
    def backward(ctx, g):
        (z,) = ctx.saved_tensors
        return 2 * g * z.conj()                    # BUG: ∂L/∂z (JAX's cotangent), not torch's 2·∂L/∂z̄


class Sin(Function):
    @staticmethod
    def forward(ctx, z):
        ctx.save_for_backward(z)
        return torch.sin(z)

    @staticmethod
    def backward(ctx, g):
        (z,) = ctx.saved_tensors
        return g * torch.cos(z).conj()


class SinJax(Sin):
    @staticmethod
    def backward(ctx, g):
        (z,) = ctx.saved_tensors
        return g.conj() * torch.cos(z)             # BUG: conj(torch's value): JAX's ∂L/∂z convention


_plant(ComplexPlanted("abs2-jax", "jax-convention", "|z|² backward returns ∂L/∂z = 2·conj(z)·g", AbsSquared,
               AbsSquaredJax, {"z": Z}, "z.abs() ** 2"))
_plant(ComplexPlanted("sin-jax", "jax-convention", "sin backward returns conj(g)·cos(z) (JAX's ∂L/∂z)", Sin, SinJax,
               {"z": Z}, "sin(z)"))


# --- drops the imaginary part --------------------------------------------------------

class Square(Function):
    @staticmethod
    def forward(ctx, z):
        ctx.save_for_backward(z)
        return z * z

    @staticmethod
    def backward(ctx, g):
        (z,) = ctx.saved_tensors
        return g * (2 * z).conj()


class SquareDropsImag(Square):
    @staticmethod
    def backward(ctx, g):
        (z,) = ctx.saved_tensors
        return (g * (2 * z).conj()).real.to(z.dtype)    # BUG: the imaginary part is dropped


class Abs(Function):
    @staticmethod
    def forward(ctx, z):
        ctx.save_for_backward(z)
        return z.abs()

    @staticmethod
    def backward(ctx, g):
        (z,) = ctx.saved_tensors
        return g * z / z.abs()


class AbsDropsImag(Abs):
    @staticmethod
    def backward(ctx, g):
        (z,) = ctx.saved_tensors
        return torch.complex(g * z.real / z.abs(), torch.zeros_like(g))   # BUG: Im of the gradient dropped


_plant(ComplexPlanted("square-drops-imag", "drops-imag", "z² backward keeps only Re", Square, SquareDropsImag,
               {"z": Z}, "z ** 2"))
_plant(ComplexPlanted("abs-drops-imag", "drops-imag", "|z| backward keeps only Re(z)/|z|", Abs, AbsDropsImag,
               {"z": Z}, "z.abs()"))
