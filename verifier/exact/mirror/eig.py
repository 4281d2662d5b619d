"""A general real matrix's eigenvalues and eigenvectors, evaluated numerically at high precision.

Definitions (one real n x n matrix, torch's conventions):

* eigvals(A): the n (complex) roots λ of det(A − λI) = 0.
* eig(A): the eigenvectors V (columns, each of 2-norm 1): ``A V = V diag(λ)``.

Neither has a closed form past 2x2 nor a canonical order: torch returns LAPACK's (geev) order, and each
eigenvector only up to a phase e^{iφ}. Both are gauges, not functions of A. Inside
:func:`decompositions.gauge` the outputs are moved along the gauge so that the numeric-exact route can check
that the case's output does not depend on it: the flips of ``eig``'s key are

* ``k`` < n − 1: eigenvalues (and eigenvector columns) k and k + 1 swapped; adjacent transpositions generate
  every permutation, so a function invariant under each is invariant under all orders;
* ``n − 1 + k``: eigenvector column k multiplied by e^{i} (one radian: its powers are dense in the unit circle,
  so a continuous function invariant under it is invariant under every phase).

eigvals and eig of the same matrix share the permutation (torch's eig and eigvals both call geev). A
gauge-invariant real function of them is what a case checks, as PyTorch's own tests do: a symmetric function
of the eigenvalues (``(torch.linalg.eigvals(A) ** 3).sum().real``, ``torch.linalg.eigvals(A).abs().sum()``)
or of |V| (``(torch.linalg.eig(A).abs() ** 4).sum()``). At a repeated eigenvalue the derivative is not
defined (it divides by the gap λ_j − λ_i): the point is refused, as for eigh.
"""

from __future__ import annotations

import mpmath
import numpy as np
import sympy
import torch

from ._arrays import unsupported
from ._table import register
from .decompositions import _GAUGE, _check_gaps, _matrix, _note, _note_key, _scale, gauge_key

#: The phase a gauge flip multiplies an eigenvector by (one radian: dense powers in the unit circle).
PHASE = 1


def _eig(name: str, A):
    a = _matrix(name, A)
    if a.rows != a.cols:
        raise unsupported(f"{name} needs a square matrix, got {a.rows}x{a.cols}")
    values, vectors = mpmath.eig(a)
    n = a.rows
    for j in range(n):                                   # unit 2-norm columns, as LAPACK's geev returns
        norm = mpmath.sqrt(mpmath.fsum(abs(vectors[i, j]) ** 2 for i in range(n)))
        for i in range(n):
            vectors[i, j] = vectors[i, j] / norm
    scale = _scale(a)
    by_gap = _check_gaps(name, list(values), scale, "the eigenvalues", pairwise=True)       # scale / smallest gap
    # the eigenvector basis's condition: a non-normal A's eigenvalues move by up to κ₂(V)·‖δA‖
    sv = mpmath.svd_c(vectors, compute_uv=False)
    cond = by_gap * float(max(sv) / min(sv))
    return a, list(values), vectors, cond


def _gauged(key: str, values: list, vectors: mpmath.matrix | None):
    """values (and vectors) moved along the gauge flip in force for ``key``, if any."""
    n = len(values)
    _note_key(key, 2 * n - 1 if vectors is not None else n - 1)
    flip = _GAUGE.get()
    if flip is None or flip[0] != key:
        return values, vectors
    k = flip[1]
    values = list(values)
    vectors = None if vectors is None else vectors.copy()
    if k < n - 1:
        values[k], values[k + 1] = values[k + 1], values[k]
        if vectors is not None:
            for i in range(n):
                vectors[i, k], vectors[i, k + 1] = vectors[i, k + 1], vectors[i, k]
    elif vectors is not None:
        turn = mpmath.expj(PHASE)
        for i in range(n):
            vectors[i, k - n + 1] = vectors[i, k - n + 1] * turn
    return values, vectors


def _complex(z) -> sympy.Expr:
    dps = mpmath.mp.dps
    z = mpmath.mpc(z)
    return sympy.Float(z.real, dps) + sympy.I * sympy.Float(z.imag, dps)


@register("eigvals", torch=torch.linalg.eigvals,
          doc="the roots of det(A − λI) (complex; order is a gauge: check a symmetric function, numeric-exact route)")
def eigvals(A):
    a, values, _, cond = _eig("eigvals", A)
    _note("eigvals", cond, len(values), "eigvals")
    values, _ = _gauged(gauge_key("eig", a), values, None)
    return np.array([_complex(v) for v in values], dtype=object)


@register("eig", torch=torch.linalg.eig, finish=lambda out: out.eigenvectors,
          doc="V of A V = V diag(λ), unit columns (complex; order and phases are a gauge, numeric-exact route)")
def eig(A):
    a, values, vectors, cond = _eig("eig", A)
    _note("eig", cond, len(values), "eig")
    _, vectors = _gauged(gauge_key("eig", a), values, vectors)
    n = len(values)
    out = np.empty((n, n), dtype=object)
    for i in range(n):
        for j in range(n):
            out[i, j] = _complex(vectors[i, j])
    return out
