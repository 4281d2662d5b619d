"""Spectral mirrors: eigenvalues of symmetric matrices, in closed form where one exists.

``torch.linalg.eigvalsh`` reads one triangle of A (``UPLO='L'``, the lower,
by default) and returns the eigenvalues in ascending order. For a 2×2
matrix [[a, ·], [b, d]] they are m ∓ r with m = (a + d)/2 and
r = sqrt(((a − d)/2)² + b²); a 1×1 matrix is its own eigenvalue. Larger
matrices have no closed form this mirror could differentiate symbolically:
they go to the numeric-exact route (``decompositions.eigvalsh``, docs/numeric-exact.md).

Like torch's forward the mirror reads only the one triangle, so its gradient
lives in that triangle, while torch's backward returns the symmetric
V diag(v) Vᵀ. Both are gradients of the same function on symmetric
matrices: cases declare ``structure: symmetric`` (or ``spd``) on the input,
and compare them projected onto symmetric matrices (``docs/case-format.md``).
At a double eigenvalue (r = 0) the point is a kink.
"""

from __future__ import annotations

import numpy as np
import sympy
import torch

from ._arrays import as_obj, unsupported
from ._table import register
from .decompositions import eigvalsh as numeric_eigvalsh


def _eigvalsh_one(a, upper: bool):
    n = a.shape[0]
    if n < 2:                                   # a 1x1 matrix is its eigenvalue; a 0x0 one has none
        return np.array([a[i, i] for i in range(n)], dtype=object)
    b = a[0, 1] if upper else a[1, 0]
    m = (a[0, 0] + a[1, 1]) / 2
    r = sympy.sqrt(((a[0, 0] - a[1, 1]) / 2) ** 2 + b ** 2)
    return np.array([m - r, m + r], dtype=object)


@register("eigvalsh", torch=torch.linalg.eigvalsh,
          doc="ascending eigenvalues of a symmetric 1x1 or 2x2 matrix (one triangle read, UPLO='L' default)")
def eigvalsh(a, UPLO="L"):
    """torch.linalg.eigvalsh for (batches of) 1x1 and 2x2 matrices."""
    a = as_obj(a)
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise unsupported(f"eigvalsh expects (batches of) square matrices, got shape {a.shape}")
    if a.shape[-1] > 2:
        if a.ndim != 2:
            raise unsupported(f"eigvalsh past 2x2 runs on the numeric-exact route, for one matrix only; got "
                              f"shape {list(a.shape)}")
        return numeric_eigvalsh(a, UPLO)
    if UPLO not in ("L", "U"):
        raise unsupported(f"eigvalsh takes UPLO='L' or 'U', got {UPLO!r}")
    batch = a.shape[:-2]
    out = np.empty(batch + (a.shape[-1],), dtype=object)
    for idx in np.ndindex(batch):
        out[idx] = _eigvalsh_one(a[idx], UPLO == "U")
    return out
