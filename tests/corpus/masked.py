"""Planted bugs in the torch.masked ops of cases/masked.yaml: a correct twin and a wrong backward per op.

As in ``corpus.layers`` (whose ``LayerBug`` they are): the correct twin's
backward is the VJP of the op as the built-in case calls it, the buggy one the
VJP of a nearby wrong forward, the way a masked kernel's backward goes wrong
(the mask forgotten, the divisor of all elements instead of the valid ones,
the other correction, the norm treated as a constant). They run on the
built-in case's own inputs (x, m) and symbolic side, so a caught bug says the
case itself would catch it.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from .layers import LayerBug

CASES = Path(__file__).resolve().parents[2] / "cases" / "masked.yaml"
DTYPES = ("float64", "float32")
M = torch.masked
bug = functools.partial(LayerBug, cases=CASES)


def _all(m):
    return torch.ones_like(m)


MASKED_BUGS = [
    bug("masked.sum_broadcast_mask", "convention", "the mask forgotten in the backward (every element gets v)",
        lambda x, m: M.sum(x, 0, mask=m), lambda x, m: M.sum(x, 0, mask=_all(m))),
    bug("masked.prod", "convention", "masked-out factors left in the product's backward",
        lambda x, m: M.prod(x, 1, mask=m), lambda x, m: M.prod(x, 1, mask=_all(m))),
    bug("masked.cumsum", "convention", "cumsum's backward over every element, masked-out ones included",
        lambda x, m: M.cumsum(x, 1, mask=m), lambda x, m: torch.cumsum(x, 1)),
    bug("masked.amax", "index", "amax's gradient sent to the masked-out maximum",
        lambda x, m: M.amax(x, 1, mask=m), lambda x, m: torch.amax(x, 1)),
    bug("masked.mean", "divisor", "the mean divided by all elements, not by the valid count",
        lambda x, m: M.mean(x, (0, 1), keepdim=True, mask=m),
        lambda x, m: M.sum(x, (0, 1), keepdim=True, mask=m) / 6),
    bug("masked.var", "divisor", "the biased divisor N instead of N - 1",
        lambda x, m: M.var(x, 1, mask=m), lambda x, m: M.var(x, 1, unbiased=False, mask=m)),
    bug("masked.logsumexp", "convention", "the mask forgotten in logsumexp's softmax weights",
        lambda x, m: M.logsumexp(x, 1, mask=m), lambda x, m: torch.logsumexp(x, 1)),
    bug("masked.softmax", "convention", "softmax's backward over the whole row, the mask forgotten",
        lambda x, m: M.softmax(x, 1, mask=m), lambda x, m: torch.softmax(x, 1) * m),
    bug("masked.normalize", "constant-statistics", "the norm treated as a constant in normalize's backward",
        lambda x, m: M.normalize(x, 2.0, 1, eps=1e-4, mask=m),
        lambda x, m: torch.where(m, x, 0.0) / M.norm(x, 2.0, 1, keepdim=True, mask=m).detach().clamp_min(1e-4)),
]
