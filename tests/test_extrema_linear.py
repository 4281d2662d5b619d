"""Issue 12 item 10: max/min/amax/amin over all elements are linear in n, and still right at ties.

No timing here (speed is measured by benchmarks/extrema.py): the tests count
what the work is made of. The compiled tape of max over n elements must hold
O(n) nodes *and* O(n) argument references (SymPy's own Max derivative built
a Max of the other n - 1 elements for each element: O(n^2)), the symbolic
Jacobian route is only taken while the expression tree is small, and the
result at ties is torch's (1/k each for k tied extremes), wrong gradients
included.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import verifier
from verifier.cases.loading import case_from_mapping
from verifier.exact.compiled import prepare
from verifier.run.runner import Runner


def case(forward, n, values=None):
    x = {"value": values} if values is not None else {"shape": [n], "sample": "normal", "seed": 5}
    fields = {"kink": "max at a three-way tie; torch gives each 1/3"} if values is not None else {}
    return case_from_mapping({"name": "t.extrema", "inputs": {"x": x}, "forward": forward, **fields})


@pytest.mark.parametrize("forward", ["x.max()", "x.min()", "torch.amax(x)", "torch.amin(x)",
                                     "torch.linalg.vector_norm(x, 'inf')"])
def test_the_tape_is_linear_in_n(forward):
    sizes = {}
    for n in (100, 400):
        tape = prepare(case(forward, n)).tape
        sizes[n] = (len(tape), sum(len(a) for a in tape.args) + sum(len(d) for d in tape.dargs.values()))
    for k in range(2):
        assert sizes[400][k] <= 4.5 * sizes[100][k], sizes      # 4x the elements, about 4x the work
    assert sizes[400][1] <= 40 * 400, sizes


def test_large_extrema_take_the_sweep_and_small_ones_both_routes():
    small = Runner(cache=None).run(case("x.max()", 10), "float64")
    large = Runner(cache=None).run(case("x.max()", 300), "float64")
    assert small.status == large.status == "pass", (small.message, large.message)
    assert "(agree)" in small.route and "Jacobian" not in large.route     # no n² symbolic Jacobian at n=300


TIED = [2, 7, 9]


def _ties(n):
    values = np.random.default_rng(3).normal(size=n)
    values[TIED] = values.max() + 1.0          # three tied maxima
    return values.tolist()


@pytest.mark.parametrize("n", [12, 150])       # the Jacobian route and the sweep route
def test_ties_share_the_gradient_as_torch_does(n):
    result = Runner(cache=None).run(case("x.max()", n, _ties(n)), "float64")
    assert result.status == "pass", result.message
    grad = result.exact.vjp["x"]
    np.testing.assert_allclose(grad[TIED], 1 / 3)
    assert np.count_nonzero(grad) == 3


def test_a_gradient_that_picks_one_of_the_tied_maxima_is_caught():
    """torch.sort(...)[-1] has max's value but gives the whole gradient to one tied element."""
    n = 150
    inputs = {"x": {"value": _ties(n)}}
    wrong = verifier.make_case("t.sorted_max", inputs, torch=lambda x: torch.sort(x).values[-1], sympy="x.max()",
                               kink="max at a three-way tie; torch gives each 1/3")
    result = Runner(cache=None).run(wrong, "float64")
    assert result.status == "fail"
    # the tie is a declared kink that couples three elements: the kink check holds torch's convention (1/3 each)
    assert "kink" in result.message and "convention is 0.3333" in result.message
