"""Planted bugs in hand-written decomposition backwards, for the cases of cases/linalg_numeric.yaml.

Each twin is a ``torch.autograd.Function`` whose forward is torch's decomposition and whose
backward is written out by hand, as a library would: the correct formula, and the same formula
with the mistake such backwards really have (a missing rotation, a transpose forgotten, a sign of
the eigengap flipped, the complement term of a tall SVD left out). The case's torch side becomes
the twin composed with the rest of the case's forward; the numeric-exact side is the case's own.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch.autograd import Function

from verifier.cases.case import Expect

from .registry import case_library

CASES = Path(__file__).resolve().parents[2] / "cases" / "linalg_numeric.yaml"
DTYPES = ("float64", "float32")


def _sym_lower(a):
    """The symmetric matrix torch's eigh reads (the lower triangle)."""
    low = torch.tril(a)
    return low + torch.tril(a, -1).mT


def eigvalsh_twin(bug: bool, upper: bool = False) -> Callable:
    class Eigvalsh(Function):
        @staticmethod
        def forward(ctx, a):
            lam, q = torch.linalg.eigh(a, UPLO="U" if upper else "L")
            ctx.save_for_backward(q)
            return lam

        @staticmethod
        def backward(ctx, g):
            (q,) = ctx.saved_tensors
            if bug:                                      # the rotation back to A's basis forgotten
                return torch.diag(g)
            return q @ torch.diag(g) @ q.mT
    return Eigvalsh.apply


def eigh_twin(bug: bool) -> Callable:
    class EighQ(Function):
        @staticmethod
        def forward(ctx, a):
            lam, q = torch.linalg.eigh(a)
            ctx.save_for_backward(lam, q)
            return q

        @staticmethod
        def backward(ctx, gq):
            lam, q = ctx.saved_tensors
            gap = lam[None, :] - lam[:, None]            # λ_j - λ_i
            if bug:                                      # the eigengap's sign flipped
                gap = -gap
            f = torch.where(torch.eye(len(lam), dtype=torch.bool), torch.zeros_like(gap), 1 / gap)
            return q @ (f * (q.mT @ gq)) @ q.mT
    return EighQ.apply


def svdvals_twin(bug: bool) -> Callable:
    class Svdvals(Function):
        @staticmethod
        def forward(ctx, a):
            u, s, vh = torch.linalg.svd(a, full_matrices=False)
            ctx.save_for_backward(u, vh)
            return s

        @staticmethod
        def backward(ctx, g):
            u, vh = ctx.saved_tensors
            return u @ torch.diag(g) @ (vh.mT if bug else vh)   # bug: V where Vᵀ belongs
    return Svdvals.apply


