"""Mirror bugs found in use, each pinned by the case that exposed it."""

from __future__ import annotations

import pytest

from verifier import Runner, make_case

ODD_FUNCTIONS = ["sin", "tan", "sinh", "tanh", "asin", "atan", "asinh", "atanh", "erf", "erfc", "abs"]


@pytest.mark.parametrize("fn", [pytest.param(f, id=f) for f in ODD_FUNCTIONS])
def test_odd_functions_of_a_negated_sum_build(fn):
    # SymPy's minus-sign extraction looped forever on f(-x - 2*y) with distribution off.
    case = make_case(f"neg.{fn}", {"x": [0.125, 0.25], "y": [0.0625, 0.1875]},
                     forward=f"torch.{fn}(-x - 2*y).sum()")
    result = Runner().run(case, "float64")
    assert result.status == "pass", result.message
