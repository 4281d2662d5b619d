"""Symbolic mirrors of the torch functions a case expression may call.

Each supported function has a :class:`Function` entry in ``FUNCTIONS``: its
mathematical definition over symbolic element arrays (numpy object arrays of
SymPy expressions) and the torch callable it is checked against. ``resolve``
looks names (and ``ALIASES``) up for the expression language.
"""

from ._table import ALIASES, FUNCTIONS, REFUSED, SHARED, SPELLINGS, Function, known, lookup, qualified_names, resolve

# Importing the families fills the table; their order only matters for imports between them.
from . import elementwise, activations, reductions, shape, linalg, einsum, nn, spectral  # noqa: E402,F401  isort: skip
from . import composites, special, selection, indexing, blas, factors, conv, pooling, norms, resample, attention, losses, decompositions  # noqa: E402,F401  isort: skip
from . import complex_numbers, fourier, fourier_nd, eig, lu  # noqa: E402,F401  isort: skip
from . import shape2, special2, numeric2, nn2, pieces, masked  # noqa: E402,F401  isort: skip
from . import spellings  # noqa: E402,F401  isort: skip  (after the families: it reads their entries)

__all__ = ["ALIASES", "FUNCTIONS", "REFUSED", "SHARED", "SPELLINGS", "Function", "known", "lookup",
           "qualified_names", "resolve"]
