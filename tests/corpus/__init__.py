"""The planted-bug corpus (tests/test_corpus.py, benchmarks/corpus_vs_gradcheck.py).

``CORPUS`` lists every planted bug with its correct twin; importing this
package fills it from the family modules.
"""

from . import breadth, elementwise, tensors  # noqa: E402,F401  (fill CORPUS)
from .registry import CORPUS, DTYPES, KINDS, Planted

__all__ = ["CORPUS", "DTYPES", "KINDS", "Planted"]
