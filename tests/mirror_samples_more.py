"""Samples (for tests/test_mirror.py) of the mirrors in shape2.py, special2.py, numeric2.py and nn2.py."""

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
        "igamma": lambda g: call(Ints(np.array([[0.7], [2.5], [1.3]])), g.pos(3, 4)),
        "igammac": lambda g: call(Ints(np.array([0.4, 1.0, 3.5, 2.0])), g.pos(3, 4)),
        "ndtr": lambda g: call(g.x(3, 4)),
        "conj": lambda g: call(g.x(3, 4)),
        "conj_physical": lambda g: call(g.x(3, 4)),
        "resolve_conj": lambda g: call(g.x(3, 4)),
        "resolve_neg": lambda g: call(g.x(3, 4)),
        "real": lambda g: call(g.x(3, 4)),
        "float_power": lambda g: call(g.pos(3, 4), g.x(3, 4)),
        "nanmean": lambda g: call(g.x(3, 4), 1, True),
        "sum_to_size": lambda g: call(g.x(2, 3, 4), (3, 1)),
        "diff": lambda g: call(g.x(3, 5), 2, 1, g.x(3, 1), g.x(3, 2)),
        "trapezoid": lambda g: call(g.x(3, 5), g.x(5), dim=1),
        "trapz": lambda g: call(g.x(3, 5), dx=Num(0.5), dim=1),
        "cumulative_trapezoid": lambda g: call(g.x(3, 5), g.x(3, 5), dim=1),
        "cov": lambda g: call(g.x(3, 5), correction=0, aweights=g.pos(5)),
        "corrcoef": lambda g: call(g.x(3, 5)),
        "tensordot": lambda g: call(g.x(2, 3, 4), g.x(4, 3, 2), ([1, 2], [1, 0])),
        "vecdot": lambda g: call(g.x(3, 4), g.x(4), dim=-1),
        "multi_dot": lambda g: call([g.x(3), g.x(3, 4), g.x(4, 2)]),
        "matrix_power": lambda g: call(g.well(3), -2),
        "tensorinv": lambda g: call(g.x(4, 2, 2) + np.eye(4).reshape(4, 2, 2) * 3, 1),
        "tensorsolve": lambda g: call(g.x(6, 2, 3) + np.eye(6).reshape(6, 2, 3) * 3, g.x(6)),
    }


def nn2_samples(call, Num, Ints):
    return {
        "prelu": lambda g: call(g.x(2, 3, 4), g.pos(3)),
        "bilinear": lambda g: call(g.x(2, 3), g.x(2, 4), g.x(5, 3, 4), g.x(5)),
        "channel_shuffle": lambda g: call(g.x(2, 6, 2), 3),
        "upsample_nearest": lambda g: call(g.x(1, 2, 3), size=5),
        "upsample_bilinear": lambda g: call(g.x(1, 2, 3, 3), scale_factor=2),
        "adaptive_avg_pool3d": lambda g: call(g.x(1, 2, 3, 4, 5), (2, 3, 2)),
        "adaptive_max_pool3d": lambda g: call(g.x(1, 2, 3, 4, 5), (2, 3, 2)),
        "multi_margin_loss": lambda g: call(g.x(3, 4), Ints(np.array([1, 0, 3])), p=2, margin=Num(0.7)),
        "multilabel_margin_loss": lambda g: call(g.x(3, 4), Ints(np.array([[1, 2, -1, 0], [0, -1, 2, 3],
                                                                          [3, 2, 1, 0]]))),
        "local_response_norm": lambda g: call(g.x(2, 5, 3), 3, alpha=Num(0.1), beta=Num(0.75), k=Num(1.5)),
        "pinverse": lambda g: call(g.x(4, 2) + np.eye(4, 2) * 2),
        "cartesian_prod": lambda g: call(g.x(3), g.x(2)),
        "combinations": lambda g: call(g.x(4), 2, True),
    }


def pieces_samples(call, Num, Ints):
    return {
        "unsafe_split": lambda g: call(g.x(6, 2), 2),
        "split_with_sizes_copy": lambda g: call(g.x(2, 6), [3, 3], 1),
        "unsafe_chunk": lambda g: call(g.x(4, 3), 2),
        "unbind_copy": lambda g: call(g.x(3, 4), 1),
        "tensor_split": lambda g: call(g.x(3, 6), 3, 1),
        "hsplit": lambda g: call(g.x(3, 4), 2),
        "vsplit": lambda g: call(g.x(4, 3), [2]),
        "dsplit": lambda g: call(g.x(2, 2, 4), 2),
        "broadcast_tensors": lambda g: call(g.x(3, 1), g.x(4)),
        "meshgrid": lambda g: call(g.x(3), g.x(2), indexing="xy"),
        "inv_ex": lambda g: call(g.well(3)),
        "solve_ex": lambda g: call(g.well(3), g.x(3, 2)),
        "cholesky_ex": lambda g: call(g.spd(3)),
        "double": lambda g: call(g.x(3, 4)),
        "constant_pad_nd": lambda g: call(g.x(2, 3), [1, 2], Num(0.5)),
    }
