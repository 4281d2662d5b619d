"""Planted bugs in hand-written backwards of the singular-value matrix norms ('nuc', 2, -2).

The cases are cases/linalg_numeric.yaml's matrix_norm entries (numeric-exact route). Each twin is a
``torch.autograd.Function`` whose forward is torch's SVD and whose backward is written by hand:
the correct one is g·U Vᵀ (nuclear norm: the sum over every singular pair u_i v_iᵀ), g·u₁ v₁ᵀ
(spectral norm) or g·u_k v_kᵀ (smallest singular value); the buggy one has a mistake such a
backward really has: U Vᵀ transposed, one pair instead of all, the other end of the spectrum, or
the Frobenius norm's A/‖A‖_F (the 'nuc' order routed as 'fro', issue 12's class 3).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch.autograd import Function

from .decompositions import DTYPES, DecompositionBug

__all__ = ["DTYPES", "NORM_BUGS"]


def _pairs(u, vh, first: int, last: int):
    return u[..., :, first:last] @ vh[..., first:last, :]


def _gradient(kind: str, a, u, s, vh):
    """d(norm)/dA of each matrix of the batch, for a correct (or a wrong) hand-written formula."""
    k = s.shape[-1]
    return {
        "nuc": lambda: u @ vh,
        "nuc-transposed": lambda: (u @ vh).mT,
        "nuc-first-pair": lambda: _pairs(u, vh, 0, 1),
        "fro": lambda: a / torch.linalg.matrix_norm(a)[..., None, None],
        "2": lambda: _pairs(u, vh, 0, 1),
        "2-last-pair": lambda: _pairs(u, vh, k - 1, k),
        "-2": lambda: _pairs(u, vh, k - 1, k),
        "-2-first-pair": lambda: _pairs(u, vh, 0, 1),
    }[kind]()


def norm_twin(order: str, backward: str, keepdim: bool = False) -> Callable:
    """matrix_norm(A, order) over the last two dims, its backward the formula named ``backward``."""
    class SingularNorm(Function):
        @staticmethod
        def forward(ctx, a):
            u, s, vh = torch.linalg.svd(a, full_matrices=False)
            ctx.save_for_backward(a, u, s, vh)
            value = {"nuc": s.sum(-1), "2": s[..., 0], "-2": s[..., -1]}[order]
            return value[..., None, None] if keepdim else value

        @staticmethod
        def backward(ctx, g):
            a, u, s, vh = ctx.saved_tensors
            g = g.reshape(a.shape[:-2])[..., None, None]
            return g * _gradient(backward, a, u, s, vh)
    return SingularNorm.apply


def _bug(case: str, bug: str, order: str, wrong: str, keepdim: bool = False) -> DecompositionBug:
    return DecompositionBug(case, bug, lambda b: norm_twin(order, wrong if b else order, keepdim))


NORM_BUGS = [
    _bug("linalg_numeric.matrix_norm_nuc_3x3", "nuclear-norm gradient (U Vᵀ)ᵀ = V Uᵀ", "nuc", "nuc-transposed"),
    _bug("linalg_numeric.norm_nuc_batched_2x4x3", "nuclear-norm gradient of the first singular pair only",
         "nuc", "nuc-first-pair"),
    _bug("linalg_numeric.torch_norm_nuc_3x4", "'nuc' differentiated as the Frobenius norm (A/‖A‖_F)", "nuc", "fro"),
    _bug("linalg_numeric.matrix_norm_spectral_4x3", "spectral-norm gradient of the smallest pair, not the largest",
         "2", "2-last-pair"),
    _bug("linalg_numeric.matrix_norm_min_3x3", "smallest-singular-value gradient of the largest pair",
         "-2", "-2-first-pair", keepdim=True),
]
