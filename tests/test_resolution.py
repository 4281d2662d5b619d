"""Issue 12 item 3: every name the case language accepts calls the exact torch callable it names.

For each accepted name (bare, alias, fully qualified) the torch side's
callable must *be* the object reached by walking the dotted name from the
``torch`` module (no eval), and the mirror must agree with that callable on
the forward value at seeded random points. Names whose namespace changes the
semantics (torch.norm / torch.linalg.norm, torch.diagonal /
torch.linalg.diagonal, torch.cross / torch.linalg.cross) are checked where
they differ.
"""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np
import pytest
import torch
from mirror_samples_masked import masked_samples
from test_mirror import COMPLEX_ONLY, SAMPLES, Gen, Ints, _unary, call, evaluate, mismatch

from verifier.cases.loading import case_from_mapping
from verifier.errors import CaseError, UnknownFunctionError
from verifier.exact import mirror
from verifier.run.runner import Runner

ALL_NAMES = sorted({*mirror.FUNCTIONS, *mirror.ALIASES, *mirror.qualified_names()})


def walk(dotted: str):
    """The object a dotted name names, attribute by attribute from ``torch`` (``Tensor.X``: torch.Tensor)."""
    head, *rest = dotted.split(".")
    obj = torch.Tensor if head == "Tensor" else torch
    assert head in ("torch", "Tensor"), dotted
    for part in rest:
        obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize("name", ALL_NAMES)
def test_every_name_calls_the_object_its_dotted_name_names(name):
    entry = mirror.resolve(name)
    assert entry.torch is walk(entry.qualname), f"{name}: {entry.torch!r} is not {entry.qualname}"
    if "." in name:                              # a written qualified name means exactly that object
        assert entry.qualname == name


def test_namespaces_are_not_merged():
    assert mirror.resolve("torch.linalg.norm").torch is torch.linalg.norm
    assert mirror.resolve("torch.norm").torch is torch.norm
    assert mirror.resolve("torch.linalg.diagonal").torch is torch.linalg.diagonal
    assert mirror.resolve("torch.cross").torch is torch.cross
    assert mirror.resolve("torch.linalg.cross").torch is torch.linalg.cross
    assert mirror.resolve("Tensor.sum").torch is torch.Tensor.sum


# Samples for the spellings whose call form differs from the bare name's sample.
OWN_SAMPLES = {
    "torch.linalg.lu": lambda g: call(g.x(3, 3)),          # square: P, L and U stacked need one shape
    "torch.linalg.norm": lambda g: call(g.x(3, 4), "inf"),
    "torch.linalg.diagonal": lambda g: call(g.x(2, 3, 3), offset=1),
    "torch.cross": lambda g: call(g.x(3, 2), g.x(3, 2)),
    "Tensor.cross": lambda g: call(g.x(2, 3, 3), g.x(2, 3, 3)),
    "Tensor.where": lambda g: call(g.x(3, 4), g.mask(3, 4), g.x(4)),
    "torch.reshape": lambda g: call(g.x(3, 4), (2, -1)),
    "torch.permute": lambda g: call(g.x(2, 3, 4), (2, 0, 1)),
    "Tensor.unfold": lambda g: call(g.x(2, 7), 1, 3, 2),
    "torch.linalg.vander": lambda g: call(g.x(2, 3), N=4),
    **masked_samples(call, Ints),
}


#: Spellings of the complex-only mirrors take complex samples: tests/test_complex_mirror.py checks those.
REAL_NAMES = [n for n in ALL_NAMES if mirror.resolve(n).canonical not in COMPLEX_ONLY]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name", REAL_NAMES)
def test_mirror_and_torch_agree_on_the_forward_value(name, seed):
    entry = mirror.resolve(name)
    gen = Gen(entry.canonical)
    gen.rng = np.random.default_rng(zlib.crc32(f"{name}/{seed}".encode()))
    make = OWN_SAMPLES.get(name) or SAMPLES.get(entry.canonical, _unary)
    sym_vals, torch_vals, *_ = evaluate(entry, *make(gen))
    assert mismatch(sym_vals, torch_vals) is None, mismatch(sym_vals, torch_vals)


# --- the examples, through the whole case pipeline ------------------------------------

A = [[1.0, -2.0], [3.0, 0.5]]       # max |a_ij| = 3, max row sum 3.5, max column sum 4


