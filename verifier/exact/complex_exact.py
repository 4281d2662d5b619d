"""The exact side of a complex case: each complex element is ``x + i·y`` over two real symbols (realified).

The case's expression is read over those elements with the mirror (complex
SymPy expressions over real symbols; ``COMPLEX_FORMS`` for the functions
whose real mirror assumes a real argument). PyTorch's backward of a complex
output ``y`` with weights ``v`` is the gradient of the real scalar

    L = Σ_j Re(conj(v_j)·y_j) = Σ_j (Re v_j·Re y_j + Im v_j·Im y_j),

and for a complex input ``z = x + i·y`` torch's ``z.grad`` is
``∂L/∂x + i·∂L/∂y`` (= 2·∂L/∂z̄, the conjugate Wirtinger derivative;
docs/complex.md). A real input's gradient is ``∂L/∂x``. Each partial
derivative ``∂y_j/∂x_k`` is a SymPy derivative by a real symbol, evaluated
at the point in 40 digits, so

    z.grad_k = Σ_j Re(conj(v_j)·∂y_j/∂x_k) + i·Σ_j Re(conj(v_j)·∂y_j/∂y_k).

Holomorphic functions are checked a second way: where every ∂y_j/∂z̄_k =
(∂y_j/∂x_k + i·∂y_j/∂y_k)/2 vanishes at the point (Cauchy–Riemann), the
gradient must also equal Σ_j v_j·conj(∂y_j/∂z_k) with ∂/∂z = (∂/∂x −
i·∂/∂y)/2; the two routes must agree (``route_gap``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import mpmath
import numpy as np
import sympy as sp
from sympy.core.parameters import distribute

from ..cases.case import Case
from ..errors import CaseError, RefusedCall, SymbolicError
from . import mirror
from .mirror._arrays import sym_number
from .mirror.complex_numbers import COMPLEX_FORMS
from .symbolic import ExactResult, SymbolicReading, as_object_array, element_symbols

#: (output element, real input parameter) pairs, the output reading the parameter, above which a complex case is
#: refused: each is a 40-digit SymPy derivative (a pair whose output does not read the parameter is an exact 0)
MAX_PAIRS = 20_000
DIGITS = 40


class ComplexReading(SymbolicReading):
    """The symbolic reading with the complex definitions of ``sgn`` and ``angle``."""

    def call(self, name: str, args: list, kwargs: dict) -> Any:
        fn = mirror.resolve(name)
        form = COMPLEX_FORMS.get(fn.canonical or fn.name) or COMPLEX_FORMS.get(fn.name.split(".")[-1])
        if form is not None:
            return form(*args, **kwargs)
        return super().call(name, args, kwargs)


@dataclass
class ComplexModel:
    """A complex case's output over real symbols: per input its real-part and imaginary-part symbols."""

    re: dict[str, np.ndarray]
    im: dict[str, np.ndarray]                # only the complex inputs
    output: np.ndarray                       # object array of (complex) SymPy expressions
    wrt: tuple[str, ...]


def build_complex(case: Case, complex_inputs: set[str], structural: Mapping[str, np.ndarray]) -> ComplexModel:
    """Read the case's symbolic expression over ``x + i·y`` elements (real symbols for real inputs)."""
    re_syms, im_syms, variables = {}, {}, {}
    for spec in case.inputs:
        if spec.dtype is not None:
            variables[spec.name] = structural[spec.name]
            continue
        shape = np.shape(spec.values()) if spec.value is not None else tuple(spec.shape)
        if spec.name in complex_inputs:
            re_syms[spec.name] = element_symbols(f"re({spec.name})", shape)
            im_syms[spec.name] = element_symbols(f"im({spec.name})", shape)
            variables[spec.name] = re_syms[spec.name] + sp.I * im_syms[spec.name] if shape else \
                as_object_array(re_syms[spec.name][()] + sp.I * im_syms[spec.name][()])
        else:
            re_syms[spec.name] = variables[spec.name] = element_symbols(spec.name, shape)
    fn = case.sympy_fn
    try:
        with distribute(False):
            if callable(fn) and not hasattr(fn, "evaluate"):    # a Python function of the element arrays
                result = fn(*[variables[spec.name] for spec in case.inputs])
            else:
                result = fn.evaluate(ComplexReading(variables))
    except CaseError:
        raise
    except Exception as exc:
        raise SymbolicError(f"the symbolic side failed on complex elements: {type(exc).__name__}: {exc}",
                            hint="Check that every function of the case is listed for complex inputs in "
                                 "docs/complex.md.") from None
    output = as_object_array(result)
    wrt = tuple(spec.name for spec in case.inputs if spec.differentiated)
    parts = {s for n in wrt for syms in (re_syms[n], im_syms.get(n)) if syms is not None for s in syms.ravel()}
    pairs = sum(len(y.free_symbols & parts) for y in output.ravel() if isinstance(y, sp.Basic))
    if pairs > MAX_PAIRS:
        raise RefusedCall(f"not supported on the complex route: {pairs} derivatives (output, input part read "
                              f"by it), over its limit of {MAX_PAIRS}", hint="Use smaller inputs for complex cases.")
    return ComplexModel(re_syms, im_syms, output, wrt)


