"""Planted bugs in the torch.masked ops of cases/masked.yaml: a correct twin and a wrong backward per op.

As in ``corpus.layers``: the correct twin's backward is the VJP of the op as the
built-in case calls it, the buggy one the VJP of a nearby wrong forward, the
way a masked kernel's backward goes wrong (the mask forgotten, the divisor of
all elements instead of the valid ones, the other correction, the norm
treated as a constant). They run on the built-in case's own inputs and
symbolic side, so a caught bug says the case itself would catch it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from verifier.cases.case import Expect

from .layers import twins
from .registry import case_library

CASES = Path(__file__).resolve().parents[2] / "cases" / "masked.yaml"
DTYPES = ("float64", "float32")
M = torch.masked


@dataclass(frozen=True)
class MaskedBug:
    case: str                 # the built-in case whose inputs (x, m) and symbolic side the twins use
    bug: str
    forward: Callable         # the op, with the case's arguments
    wrong: Callable           # the forward whose VJP the buggy backward computes

    @property
    def id(self) -> str:
        return self.case.split(".", 1)[1]

    def run_case(self, buggy: bool):
        correct, wrong = twins(self.forward, self.wrong)
        fn = wrong if buggy else correct
        return dataclasses.replace(case_library(CASES)[self.case], torch_fn=fn.apply, expect=Expect(),
                                   name=f"{self.case}.{'buggy' if buggy else 'correct'}", dtypes=DTYPES)


def _all(m):
    return torch.ones_like(m)


MASKED_BUGS = [
    MaskedBug("masked.sum_broadcast_mask", "the mask forgotten in the backward (every element gets v)",
              lambda x, m: M.sum(x, 0, mask=m), lambda x, m: M.sum(x, 0, mask=_all(m))),
    MaskedBug("masked.prod", "masked-out factors left in the product's backward",
              lambda x, m: M.prod(x, 1, mask=m), lambda x, m: M.prod(x, 1, mask=_all(m))),
    MaskedBug("masked.cumsum", "cumsum's backward over every element, masked-out ones included",
              lambda x, m: M.cumsum(x, 1, mask=m), lambda x, m: torch.cumsum(x, 1)),
    MaskedBug("masked.amax", "amax's gradient sent to the masked-out maximum",
              lambda x, m: M.amax(x, 1, mask=m), lambda x, m: torch.amax(x, 1)),
    MaskedBug("masked.mean", "the mean divided by all elements, not by the valid count",
              lambda x, m: M.mean(x, (0, 1), keepdim=True, mask=m),
              lambda x, m: M.sum(x, (0, 1), keepdim=True, mask=m) / 6),
    MaskedBug("masked.var", "the biased divisor N instead of N - 1",
              lambda x, m: M.var(x, 1, mask=m), lambda x, m: M.var(x, 1, unbiased=False, mask=m)),
    MaskedBug("masked.logsumexp", "the mask forgotten in logsumexp's softmax weights",
              lambda x, m: M.logsumexp(x, 1, mask=m), lambda x, m: torch.logsumexp(x, 1)),
    MaskedBug("masked.softmax", "softmax's backward over the whole row, the mask forgotten",
              lambda x, m: M.softmax(x, 1, mask=m), lambda x, m: torch.softmax(x, 1) * m),
    MaskedBug("masked.normalize", "the norm treated as a constant in normalize's backward",
              lambda x, m: M.normalize(x, 2.0, 1, eps=1e-4, mask=m),
              lambda x, m: torch.where(m, x, 0.0) / M.norm(x, 2.0, 1, keepdim=True, mask=m).detach().clamp_min(1e-4)),
]
