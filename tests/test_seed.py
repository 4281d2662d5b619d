"""The seed lesson's numbers, reproduced through the whole pipeline."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT

from verifier import Runner, load_file

SEED = {c.name: c for c in load_file(ROOT / "cases" / "seed.yaml").cases}


@pytest.fixture(scope="module")
def runner():
    return Runner()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_mean_of_square_gives_4_5(runner, dtype):
    r = runner.run(SEED["seed.mean_of_square"], dtype)
    assert r.status == "pass", r.message
    np.testing.assert_allclose(r.autograd.grads["x"], np.full((2, 2), 4.5))
    np.testing.assert_allclose(r.exact.vjp["x"], np.full((2, 2), 4.5), rtol=1e-15)
    assert r.grad_fn == "MeanBackward0"
    assert r.exact.output == 27.0


@pytest.mark.parametrize("name", ["seed.weighted_backward", "seed.weighted_sum_scalar"])
def test_weighted_backward_gives_3z(runner, name):
    r = runner.run(SEED[name], "float32")
    assert r.status == "pass", r.message
    np.testing.assert_allclose(r.autograd.grads["x"], [[3, 0.3], [0.03, 0.003]], rtol=1e-6)


def test_the_scalar_route_has_output_3_702(runner):
    r = runner.run(SEED["seed.weighted_sum_scalar"], "float64")
    assert r.status == "pass", r.message
    assert r.grad_fn == "SumBackward0"
    assert abs(float(r.exact.output) - 3.702) < 1e-12


def test_backward_on_a_non_scalar_raises(runner):
    r = runner.run(SEED["seed.nonscalar_backward"], "float64")
    assert r.status == "pass"
    assert "grad can be implicitly created only for scalar outputs" in r.message


def test_leaves_have_no_grad_fn(runner):
    r = runner.run(SEED["seed.mean_of_square"], "float64")
    assert r.autograd.leaves["x"] == (True, None)
