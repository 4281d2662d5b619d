"""Tests of the symbolic mirror table against torch (float64) and torch autograd.

Every registered function has a sample call below. The sample's float arrays
become fresh real Symbols on the symbolic side and float64 tensors on the
torch side; the symbolic result, with the values substituted, must match torch
to 1e-10 relative.
"""

from __future__ import annotations

import zlib
from fractions import Fraction

import numpy as np
import pytest
import sympy
import torch
from mirror_samples_more import more_samples, nn2_samples, pieces_samples  # noqa: I001  (tests/ is on sys.path, as for corpus)
from mirror_samples_nn import breadth_samples, nn_samples  # noqa: I001

from verifier.errors import ExpressionError, UnknownFunctionError
from verifier.exact.mirror import ALIASES, FUNCTIONS, Function, resolve
from verifier.exact.mirror.decompositions import GAUGED
from verifier.exact.mirror.decompositions import NUMERIC_ONLY as _DECOMPOSITIONS
from verifier.exact.mirror.lu import NUMERIC_ONLY as _LU

NUMERIC_ONLY = _DECOMPOSITIONS | _LU
#: complex outputs whose order (and eigenvectors' phases) are gauges: compared through invariants
EIG_INVARIANT = {
    "eigvals": lambda v: np.array(sorted(v, key=lambda z: (round(z.real, 8), z.imag))),
    "eig": lambda v: (np.abs(v) ** 4).sum(axis=1),      # per row, symmetric in the columns, phase-free
}

RTOL = 1e-10


# --- sample descriptions ---------------------------------------------------


class Num:
    """A float literal: an exact decimal Rational on the symbolic side (as the language passes it)."""

    def __init__(self, value: float):
        self.value = value


class Ints:
    """An integer or bool array (indices, masks): numpy on the symbolic side, a tensor on torch's."""

    def __init__(self, array):
        self.array = np.asarray(array)


class Gen:
    """Seeded input generator for one sample."""

    def __init__(self, name: str):
        self.rng = np.random.default_rng(zlib.crc32(name.encode()))
        self.domain = FUNCTIONS[name].domain if name in FUNCTIONS else None

    def x(self, *shape, lo=-2.0, hi=2.0):
        return self.rng.uniform(lo, hi, size=shape)

    def dom(self, *shape):
        """Values inside the function's domain (clipped to [-2, 2], away from its ends)."""
        lo, hi = self.domain or (-2.0, 2.0)
        lo, hi = max(lo, -2.0), min(hi, 2.0)
        pad = 0.1 * (hi - lo)
        return self.x(*shape, lo=lo + pad, hi=hi - pad)

    def pos(self, *shape):
        return self.x(*shape, lo=0.2, hi=2.0)

    def prob(self, *shape):
        return self.x(*shape, lo=0.1, hi=0.9)

    def well(self, n, batch=()):
        """Well-conditioned square matrices."""
        return self.x(*batch, n, n) + 4 * np.eye(n)

    def spd(self, n):
        b = self.x(n, n)
        return b @ b.T + n * np.eye(n)

    def ints(self, high, *shape):
        return Ints(self.rng.integers(0, high, size=shape))

    def mask(self, *shape):
        return Ints(self.rng.random(shape) < 0.5)


def call(*args, **kwargs):
    return list(args), kwargs


def _unary(g):
    return call(g.dom(3, 4))