def run(forward, inputs=None, dtype="float64"):
    case = case_from_mapping({"name": "t.resolution", "inputs": inputs or {"A": A}, "forward": forward,
                              "grad_output": "random"})
    return Runner(cache=None).run(case, dtype)


@pytest.mark.parametrize("forward, value", [
    ("torch.linalg.norm(A, 'inf')", 3.5),          # a matrix norm: max row sum
    ("torch.norm(A, 'inf')", 3.0),                 # a vector norm over all elements
    ("torch.linalg.norm(A, 1)", 4.0),              # max column sum
    ("torch.linalg.norm(A)", float(np.sqrt(1 + 4 + 9 + 0.25))),
    ("torch.linalg.norm(A, 0, dim=1)", None),      # order 0 counts non-zeros (gradient 0)
])
def test_norms_follow_the_namespace_written(forward, value):
    result = run(forward)
    assert result.status == "pass", result.message
    assert [c.name for c in result.checks].count("forward") == 1
    if value is not None:
        assert result.autograd.output == pytest.approx(value)
        assert float(result.exact.output) == pytest.approx(value)


SIGMA = np.linalg.svd(np.array(A), compute_uv=False)      # 3.66, 1.78 (distinct, nonzero)


@pytest.mark.parametrize("forward, value", [
    ("torch.linalg.norm(A, 2)", SIGMA[0]),         # spectral (was refused; issue 12: once Frobenius)
    ("torch.linalg.norm(A, -2)", SIGMA[-1]),
    ("torch.linalg.norm(A, 'nuc')", SIGMA.sum()),
    ("torch.norm(A, 'nuc')", SIGMA.sum()),
    ("torch.norm(A, 2)", float(np.sqrt(1 + 4 + 9 + 0.25))),   # torch.norm's p=2 is the vector 2-norm
])
def test_singular_value_norms_follow_the_namespace_written(forward, value):
    result = run(forward)
    assert result.status == "pass", result.message
    assert result.autograd.output == pytest.approx(value)
    assert float(result.exact.output) == pytest.approx(value)


def test_linalg_diagonal_uses_the_last_two_dims():
    x = np.arange(24.0).reshape(2, 3, 4).tolist()
    result = run("torch.linalg.diagonal(x)", {"x": x})
    assert result.status == "pass", result.message
    assert result.autograd.output.shape == (2, 3)
    np.testing.assert_allclose(result.exact.output, torch.linalg.diagonal(torch.tensor(x)).numpy())
    other = run("torch.diagonal(x)", {"x": x})
    assert other.status == "pass" and other.autograd.output.shape == (4, 2)


def test_torch_cross_without_dim_takes_the_first_dim_of_size_3():
    inputs = {"x": {"shape": [3, 3], "sample": "normal", "seed": 1},
              "y": {"shape": [3, 3], "sample": "normal", "seed": 2}}
    plain = run("torch.cross(x, y)", inputs)
    linalg = run("torch.linalg.cross(x, y)", inputs)
    assert plain.status == linalg.status == "pass", (plain.message, linalg.message)
    assert not np.allclose(plain.exact.output, linalg.exact.output)     # dim 0 against dim -1


def test_a_mirror_with_the_other_namespaces_semantics_is_caught(monkeypatch):
    """If torch.linalg.norm's mirror were torch.norm's (the old bug), the forward check fails."""
    wrong = dataclasses.replace(mirror.SPELLINGS["torch.linalg.norm"], sym=mirror.FUNCTIONS["norm"].sym)
    monkeypatch.setitem(mirror.SPELLINGS, "torch.linalg.norm", wrong)
    result = run("torch.linalg.norm(A, 'inf')")
    assert result.status == "fail"
    assert "forward" in result.message


def test_a_name_without_an_entry_is_refused_naming_what_is_supported():
    with pytest.raises(UnknownFunctionError, match="torch.linalg supports: .*vector_norm"):
        mirror.resolve("torch.linalg.ldl_factor")   # no mirror
    with pytest.raises(CaseError, match="Tensor.softplus"):
        case_from_mapping({"name": "t.method", "inputs": {"x": [1.0]}, "forward": "x.softplus()"})
    with pytest.raises(CaseError, match="integer code"):
        case_from_mapping({"name": "t.native", "inputs": {"x": [1.0], "y": [0.5]},
                           "forward": "torch.kl_div(x, y)"})
