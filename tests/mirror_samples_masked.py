"""Sample calls of the torch.masked mirrors for tests/test_resolution.py (forward agreement with torch).

``masked_samples(call, Ints)`` receives test_mirror's sample helpers. The masks leave a valid element
in every slice (a fully masked slice's nan/inf is compared in tests/test_masked.py).
"""

from __future__ import annotations

import numpy as np


def masked_samples(call, Ints):
    m = Ints(np.array([[1, 0, 1, 1], [0, 1, 0, 1], [1, 1, 0, 1]], dtype=bool))
    row = Ints(np.array([1, 0, 1, 1], dtype=bool))
    other = Ints(np.array([[0, 1, 1, 0], [1, 1, 1, 1], [1, 0, 1, 0]], dtype=bool))     # valid wherever m is not
    reductions = {
        "sum": lambda g: call(g.x(3, 4), 1, keepdim=True, mask=m),
        "prod": lambda g: call(g.x(3, 4), (0, 1), mask=m),
        "cumsum": lambda g: call(g.x(3, 4), 1, mask=m),
        "cumprod": lambda g: call(g.x(3, 4), 0, mask=row),
        "amax": lambda g: call(g.x(3, 4), 1, mask=m),
        "amin": lambda g: call(g.x(3, 4), 0, keepdim=True, mask=m),
        "mean": lambda g: call(g.x(3, 4), None, mask=m),
        "median": lambda g: call(g.x(3, 4), 1, mask=m),
        "logsumexp": lambda g: call(g.x(3, 4), 1, mask=m),
        "norm": lambda g: call(g.x(3, 4), 3.0, 1, mask=m),
        "var": lambda g: call(g.x(3, 4), 0, correction=0, mask=m),
        "std": lambda g: call(g.x(3, 4), 1, unbiased=True, mask=m),
        "softmax": lambda g: call(g.x(3, 4), 1, mask=m),
        "log_softmax": lambda g: call(g.x(3, 4), 0),          # no mask: a masked-out -inf is in test_masked
        "softmin": lambda g: call(g.x(3, 4), 1, mask=m),
        "normalize": lambda g: call(g.x(3, 4), 1.0, 0, mask=m),
        "logaddexp": lambda g: call(g.x(3, 4), g.x(3, 4), input_mask=m, other_mask=other),
    }
    return {f"torch.masked.{name}": make for name, make in reductions.items()}