SAMPLES = {
    "logit": lambda g: call(g.dom(5)),
    "softplus": lambda g: call(g.x(5), beta=2),
    "gelu": lambda g: call(g.x(6), approximate="tanh"),
    "elu": lambda g: call(g.x(6), alpha=Num(0.7)),
    "celu": lambda g: call(g.x(6), alpha=Num(1.5)),
    "leaky_relu": lambda g: call(g.x(6), Num(0.2)),
    "hardtanh": lambda g: call(g.x(6), min_val=Num(-0.5), max_val=1),
    "clamp": lambda g: call(g.x(3, 4), min=Num(-0.5), max=Num(0.75)),
    "pow": lambda g: call(g.dom(3, 4), g.x(4)),
    "atan2": lambda g: call(g.x(3, 4), g.x(3, 4)),
    "maximum": lambda g: call(g.x(3, 4), g.x(4)),
    "minimum": lambda g: call(g.x(3, 1), g.x(4)),
    "where": lambda g: call(g.mask(3, 4), g.x(3, 4), g.x(4)),
    "masked_fill": lambda g: call(g.x(3, 4), g.mask(3, 4), Num(-1.5)),
    "add": lambda g: call(g.x(3, 4), g.x(4), alpha=2),
    "sub": lambda g: call(g.x(3, 4), g.x(3, 4), alpha=Num(0.5)),
    "mul": lambda g: call(g.x(3, 4), g.x(3, 4)),
    "div": lambda g: call(g.x(3, 4), g.pos(3, 4)),
    "add_": lambda g: call(g.x(3, 4), g.x(4), alpha=2),
    "sub_": lambda g: call(g.x(3, 4), g.x(3, 4), alpha=Num(0.5)),
    "mul_": lambda g: call(g.x(3, 4), g.x(3, 4)),
    "div_": lambda g: call(g.x(3, 4), g.pos(3, 4)),
    "logaddexp": lambda g: call(g.x(3, 4), g.x(3, 4)),
    "xlogy": lambda g: call(g.x(3, 4), g.pos(3, 4)),
    "sum": lambda g: call(g.x(2, 3, 4), (0, 2), keepdim=True),
    "mean": lambda g: call(g.x(3, 4), 1),
    "prod": lambda g: call(g.x(3, 4), 0),
    "var": lambda g: call(g.x(3, 4), 1),
    "std": lambda g: call(g.x(3, 4), dim=0, correction=0, keepdim=True),
    "vector_norm": lambda g: call(g.x(3, 4), 3, dim=1),
    "matrix_norm": lambda g: call(g.x(2, 3, 4)),
    "norm": lambda g: call(g.x(3, 4), 2, 1),
    "logsumexp": lambda g: call(g.x(3, 4), 1),
    "cumsum": lambda g: call(g.x(3, 4), 1),
    "cumprod": lambda g: call(g.x(3, 4), 0),
    "amax": lambda g: call(g.x(3, 4), 1),
    "amin": lambda g: call(g.x(3, 4), (0, 1)),
    "max": lambda g: call(g.x(3, 4), 1, True),
    "min": lambda g: call(g.x(3, 4)),
    "reshape": lambda g: call(g.x(3, 4), 2, -1),
    "view": lambda g: call(g.x(3, 4), (6, 2)),
    "view_as": lambda g: call(g.x(3, 4), g.x(2, 6)),
    "reshape_as": lambda g: call(g.x(3, 4), g.x(12)),
    "flatten": lambda g: call(g.x(2, 3, 4), 1),
    "squeeze": lambda g: call(g.x(3, 1, 4, 1), (1, 2)),
    "unsqueeze": lambda g: call(g.x(3, 4), -1),
    "transpose": lambda g: call(g.x(2, 3, 4), 0, -1),
    "t": lambda g: call(g.x(3, 4)),
    "permute": lambda g: call(g.x(2, 3, 4), 2, 0, 1),
    "movedim": lambda g: call(g.x(2, 3, 4), 0, -1),
    "cat": lambda g: call([g.x(2, 3), g.x(1, 3)], dim=0),
    "stack": lambda g: call([g.x(2, 3), g.x(2, 3)], 1),
    "expand": lambda g: call(g.x(3, 1), 2, -1, 4),
    "expand_as": lambda g: call(g.x(1, 4), g.x(3, 4)),
    "broadcast_to": lambda g: call(g.x(4), (3, 4)),
    "repeat": lambda g: call(g.x(2, 3), 2, 1, 2),
    "flip": lambda g: call(g.x(3, 4), (0, 1)),
    "roll": lambda g: call(g.x(3, 4), 1, 1),
    "gather": lambda g: call(g.x(3, 4), 1, g.ints(4, 3, 2)),
    "index_select": lambda g: call(g.x(3, 4), 1, Ints([3, 0, 0])),
    "narrow": lambda g: call(g.x(3, 4), 1, 1, 2),
    "select": lambda g: call(g.x(3, 4), 0, -1),
    "diag": lambda g: call(g.x(3), 1),
    "diagonal": lambda g: call(g.x(2, 3, 3), 0, 1, 2),
    "tril": lambda g: call(g.x(3, 4), -1),
    "triu": lambda g: call(g.x(2, 3, 3), 1),
    "contiguous": lambda g: call(g.x(3, 4)),
    "clone": lambda g: call(g.x(3, 4)),
    "matmul": lambda g: call(g.x(2, 3, 4), g.x(4, 2)),
    "mm": lambda g: call(g.x(3, 4), g.x(4, 2)),
    "bmm": lambda g: call(g.x(2, 3, 4), g.x(2, 4, 2)),
    "mv": lambda g: call(g.x(3, 4), g.x(4)),
    "dot": lambda g: call(g.x(4), g.x(4)),
    "outer": lambda g: call(g.x(3), g.x(4)),
    "inner": lambda g: call(g.x(2, 4), g.x(3, 4)),
    "kron": lambda g: call(g.x(2, 2), g.x(2, 3)),
    "cross": lambda g: call(g.x(2, 3), g.x(2, 3)),
    "einsum": lambda g: call("bij,bjk->bik", g.x(2, 2, 3), g.x(2, 3, 2)),
    "trace": lambda g: call(g.x(3, 3)),
    "det": lambda g: call(g.well(3, (2,))),
    "logdet": lambda g: call(g.spd(3)),
    "inv": lambda g: call(g.well(3)),
    "solve": lambda g: call(g.well(3, (2,)), g.x(2, 3, 2)),
    "solve_triangular": lambda g: call(g.well(3), g.x(3, 2), upper=True),
    "cholesky": lambda g: call(g.spd(3)),
    "eigvalsh": lambda g: call(g.spd(2)),
    # the numeric-exact route's decompositions (mirror/decompositions.py) run on numbers
    "eigh": lambda g: call(g.spd(3)),
    "svd": lambda g: call(g.x(4, 3), full_matrices=False),
    "svdvals": lambda g: call(g.x(4, 3)),
    "qr": lambda g: call(g.x(4, 3)),
    "matrix_exp": lambda g: call(g.x(3, 3)),
    "eig": lambda g: call(g.x(3, 3)),
    "eigvals": lambda g: call(g.x(3, 3)),
    "lu": lambda g: call(g.x(3, 3)),
    "lu_factor": lambda g: call(g.x(4, 3)),
    "lu_factor_ex": lambda g: call(g.x(3, 4)),
    "softmax": lambda g: call(g.x(3, 4), dim=1),
    "log_softmax": lambda g: call(g.x(3, 4), 0),
    "softmin": lambda g: call(g.x(3, 4), dim=1),
    "nll_loss": lambda g: call(g.x(4, 3), g.ints(3, 4)),
    "cross_entropy": lambda g: call(g.x(4, 3), g.ints(3, 4)),
    "mse_loss": lambda g: call(g.x(3, 4), g.x(3, 4)),
    "l1_loss": lambda g: call(g.x(3, 4), g.x(3, 4), reduction="sum"),
    "smooth_l1_loss": lambda g: call(g.x(3, 4), g.x(3, 4), beta=Num(0.5)),
    "huber_loss": lambda g: call(g.x(3, 4), g.x(3, 4), delta=Num(0.8)),
    "binary_cross_entropy": lambda g: call(g.prob(3, 4), g.prob(3, 4)),
    "binary_cross_entropy_with_logits": lambda g: call(g.x(3, 4), g.prob(3, 4)),
    "kl_div": lambda g: call(g.x(3, 4, lo=-3, hi=-0.1), g.prob(3, 4), reduction="batchmean"),
    "cosine_similarity": lambda g: call(g.x(3, 4), g.x(3, 4)),
    "normalize": lambda g: call(g.x(3, 4)),
    "layer_norm": lambda g: call(g.x(2, 3, 4), (3, 4), g.x(3, 4), g.x(3, 4)),
    "linear": lambda g: call(g.x(2, 4), g.x(3, 4), g.x(3)),
}
SAMPLES.update(nn_samples(call, Num, Ints))
SAMPLES.update(breadth_samples(call, Num, Ints))
SAMPLES.update(more_samples(call, Num, Ints))
SAMPLES.update(nn2_samples(call, Num, Ints))
SAMPLES.update(pieces_samples(call, Num, Ints))