def _mpc(value: sp.Expr) -> mpmath.mpc:
    """A SymPy number as an mpmath complex (40 digits)."""
    value = sp.N(value, DIGITS)
    real, imag = value.as_real_imag()
    if not (real.is_number and imag.is_number):
        raise SymbolicError(f"an exact value did not evaluate to a number: {value}",
                            hint="A function of the case has no complex definition here; see docs/complex.md.")
    return mpmath.mpc(mpmath.mpf(sp.Float(real, DIGITS)._mpf_), mpmath.mpf(sp.Float(imag, DIGITS)._mpf_))


def _exact_number(x: complex | float) -> sp.Expr:
    return sp.Rational(float(np.real(x)))


def exact_complex(model: ComplexModel, point: Mapping[str, np.ndarray], weights: np.ndarray | None) -> ExactResult:
    """Torch's ``z.grad`` convention, exactly, at ``point`` for weights ``v`` (None: ``y.backward()``, v = 1).

    ``magnitude`` (the allowance's M, compare.py) is Σ_j |v_j|·(|∂y_j/∂x_k| + |∂y_j/∂y_k|): the sizes of
    the terms that flow into element k, so a cancelling sum is judged against its terms.
    """
    subs = {}
    for name, syms in model.re.items():
        values = np.asarray(point[name])
        for idx in np.ndindex(*syms.shape):
            subs[syms[idx]] = _exact_number(np.real(values[idx]))
            if name in model.im:
                subs[model.im[name][idx]] = sp.Rational(float(np.imag(values[idx])))
    with mpmath.workdps(DIGITS):
        flat = model.output.ravel()
        out = np.array([complex(_mpc(sym_number(y).xreplace(subs))) for y in flat]).reshape(model.output.shape)
        v = np.ones(flat.shape) if weights is None else np.asarray(weights).ravel()
        vmp = [mpmath.mpc(complex(w)) for w in v]
        grads, mags, dzbar_max, gap = {}, {}, 0.0, 0.0
        # an output without a part among its symbols has the exact derivative 0 there: skipped, not differentiated
        # (a DFT along one dim of a 5 x 6 x 7 tensor reads 6 of the 210 elements per output)
        exprs = [sym_number(y) for y in flat]
        reads = [y.free_symbols for y in exprs]
        for name in model.wrt:
            re_syms = model.re[name]
            g = np.zeros(re_syms.shape, dtype=np.complex128)
            m = np.zeros(re_syms.shape)
            for idx in np.ndindex(*re_syms.shape):
                parts = [re_syms[idx]] + ([model.im[name][idx]] if name in model.im else [])
                gx, gy, gh, mag = mpmath.mpf(0), mpmath.mpf(0), mpmath.mpc(0), mpmath.mpf(0)
                for j, y in enumerate(exprs):
                    if not any(p in reads[j] for p in parts):
                        continue
                    dx = _mpc(sp.diff(y, parts[0]).xreplace(subs))
                    dy = _mpc(sp.diff(y, parts[1]).xreplace(subs)) if len(parts) == 2 else mpmath.mpc(0)
                    gx += (mpmath.conj(vmp[j]) * dx).real
                    gy += (mpmath.conj(vmp[j]) * dy).real
                    mag += abs(vmp[j]) * (abs(dx) + abs(dy))
                    if len(parts) == 2:
                        dzbar_max = max(dzbar_max, float(abs((dx + 1j * dy) / 2)))
                        gh += vmp[j] * mpmath.conj((dx - 1j * dy) / 2)
                g[idx] = complex(gx, gy) if len(parts) == 2 else complex(gx, 0.0)
                if len(parts) == 2:          # the two routes compared in 40 digits, before rounding to float64
                    gap = max(gap, float(abs(mpmath.mpc(gx, gy) - gh)))
                m[idx] = float(mag)
            grads[name], mags[name] = (g if name in model.im else g.real.copy()), m
    complex_wrt = [n for n in model.wrt if n in model.im]
    scale = max([1.0] + [float(np.max(mags[n])) for n in complex_wrt if mags[n].size])
    holomorphic = bool(complex_wrt) and dzbar_max <= 1e-30 * scale
    route = "complex: ∂L/∂x + i·∂L/∂y (realified, 40 digits)"
    if holomorphic:
        route += "; holomorphic (∂f/∂z̄ = 0): also Σ v·conj(∂f/∂z)"
    result = ExactResult(out, grads, route, route_gap=gap if holomorphic else None, may_kink=False, magnitude=mags,
                         output_magnitude=np.abs(out))
    result.holomorphic = holomorphic        # read by the report's note (run/complex_run.py)
    return result
