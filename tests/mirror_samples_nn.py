"""Sample calls of the nn-family mirrors for tests/test_mirror.py (forward agreement with torch).

``nn_samples(call, Num, Ints)`` receives test_mirror's sample helpers (it
cannot import them: test_mirror imports this module).
"""

from __future__ import annotations

import numpy as np


def nn_samples(call, Num, Ints):
    def bools(a):
        return Ints(np.asarray(a, dtype=bool))

    def const(a):
        """A float constant (a target): plain numbers on the symbolic side, not symbols."""
        return Ints(np.asarray(a, dtype=float))

    return {
        "conv1d": lambda g: call(g.x(2, 4, 7), g.x(6, 2, 3), g.x(6), stride=2, padding=1, dilation=1,
                                 groups=2),
        "conv2d": lambda g: call(g.x(1, 2, 5, 5), g.x(3, 2, 3, 2), g.x(3), stride=(2, 1), padding="valid",
                                 dilation=(1, 2)),
        "conv3d": lambda g: call(g.x(2, 3, 3, 4), g.x(2, 2, 2, 2, 2), None, padding="same"),
        "conv_transpose1d": lambda g: call(g.x(1, 2, 4), g.x(2, 3, 3), g.x(3), stride=2, padding=1,
                                           output_padding=1),
        "conv_transpose2d": lambda g: call(g.x(1, 4, 3, 3), g.x(4, 1, 2, 3), None, stride=(2, 1),
                                           groups=2, dilation=(1, 2)),
        "conv_transpose3d": lambda g: call(g.x(1, 2, 2, 2, 2), g.x(2, 1, 2, 2, 2), g.x(1)),
        "unfold": lambda g: call(g.x(1, 2, 4, 5), (2, 3), padding=1, stride=(2, 1)),
        "fold": lambda g: call(g.x(1, 2 * 4, 6), (3, 4), (2, 2), stride=(1, 1)),
        "pixel_shuffle": lambda g: call(g.x(1, 8, 2, 3), 2),
        "pixel_unshuffle": lambda g: call(g.x(2, 4, 6), 2),
        "max_pool1d": lambda g: call(g.x(1, 2, 7), 3, stride=2, padding=1, ceil_mode=True),
        "max_pool2d": lambda g: call(g.x(1, 2, 5, 5), (2, 3), stride=(2, 2), padding=(1, 1),
                                     dilation=(2, 1), ceil_mode=True),
        "max_pool3d": lambda g: call(g.x(1, 3, 3, 4), 2, stride=1),
        "avg_pool1d": lambda g: call(g.x(1, 2, 6), 3, stride=2, padding=1, count_include_pad=False,
                                     ceil_mode=True),
        "avg_pool2d": lambda g: call(g.x(1, 2, 5, 5), 3, stride=2, padding=1, ceil_mode=True),
        "avg_pool3d": lambda g: call(g.x(1, 3, 3, 4), 2, stride=1, padding=1, divisor_override=3),
        "adaptive_avg_pool1d": lambda g: call(g.x(1, 2, 7), 3),
        "adaptive_avg_pool2d": lambda g: call(g.x(1, 2, 5, 7), (3, None)),
        "adaptive_max_pool1d": lambda g: call(g.x(2, 7), 4),
        "adaptive_max_pool2d": lambda g: call(g.x(1, 2, 5, 6), (2, 4)),
        "batch_norm": lambda g: call(g.x(3, 2, 4), None, None, g.x(2), g.x(2), training=True),
        "instance_norm": lambda g: call(g.x(2, 3, 4), weight=g.x(3), bias=g.x(3), eps=Num(0.01)),
        "group_norm": lambda g: call(g.x(2, 4, 3), 2, g.x(4), g.x(4)),
        "rms_norm": lambda g: call(g.x(2, 3, 4), (3, 4), g.x(3, 4), eps=Num(1e-3)),
        "embedding": lambda g: call(g.ints(4, 2, 3), g.x(4, 3)),
        "pad": lambda g: call(g.x(2, 3, 4), (1, 2, 2, 1), mode="reflect"),
        "interpolate": lambda g: call(g.x(1, 2, 3, 4), size=(5, 7), mode="bicubic", align_corners=False),
        "grid_sample": lambda g: call(g.x(1, 2, 3, 4), g.x(1, 2, 3, 2, lo=-0.9, hi=0.9), align_corners=False),
        "scaled_dot_product_attention": lambda g: call(g.x(2, 3, 4), g.x(2, 5, 4), g.x(2, 5, 3),
                                                       attn_mask=bools([[1, 0, 1, 1, 0]] * 3)),
        "cdist": lambda g: call(g.x(3, 4), g.x(2, 4)),
        "pdist": lambda g: call(g.x(4, 3), p=Num(1.5)),
        "pairwise_distance": lambda g: call(g.x(3, 4), g.x(3, 4)),
        "margin_ranking_loss": lambda g: call(g.x(5), g.x(5), const([1, -1, 1, -1, 1]), margin=Num(0.3)),
        "hinge_embedding_loss": lambda g: call(g.x(6), const([1, -1, -1, 1, -1, 1]),
                                               margin=Num(0.5)),
        "soft_margin_loss": lambda g: call(g.x(5), const([1, -1, 1, 1, -1])),
        "triplet_margin_loss": lambda g: call(g.x(3, 4), g.x(3, 4), g.x(3, 4), swap=True),
        "poisson_nll_loss": lambda g: call(g.pos(6), const([0, 1, 2, 3, 0.5, 4]),
                                           log_input=False, full=True),
        "gaussian_nll_loss": lambda g: call(g.x(3, 2), g.x(3, 2), g.pos(3), full=True),
        "multilabel_soft_margin_loss": lambda g: call(g.x(3, 4), const([[1, 0, 1, 0]] * 3),
                                                      weight=g.pos(4)),
        "cosine_embedding_loss": lambda g: call(g.x(3, 4), g.x(3, 4), const([1, -1, -1]),
                                                margin=Num(-0.2)),
    }


