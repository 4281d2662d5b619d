"""The complex mirrors against torch on complex samples (test_mirror.py samples real inputs only)."""

from __future__ import annotations

import numpy as np
import pytest
import sympy
import torch

from verifier.exact import mirror
from verifier.exact.complex_exact import ComplexReading
from verifier.exact.symbolic import element_symbols

Z = np.array([1 + 2j, -0.5 + 0.25j, 3 - 1j, 0.2 - 0.7j])
R = np.array([0.5, 1.5, 2.0, 0.75])
T = np.array([-2.5, 0.3, 1.7, 3.0])


def symbolic_complex(values):
    """Object array x + i·y over real symbols, and the substitution giving ``values``."""
    re, im = element_symbols("a", values.shape), element_symbols("b", values.shape)
    subs = {s: sympy.Float(v, 30) for s, v in zip(re.ravel(), values.real.ravel())}
    subs.update({s: sympy.Float(v, 30) for s, v in zip(im.ravel(), values.imag.ravel())})
    return re + sympy.I * im, subs


def symbolic_real(values, name):
    syms = element_symbols(name, values.shape)
    return syms, {s: sympy.Float(v, 30) for s, v in zip(syms.ravel(), values.ravel())}


def numbers(out, subs):
    return np.array([complex(sympy.N(e.xreplace(subs), 30)) for e in np.ravel(out)]).reshape(np.shape(out))


@pytest.mark.parametrize("name", ["real", "imag", "conj", "conj_physical", "abs", "exp", "log", "sqrt", "sin",
                                  "tanh", "reciprocal", "view_as_real", "sgn", "angle"])
def test_a_complex_mirror_matches_torch(name):
    z, subs = symbolic_complex(Z)
    out = ComplexReading({}).call(name, [z], {})
    ref = mirror.resolve(name).call_torch(torch.tensor(Z)).resolve_conj().numpy()
    np.testing.assert_allclose(numbers(out, subs), ref, rtol=1e-13, atol=1e-15)


def test_polar_complex_and_view_as_complex_match_torch():
    r, subs = symbolic_real(R, "r")
    t, subs_t = symbolic_real(T, "t")
    subs.update(subs_t)
    for name, ref in (("polar", torch.polar(torch.tensor(R), torch.tensor(T))),
                      ("complex", torch.complex(torch.tensor(R), torch.tensor(T)))):
        out = mirror.resolve(name).sym(r, t)
        np.testing.assert_allclose(numbers(out, subs), ref.numpy(), rtol=1e-13)
    pairs = np.stack([R, T], axis=-1)
    x, subs_x = symbolic_real(pairs, "x")
    out = mirror.resolve("view_as_complex").sym(x)
    np.testing.assert_allclose(numbers(out, subs_x), torch.view_as_complex(torch.tensor(pairs)).numpy(), rtol=1e-13)


def test_complex_constants_keep_their_parts():
    out = mirror.resolve("complex").sym(2, -1)
    assert complex(out[()]) == 2 - 1j
    assert mirror.resolve("complex").call_torch(2, -1).item() == 2 - 1j


def test_sgn_and_angle_keep_their_real_definitions_on_the_real_route():
    x, subs = symbolic_real(np.array([-2.0, 3.0]), "x")
    assert numbers(mirror.resolve("angle").sym(x), subs).real.tolist() == pytest.approx([np.pi, 0.0])
    assert numbers(mirror.resolve("sgn").sym(x), subs).real.tolist() == [-1.0, 1.0]


@pytest.mark.parametrize("name, kwargs", [("fft", {}), ("ifft", {"norm": "ortho"}), ("fft", {"n": 6}),
                                          ("ifft", {"n": 3, "norm": "forward"}), ("irfft", {}), ("irfft", {"n": 7}),
                                          ("fft2", {}), ("fft2", {"norm": "ortho"})])
def test_the_dft_mirrors_match_torch_fft(name, kwargs):
    values = np.vstack([Z, Z[::-1] * 1j])
    z, subs = symbolic_complex(values)
    out = mirror.resolve(name).sym(z, **kwargs)
    ref = mirror.resolve(name).call_torch(torch.tensor(values), **kwargs).numpy()
    np.testing.assert_allclose(numbers(out, subs), ref, rtol=1e-12, atol=1e-13)


def test_rfft_of_a_real_signal_matches_torch():
    x, subs = symbolic_real(T, "x")
    np.testing.assert_allclose(numbers(mirror.resolve("rfft").sym(x, norm="ortho"), subs),
                               torch.fft.rfft(torch.tensor(T), norm="ortho").numpy(), rtol=1e-12, atol=1e-13)
