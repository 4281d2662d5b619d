"""Structured inputs: symmetric, symmetric positive-definite and triangular matrices.

Some functions are defined only on structured matrices: ``cholesky`` and
``eigh`` on symmetric ones (torch reads one triangle), ``solve_triangular``
on triangular ones. An input declares it with ``structure:``, and then all
three sides work *within* the structure, the subspace S of matrices with that
structure (over the last two dimensions; leading ones are a batch):

* **values** satisfy it: a sampled or filled input is made symmetric
  ((X + Xᵀ)/2), SPD (X Xᵀ + n·I, eigenvalues at least n) or triangular (the
  other triangle zeroed); a literal value must already satisfy it.
* **directions** (forward mode's tangent u, second order's w) lie in S: the
  projection of a random direction.
* **gradients** are compared as their orthogonal projection P onto S, on
  every side (exact, autograd, finite differences):

      symmetric, spd:    P(G) = (G + Gᵀ)/2
      lower_triangular:  P(G) = tril(G)        upper_triangular: P(G) = triu(G)

  P(G) is the gradient of the function restricted to S, written as a matrix
  of S: ⟨P(G), D⟩ = ⟨G, D⟩ for every direction D in S, so it is what a
  function on S determines, and nothing else. The finite differences
  perturb S's parameters (a symmetric matrix's lower triangle: A_ij and A_ji
  move together; a triangular matrix's own triangle) and map back by
  :func:`parameters` (``verifier/fd/structured.py``).

What projection cannot see: a gradient error orthogonal to S (for a symmetric
input, an antisymmetric one, such as a transposed gradient). Declare a
structure only where the function itself is defined on S, so that the
component outside S means nothing.
"""

from __future__ import annotations

import dataclasses

import numpy as np

STRUCTURES = ("symmetric", "spd", "lower_triangular", "upper_triangular")


def check_shape(structure: str, shape: tuple[int, ...]) -> str | None:
    """Why ``shape`` cannot hold ``structure`` (None when it can): it needs square matrices."""
    if len(shape) < 2 or shape[-1] != shape[-2]:
        return f"needs square matrices in the last two dimensions, but the shape is {list(shape)}"
    return None


def make(structure: str, values: np.ndarray) -> np.ndarray:
    """Sampled or filled values turned into ``structure`` (float64)."""
    x = np.asarray(values, dtype=np.float64)
    if structure == "symmetric":
        return (x + np.swapaxes(x, -1, -2)) / 2
    if structure == "spd":
        n = x.shape[-1]
        return x @ np.swapaxes(x, -1, -2) + n * np.eye(n)
    return project(structure, x)


def violation(structure: str, values: np.ndarray) -> str | None:
    """How a literal value breaks ``structure`` (None when it satisfies it)."""
    x = np.asarray(values, dtype=np.float64)
    if structure in ("symmetric", "spd"):
        gap = np.abs(x - np.swapaxes(x, -1, -2))
        if gap.max(initial=0.0) > 0:
            i, j = np.unravel_index(int(np.argmax(gap)), gap.shape)[-2:]
            return f"is not symmetric: element ({i}, {j}) differs from ({j}, {i})"
        if structure == "spd":
            try:
                np.linalg.cholesky(x)
            except np.linalg.LinAlgError:
                return "is not positive definite (Cholesky fails)"
        return None
    outside = x - project(structure, x)
    if np.any(outside != 0):
        i, j = np.argwhere(outside != 0)[0][-2:]
        side = "above" if structure == "lower_triangular" else "below"
        return f"is not {structure.replace('_', ' ')}: element ({i}, {j}) {side} the diagonal is not 0"
    return None


def project(structure: str, g: np.ndarray) -> np.ndarray:
    """The orthogonal projection of ``g`` (…, n, n) onto the matrices of ``structure``."""
    g = np.asarray(g, dtype=np.float64)
    if structure in ("symmetric", "spd"):
        return (g + np.swapaxes(g, -1, -2)) / 2
    n = g.shape[-1]
    keep = np.tril(np.ones((n, n), dtype=bool)) if structure == "lower_triangular" else np.triu(
        np.ones((n, n), dtype=bool))
    return np.where(keep, g, 0.0)


def project_all(case, grads: dict) -> dict:
    """``grads`` (per input name) with each structured input's gradient projected; others as they are."""
    out = dict(grads)
    for spec in case.inputs:
        if spec.structure and spec.name in out and out[spec.name] is not None:
            g = np.asarray(out[spec.name], dtype=np.float64)
            if g.ndim >= 2:
                out[spec.name] = project(spec.structure, g)
    return out


def projected(case, exact, autograd):
    """The exact and autograd results with every structured input's gradients projected (the same objects
    when the case has no structured input); both are dataclasses with ``vjp`` / ``grads`` and ``accumulated``."""
    if not any(spec.structure for spec in case.inputs):
        return exact, autograd
    return (dataclasses.replace(exact, vjp=project_all(case, exact.vjp)),
            dataclasses.replace(autograd, grads=project_all(case, autograd.grads),
                                accumulated=project_all(case, autograd.accumulated)))


def parameters(structure: str, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(free, owner, count) of the parameterization of an n×n matrix of ``structure``.

    ``free``: the flat indices (into the n·n entries) of the parameters θ,
    in order. ``owner[e]``: which parameter entry e is (−1: always 0).
    ``count[p]``: how many entries parameter p fills. A matrix is
    S(θ)_e = θ_owner[e], so ∂g/∂θ_p = Σ_{owner[e] = p} G_e and the projected
    gradient is P(G)_e = (∂g/∂θ_owner[e]) / count[owner[e]] (0 where owner is −1).
    """
    i, j = np.divmod(np.arange(n * n), n)
    if structure in ("symmetric", "spd", "lower_triangular"):
        free_mask = i >= j
    else:
        free_mask = i <= j
    free = np.flatnonzero(free_mask)
    position = np.full(n * n, -1)
    position[free] = np.arange(free.size)
    if structure in ("symmetric", "spd"):
        owner = position[np.maximum(i, j) * n + np.minimum(i, j)]
    else:
        owner = position
    count = np.bincount(owner[owner >= 0], minlength=free.size)
    return free, owner, count
