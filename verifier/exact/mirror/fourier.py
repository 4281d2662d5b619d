"""One-dimensional discrete Fourier transforms as DFT sums (torch.fft; docs/complex.md): exact roots of unity.

Definitions (the DFT of length n, e.g. Oppenheim & Schafer, *Discrete-Time
Signal Processing*, eq. 8.67/8.68; numpy.fft's module notes):

* ``fft``: X_k = Σ_m x_m·exp(−2πi·km/n); ``ifft``: x_m = (1/n)·Σ_k X_k·exp(+2πi·km/n).
* ``norm`` as torch: "backward" (the default) scales the inverse by 1/n,
  "forward" the forward transform by 1/n, "ortho" both by 1/√n; ``n`` pads
  with zeros or trims the input along ``dim``.
* ``rfft``: the first n//2 + 1 outputs of the fft of a real input (the rest
  are their conjugates, X_{n−k} = conj(X_k)).
* ``irfft``: the input is read as the half spectrum X_0..X_{n//2} (trimmed or
  zero-padded to n//2 + 1 entries; n defaults to 2·(m − 1)); it is extended
  Hermitian-symmetrically, X_{n−k} = conj(X_k), and the real part of the
  inverse DFT is returned. So the real-valued function torch computes is
  x_m = s·Σ_k c_k·(Re X_k·cos θ_km − Im X_k·sin θ_km), θ_km = 2πkm/n,
  c_k = 1 for k = 0 and k = n/2 (n even) and 2 otherwise: Im X_0 and
  Im X_{n/2} do not contribute, and its gradient is exactly that function's.
* ``hfft``: the signal whose spectrum is Hermitian, i.e. ``irfft(conj(x))``
  with the forward transform's normalisation (numpy.fft.hfft's definition).
* ``ihfft``: the first n//2 + 1 outputs of the ifft of a real input
  (= conj(rfft(x))/n with "backward").

The n-dimensional transforms and the shifts are in ``fourier_nd.py``.
"""

from __future__ import annotations

import numpy as np
import sympy
import torch
from sympy import I, cos, im, pi, re, sin

from ._arrays import as_obj, unsupported
from ._table import register


def scale(n: int, norm, inverse: bool):
    """torch's normalisation of a transform of length ``n``: 1, 1/n or 1/√n."""
    norm = norm or "backward"
    if norm not in ("backward", "forward", "ortho"):
        raise unsupported(f"norm={norm!r}: torch.fft takes 'backward', 'forward' or 'ortho'")
    if norm == "ortho":
        return 1 / sympy.sqrt(n)
    return sympy.Rational(1, n) if (norm == "backward") == inverse else sympy.Integer(1)


def resized(a: np.ndarray, n: int) -> np.ndarray:
    """``a`` trimmed or zero-padded to ``n`` along its last axis."""
    if n <= a.shape[-1]:
        return a[..., :n]
    pad = np.full(a.shape[:-1] + (n - a.shape[-1],), sympy.Integer(0), dtype=object)
    return np.concatenate([a, pad], axis=-1)


def dft(x, n, dim: int, norm, inverse: bool) -> np.ndarray:
    """The (inverse) DFT of length ``n`` (None: the input's) along ``dim``."""
    a = np.moveaxis(as_obj(x), dim, -1)
    n = a.shape[-1] if n is None or n == -1 else int(n)
    a = resized(a, n)
    sign = 1 if inverse else -1
    roots = [sympy.exp(sign * 2 * pi * I * sympy.Rational(k, n)) for k in range(n)]   # roots[k·m mod n]
    factor = scale(n, norm, inverse)
    out = np.empty(a.shape, dtype=object)
    for idx in np.ndindex(*a.shape[:-1]):
        row = a[idx]
        for k in range(n):
            out[idx + (k,)] = factor * sympy.Add(*[roots[(k * m) % n] * row[m] for m in range(n)])
    return np.moveaxis(out, -1, dim)