def sample(name):
    return SAMPLES.get(name, _unary)(Gen(name))


# --- evaluating a sample on both sides --------------------------------------


class Bound:
    """A sample turned into symbolic and torch arguments, remembering the symbol values."""

    def __init__(self, args, kwargs, dtype=torch.float64):
        self.values = {}
        self.leaves = []  # (symbol array, tensor) per float input, in order
        self.dtype = dtype
        self.sym_args = [self._sym(a) for a in args]
        self.sym_kwargs = {k: self._sym(v) for k, v in kwargs.items()}
        it = iter(self.leaves)
        self.torch_args = [self._torch(a, it) for a in args]
        self.torch_kwargs = {k: self._torch(v, it) for k, v in kwargs.items()}

    def _sym(self, a):
        if isinstance(a, np.ndarray):
            syms = np.empty(a.shape, dtype=object)
            for idx, v in np.ndenumerate(a):
                s = sympy.Symbol(f"v{len(self.values)}", real=True)
                syms[idx] = s
                self.values[s] = sympy.Float(float(v), 30)
            self.leaves.append([syms, None, a])
            return syms
        if isinstance(a, Num):
            f = Fraction(repr(a.value))
            return sympy.Rational(f.numerator, f.denominator)
        if isinstance(a, Ints):
            return a.array
        if isinstance(a, (list, tuple)):
            return type(a)(self._sym(p) for p in a)
        return a

    def _torch(self, a, leaves):
        if isinstance(a, np.ndarray):
            leaf = next(leaves)
            # only the first input is differentiated (torch refuses grads for loss weights)
            first = leaf is self.leaves[0]
            leaf[1] = torch.tensor(a, dtype=self.dtype,
                                   requires_grad=first and not self.dtype.is_complex)
            return leaf[1]
        if isinstance(a, Num):
            return a.value
        if isinstance(a, Ints):
            return torch.tensor(a.array)
        if isinstance(a, (list, tuple)):
            return type(a)(self._torch(p, leaves) for p in a)
        return a

    def numeric(self, expr) -> float:
        return float(expr.xreplace(self.values).evalf(30))


def evaluate(fn: Function, args, kwargs):
    """Return (symbolic result evaluated numerically, torch float64 result, bound sample)."""
    b = Bound(args, kwargs)
    name = fn.canonical or fn.name
    if name in NUMERIC_ONLY:           # no closed form: the mirror takes the numbers (at 30 digits)
        out = fn.sym(*[_numbers(a, b.values) for a in b.sym_args],
                     **{k: _numbers(v, b.values) for k, v in b.sym_kwargs.items()})
    else:
        out = fn.sym(*b.sym_args, **b.sym_kwargs)
    assert isinstance(out, np.ndarray) and out.dtype == object
    assert all(isinstance(e, sympy.Basic) for e in out.flat)
    if name in EIG_INVARIANT:
        sym_c = np.vectorize(lambda e: complex(e.xreplace(b.values).evalf(30)), otypes=[complex])(out)
        ref = fn.call_torch(*b.torch_args, **b.torch_kwargs)
        return EIG_INVARIANT[name](sym_c), EIG_INVARIANT[name](ref.detach().numpy()), b, out, ref
    sym_vals = np.vectorize(b.numeric, otypes=[float])(out) if out.size else np.zeros(out.shape)
    torch_args = list(b.torch_args)
    if fn.name.endswith("_"):   # in-place methods modify an intermediate result, never a leaf
        torch_args[0] = torch_args[0] * 1
    ref = fn.call_torch(*torch_args, **b.torch_kwargs)
    if name in GAUGED:                 # column signs are a gauge: compare |Q| (docs/numeric-exact.md)
        return np.abs(sym_vals), ref.detach().abs().numpy(), b, out, ref
    return sym_vals, ref.detach().numpy(), b, out, ref


