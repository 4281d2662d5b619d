"""Planted bugs in torch.linalg.lu_solve's backward for the adjoint and right-hand (left=False) solves.

The cases are cases/linalg.yaml's lu_solve entries. Each twin (tests/corpus/layers.twins) is a
``torch.autograd.Function`` whose forward is the case's solve; the correct backward is that solve's
VJP, the buggy one the VJP of the solve with the other flag, the way such a backward goes wrong when
the transposes of A = P L U are bookkept by hand (Aᵀ X = B differentiated as A X = B, X Aᵀ = B as
X A = B, a right solve as a left solve of the transposes in the wrong order).
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

CASES = Path(__file__).resolve().parents[2] / "cases" / "linalg.yaml"
DTYPES = ("float64", "float32")


def _solve(left: bool, adjoint: bool) -> Callable:
    return lambda lu, piv, b: torch.linalg.lu_solve(lu, piv.int(), b, left=left, adjoint=adjoint)


@dataclass(frozen=True)
class LuSolveBug:
    case: str
    bug: str
    forward: Callable
    wrong: Callable

    @property
    def id(self) -> str:
        return self.case.split(".", 1)[1]

    def run_case(self, buggy: bool):
        correct, wrong = twins(self.forward, self.wrong)
        return dataclasses.replace(case_library(CASES)[self.case], torch_fn=(wrong if buggy else correct).apply,
                                   expect=Expect(), name=f"{self.case}.{'buggy' if buggy else 'correct'}",
                                   dtypes=DTYPES)


LU_SOLVE_BUGS = [
    LuSolveBug("linalg.lu_solve_adjoint", "adjoint=True differentiated as the plain solve A X = B",
               _solve(True, True), _solve(True, False)),
    LuSolveBug("linalg.lu_solve_right_adjoint", "X Aᵀ = B differentiated as X A = B",
               _solve(False, True), _solve(False, False)),
    LuSolveBug("linalg.lu_solve_right", "X A = B differentiated as X Aᵀ = B (the transposes' order)",
               _solve(False, False), _solve(False, True)),
]
