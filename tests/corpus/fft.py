"""Planted bugs in torch.fft backward passes, each a realistic mistake of a hand-written adjoint.

The adjoint of the DFT matrix F (F_km = e^{−2πikm/n}) is Fᴴ = conj(F) = n·ifft; the
one-sided and Hermitian transforms add weights: irfft's half spectrum X_1..X_{n/2−1}
each stands for two bins (X_k and X_{n−k} = conj(X_k)), so its gradient doubles them
and ignores Im X_0 and Im X_{n/2}. Each buggy twin subclasses its correct Function and
overrides only the backward, the bug marked. Kept apart from ``CORPUS`` (real dtypes),
as tests/corpus/complex.py is.
"""

from __future__ import annotations

import torch
from torch.autograd import Function

from .complex import COMPLEX_DTYPES, ComplexPlanted

FFT_KINDS = {
    "adjoint-conj": "the adjoint of the DFT without its conj (F·g instead of conj(F)·g)",
    "normalisation": "the wrong normalisation in the backward (1/n where the forward used 1/√n)",
    "hermitian-weights": "the one-sided spectrum's weights forgotten or doubled (irfft/rfft/hfft)",
    "shift-direction": "fftshift's backward rolled the wrong way (fftshift ≠ ifftshift for odd lengths)",
}
Z = ["1+2j", "-0.5+0.75j", "0.3-1.1j", "0.8+0.1j"]
X5 = [0.7, -1.2, 0.4, 2.0, -0.3]

FFT_CORPUS: list[ComplexPlanted] = []


def _plant(entry: ComplexPlanted) -> None:
    assert entry.kind in FFT_KINDS and all(e.id != entry.id for e in FFT_CORPUS)
    FFT_CORPUS.append(entry)


class Fft(Function):
    @staticmethod
    def forward(ctx, z):
        return torch.fft.fft(z)

    @staticmethod
    def backward(ctx, g):
        return g.shape[-1] * torch.fft.ifft(g)          # conj(F)·g


class FftNoConj(Fft):
    @staticmethod
    def backward(ctx, g):
        return torch.fft.fft(g)                          # BUG: F·g, the conj of the DFT matrix forgotten


class FftOrtho(Function):
    @staticmethod
    def forward(ctx, z):
        return torch.fft.fft(z, norm="ortho")

    @staticmethod
    def backward(ctx, g):
        return torch.fft.ifft(g, norm="ortho")


class FftOrthoWrongScale(FftOrtho):
    @staticmethod
    def backward(ctx, g):
        return torch.fft.ifft(g)                         # BUG: 1/n, the forward's 1/√n not mirrored


class Irfft(Function):
    """irfft to an even n: the gradient of X_k is rfft(g)_k, doubled for 0 < k < n/2."""

    @staticmethod
    def forward(ctx, z):
        return torch.fft.irfft(z)

    @staticmethod
    def backward(ctx, g):
        n = g.shape[-1]
        grad = torch.fft.rfft(g) / n
        grad[..., 1:n // 2] *= 2
        return grad


class IrfftNoDoubling(Irfft):
    @staticmethod
    def backward(ctx, g):
        return torch.fft.rfft(g) / g.shape[-1]           # BUG: X_k stands for X_k and X_{n−k}: not doubled


class Rfft(Function):
    """rfft of a real signal: x.grad = Re(conj(F_half)·g) over the one-sided bins only."""

    @staticmethod
    def forward(ctx, x):
        ctx.n = x.shape[-1]
        return torch.fft.rfft(x)

    @staticmethod
    def backward(ctx, g):
        full = torch.zeros(g.shape[:-1] + (ctx.n,), dtype=g.dtype)
        full[..., : g.shape[-1]] = g
        return (ctx.n * torch.fft.ifft(full)).real


class RfftViaIrfft(Rfft):
    @staticmethod
    def backward(ctx, g):
        return ctx.n * torch.fft.irfft(g, n=ctx.n)       # BUG: irfft doubles the interior bins a second time


class FftShift(Function):
    @staticmethod
    def forward(ctx, z):
        return torch.fft.fftshift(z)

    @staticmethod
    def backward(ctx, g):
        return torch.fft.ifftshift(g)


class FftShiftSelfInverse(FftShift):
    @staticmethod
    def backward(ctx, g):
        return torch.fft.fftshift(g)                     # BUG: fftshift is its own inverse only for even n


_plant(ComplexPlanted("fft-adjoint-no-conj", "adjoint-conj", "fft backward F·g instead of conj(F)·g", Fft, FftNoConj,
                      {"z": Z}, "torch.fft.fft(z)"))
_plant(ComplexPlanted("fft-ortho-scale", "normalisation", "fft(norm='ortho') backward scales by 1/n, not 1/√n",
                      FftOrtho, FftOrthoWrongScale, {"z": Z}, "torch.fft.fft(z, norm='ortho')"))
_plant(ComplexPlanted("irfft-no-doubling", "hermitian-weights", "irfft backward does not double X_1..X_{n/2-1}",
                      Irfft, IrfftNoDoubling, {"z": Z}, "torch.fft.irfft(z)"))
_plant(ComplexPlanted("rfft-via-irfft", "hermitian-weights", "rfft backward through irfft counts interior bins twice",
                      Rfft, RfftViaIrfft, {"x": {"value": X5, "dtype": "real"}}, "torch.fft.rfft(x)"))
_plant(ComplexPlanted("fftshift-self-inverse", "shift-direction", "fftshift backward rolls by +n//2 (odd n = 5)",
                      FftShift, FftShiftSelfInverse, {"z": Z + ["-1.5+0.2j"]}, "torch.fft.fftshift(z)"))

__all__ = ["COMPLEX_DTYPES", "FFT_CORPUS", "FFT_KINDS"]