def svd_u_twin(bug: bool) -> Callable:
    """U of a tall A; the backward is autograd's, minus the complement term (I - UUᵀ) gU Σ⁻¹ Vᵀ in the bug."""
    class SvdU(Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return torch.linalg.svd(a, full_matrices=False).U

        @staticmethod
        def backward(ctx, gu):
            (a,) = ctx.saved_tensors
            with torch.enable_grad():
                leaf = a.detach().requires_grad_(True)
                u, s, vh = torch.linalg.svd(leaf, full_matrices=False)
                (grad,) = torch.autograd.grad(u, leaf, gu)
            if bug:
                eye = torch.eye(a.shape[0], dtype=a.dtype)
                grad = grad - (eye - u @ u.mT).detach() @ gu @ torch.diag(1 / s.detach()) @ vh.detach()
            return grad
    return SvdU.apply


def matrix_exp_twin(bug: bool) -> Callable:
    """exp(A); its VJP is the Fréchet derivative at Aᵀ applied to G (the bug takes it at A)."""
    class MatrixExp(Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return torch.linalg.matrix_exp(a)

        @staticmethod
        def backward(ctx, g):
            (a,) = ctx.saved_tensors
            at = a if bug else a.mT
            n = a.shape[0]
            block = torch.zeros(2 * n, 2 * n, dtype=a.dtype)
            block[:n, :n], block[n:, n:], block[:n, n:] = at, at, g
            return torch.linalg.matrix_exp(block)[:n, n:]
    return MatrixExp.apply


def pinv_twin(bug: bool) -> Callable:
    """pinv(A); the bug keeps only -Pᵀ G Pᵀ (right for an invertible A, not for a wide one)."""
    class Pinv(Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return torch.linalg.pinv(a)

        @staticmethod
        def backward(ctx, g):
            (a,) = ctx.saved_tensors
            if bug:
                p = torch.linalg.pinv(a)
                return -p.mT @ g @ p.mT
            with torch.enable_grad():
                leaf = a.detach().requires_grad_(True)
                return torch.autograd.grad(torch.linalg.pinv(leaf), leaf, g)[0]
    return Pinv.apply


def lstsq_twin(bug: bool) -> Callable:
    """lstsq(A, B).solution; the bug's A-gradient drops the residual term (kept only -Pᵀ G Xᵀ)."""
    class Lstsq(Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return torch.linalg.lstsq(a, b).solution

        @staticmethod
        def backward(ctx, g):
            a, b = ctx.saved_tensors
            with torch.enable_grad():
                la, lb = a.detach().requires_grad_(True), b.detach().requires_grad_(True)
                ga, gb = torch.autograd.grad(torch.linalg.lstsq(la, lb).solution, (la, lb), g)
            if bug:
                p = torch.linalg.pinv(a)
                ga = -p.mT @ g @ (p @ b).mT
            return ga, gb
    return Lstsq.apply


def eig_twin(bug: bool, vectors: bool) -> Callable:
    """torch.linalg.eig's (λ, V) of a real A with PyTorch's backward written out (FunctionsManual
    linalg_eig_backward): gA = V⁻ᴴ (diag(gλ) + (Vᴴg_V − Vᴴ V diag(Re(Vᴴg_V)_ii)) / Ē) Vᴴ, Ē_ij = conj(λ_j − λ_i);
    the bug forgets the conjugates (V⁻ᵀ … Vᵀ, Ē without conj): invisible for real eigenvalues only."""
    class Eig(Function):
        @staticmethod
        def forward(ctx, a):
            lam, v = torch.linalg.eig(a)
            ctx.save_for_backward(lam, v)
            return v if vectors else lam

        @staticmethod
        def backward(ctx, g):
            lam, v = ctx.saved_tensors
            h = (lambda m: m.mT) if bug else (lambda m: m.mH)
            n = lam.shape[-1]
            inner = torch.zeros(n, n, dtype=v.dtype)
            if vectors:
                vhg = h(v) @ g
                inner = vhg - h(v) @ (v * vhg.diagonal().real.unsqueeze(-2))
                gap = lam.unsqueeze(-2) - lam.unsqueeze(-1)
                gap = gap if bug else gap.conj()
                gap.diagonal().fill_(1.0)
                inner = inner / gap
            else:
                inner = torch.diag_embed(g)
            return torch.linalg.solve(h(v), inner @ h(v)).real
    return Eig.apply


def lu_twin(bug: bool, packed: bool) -> Callable:
    """LU of a square A (stack(P, L, U), or the packed LU) with the backward written out:
    gA = P L⁻ᵀ (tril₋₁(Lᵀ g_L) + triu(g_U Uᵀ)) U⁻ᵀ; the bug keeps Lᵀ g_L's diagonal (L's unit diagonal moved)."""
    class LU(Function):
        @staticmethod
        def forward(ctx, a):
            p, lower, upper = torch.linalg.lu(a)
            ctx.save_for_backward(p, lower, upper)
            return lower.tril(-1) + upper if packed else torch.stack((p, lower, upper))

        @staticmethod
        def backward(ctx, g):
            p, lower, upper = ctx.saved_tensors
            g_l, g_u = (g.tril(-1), g.triu()) if packed else (g[1], g[2])
            phi = (lower.mT @ g_l).tril(0 if bug else -1) + (g_u @ upper.mT).triu()
            x = torch.linalg.solve_triangular(lower.mT, phi, upper=True, unitriangular=True)
            return p @ torch.linalg.solve_triangular(upper.mT, x, upper=False, left=False)
    return LU.apply


@dataclass(frozen=True)
class DecompositionBug:
    case: str                            # the built-in case whose inputs and numeric-exact side the twins use
    bug: str
    torch_fn: Callable[[bool], Callable]   # buggy -> the case's torch forward built on the twin

    @property
    def id(self) -> str:
        return self.case.split(".", 1)[1]

    def run_case(self, buggy: bool):
        return dataclasses.replace(_library()[self.case], torch_fn=self.torch_fn(buggy), expect=Expect(),
                                   name=f"{self.case}.{'buggy' if buggy else 'correct'}", dtypes=DTYPES)


def _library() -> dict:
    return case_library(CASES)


def _projector(q):
    return q[:, 2:3] @ q[:, 2:3].mT


BUGS = [
    DecompositionBug("linalg_numeric.eigvalsh_3x3", "eigenvalue gradient not rotated back (diag(g), not Q diag(g) Qᵀ)",
                     lambda b: eigvalsh_twin(b)),
    DecompositionBug("linalg_numeric.eigvalsh_4x4_upper", "eigenvalue gradient not rotated back (UPLO='U')",
                     lambda b: eigvalsh_twin(b, upper=True)),
    DecompositionBug("linalg_numeric.eigh_abs_3x3", "eigenvector derivative with the eigengap's sign flipped",
                     lambda b: (lambda a, f=eigh_twin(b): f(a).abs())),
    DecompositionBug("linalg_numeric.eigh_projector_4x4", "eigenvector derivative with the eigengap's sign flipped",
                     lambda b: (lambda a, f=eigh_twin(b): _projector(f(a)))),
    DecompositionBug("linalg_numeric.svdvals_4x3", "singular-value gradient U diag(g) V instead of U diag(g) Vᵀ",
                     lambda b: svdvals_twin(b)),
    DecompositionBug("linalg_numeric.svd_projector_4x3", "tall SVD's U backward without the (I - UUᵀ) term",
                     lambda b: (lambda a, f=svd_u_twin(b): f(a) @ f(a).mT)),
    DecompositionBug("linalg_numeric.matrix_exp_3x3", "matrix_exp backward: Fréchet derivative at A, not Aᵀ",
                     lambda b: matrix_exp_twin(b)),
    DecompositionBug("linalg_numeric.matrix_exp_4x4", "matrix_exp backward: Fréchet derivative at A, not Aᵀ",
                     lambda b: (lambda a, f=matrix_exp_twin(b): (f(a) * a).sum())),
    DecompositionBug("linalg_numeric.pinv_3x5", "pinv backward of a wide A with only the -Pᵀ G Pᵀ term",
                     lambda b: pinv_twin(b)),
    DecompositionBug("linalg_numeric.eigvals_cubes_4x4", "eigvals backward with Vᵀ for Vᴴ (conjugates forgotten)",
                     lambda b: (lambda a, f=eig_twin(b, False): (f(a) ** 3).sum().real)),
    DecompositionBug("linalg_numeric.eigvals_abs_4x4", "eigvals backward with Vᵀ for Vᴴ (conjugates forgotten)",
                     lambda b: (lambda a, f=eig_twin(b, False): f(a).abs().sum())),
    DecompositionBug("linalg_numeric.eig_abs4_4x4", "eig backward with Vᵀ for Vᴴ and the eigengaps unconjugated",
                     lambda b: (lambda a, f=eig_twin(b, True): (f(a).abs() ** 4).sum())),
    DecompositionBug("linalg_numeric.lu_3x3", "LU backward keeping the diagonal of Lᵀ g_L (L's unit diagonal)",
                     lambda b: lu_twin(b, packed=False)),
    DecompositionBug("linalg_numeric.lu_factor_4x4", "LU backward keeping the diagonal of Lᵀ g_L (L's unit diagonal)",
                     lambda b: lu_twin(b, packed=True)),
    DecompositionBug("linalg_numeric.lstsq_4x3", "lstsq backward without the residual term",
                     lambda b: lstsq_twin(b)),
]
