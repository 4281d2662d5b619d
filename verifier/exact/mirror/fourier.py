"""Discrete Fourier transforms as DFT sums (torch.fft; docs/complex.md): exact roots of unity, no FFT.

``fft``: X_k = Σ_m x_m·exp(−2πi·km/n); ``ifft`` the same with +2πi and 1/n;
``norm`` as torch ("backward": 1 forward, 1/n inverse; "ortho": 1/√n both;
"forward": 1/n forward, 1 inverse); ``n`` pads with zeros or trims along
``dim``. ``rfft`` keeps the first n//2 + 1 outputs of the fft of a real
input; ``irfft`` extends its input Hermitian-symmetrically to length n
(default 2·(m − 1)) and returns the real part of the inverse transform, so
the imaginary parts of X_0 (and of X_{n/2} for even n) do not contribute,
as in torch. ``fft2`` is the fft along each of the two dims.
"""

from __future__ import annotations

import numpy as np
import sympy
import torch
from sympy import I, cos, im, pi, re, sin

from ._arrays import as_obj
from ._table import register


def _scale(n: int, norm, inverse: bool):
    norm = norm or "backward"
    if norm == "ortho":
        return 1 / sympy.sqrt(n)
    return sympy.Rational(1, n) if (norm == "backward") == inverse else sympy.Integer(1)


def _resized(a: np.ndarray, n: int) -> np.ndarray:
    """``a`` trimmed or zero-padded to ``n`` along its last axis."""
    if n <= a.shape[-1]:
        return a[..., :n]
    pad = np.full(a.shape[:-1] + (n - a.shape[-1],), sympy.Integer(0), dtype=object)
    return np.concatenate([a, pad], axis=-1)


def _dft(x, n, dim: int, norm, inverse: bool) -> np.ndarray:
    a = np.moveaxis(as_obj(x), dim, -1)
    n = a.shape[-1] if n is None else int(n)
    a = _resized(a, n)
    sign = 1 if inverse else -1
    roots = [sympy.exp(sign * 2 * pi * I * sympy.Rational(k, n)) for k in range(n)]   # roots[k·m mod n]
    scale = _scale(n, norm, inverse)
    out = np.empty(a.shape, dtype=object)
    for idx in np.ndindex(*a.shape[:-1]):
        row = a[idx]
        for k in range(n):
            out[idx + (k,)] = scale * sympy.Add(*[roots[(k * m) % n] * row[m] for m in range(n)])
    return np.moveaxis(out, -1, dim)


@register("fft", torch=torch.fft.fft, doc="the DFT X_k = sum_m x_m exp(-2 pi i k m / n) along dim (norm, n as torch)")
def fft(input, n=None, dim=-1, norm=None):
    return _dft(input, n, dim, norm, inverse=False)


@register("ifft", torch=torch.fft.ifft, doc="the inverse DFT (1/n) sum_k X_k exp(2 pi i k m / n) along dim")
def ifft(input, n=None, dim=-1, norm=None):
    return _dft(input, n, dim, norm, inverse=True)


@register("rfft", torch=torch.fft.rfft, doc="the DFT of a real input, its first n//2 + 1 outputs")
def rfft(input, n=None, dim=-1, norm=None):
    out = np.moveaxis(_dft(input, n, dim, norm, inverse=False), dim, -1)
    return np.moveaxis(out[..., : out.shape[-1] // 2 + 1], -1, dim)


@register("irfft", torch=torch.fft.irfft, doc="the real inverse DFT of a Hermitian half-spectrum (n = 2(m - 1) "
          "by default); Im X_0 and Im X_{n/2} do not contribute")
def irfft(input, n=None, dim=-1, norm=None):
    a = np.moveaxis(as_obj(input), dim, -1)
    n = 2 * (a.shape[-1] - 1) if n is None else int(n)
    half = _resized(a, n // 2 + 1)
    scale = _scale(n, norm, inverse=True)
    out = np.empty(a.shape[:-1] + (n,), dtype=object)
    for idx in np.ndindex(*a.shape[:-1]):
        spectrum = [half[idx + (k,)] if k <= n // 2 else sympy.conjugate(half[idx + (n - k,)]) for k in range(n)]
        for m in range(n):
            # Re(X_k·e^{iθ}) = Re X_k·cos θ − Im X_k·sin θ, θ = 2πkm/n
            terms = [re(x) * cos(2 * pi * sympy.Rational(k * m % n, n)) - im(x) * sin(
                2 * pi * sympy.Rational(k * m % n, n)) for k, x in enumerate(spectrum)]
            out[idx + (m,)] = scale * sympy.Add(*terms)
    return np.moveaxis(out, -1, dim)


@register("fft2", torch=torch.fft.fft2, doc="the DFT along each of the last two dims (s, dim, norm as torch)")
def fft2(input, s=None, dim=(-2, -1), norm=None):
    out = as_obj(input)
    for i, d in enumerate(dim):
        out = _dft(out, None if s is None else s[i], d, norm, inverse=False)
    return out