def _numbers(a, values):
    if isinstance(a, np.ndarray) and a.dtype == object:
        return np.vectorize(lambda e: e.xreplace(values), otypes=[object])(a)
    return a


def mismatch(sym_vals, torch_vals, rtol=RTOL) -> str | None:
    """Why the two results differ (shape or value), or None when they agree."""
    sym_vals, torch_vals = np.asarray(sym_vals), np.asarray(torch_vals)
    if sym_vals.shape != torch_vals.shape:
        return f"shape {sym_vals.shape} != torch {torch_vals.shape}"
    err = np.abs(sym_vals - torch_vals)
    bad = ~(err <= rtol * np.maximum(1.0, np.abs(torch_vals)))
    if bad.any():
        return f"max error {np.nanmax(err)} at {np.argwhere(bad)[0].tolist()}"
    return None


NAMES = sorted(FUNCTIONS)
#: mirrors whose torch function takes or returns complex tensors only: tests/test_complex_mirror.py checks them
COMPLEX_ONLY = {"imag", "polar", "complex", "view_as_real", "view_as_complex",
                *(f"{k}{d}" for k in ("fft", "ifft", "rfft", "irfft", "hfft", "ihfft") for d in ("", "2", "n"))}
REAL_NAMES = [n for n in NAMES if n not in COMPLEX_ONLY]


# --- the table ---------------------------------------------------------------


def test_samples_name_real_functions():
    """Functions without an entry get a one-argument sample in their domain."""
    assert set(SAMPLES) <= set(FUNCTIONS)


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in NAMES])
def test_entry_is_well_formed(name):
    fn = FUNCTIONS[name]
    assert fn.name == name
    assert fn.doc.strip() and "\n" not in fn.doc
    assert callable(fn.sym) and callable(fn.torch)
    if fn.domain is not None:
        lo, hi = fn.domain
        assert lo < hi


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in REAL_NAMES])
def test_mirror_matches_torch(name):
    fn = FUNCTIONS[name]
    args, kwargs = sample(name)
    sym_vals, torch_vals, _, _, _ = evaluate(fn, args, kwargs)
    assert mismatch(sym_vals, torch_vals) is None, mismatch(sym_vals, torch_vals)


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in REAL_NAMES if FUNCTIONS[n].elementwise])
def test_elementwise_flag(name):
    """out[i] may only mention the symbols at the matching broadcast input positions."""
    fn = FUNCTIONS[name]
    b = Bound(*sample(name))
    out = fn.sym(*b.sym_args, **b.sym_kwargs)
    leaves = [np.broadcast_to(syms, out.shape) for syms, _, _ in b.leaves]
    for idx, e in np.ndenumerate(out):
        assert e.free_symbols <= {leaf[idx] for leaf in leaves}, (idx, e)


KINKS = (sympy.Abs, sympy.Max, sympy.Min, sympy.Piecewise, sympy.Heaviside, sympy.sign)


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in NAMES if FUNCTIONS[n].analytic])
def test_analytic_flag_allows_complex_step(name):
    """Analytic mirrors have no kinks, and torch's complex-step derivative matches autograd."""
    fn = FUNCTIONS[name]
    args, kwargs = sample(name)
    b = Bound(args, kwargs)
    name = fn.canonical or fn.name
    if name in NUMERIC_ONLY:           # no closed form: the mirror takes the numbers (at 30 digits)
        out = fn.sym(*[_numbers(a, b.values) for a in b.sym_args],
                     **{k: _numbers(v, b.values) for k, v in b.sym_kwargs.items()})
    else:
        out = fn.sym(*b.sym_args, **b.sym_kwargs)
    assert not any(e.has(*KINKS) for e in out.flat)

    ref = fn.call_torch(*b.torch_args, **b.torch_kwargs)
    v = torch.tensor(np.random.default_rng(1).normal(size=ref.shape))
    x0 = b.leaves[0][1]
    (grad,) = torch.autograd.grad((ref * v).sum(), x0)

    c = Bound(args, kwargs, dtype=torch.complex128)
    h = 1e-30
    xc = c.leaves[0][1]
    with torch.no_grad():
        xc.view(-1)[0] += 1j * h
    step = (fn.call_torch(*c.torch_args, **c.torch_kwargs) * v).sum().imag / h
    g0 = float(grad.reshape(-1)[0])
    assert abs(float(step) - g0) <= 1e-8 * max(1.0, abs(g0))


# --- gradients of the symbolic result --------------------------------------