def half(x, n, dim: int) -> np.ndarray:
    """The first n//2 + 1 entries along ``dim`` (a one-sided spectrum)."""
    out = np.moveaxis(as_obj(x), dim, -1)
    return np.moveaxis(out[..., : n // 2 + 1], -1, dim)


def c2r(x, n, dim: int, factor, conjugate: bool = False) -> np.ndarray:
    """``factor``·Re(Σ_k X_k·e^{2πikm/n}) of the Hermitian extension of the half spectrum ``x`` along ``dim``.

    ``conjugate`` reads conj(x) instead (hfft). ``n`` None: 2·(m − 1)."""
    a = np.moveaxis(as_obj(x), dim, -1)
    n = 2 * (a.shape[-1] - 1) if n is None or n == -1 else int(n)
    if n < 1:
        raise unsupported(f"an inverse real transform of output length {n}: give n >= 1 (torch refuses it too)")
    spectrum_half = resized(a, n // 2 + 1)
    sign = -1 if conjugate else 1                  # Im conj(X) = −Im X
    out = np.empty(a.shape[:-1] + (n,), dtype=object)
    for idx in np.ndindex(*a.shape[:-1]):
        row = spectrum_half[idx]
        for m in range(n):
            terms = []
            for k, x_k in enumerate(row):
                weight = 1 if k == 0 or 2 * k == n else 2          # X_k and X_{n−k} = conj(X_k) together
                theta = 2 * pi * sympy.Rational(k * m % n, n)
                terms.append(weight * (re(x_k) * cos(theta) - sign * im(x_k) * sin(theta)))
            out[idx + (m,)] = factor * sympy.Add(*terms)
    return np.moveaxis(out, -1, dim)


def length(x, n, dim: int) -> int:
    return np.shape(as_obj(x))[dim] if n is None or n == -1 else int(n)


@register("fft", torch=torch.fft.fft, doc="the DFT X_k = sum_m x_m exp(-2 pi i k m / n) along dim (norm, n as torch)")
def fft(input, n=None, dim=-1, norm=None):
    return dft(input, n, dim, norm, inverse=False)


@register("ifft", torch=torch.fft.ifft, doc="the inverse DFT (1/n) sum_k X_k exp(2 pi i k m / n) along dim")
def ifft(input, n=None, dim=-1, norm=None):
    return dft(input, n, dim, norm, inverse=True)


@register("rfft", torch=torch.fft.rfft, doc="the DFT of a real input, its first n//2 + 1 outputs")
def rfft(input, n=None, dim=-1, norm=None):
    return half(dft(input, n, dim, norm, inverse=False), length(input, n, dim), dim)


@register("irfft", torch=torch.fft.irfft, doc="the real inverse DFT of the Hermitian extension of a half spectrum "
          "(n = 2(m - 1) by default); Im X_0 and Im X_{n/2} do not contribute")
def irfft(input, n=None, dim=-1, norm=None):
    n = 2 * (np.shape(as_obj(input))[dim] - 1) if n is None or n == -1 else int(n)
    return c2r(input, n, dim, scale(n, norm, inverse=True))


@register("hfft", torch=torch.fft.hfft, doc="the real DFT of a Hermitian-symmetric signal given by its half: "
          "irfft(conj(x)) with the forward normalisation (n = 2(m - 1) by default)")
def hfft(input, n=None, dim=-1, norm=None):
    n = 2 * (np.shape(as_obj(input))[dim] - 1) if n is None or n == -1 else int(n)
    return c2r(input, n, dim, scale(n, norm, inverse=False), conjugate=True)


@register("ihfft", torch=torch.fft.ihfft, doc="the inverse DFT of a real input, its first n//2 + 1 outputs "
          "(conj(rfft(x))/n)")
def ihfft(input, n=None, dim=-1, norm=None):
    return half(dft(input, n, dim, norm, inverse=True), length(input, n, dim), dim)
