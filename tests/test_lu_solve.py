"""torch.linalg.lu_solve in every form: left/right, adjoint, batched LU (mirror/factors.py).

The mirror gives torch's forward for every (left, adjoint) and batch shape; the planted bugs of
tests/corpus/lu_solve.py (the backward of the solve with the other flag) are caught in float64 and
float32 and the correct twins pass.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy
import torch
from corpus.lu_solve import DTYPES, LU_SOLVE_BUGS
from corpus.registry import assert_caught, assert_passes

from verifier import Runner
from verifier.errors import ExpressionError
from verifier.exact.mirror import resolve

RUNNER = Runner(forward_mode=False, second_order=False, cache=False)
ENTRIES = [pytest.param(entry, id=entry.id) for entry in LU_SOLVE_BUGS]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("entry", ENTRIES)
def test_the_planted_lu_solve_bug_fails_beside_its_passing_twin(entry, dtype):
    assert_passes(RUNNER.run(entry.run_case(buggy=False), dtype))
    assert_caught(RUNNER.run(entry.run_case(buggy=True), dtype), entry.bug)


def _numbers(a: np.ndarray) -> np.ndarray:
    return np.array([sympy.Float(float(v), 30) for v in a.ravel()], dtype=object).reshape(a.shape)


@pytest.mark.parametrize("left", [True, False])
@pytest.mark.parametrize("adjoint", [False, True])
@pytest.mark.parametrize("a_shape, b_shape", [
    ((3, 3), (3, 2)), ((1, 1), (1, 2)), ((3, 3), (2, 3, 1)), ((2, 3, 3), (2, 3, 2)), ((2, 1, 3, 3), (1, 2, 3, 3)),
])
def test_the_mirror_gives_torchs_forward(left, adjoint, a_shape, b_shape):
    rng = np.random.default_rng(sum(a_shape) + 7 * sum(b_shape))
    lu, piv = torch.linalg.lu_factor(torch.tensor(rng.standard_normal(a_shape)))
    b = torch.tensor(rng.standard_normal(b_shape if left else b_shape[:-2] + b_shape[-2:][::-1]))
    want = torch.linalg.lu_solve(lu, piv, b, left=left, adjoint=adjoint).numpy()
    entry = resolve("torch.linalg.lu_solve")
    assert entry.torch is torch.linalg.lu_solve
    got = np.array(entry.sym(_numbers(lu.numpy()), piv.numpy(), _numbers(b.numpy()), left=left, adjoint=adjoint),
                   dtype=float)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_adjoint_is_a_different_solve():
    """The harness can fail: adjoint=True and the plain solve differ for a non-symmetric A."""
    rng = np.random.default_rng(5)
    lu, piv = torch.linalg.lu_factor(torch.tensor(rng.standard_normal((3, 3))))
    b = rng.standard_normal((3, 2))
    fn = resolve("torch.linalg.lu_solve").sym
    plain = np.array(fn(_numbers(lu.numpy()), piv.numpy(), _numbers(b)), dtype=float)
    adj = np.array(fn(_numbers(lu.numpy()), piv.numpy(), _numbers(b), adjoint=True), dtype=float)
    assert np.abs(plain - adj).max() > 1e-3


def test_a_vector_b_is_refused_with_what_to_do():
    with pytest.raises(ExpressionError, match="B with at least 2 dims"):
        resolve("torch.linalg.lu_solve").sym(_numbers(np.eye(2)), np.array([1, 2]), _numbers(np.ones(2)))