GRADIENT_CASES = {
    "softmax": sample("softmax"),
    "log_softmax": sample("log_softmax"),
    "layer_norm": sample("layer_norm"),
    "det": call(np.random.default_rng(3).normal(size=(3, 3)) + 2 * np.eye(3)),
    "inv": sample("inv"),
    "solve": sample("solve"),
    "cholesky": sample("cholesky"),
    "gelu": call(np.random.default_rng(4).normal(size=5)),
    "gelu_tanh": sample("gelu"),
    "selu": sample("selu"),
    "var": sample("var"),
    "std": sample("std"),
    "norm": sample("norm"),
    "normalize": sample("normalize"),
    "cross_entropy": sample("cross_entropy"),
    "kl_div": sample("kl_div"),
    "cosine_similarity": sample("cosine_similarity"),
    "einsum": sample("einsum"),
    "cumprod": sample("cumprod"),
    "solve_triangular": sample("solve_triangular"),
}


@pytest.mark.parametrize("case", [pytest.param(c, id=c) for c in GRADIENT_CASES])
def test_symbolic_gradient_matches_autograd(case):
    """d(sum_j v_j out_j)/dx for every symbol of the first input, SymPy diff vs torch autograd."""
    sym_grad, grad = gradients(resolve(case.split("_tanh")[0]), *GRADIENT_CASES[case])
    assert mismatch(sym_grad, grad, rtol=1e-9) is None, mismatch(sym_grad, grad)


def gradients(fn, args, kwargs):
    """(SymPy's d(sum_j v_j out_j)/dx, torch autograd's) for the first input, random v."""
    b = Bound(args, kwargs)
    name = fn.canonical or fn.name
    if name in NUMERIC_ONLY:           # no closed form: the mirror takes the numbers (at 30 digits)
        out = fn.sym(*[_numbers(a, b.values) for a in b.sym_args],
                     **{k: _numbers(v, b.values) for k, v in b.sym_kwargs.items()})
    else:
        out = fn.sym(*b.sym_args, **b.sym_kwargs)
    ref = fn.call_torch(*b.torch_args, **b.torch_kwargs)
    v = np.random.default_rng(2).normal(size=out.shape)
    syms, tensor, _ = b.leaves[0]
    (grad,) = torch.autograd.grad((ref * torch.tensor(v)).sum(), tensor)
    objective = sympy.Add(*[sympy.Float(w, 30) * e for w, e in zip(v.flat, out.flat)])
    sym_grad = np.array([b.numeric(objective.diff(s)) for s in syms.flat]).reshape(syms.shape)
    return sym_grad, grad.numpy()


# --- the harness can fail ---------------------------------------------------


def test_harness_flags_a_wrong_mirror():
    wrong = Function(name="exp", sym=resolve("exp").sym, torch=lambda x: torch.exp(x) * 1.001,
                     elementwise=True, domain=None, analytic=True, doc="exp(x), off by 0.1%")
    sym_vals, torch_vals, *_ = evaluate(wrong, *call(np.linspace(-1, 1, 5)))
    assert mismatch(sym_vals, torch_vals) is not None
    assert mismatch(sym_vals[:3], torch_vals) is not None  # shapes are compared too


# --- resolve and aliases ----------------------------------------------------


def test_resolve_unknown_name_suggests_close_one():
    with pytest.raises(UnknownFunctionError) as info:
        resolve("softmx")
    assert "unknown function 'softmx'" in str(info.value)
    assert "did you mean 'softmax'?" in str(info.value)
    assert "verifier/exact/mirror/<family>.py" in info.value.hint


def test_resolve_unknown_name_without_close_match():
    with pytest.raises(UnknownFunctionError) as info:
        resolve("qqqqqq")
    assert "did you mean" not in str(info.value)


@pytest.mark.parametrize("alias", [pytest.param(a, id=a) for a in sorted(ALIASES)])
def test_alias_resolves_to_its_target(alias):
    assert resolve(alias) is FUNCTIONS[ALIASES[alias]]
    assert alias not in FUNCTIONS


def test_expected_aliases():
    assert resolve("inverse").name == "inv"
    assert resolve("expit").name == "sigmoid"
    assert resolve("clip").name == "clamp"
    assert resolve("ger").name == "outer"
    assert resolve("concat").name == "cat"


# --- compactness --------------------------------------------------------------


def test_softmax_1024_shares_its_denominator():
    x = np.array([sympy.Symbol(f"s{i}", real=True) for i in range(1024)], dtype=object)
    out = resolve("softmax").sym(x, dim=0)
    inverses = [next(a for a in e.args if a.is_Pow and a.exp == -1) for e in out]
    assert all(p is inverses[0] for p in inverses)
    assert len(inverses[0].base.args) == 1024


def test_layer_norm_1024_stays_linear():
    x = np.array([sympy.Symbol(f"s{i}", real=True) for i in range(1024)], dtype=object)
    out = resolve("layer_norm").sym(x, (1024,))
    out = out * 2  # re-evaluating the shared power must not query the whole sum
    # the mean is one shared sum, not distributed into each centred element
    assert all(len(e.args) <= 3 for e in out.flat)


def _graph_size(arr) -> int:
    """Distinct nodes of the expression DAG (a tree walk would count shared nodes again)."""
    seen, stack = set(), list(np.asarray(arr, dtype=object).ravel())
    while stack:
        e = stack.pop()
        if e not in seen:
            seen.add(e)
            stack.extend(getattr(e, "args", ()))
    return len(seen)


