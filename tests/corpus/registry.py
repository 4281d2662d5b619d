"""The planted-bug corpus: each entry pairs a correct ``torch.autograd.Function`` with a realistically wrong twin.

An entry knows its kind of bug, the inputs to check it at, and the correct
mathematics as a case-language expression (the verifier's symbolic side).
``case(fn)`` turns it into an ordinary verifier case through the public API.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import verifier

#: The kinds of bug the issue asks for, in its words.
KINDS = {
    "factor": "off by a constant factor (including 1.001)",
    "transpose": "a transposed matrix",
    "product-rule": "a missing term of a product rule",
    "reduction-dim": "a wrong broadcast reduction (the sum over the wrong dim)",
    "one-element": "a single wrong element",
    "sign": "a sign error",
    "negative-only": "wrong only for negative inputs",
    "ignored-grad-output": "an ignored grad_output (using ones)",
    "swapped-inputs": "a gradient for one input returned for another",
    "silent-cast": "a forward in float32 that is silently cast",
    "beside-a-large-element": "an error of 1 beside one large element (a global tolerance scale hid it)",
}

DTYPES = ("float64", "float32")


@dataclass(frozen=True)
class Planted:
    """One planted bug and its correct twin."""

    id: str
    kind: str
    bug: str                        # what is wrong, in one line
    correct: type                   # a torch.autograd.Function subclass
    buggy: type                     # the same forward, the wrong backward
    inputs: dict[str, Any]          # case-format input specs, in argument order
    sympy: Any                      # the correct mathematics: case-language text, or a function of symbol arrays
    grad_output: Any = "random"
    #: dtypes in which the buggy twin really computes a wrong gradient; a
    #: float32 forward is exact when the case itself runs in float32.
    buggy_dtypes: tuple[str, ...] = DTYPES

    def case(self, fn: type, dtypes=DTYPES) -> verifier.Case:
        which = "buggy" if fn is self.buggy else "correct"
        return verifier.make_case(f"corpus.{self.id}.{which}", self.inputs, torch=fn.apply, sympy=self.sympy,
                                  grad_output=self.grad_output, dtypes=list(dtypes), tags=["corpus", self.kind],
                                  description=self.bug)

    def tensors(self, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, ...]:
        """The inputs as leaf tensors (for torch.autograd.gradcheck), built exactly as the verifier builds them."""
        case = self.case(self.correct)
        return tuple(torch.as_tensor(spec.values(), dtype=dtype).requires_grad_(spec.differentiated)
                     for spec in case.inputs)


CORPUS: list[Planted] = []


def plant(entry: Planted) -> Planted:
    if entry.kind not in KINDS:
        raise ValueError(f"unknown kind {entry.kind!r}")
    if any(e.id == entry.id for e in CORPUS):
        raise ValueError(f"corpus id {entry.id!r} used twice")
    CORPUS.append(entry)
    return entry


def assert_caught(result, bug: str) -> None:
    """A planted bug's run failed on its gradient, every flagged element really outside tolerance."""
    assert result.status == "fail", f"{bug}: {result.status} {result.message}"
    assert "gradient" in [c.name for c in result.checks if not c.ok]
    bad = result.rows[~result.rows["ok"]]
    assert len(bad) > 0 and (bad["abs_err"] > bad["tolerance"]).all()


def assert_passes(result) -> None:
    """A correct twin's run passed with every element checked and within tolerance."""
    assert result.status == "pass", result.message
    assert len(result.rows) > 0 and result.rows["ok"].all()


@functools.lru_cache(maxsize=None)
def case_library(path: Path) -> dict:
    """The built-in cases of one file by name (loaded once; the file must load without errors)."""
    loaded = verifier.load_paths([path])
    assert not loaded.errors, [str(e) for e in loaded.errors]
    return {c.name: c for c in loaded.cases}
