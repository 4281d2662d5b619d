"""Issue 12 item 4: in-place writes through keywords, and memory the torch side could write.

``out=`` and ``inplace=True`` make torch write into an existing tensor; a case
expression may not use them (in-place *methods* on intermediate results stay
allowed and checked). Independently, the torch side only ever gets copies of
the point, so whatever it writes, the exact side reads the values the case
gave.
"""

from __future__ import annotations

import numpy as np
import pytest

import verifier
from verifier.cases.loading import case_from_mapping
from verifier.errors import CaseError
from verifier.run.runner import Runner
from verifier.torch_side.autograd import make_leaves

INPUTS = {"x": {"shape": [3], "sample": "normal", "seed": 3},
          "z": {"shape": [3], "sample": "normal", "seed": 4, "requires_grad": False}}


def case(forward, inputs=INPUTS):
    return case_from_mapping({"name": "t.inplace", "inputs": inputs, "forward": forward,
                              "grad_output": "random"})


@pytest.mark.parametrize("forward", [
    "x * F.hardtanh(z, inplace=True)",
    "x * F.normalize(z, out=z)",
    "x * torch.exp(z, out=z)",
    "F.relu(x * 1, inplace=True)",
    "x * F.hardtanh(z, inplace=1)",
])
def test_keywords_that_write_in_place_are_refused_at_load(forward):
    with pytest.raises(CaseError, match="it makes torch write into a tensor in place"):
        case(forward)


def test_inplace_given_positionally_is_refused_with_a_sentence():
    result = Runner(cache=None).run(case("x * F.hardtanh(z * 1, -1, 1, True)"), "float64")
    assert result.status == "error" and "inplace=True makes torch write into its input" in result.message


def test_inplace_false_is_allowed_and_checked():
    result = Runner(cache=None).run(case("F.hardtanh(x, inplace=False) * z"), "float64")
    assert result.status == "pass", result.message


def test_inplace_method_on_a_constant_is_still_refused():
    result = Runner(cache=None).run(case("x * z.mul_(2)"), "float64")
    assert result.status == "error" and "constant input in place" in result.message


def test_torch_gets_copies_of_the_point():
    c = case("x * z")
    values = {"x": np.array([1.0, 2.0, 3.0]), "z": np.array([4.0, 5.0, 6.0])}
    before = {k: v.copy() for k, v in values.items()}
    for t in make_leaves(c, values, "float64"):
        t.data.mul_(10)
    for name in values:
        np.testing.assert_array_equal(values[name], before[name])


def test_a_torch_side_that_writes_into_a_constant_is_caught():
    """The old false pass: torch doubles z in place, and the exact side must not see the doubled z."""

    def writes(x, z):
        return x * z.mul_(2)

    c = verifier.make_case("t.writes", INPUTS, torch=writes, sympy="x * z", grad_output="random")
    result = Runner(cache=None).run(c, "float64")
    assert result.status == "fail"
    assert "forward" in result.message and "gradient" in result.message
    honest = verifier.make_case("t.honest", INPUTS, torch=lambda x, z: x * (z * 2), sympy="x * (z * 2)",
                                grad_output="random")
    assert Runner(cache=None).run(honest, "float64").status == "pass"
