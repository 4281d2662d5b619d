"""The exact Jacobian of a small case at its point, as numbers (for ``explain --jacobian`` and report.html).

Entries are the model's SymPy expressions evaluated at the point the case
ran at (the inputs as the dtype holds them) in 40-digit arithmetic and
rounded to float64. Only for small Jacobians: a large one is never built
(the exact Jᵀv comes from a sweep instead).
"""

from __future__ import annotations

import numpy as np
import sympy as sp

#: Entries up to which a case that did not pass carries its exact Jacobian (report.html shows it).
REPORT_ENTRIES = 100


def jacobian_at(model, point: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per differentiated input, J = dy/dx at ``point`` as a (output elements × input elements) float64 array."""
    subs = {}
    for name, syms in model.symbols.items():
        if name in point:
            subs.update({s: sp.Float(float(x), 40) for s, x in zip(np.ravel(syms), np.ravel(point[name]))})
    jac = model.jacobian()
    size = int(np.prod(model.output.shape)) if model.output.shape else 1
    out = {}
    for name in model.wrt:
        j = np.asarray(jac[name], dtype=object).reshape(size, -1)
        out[name] = np.array([[_value(entry, subs) for entry in row] for row in j], dtype=np.float64)
    return out


def _value(entry, subs) -> float:
    """One entry (a SymPy expression, or a plain number for an entry that is 0; never text) at the point."""
    entry = entry if isinstance(entry, sp.Basic) else sp.Float(float(entry))
    return float(sp.N(entry.xreplace(subs), 17))
