"""The n-dimensional torch.fft transforms and the shifts, composed from the one-dimensional DFTs (fourier.py).

The n-dimensional DFT is the one-dimensional DFT applied along each
transformed dim in turn (it is separable: exp(−2πi·Σ_d k_d m_d/n_d) is a
product over the dims; numpy.fft.fftn's definition), and torch's
normalisations are products over the dims (1/N = Π 1/n_d, 1/√N = Π 1/√n_d),
so every norm mode composes. ``s`` and ``dim`` follow torch: ``dim`` defaults
to every dim (the last len(s) when ``s`` is given; (−2, −1) for the *2
functions), ``s[i]`` pads or trims dim[i] (−1: unchanged). The real
transforms treat the last transformed dim as torch does:

* ``rfftn``: fftn, the last dim keeping its first s[-1]//2 + 1 outputs;
* ``irfftn``: the inverse DFT along dim[:-1], then ``irfft`` along dim[-1]
  (s[-1] defaults to 2·(m − 1));
* ``hfftn``: the DFT along dim[:-1], then ``hfft`` (conj, real inverse with
  the forward normalisation) along dim[-1];
* ``ihfftn``: ifftn of a real input, the last dim keeping s[-1]//2 + 1 outputs.

``fftshift``/``ifftshift`` roll each dim (all by default) by n//2 and −(n//2)
(numpy.fft.fftshift's definition): a permutation of the elements.
"""

from __future__ import annotations

import numpy as np
import torch

from ._arrays import as_obj, unsupported
from ._table import register
from .fourier import c2r, dft, half, scale


def _plan(x, s, dim, default_dim, real_last: bool = False):
    """torch's (dims, sizes) of an n-d transform; ``real_last``: s[-1] of a c2r defaults to 2·(m − 1)."""
    shape = np.shape(as_obj(x))
    ndim = len(shape)
    if dim is None:
        dim = list(range(ndim - len(s), ndim)) if s is not None else (default_dim or list(range(ndim)))
    dims = [dim] if isinstance(dim, int) else list(dim)
    dims = [d + ndim if d < 0 else d for d in dims]
    if not dims or any(not 0 <= d < ndim for d in dims) or len(set(dims)) != len(dims):
        raise unsupported(f"dim={dim!r} for an input of {ndim} dims: give distinct dims of the input")
    if s is not None and len(s) != len(dims):
        raise unsupported(f"s={tuple(s)!r} and dim={tuple(dims)!r} have different lengths, as torch refuses")
    sizes = [shape[d] if s is None or s[i] == -1 else int(s[i]) for i, d in enumerate(dims)]
    if real_last and (s is None or s[-1] == -1):
        sizes[-1] = 2 * (shape[dims[-1]] - 1)
    return dims, sizes


def _each(x, dims, sizes, norm, inverse: bool):
    out = as_obj(x)
    for d, n in zip(dims, sizes):
        out = dft(out, n, d, norm, inverse)
    return out


def _fftn(x, s, dim, norm, default=None):
    dims, sizes = _plan(x, s, dim, default)
    return _each(x, dims, sizes, norm, inverse=False)


def _ifftn(x, s, dim, norm, default=None):
    dims, sizes = _plan(x, s, dim, default)
    return _each(x, dims, sizes, norm, inverse=True)


def _rfftn(x, s, dim, norm, default=None):
    dims, sizes = _plan(x, s, dim, default)
    return half(_each(x, dims, sizes, norm, inverse=False), sizes[-1], dims[-1])


def _ihfftn(x, s, dim, norm, default=None):
    dims, sizes = _plan(x, s, dim, default)
    return half(_each(x, dims, sizes, norm, inverse=True), sizes[-1], dims[-1])


def _irfftn(x, s, dim, norm, default=None):
    dims, sizes = _plan(x, s, dim, default, real_last=True)
    out = _each(x, dims[:-1], sizes[:-1], norm, inverse=True)
    return c2r(out, sizes[-1], dims[-1], scale(sizes[-1], norm, inverse=True))


def _hfftn(x, s, dim, norm, default=None):
    dims, sizes = _plan(x, s, dim, default, real_last=True)
    out = _each(x, dims[:-1], sizes[:-1], norm, inverse=False)
    return c2r(out, sizes[-1], dims[-1], scale(sizes[-1], norm, inverse=False), conjugate=True)


TWO = (-2, -1)
_DOCS = {
    "fft": "the n-d DFT: the 1-d DFT along each dim (s, dim, norm as torch)",
    "ifft": "the n-d inverse DFT: the 1-d inverse DFT along each dim",
    "rfft": "the n-d DFT of a real input, the last dim keeping s[-1]//2 + 1 outputs",
    "irfft": "the real n-d inverse DFT: ifft along dim[:-1], then irfft (Hermitian extension) along dim[-1]",
    "hfft": "the real n-d DFT of a Hermitian signal: fft along dim[:-1], then hfft along dim[-1]",
    "ihfft": "the n-d inverse DFT of a real input, the last dim keeping s[-1]//2 + 1 outputs",
}
_CORES = {"fft": _fftn, "ifft": _ifftn, "rfft": _rfftn, "irfft": _irfftn, "hfft": _hfftn, "ihfft": _ihfftn}


def _register_nd(kind: str) -> None:
    core = _CORES[kind]

    def two(input, s=None, dim=TWO, norm=None):
        return core(input, s, dim, norm, default=list(TWO))

    def n_d(input, s=None, dim=None, norm=None):
        return core(input, s, dim, norm)

    register(f"{kind}2", torch=getattr(torch.fft, f"{kind}2"),
             doc=_DOCS[kind].replace("n-d", "2-d") + " over dims (-2, -1) by default")(two)
    register(f"{kind}n", torch=getattr(torch.fft, f"{kind}n"), doc=_DOCS[kind] + " over every dim by default")(n_d)


for _kind in _CORES:
    _register_nd(_kind)


def _shift(x, dim, sign: int):
    a = as_obj(x)
    dims = range(a.ndim) if dim is None else ([dim] if isinstance(dim, int) else list(dim))
    for d in dims:
        a = np.roll(a, sign * (a.shape[d] // 2), axis=d)
    return a


@register("fftshift", torch=torch.fft.fftshift, doc="the zero frequency moved to the centre: each dim (all by "
          "default) rolled by n//2")
def fftshift(input, dim=None):
    return _shift(input, dim, 1)


@register("ifftshift", torch=torch.fft.ifftshift, doc="the inverse of fftshift: each dim rolled by -(n//2)")
def ifftshift(input, dim=None):
    return _shift(input, dim, -1)
