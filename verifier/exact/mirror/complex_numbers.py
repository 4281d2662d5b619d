"""Complex-number mirrors: parts, conjugate, polar form, views (docs/complex.md).

On the complex route (:mod:`verifier.exact.complex_exact`) every complex
element is ``x + i·y`` over two real symbols, so these definitions are plain
SymPy on complex expressions: ``re``, ``im`` and ``conjugate`` of an
expression over real symbols simplify to real expressions. On a real input
they are what torch does there too (``real(x) = x``, ``conj(x) = x``).

``COMPLEX_FORMS`` holds the complex definitions of functions whose real
mirror is written for real arguments only (``sgn``: sign(x); ``angle``: 0 or
pi): the complex route reads those instead.
"""

from __future__ import annotations

import numpy as np
import sympy
import torch
from sympy import I, atan2, conjugate, cos, im, re, sin

from ._arrays import as_obj, emap
from ._table import register


def _elementwise(name, torch_fn, doc, *, analytic=False):
    return register(name, torch=torch_fn, doc=doc, elementwise=True, analytic=analytic)


@_elementwise("real", torch.real, "Re z (x for a real x); also the property z.real")
def real(input):
    return emap(re, input)


@_elementwise("imag", torch.imag, "Im z (torch refuses it for real tensors); also the property z.imag")
def imag(input):
    return emap(im, input)


def conj(input):
    return emap(conjugate, input)


_elementwise("conj", torch.conj, "the conjugate Re z - i·Im z (x for a real x)")(conj)
_elementwise("conj_physical", torch.conj_physical, "the conjugate Re z - i·Im z, materialised")(conj)


@_elementwise("polar", torch.polar, "abs·(cos(angle) + i·sin(angle)), from two real tensors")
def polar(abs, angle):
    return emap(lambda r, t: r * cos(t) + I * r * sin(t), abs, angle)


def _numbers_as_tensors(args, kwargs):
    """complex(2, -1) with plain numbers is a constant: float64 0-d tensors (they never widen a tensor's dtype)."""
    wrap = lambda a: torch.tensor(float(a), dtype=torch.float64) if isinstance(a, (int, float)) else a  # noqa: E731
    return tuple(wrap(a) for a in args), {k: wrap(v) for k, v in kwargs.items()}


@register("complex", torch=torch.complex, doc="real + i·imag, from two real tensors (or numbers: a constant)",
          elementwise=True, prepare=_numbers_as_tensors)
def complex_(real, imag):
    return emap(lambda a, b: a + I * b, real, imag)


@register("view_as_real", torch=torch.view_as_real, doc="a complex tensor as real pairs: out[..., 0] = Re, "
          "out[..., 1] = Im (a new last dimension of size 2)")
def view_as_real(input):
    z = as_obj(input)
    out = np.empty(z.shape + (2,), dtype=object)
    out[..., 0] = emap(re, z)
    out[..., 1] = emap(im, z)
    return out


@register("view_as_complex", torch=torch.view_as_complex, doc="real pairs (last dimension 2) as complex "
          "numbers: out = x[..., 0] + i·x[..., 1]")
def view_as_complex(input):
    x = as_obj(input)
    if x.ndim == 0 or x.shape[-1] != 2:
        raise ValueError("view_as_complex needs a last dimension of size 2")
    return emap(lambda a, b: a + I * b, x[..., 0], x[..., 1])


def _sgn(input):
    """z / |z| (0 at 0), torch.sgn of a complex tensor."""
    return emap(lambda z: sympy.Integer(0) if z == 0 else z / sympy.Abs(z), input)


def _angle(input):
    """atan2(Im z, Re z) in (-pi, pi], torch.angle of a complex tensor."""
    return emap(lambda z: atan2(im(z), re(z)), input)


#: The complex route's definitions of functions whose real mirror assumes a real argument.
COMPLEX_FORMS = {"sgn": _sgn, "angle": _angle}