def test_reductions_of_extrema_are_linear_in_n():
    """amax, clamp and std over n symbols build O(n) nodes (a pairwise nest of Max would be O(n^2)).

    Counted, not timed: a timed test measures the machine's load, not the code.
    """
    sizes = {}
    for n in (256, 1024):
        x = np.array([sympy.Symbol(f"s{i}", real=True) for i in range(n)], dtype=object)
        sizes[n] = [_graph_size(resolve("amax").sym(x)), _graph_size(resolve("clamp").sym(x, -1, 1)),
                    _graph_size(resolve("std").sym(x) * 2)]
    for small, large in zip(sizes[256], sizes[1024]):
        assert large <= 8 * 1024 and large <= 4.5 * small, sizes


# --- other call forms ------------------------------------------------------------

_r = np.random.default_rng(7)


def _x(*shape, lo=-2.0, hi=2.0):
    return _r.uniform(lo, hi, size=shape)


CALL_FORMS = [
    # method-style size arguments and tuple-style ones
    ("reshape", call(_x(3, 4), (4, 3))),
    ("view", call(_x(3, 4), 12)),
    ("permute", call(_x(2, 3, 4), (1, 2, 0))),
    ("expand", call(_x(1, 3), (2, 3))),
    ("repeat", call(_x(3), (2, 2))),
    ("flip", call(_x(3, 4), 1)),
    ("squeeze", call(_x(1, 3, 1))),
    ("squeeze", call(_x(1, 3, 1), 0)),
    ("flatten", call(_x(2, 3, 4), 0, 1)),
    ("t", call(_x(4))),
    ("select", call(_x(4), 0, 2)),
    ("diag", call(_x(3, 4), -1)),
    ("roll", call(_x(3, 4), (1, -1), (0, 1))),
    ("roll", call(_x(3, 4), 5)),
    ("index_select", call(_x(3, 4), 0, Ints(2))),
    ("gather", call(_x(3, 4), 0, Ints([[2, 1, 0, 0]]))),
    ("narrow", call(_x(3, 4), -1, -3, 2)),
    ("cat", call((_x(2), _x(3)))),
    ("movedim", call(_x(2, 3, 4), (0, 1), (2, 0))),
    # reductions: every dim spelling and both variance conventions
    ("sum", call(_x(3, 4))),
    ("sum", call(_x(3, 4), dim=-1)),
    ("mean", call(_x(2, 3, 4), (0, -1), True)),
    ("var", call(_x(3, 4))),
    ("var", call(_x(3, 4), 0, False, True)),
    ("var", call(_x(3, 4), False)),
    ("var", call(_x(3, 4), dim=1, unbiased=False)),
    ("var", call(_x(3, 4), dim=(0, 1), correction=2)),
    ("std", call(_x(3, 4), 1, True)),
    ("max", call(_x(3, 4))),
    ("max", call(_x(3, 4), dim=0)),
    ("max", call(_x(3, 4), _x(4))),
    ("min", call(_x(3, 4), 1, keepdim=True)),
    ("min", call(_x(3, 4), other=_x(3, 4))),
    ("amax", call(_x(3, 4))),
    ("logsumexp", call(_x(2, 3, 4), (0, 2), True)),
    ("cumsum", call(_x(4), 0)),
    ("prod", call(_x(3, 4))),
    # norms
    ("norm", call(_x(3, 4))),
    ("norm", call(_x(3, 4), 1)),
    ("norm", call(_x(3, 4), float("inf"), 0)),
    ("norm", call(_x(3, 4), float("-inf"), 1, True)),
    ("norm", call(_x(3, 4), Num(2.5), (0, 1))),
    ("norm", call(_x(3, 4), 4, dim=1)),
    ("norm", call(_x(3, 4), "fro", (0, 1))),
    ("torch.linalg.norm", call(_x(3, 4), ord=1)),
    ("torch.linalg.norm", call(_x(3, 4), ord=float("inf"))),
    ("torch.linalg.norm", call(_x(3, 4), ord=None)),
    ("torch.linalg.norm", call(_x(3, 4), ord=3, dim=1)),
    ("vector_norm", call(_x(3, 4))),
    ("vector_norm", call(_x(3, 4), float("inf"), (0, 1), True)),
    ("matrix_norm", call(_x(3, 4), 1)),
    ("matrix_norm", call(_x(2, 3, 4), -1)),
    ("matrix_norm", call(_x(3, 4), float("inf"), keepdim=True)),
    ("matrix_norm", call(_x(3, 4), float("-inf"))),
    # elementwise forms
    ("pow", call(_x(3, 4, lo=0.2), 2)),
    ("pow", call(_x(3, 4, lo=0.2), Num(0.5))),
    ("pow", call(2, _x(3, 4))),
    ("clamp", call(_x(3, 4), Num(-0.5))),
    ("clamp", call(_x(3, 4), max=_x(4))),
    ("clamp", call(_x(3, 4), _x(3, 1), _x(4))),
    ("gelu", call(_x(5))),
    ("leaky_relu", call(_x(5))),
    ("logit", call(_x(5, lo=0.01, hi=0.99), Num(0.2))),
    ("softplus", call(_x(5))),
    ("masked_fill", call(_x(3, 4), Ints([True, False, True, False]), 0)),
    ("div", call(_x(3, 4), 3)),
    ("sigmoid", call(_x(3))),
    # linear algebra shapes
    ("matmul", call(_x(4), _x(4))),
    ("matmul", call(_x(3, 4), _x(4))),
    ("matmul", call(_x(4), _x(4, 2))),
    ("matmul", call(_x(2, 1, 3, 4), _x(5, 4, 2))),
    ("matmul", call(_x(4), _x(2, 4, 3))),
    ("einsum", call("ij,jk->ik", _x(2, 3), _x(3, 2))),
    ("einsum", call("ij,jk", [_x(2, 3), _x(3, 4)])),
    ("einsum", call("ii->i", _x(3, 3))),
    ("einsum", call("ii", _x(3, 3))),
    ("einsum", call("i,i->", _x(3), _x(3))),
    ("einsum", call("i,j->ij", _x(3), _x(2))),
    ("einsum", call("...ij,...jk->...ik", _x(2, 2, 3), _x(3, 2))),
    ("einsum", call("b i j -> j", _x(2, 3, 2))),
    ("einsum", call("ij,j->i", _x(2, 3), _x(1))),
    ("inner", call(_x(4), _x(4))),
    ("inner", call(_x(3), np.array(2.0))),
    ("cross", call(_x(3, 2), _x(3, 2), dim=0)),
    ("det", call(_x(5, 5) + 4 * np.eye(5))),
    ("det", call(_x(2, 2))),
    ("det", call(np.array([[0.0, 1.0, 2.0], [3.0, 0.0, 1.0], [1.0, 1.0, 1.0]]))),
    ("inv", call(np.array([[0.0, 2.0], [3.0, 1.0]]))),
    ("inv", call(_x(2, 3, 3) + 4 * np.eye(3))),
    ("inv", call(_x(5, 5) + 4 * np.eye(5))),  # elimination path above 4x4
    ("solve", call(_x(6, 6) + 4 * np.eye(6), _x(6, 2))),
    ("inv", call(np.array([[1.0]]))),
    ("solve", call(_x(3, 3) + 4 * np.eye(3), _x(3))),
    ("solve", call(_x(2, 3, 3) + 4 * np.eye(3), _x(2, 3))),
    ("solve", call(_x(3, 3) + 4 * np.eye(3), _x(2, 3), left=False)),
    ("solve_triangular", call(_x(3, 3) + 4 * np.eye(3), _x(3, 2), upper=False)),
    ("solve_triangular", call(_x(3, 3) + 4 * np.eye(3), _x(2, 3), upper=True, left=False)),
    ("solve_triangular", call(_x(3, 3), _x(3, 1), upper=True, unitriangular=True)),
    ("cholesky", call(np.array([[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]]), upper=True)),
    ("linear", call(_x(2, 4), _x(3, 4))),
    ("linear", call(_x(4), _x(4), np.array(0.5))),
    # nn: reductions, weights, ignore_index, probability targets, class dims
    ("softmax", call(_x(4), 0)),
    ("softmax", call(_x(2, 3, 4), -1)),
    ("log_softmax", call(_x(2, 3, 4), dim=1)),
    ("cross_entropy", call(_x(3), Ints(1))),
    ("cross_entropy", call(_x(4, 3), Ints([0, 2, 1, 2]), reduction="none")),
    ("cross_entropy", call(_x(4, 3), Ints([0, 2, 1, 2]), reduction="sum")),
    ("cross_entropy", call(_x(4, 3), Ints([0, 2, -100, 2]), weight=_x(3, lo=0.5))),
    ("cross_entropy", call(_x(2, 3, 4), Ints([[0, 1, 2, 0], [2, 2, 1, 0]]))),
    ("cross_entropy", call(_x(4, 3), _x(4, 3, lo=0.1, hi=0.9))),
    ("cross_entropy", call(_x(4, 3), _x(4, 3, lo=0.1, hi=0.9), weight=_x(3, lo=0.5),
                           reduction="sum")),
    ("nll_loss", call(_x(4, 3), Ints([0, 2, 1, 1]), _x(3, lo=0.5), ignore_index=1)),
    ("nll_loss", call(_x(3), Ints(2))),
    ("mse_loss", call(_x(3, 4), _x(3, 4), reduction="none")),
    ("smooth_l1_loss", call(_x(3, 4), _x(3, 4), beta=0)),
    ("huber_loss", call(_x(3, 4), _x(3, 4), "sum")),
    ("binary_cross_entropy", call(_x(3, lo=0.1, hi=0.9), _x(3, lo=0.0, hi=1.0), _x(3))),
    ("binary_cross_entropy_with_logits", call(_x(2, 3), _x(2, 3, lo=0, hi=1),
                                              pos_weight=_x(3, lo=0.5), reduction="sum")),
    ("kl_div", call(_x(3, 4), _x(3, 4), reduction="sum", log_target=True)),
    ("kl_div", call(_x(3, 4), _x(3, 4, lo=0.1), reduction="none")),
    ("cosine_similarity", call(_x(3, 4), _x(4), dim=-1)),
    ("normalize", call(_x(3, 4), p=1, dim=0)),
    ("layer_norm", call(_x(3, 4), [4], eps=Num(0.1))),
]


