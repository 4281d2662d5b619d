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


#: torch.fft calls checked against the mirror on inputs that are NOT Hermitian-consistent (random complex
#: half spectra), so the real functions irfft*/hfft* compute off the Hermitian subspace are pinned down too.
FFT_CALLS = [
    *[(name, True, (3, 4), kw) for name in ("fft", "ifft", "hfft", "irfft")
      for kw in ({}, {"n": 5, "norm": "ortho"}, {"n": 4, "dim": 0, "norm": "forward"}, {"n": 2})],
    *[(name, False, (3, 4), kw) for name in ("rfft", "ihfft")
      for kw in ({}, {"n": 5, "norm": "ortho"}, {"n": 3, "dim": 0, "norm": "forward"})],
    *[(kind + "2", kind not in ("rfft", "ihfft"), (2, 3, 4), kw)
      for kind in ("fft", "ifft", "hfft", "irfft", "rfft", "ihfft")
      for kw in ({}, {"s": (2, 5), "norm": "ortho"}, {"dim": (0, 2), "norm": "forward"})],
    *[(kind + "n", kind not in ("rfft", "ihfft"), (2, 3, 4), kw)
      for kind in ("fft", "ifft", "hfft", "irfft", "rfft", "ihfft")
      for kw in ({}, {"s": (3,)}, {"s": (2, -1), "dim": (0, 1), "norm": "ortho"}, {"dim": 1}, {"dim": (2, 0)})],
    *[(name, cplx, (3, 5), kw) for name in ("fftshift", "ifftshift") for cplx in (True, False)
      for kw in ({}, {"dim": 0}, {"dim": (1,)})],
]


@pytest.mark.parametrize("name, is_complex, shape, kwargs", FFT_CALLS,
                         ids=[f"{c[0]}-{'c' if c[1] else 'r'}-{i}" for i, c in enumerate(FFT_CALLS)])
def test_every_torch_fft_mirror_matches_torch_off_the_hermitian_subspace(name, is_complex, shape, kwargs):
    rng = np.random.default_rng(7)
    values = rng.normal(size=shape) + (1j * rng.normal(size=shape) if is_complex else 0)
    x, subs = symbolic_complex(values) if is_complex else symbolic_real(values, "x")
    entry = mirror.resolve(f"torch.fft.{name}")
    ref = entry.call_torch(torch.tensor(values), **kwargs).resolve_conj().numpy()
    out = numbers(entry.sym(x, **kwargs), subs)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)


def test_a_wrong_fft_argument_is_a_clear_error():
    x, _ = symbolic_real(R, "x")
    with pytest.raises(Exception, match="norm='sideways'.*'backward', 'forward' or 'ortho'"):
        mirror.resolve("torch.fft.fft").sym(x, norm="sideways")
    with pytest.raises(Exception, match="s=.*different lengths"):
        mirror.resolve("torch.fft.fftn").sym(x, s=(2, 2), dim=(0,))
    with pytest.raises(Exception, match="give n >= 1"):
        mirror.resolve("torch.fft.irfft").sym(x[:1])