def breadth_samples(call, Num, Ints):
    """Samples of the composites, order statistics, indexing and linalg composites."""
    def const(a):
        return Ints(np.asarray(a, dtype=float))

    return {
        "addcmul": lambda g: call(g.x(3, 4), g.x(3, 4), g.x(4), value=Num(0.5)),
        "addcdiv": lambda g: call(g.x(3, 4), g.x(3, 4), g.pos(3, 4), value=2),
        "lerp": lambda g: call(g.x(3, 4), g.x(3, 4), g.x(3, 4)),
        "hypot": lambda g: call(g.x(3, 4), g.x(3, 4)),
        "logaddexp2": lambda g: call(g.x(3, 4), g.x(4)),
        "xlog1py": lambda g: call(g.x(3, 4), g.pos(3, 4)),
        "copysign": lambda g: call(g.x(3, 4), g.x(3, 4)),
        "fmax": lambda g: call(g.x(3, 4), g.x(3, 4)),
        "fmin": lambda g: call(g.x(3, 4), g.x(4)),
        "clamp_min": lambda g: call(g.x(3, 4), Num(-0.3)),
        "clamp_max": lambda g: call(g.x(3, 4), Num(0.4)),
        "rsub": lambda g: call(g.x(3, 4), g.x(3, 4), alpha=2),
        "ldexp": lambda g: call(g.x(3, 4), Ints(np.array([1, -2, 0, 3]))),
        "round": lambda g: call(g.x(3, 4, lo=-5, hi=5)),
        "fmod": lambda g: call(g.x(3, 4, lo=-5, hi=5), g.pos(3, 4)),
        "remainder": lambda g: call(g.x(3, 4, lo=-5, hi=5), g.x(3, 4)),
        "floor_divide": lambda g: call(g.x(3, 4, lo=-5, hi=5), g.x(3, 4)),
        "floor": lambda g: call(g.x(3, 4, lo=-5, hi=5)),
        "ceil": lambda g: call(g.x(3, 4, lo=-5, hi=5)),
        "trunc": lambda g: call(g.x(3, 4, lo=-5, hi=5)),
        "frac": lambda g: call(g.x(3, 4, lo=-5, hi=5)),
        "threshold": lambda g: call(g.x(3, 4), Num(0.1), Num(-2.0)),
        "hardshrink": lambda g: call(g.x(3, 4), Num(0.7)),
        "softshrink": lambda g: call(g.x(3, 4)),
        "heaviside": lambda g: call(g.x(3, 4), const([0.5])),
        "sort": lambda g: call(g.x(3, 4), 0, True),
        "msort": lambda g: call(g.x(3, 4)),
        "topk": lambda g: call(g.x(3, 5), 2, largest=False),
        "kthvalue": lambda g: call(g.x(3, 5), 2, 0, True),
        "median": lambda g: call(g.x(3, 4)),
        "nanmedian": lambda g: call(g.x(3, 5), 1),
        "cummax": lambda g: call(g.x(3, 5), 1),
        "cummin": lambda g: call(g.x(4, 3), 0),
        "logcumsumexp": lambda g: call(g.x(3, 4), 1),
        "aminmax": lambda g: call(g.x(3, 4), dim=1),
        "std_mean": lambda g: call(g.x(3, 4), 1, correction=0),
        "var_mean": lambda g: call(g.x(3, 4), (0, 1), keepdim=True),
        "index_add": lambda g: call(g.x(3, 4), 1, Ints([0, 2, 0]), g.x(3, 3), alpha=2),
        "index_copy": lambda g: call(g.x(4, 3), 0, Ints([3, 1]), g.x(2, 3)),
        "index_fill": lambda g: call(g.x(3, 4), 1, Ints([1, 3]), Num(-0.5)),
        "index_reduce": lambda g: call(g.x(4, 2), 0, Ints([0, 2, 0]), g.x(3, 2), "prod"),
        "index_put": lambda g: call(g.x(3, 4), (Ints([0, 2]), Ints([1, 3])), g.x(2), accumulate=True),
        "scatter": lambda g: call(g.x(3, 4), 1, Ints([[0, 2], [1, 3], [3, 0]]), g.x(3, 2)),
        "scatter_add": lambda g: call(g.x(3, 4), 0, Ints([[0, 2, 0, 1], [0, 0, 1, 2]]), g.x(2, 4)),
        "scatter_reduce": lambda g: call(g.x(5), 0, Ints([0, 1, 0, 1, 2, 1]), g.x(6), "amax"),
        "masked_select": lambda g: call(g.x(3, 4), Ints(g.rng.random((3, 4)) < 0.5)),
        "masked_scatter": lambda g: call(g.x(3, 4), Ints(g.rng.random((3, 4)) < 0.5), g.x(12)),
        "take": lambda g: call(g.x(3, 4), Ints([[0, 11], [5, 5]])),
        "put": lambda g: call(g.x(3, 4), Ints([0, 7, 7]), g.x(3), accumulate=True),
        "block_diag": lambda g: call(g.x(2, 3), g.x(1, 2), g.x(3)),
        "diag_embed": lambda g: call(g.x(2, 3), 1),
        "diagonal_scatter": lambda g: call(g.x(3, 4), g.x(2), -1, 0, 1),
        "select_scatter": lambda g: call(g.x(3, 4), g.x(3), 1, 2),
        "slice_scatter": lambda g: call(g.x(4, 5), g.x(4, 2), 1, 1, 5, 2),
        "rot90": lambda g: call(g.x(3, 4), 3, (1, 0)),
        "split": lambda g: call(g.x(6, 4), 2),
        "chunk": lambda g: call(g.x(3, 4), 2, 1),
        "unbind": lambda g: call(g.x(3, 4), 1),
        "addmm": lambda g: call(g.x(3, 2), g.x(3, 4), g.x(4, 2), beta=Num(0.5), alpha=2),
        "addmv": lambda g: call(g.x(3), g.x(3, 4), g.x(4), alpha=Num(-1.5)),
        "addr": lambda g: call(g.x(3, 4), g.x(3), g.x(4), beta=2),
        "baddbmm": lambda g: call(g.x(2, 3, 2), g.x(2, 3, 4), g.x(2, 4, 2)),
        "addbmm": lambda g: call(g.x(3, 2), g.x(2, 3, 4), g.x(2, 4, 2)),
        "vdot": lambda g: call(g.x(4), g.x(4)),
        "dist": lambda g: call(g.x(3, 4), g.x(4), p=3),
        "cholesky_inverse": lambda g: call(np.tril(g.x(3, 3)) + 3 * np.eye(3)),
        "cholesky_solve": lambda g: call(g.x(3, 2), np.triu(g.x(3, 3)) + 3 * np.eye(3), upper=True),
        "triangular_solve": lambda g: call(g.x(3, 2), np.tril(g.x(3, 3)) + 3 * np.eye(3), upper=False,
                                           transpose=True),
        "polygamma": lambda g: call(2, g.pos(3, 4)),
        "mvlgamma": lambda g: call(g.x(3, 4, lo=1.6, hi=3.0), 3),
        "i0e": lambda g: call(g.x(3, 4, lo=-3, hi=3)),
        "i1e": lambda g: call(g.x(3, 4, lo=-3, hi=3)),
        "zeta": lambda g: call(const([[2.0, 3.5, 1.5, 2.5]]), g.pos(3, 4)),
        "nextafter": lambda g: call(g.x(3, 4), g.x(3, 4)),
        "fill": lambda g: call(g.x(3, 4), Num(0.25)),
        "glu": lambda g: call(g.x(3, 4), 1),
        "renorm": lambda g: call(g.x(3, 4), 2, 0, Num(1.2)),
        "mode": lambda g: call(g.x(3, 5), 1),
        "pinv": lambda g: call(g.x(4, 2) + np.eye(4, 2) * 2),
        "lstsq": lambda g: call(g.x(4, 2) + np.eye(4, 2) * 2, g.x(4, 3)),
        "lu_solve": lambda g: call(*_lu(g), g.x(3, 2)),
        "lu_unpack": lambda g: call(*_lu(g)),
        "householder_product": lambda g: call(*_qr(g)),
        "ormqr": lambda g: call(*_qr(g), g.x(4, 2)),
    }


def _lu(g):
    import torch
    a = torch.tensor(g.x(3, 3), dtype=torch.float64)
    lu, piv = torch.linalg.lu_factor(a)
    from test_mirror import Ints
    return lu.numpy(), Ints(piv.numpy().astype(np.int64))


def _qr(g):
    import torch
    a, tau = torch.geqrf(torch.tensor(g.x(4, 3), dtype=torch.float64))
    return a.numpy(), tau.numpy()