@pytest.mark.parametrize("name, case", [pytest.param(n, c, id=f"{n}-{i}")
                                        for i, (n, c) in enumerate(CALL_FORMS)])
def test_call_forms_match_torch(name, case):
    sym_vals, torch_vals, *_ = evaluate(resolve(name), *case)
    assert mismatch(sym_vals, torch_vals) is None, mismatch(sym_vals, torch_vals)


def _symbols(name, shape):
    out = np.empty(shape, dtype=object)
    for i, idx in enumerate(np.ndindex(shape)):
        out[idx] = sympy.Symbol(f"{name}{i}", real=True)
    return out


def test_where_and_masked_fill_take_symbolic_conditions():
    """A condition built by comparing object arrays gives Piecewise; both call forms of where."""
    xv, yv = _x(3, 4), _x(3, 4)
    x, y = _symbols("x", xv.shape), _symbols("y", yv.shape)
    cond = np.greater(x, 0, dtype=object)
    subs = {s: sympy.Float(v, 30) for a, vals in ((x, xv), (y, yv)) for s, v in zip(a.flat, vals.flat)}
    xt, yt = torch.tensor(xv), torch.tensor(yv)
    where = resolve("where")
    for sym_out, ref in [
        (where.sym(cond, x, y), where.torch(xt > 0, xt, yt)),
        (resolve("Tensor.where").sym(x, cond, y), xt.where(xt > 0, yt)),  # method form x.where(cond, y)
        (resolve("masked_fill").sym(x, cond, sympy.Rational(1, 2)),
         resolve("masked_fill").torch(xt, xt > 0, 0.5)),
    ]:
        assert all(e.has(sympy.Piecewise) for e in sym_out.flat)
        vals = np.vectorize(lambda e: float(e.xreplace(subs)), otypes=[float])(sym_out)
        assert mismatch(vals, ref.numpy()) is None
    # constant conditions select without Piecewise
    out = where.sym(np.array(True), x, y)
    assert (out == x).all()


