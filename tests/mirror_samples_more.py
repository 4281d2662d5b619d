"""Samples (for tests/test_mirror.py) of the mirrors in shape2.py, special2.py and nn2.py."""

from __future__ import annotations

import numpy as np


def more_samples(call, Num, Ints):
    return {
        "positive": lambda g: call(g.x(3, 4)),
        "fliplr": lambda g: call(g.x(3, 4, 2)),
        "flipud": lambda g: call(g.x(3, 4)),
        "ravel": lambda g: call(g.x(2, 3, 2)),
        "atleast_1d": lambda g: call(g.x()),
        "atleast_2d": lambda g: call(g.x(4)),
        "atleast_3d": lambda g: call(g.x(3, 4)),
        "hstack": lambda g: call([g.x(3, 2), g.x(3, 1)]),
        "vstack": lambda g: call([g.x(4), g.x(2, 4)]),
        "dstack": lambda g: call([g.x(3), g.x(3)]),
        "column_stack": lambda g: call([g.x(3), g.x(3, 2)]),
        "tile": lambda g: call(g.x(2, 3), (2, 1, 2)),
        "diagflat": lambda g: call(g.x(2, 2), -1),
        "take_along_dim": lambda g: call(g.x(3, 4), Ints(np.array([[0, 3], [1, 1], [2, 0]])), 1),
        "unflatten": lambda g: call(g.x(3, 6), 1, (2, -1)),
        "repeat_interleave": lambda g: call(g.x(3, 2), Ints(np.array([1, 0, 2])), 0),
        "unfold_copy": lambda g: call(g.x(3, 7), 1, 3, 2),
        "expand_copy": lambda g: call(g.x(3, 1), (2, 3, 4)),
        "permute_copy": lambda g: call(g.x(2, 3, 4), (2, 0, 1)),
        "view_copy": lambda g: call(g.x(2, 6), (3, 4)),
        "diagonal_copy": lambda g: call(g.x(3, 4, 2), 1, 0, 1),
        "t_copy": lambda g: call(g.x(3, 4)),
        "transpose_copy": lambda g: call(g.x(2, 3, 4), 0, 2),
        "unsqueeze_copy": lambda g: call(g.x(3, 4), 1),
        "squeeze_copy": lambda g: call(g.x(3, 1, 4), 1),
        "alias_copy": lambda g: call(g.x(3, 4)),
        "narrow_copy": lambda g: call(g.x(3, 5), 1, 1, 3),
    }
