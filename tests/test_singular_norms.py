"""Matrix norms through the singular values: 'nuc', 2 and -2 (mirror/reductions.py, the numeric-exact route).

Planted bugs in hand-written backwards (tests/corpus/singular_norms.py) are caught in float64 and
float32 and their correct twins pass; the mirror gives torch's forward for every spelling
(torch.norm, torch.linalg.norm, torch.linalg.matrix_norm, batched, keepdim, dims); a point where
the norm has no derivative (a zero or repeated singular value) is refused, never judged.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy
import torch
from corpus.registry import assert_caught, assert_passes
from corpus.singular_norms import DTYPES, NORM_BUGS
from test_numeric_exact import ROUTE, RUNNER

import verifier
from verifier.exact.compiled import prepare
from verifier.exact.mirror import resolve
from verifier.exact.numeric.model import NumericModel

ENTRIES = [pytest.param(entry, id=entry.id) for entry in NORM_BUGS]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("entry", ENTRIES)
def test_the_correct_twin_passes_and_the_planted_bug_fails(entry, dtype):
    right, wrong = (RUNNER.run(entry.run_case(buggy=b), dtype) for b in (False, True))
    assert_passes(right)
    assert_caught(wrong, entry.bug)
    assert right.route.startswith(ROUTE) and wrong.route.startswith(ROUTE)


def _numbers(a: np.ndarray) -> np.ndarray:
    return np.array([sympy.Float(float(v), 30) for v in a.ravel()], dtype=object).reshape(a.shape)


RNG = np.random.default_rng(3)
A34 = RNG.standard_normal((3, 4))
B243 = RNG.standard_normal((2, 4, 3))


@pytest.mark.parametrize("name, args, kwargs, torch_fn", [
    ("torch.linalg.matrix_norm", (A34, "nuc"), {}, torch.linalg.matrix_norm),
    ("torch.linalg.matrix_norm", (A34, 2), {}, torch.linalg.matrix_norm),
    ("torch.linalg.matrix_norm", (A34, -2), {"keepdim": True}, torch.linalg.matrix_norm),
    ("torch.linalg.matrix_norm", (B243, "nuc"), {"dim": (0, 2)}, torch.linalg.matrix_norm),
    ("torch.linalg.matrix_norm", (B243, 2), {"dim": (2, 1), "keepdim": True}, torch.linalg.matrix_norm),
    ("torch.linalg.norm", (A34, "nuc"), {}, torch.linalg.norm),
    ("torch.linalg.norm", (A34, 2), {}, torch.linalg.norm),           # spectral, not Frobenius (issue 12)
    ("torch.linalg.norm", (A34, -2), {}, torch.linalg.norm),
    ("torch.linalg.norm", (B243, "nuc"), {"dim": (1, 2)}, torch.linalg.norm),
    ("torch.norm", (A34,), {"p": "nuc"}, torch.norm),
    ("torch.norm", (B243,), {"p": "nuc", "dim": (1, 2), "keepdim": True}, torch.norm),
    ("torch.norm", (A34,), {"p": 2}, torch.norm),                     # torch.norm's p=2 stays the vector norm
])
def test_the_mirror_gives_torchs_forward(name, args, kwargs, torch_fn):
    entry = resolve(name)
    assert entry.torch is torch_fn
    got = np.array(entry.sym(_numbers(args[0]), *args[1:], **kwargs), dtype=float)
    want = torch_fn(torch.tensor(args[0]), *args[1:], **kwargs).numpy()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_linalg_norm_order_2_is_the_spectral_norm():
    """The issue-12 class: torch.linalg.norm(A, 2) computed the Frobenius norm. It is σ_max."""
    got = float(resolve("torch.linalg.norm").sym(_numbers(A34), 2))
    assert got == pytest.approx(float(torch.linalg.svdvals(torch.tensor(A34))[0]), rel=1e-12)
    assert abs(got - float(np.linalg.norm(A34))) > 0.1


def _case(forward, value):
    return verifier.make_case("t.norm", {"A": {"value": value}}, forward=forward, grad_output="ones")


@pytest.mark.parametrize("forward, value", [
    ("torch.linalg.matrix_norm(A, 'nuc')", [[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]]),  # rank 2: σ₃ = 0
    ("torch.norm(A, p='nuc')", [[1.0, 2.0], [2.0, 4.0]]),                                          # rank 1
    ("torch.linalg.norm(A, 2)", [[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0]]),              # σ₁ = σ₂
    ("torch.linalg.matrix_norm(A, -2)", [[3.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]),      # σ₂ = σ₃
])
def test_a_zero_or_repeated_singular_value_is_refused(forward, value):
    """There the norm has a kink (nuc at σ = 0, the spectral norm at σ₁ = σ₂): never a verdict."""
    result = RUNNER.run(_case(forward, value), "float64")
    assert result.status == "error"
    assert "singular values" in result.message and "not defined there" in result.message


def test_the_route_is_taken_and_named():
    case = _case("torch.linalg.matrix_norm(A, 'nuc')", [[2.0, 0.5, -0.3], [0.4, 1.7, 0.6], [-0.2, 0.3, -1.1]])
    assert isinstance(prepare(case), NumericModel)
    result = RUNNER.run(case, "float64")
    assert result.status == "pass", result.message
    assert result.route.startswith(ROUTE) and "svdvals" in result.route


def test_other_matrix_orders_keep_their_symbolic_route():
    case = _case("torch.linalg.matrix_norm(A, 1)", [[2.0, 0.5], [0.4, 1.7]])
    assert not isinstance(prepare(case), NumericModel)


def test_an_unknown_matrix_order_is_refused_with_the_orders_that_exist():
    from verifier.errors import ExpressionError
    with pytest.raises(ExpressionError, match="'nuc', 1, -1, 2, -2"):
        resolve("torch.linalg.matrix_norm").sym(_numbers(A34), 3)


def test_the_nuclear_norm_of_an_empty_matrix_is_zero_and_its_spectral_norm_is_refused():
    """torch: 'nuc' of a 0x3 matrix is 0 with an empty gradient; ord 2 gives 0 without a graph, -2 raises."""
    empty = {"A": {"shape": [0, 3], "sample": "normal", "seed": 1}}
    nuc = RUNNER.run(verifier.make_case("t.empty", empty, forward="torch.linalg.norm(A, 'nuc')"), "float64")
    assert nuc.status == "pass", nuc.message
    spectral = RUNNER.run(verifier.make_case("t.empty", empty, forward="torch.linalg.norm(A, 2)"), "float64")
    assert spectral.status == "error"            # torch's backward raises first: no graph
    from verifier.errors import ExpressionError
    with pytest.raises(ExpressionError, match="empty 0x3 matrix has no singular value"):
        resolve("torch.linalg.matrix_norm").sym(np.empty((0, 3), dtype=object), -2)