def test_kinks_are_visible_to_a_kink_detector():
    x = _symbols("x", (4,))
    for name, args, kind in [
        ("relu", (), sympy.Piecewise), ("abs", (), sympy.Abs), ("clamp", (-1, 1), sympy.Piecewise),
        ("hardtanh", (), sympy.Piecewise), ("leaky_relu", (), sympy.Piecewise),
        ("elu", (), sympy.Piecewise), ("max", (), sympy.Max), ("amin", (), sympy.Min),
        ("sign", (), sympy.sign), ("l1_loss", (x[::-1],), sympy.Abs),
        ("smooth_l1_loss", (x[::-1],), sympy.Piecewise), ("norm", (1,), sympy.Abs),
    ]:
        out = resolve(name).sym(x, *args)
        assert any(e.has(kind) for e in out.flat), name


def test_scalars_come_back_as_0d_object_arrays():
    x = _symbols("x", (3,))
    for out in (resolve("sum").sym(x), resolve("dot").sym(x, x), resolve("exp").sym(sympy.Integer(0)),
                resolve("select").sym(x, 0, 1), resolve("det").sym(_symbols("a", (2, 2)))):
        assert isinstance(out, np.ndarray) and out.dtype == object and out.shape == ()
        assert isinstance(out[()], sympy.Basic)


def test_structural_zeros_are_sympy_zero():
    x = _symbols("x", (3, 3))
    for out in (resolve("tril").sym(x), resolve("diag").sym(x[0]), resolve("cholesky").sym(x)):
        assert all(isinstance(e, sympy.Basic) for e in out.flat)
        assert any(e is sympy.S.Zero for e in out.flat)


@pytest.mark.parametrize("name, args, kwargs", [
    pytest.param("gelu", (np.array([1.0]),), {"approximate": "erf"}, id="gelu-approximate"),
    pytest.param("div", (np.array([1.0]), 2), {"rounding_mode": "round"}, id="div-rounding-round"),
    pytest.param("norm", (np.array([1.0]), "nuc"), {}, id="norm-nuc"),
    pytest.param("matrix_norm", (np.ones((2, 2)), 3), {}, id="matrix_norm-3"),
    pytest.param("mse_loss", (np.ones(2), np.ones(2)), {"reduction": "avg"}, id="reduction"),
    pytest.param("cross_entropy", (np.ones((2, 3)), np.array([0, 1])), {"label_smoothing": 0.1},
                 id="label_smoothing"),
    pytest.param("sum", (np.ones((2, 2)), 2), {}, id="dim-out-of-range"),
])
def test_unsupported_arguments_raise_case_errors(name, args, kwargs):
    with pytest.raises(ExpressionError):
        resolve(name).sym(*args, **kwargs)


def test_elimination_swaps_past_structural_zero_pivots():
    """Above 4x4, a literal zero pivot is skipped by a row swap (det sign included)."""
    values = _x(5, 5) + 4 * np.eye(5)
    values[0, 0] = 0.0
    a = _symbols("a", (5, 5))
    a[0, 0] = sympy.S.Zero
    subs = {s: sympy.Float(v, 30) for s, v in zip(a.flat, values.flat) if s != 0}
    for name in ("inv", "det"):
        out = resolve(name).sym(a)
        vals = np.vectorize(lambda e: float(e.xreplace(subs)), otypes=[float])(out)
        ref = resolve(name).torch(torch.tensor(values)).numpy()
        assert mismatch(vals, ref) is None, name
