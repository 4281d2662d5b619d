"""The nn-family mirrors against torch beyond test_mirror's one sample each: every mode and option.

Forward agreement (1e-10 relative, float64) over the options that change
which elements a layer reads (padding modes, ceil_mode, count_include_pad,
align_corners, masks) and the symbolic gradient against autograd for the
layers whose backward is not a plain sum (pooling ties, normalisations,
attention, grid_sample). A harness that cannot fail proves nothing, so the
last tests show a wrong option is caught.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_mirror import Gen, Ints, Num, call, evaluate, gradients, mismatch

from verifier.errors import ExpressionError
from verifier.exact.mirror import FUNCTIONS, resolve


def g(name="nn"):
    return Gen(name)


def causal_bool(n, m):
    return Ints(np.tril(np.ones((n, m), dtype=bool)))


VARIANTS = {
    "conv1d-same-dilated": ("conv1d", lambda g: call(g.x(3, 8), g.x(2, 3, 4), padding="same", dilation=2)),
    "conv2d-unbatched-groups": ("conv2d", lambda g: call(g.x(4, 4, 5), g.x(4, 1, 2, 2), g.x(4), padding=1,
                                                          groups=4)),
    "conv_transpose2d-stride-pad": ("conv_transpose2d", lambda g: call(g.x(1, 2, 3, 3), g.x(2, 3, 3, 3),
                                                                       g.x(3), stride=2, padding=1,
                                                                       output_padding=(1, 0))),
    "max_pool2d-floor": ("max_pool2d", lambda g: call(g.x(2, 1, 6, 5), 2)),
    "max_pool1d-dilated": ("max_pool1d", lambda g: call(g.x(2, 9), 3, 2, 1, 2)),
    "avg_pool2d-exclude-pad": ("avg_pool2d", lambda g: call(g.x(1, 1, 5, 4), (3, 2), 2, (1, 1), True, False)),
    "avg_pool1d-include-pad-ceil": ("avg_pool1d", lambda g: call(g.x(1, 2, 8), 3, 3, 1, True, True)),
    "avg_pool2d-divisor": ("avg_pool2d", lambda g: call(g.x(1, 1, 4, 4), 2, divisor_override=3)),
    "batch_norm-eval": ("batch_norm", lambda g: call(g.x(4, 3), g.x(3), g.pos(3), g.x(3), g.x(3),
                                                     training=False, eps=Num(0.001))),
    "batch_norm-train-2d": ("batch_norm", lambda g: call(g.x(2, 2, 2, 3), None, None, training=True)),
    "instance_norm-running": ("instance_norm", lambda g: call(g.x(2, 3, 4), g.x(3), g.pos(3),
                                                              use_input_stats=False)),
    "group_norm-one-group": ("group_norm", lambda g: call(g.x(2, 3, 2, 2), 1)),
    "rms_norm-default-eps": ("rms_norm", lambda g: call(g.x(3, 4), [4])),
    "pad-constant": ("pad", lambda g: call(g.x(2, 3), (2, 1, 0, 1), value=Num(0.5))),
    "pad-crop": ("pad", lambda g: call(g.x(3, 5), (-1, 2))),
    "pad-replicate": ("pad", lambda g: call(g.x(1, 2, 3, 3), (2, 1, 1, 2), mode="replicate")),
    "pad-circular": ("pad", lambda g: call(g.x(1, 2, 4), (3, 2), mode="circular")),
    "interpolate-nearest": ("interpolate", lambda g: call(g.x(1, 2, 3, 5), size=(5, 7))),
    "interpolate-nearest-factor": ("interpolate", lambda g: call(g.x(1, 1, 4), scale_factor=Num(1.5))),
    "interpolate-linear": ("interpolate", lambda g: call(g.x(1, 2, 4), size=7, mode="linear")),
    "interpolate-linear-corners": ("interpolate", lambda g: call(g.x(1, 2, 4), size=6, mode="linear",
                                                                 align_corners=True)),
    "interpolate-bilinear": ("interpolate", lambda g: call(g.x(1, 1, 3, 4), scale_factor=2, mode="bilinear")),
    "interpolate-bilinear-down": ("interpolate", lambda g: call(g.x(1, 1, 5, 5), size=(3, 2), mode="bilinear",
                                                                align_corners=True)),
    "interpolate-bicubic-corners": ("interpolate", lambda g: call(g.x(1, 1, 3, 3), size=(4, 5), mode="bicubic",
                                                                  align_corners=True)),
    "interpolate-nearest-exact": ("interpolate", lambda g: call(g.x(1, 2, 3, 5), size=(5, 7), mode="nearest-exact")),
    "interpolate-nearest-exact-down": ("interpolate", lambda g: call(g.x(1, 1, 7), scale_factor=Num(0.6),
                                                                     mode="nearest-exact")),
    "interpolate-nearest-exact-3d": ("interpolate", lambda g: call(g.x(1, 1, 2, 3, 3), scale_factor=Num(1.7),
                                                                   mode="nearest-exact")),
    "interpolate-trilinear": ("interpolate", lambda g: call(g.x(1, 2, 2, 3, 2), size=(3, 4, 5), mode="trilinear")),
    "interpolate-trilinear-corners-factor": ("interpolate", lambda g: call(g.x(1, 1, 2, 2, 3), scale_factor=Num(1.5),
                                                                           mode="trilinear", align_corners=True)),
    "interpolate-linear-recompute": ("interpolate", lambda g: call(g.x(1, 1, 5), scale_factor=Num(1.7), mode="linear",
                                                                   recompute_scale_factor=True)),
    "interpolate-area-1d": ("interpolate", lambda g: call(g.x(1, 2, 7), size=3, mode="area")),
    "interpolate-area-2d-factor": ("interpolate", lambda g: call(g.x(1, 1, 5, 4), scale_factor=Num(0.7), mode="area")),
    "interpolate-area-3d-up": ("interpolate", lambda g: call(g.x(1, 1, 2, 3, 2), size=(3, 4, 2), mode="area")),
    "grid_sample-corners": ("grid_sample", lambda g: call(g.x(2, 1, 3, 3), g.x(2, 2, 2, 2, lo=-1.2, hi=1.2),
                                                          align_corners=True)),
    "sdpa-causal": ("scaled_dot_product_attention", lambda g: call(g.x(2, 4, 3), g.x(2, 4, 3), g.x(2, 4, 2),
                                                                   is_causal=True)),
    "sdpa-float-mask-scale": ("scaled_dot_product_attention",
                              lambda g: call(g.x(3, 2), g.x(4, 2), g.x(4, 3), attn_mask=Ints(g.x(3, 4)),
                                             scale=Num(0.3))),
    "sdpa-bool-mask": ("scaled_dot_product_attention", lambda g: call(g.x(1, 3, 2), g.x(1, 3, 2), g.x(1, 3, 2),
                                                                      attn_mask=causal_bool(3, 3))),
    "cdist-p1-batched": ("cdist", lambda g: call(g.x(2, 3, 2), g.x(1, 4, 2), p=1)),
    "pdist-p2": ("pdist", lambda g: call(g.x(4, 2))),
    "poisson_nll-log": ("poisson_nll_loss", lambda g: call(g.x(4), Ints(np.array([0.0, 1.0, 3.0, 2.0])))),
    "gaussian_nll-same-shape": ("gaussian_nll_loss", lambda g: call(g.x(4), g.x(4), g.pos(4), reduction="sum")),
    "triplet-p1": ("triplet_margin_loss", lambda g: call(g.x(2, 3), g.x(2, 3), g.x(2, 3), margin=Num(2.0), p=1)),
    "hinge-none": ("hinge_embedding_loss", lambda g: call(g.x(4), Ints(np.array([1.0, -1.0, 1.0, -1.0])),
                                                          reduction="none")),
}


@pytest.mark.parametrize("variant", [pytest.param(v, id=v) for v in VARIANTS])
def test_variant_matches_torch(variant):
    name, make = VARIANTS[variant]
    sym_vals, torch_vals, *_ = evaluate(FUNCTIONS[name], *make(g(variant)))
    assert mismatch(sym_vals, torch_vals) is None, mismatch(sym_vals, torch_vals)


TIES = np.array([[[1.0, 3.0, 3.0, 0.5, 2.0, 2.0, 2.0, -1.0]]])

GRADIENTS = {
    "max_pool1d-ties-first-index": ("max_pool1d", call(TIES, 3, 1)),
    "adaptive_max_pool1d-ties": ("adaptive_max_pool1d", call(TIES, 3)),
    "max_pool2d-padding": ("max_pool2d", call(np.random.default_rng(5).normal(size=(1, 1, 4, 5)), 3, 2, 1)),
    "avg_pool2d-exclude-pad": VARIANTS["avg_pool2d-exclude-pad"][0:1] + (VARIANTS["avg_pool2d-exclude-pad"][1](g()),),
    "batch_norm": ("batch_norm", call(np.random.default_rng(6).normal(size=(3, 2, 2)), None, None, training=True)),
    "interpolate-trilinear": ("interpolate", call(np.random.default_rng(15).normal(size=(1, 1, 2, 3, 2)),
                                                  size=(3, 4, 3), mode="trilinear")),
    "interpolate-area-overlap": ("interpolate", call(np.random.default_rng(16).normal(size=(1, 1, 5, 7)), size=(3, 4),
                                                     mode="area")),
    "group_norm": ("group_norm", call(np.random.default_rng(7).normal(size=(1, 4, 3)), 2)),
    "sdpa-causal": VARIANTS["sdpa-causal"][0:1] + (VARIANTS["sdpa-causal"][1](g()),),
    "grid_sample-grid": ("grid_sample", call(np.random.default_rng(8).uniform(-0.9, 0.9, size=(1, 2, 2, 2)),
                                             Ints(np.random.default_rng(9).normal(size=(1, 1, 3, 3))))),
    "interpolate-bicubic": ("interpolate", call(np.random.default_rng(10).normal(size=(1, 1, 3, 3)), size=(4, 5),
                                                mode="bicubic")),
    "conv_transpose1d": ("conv_transpose1d", call(np.random.default_rng(11).normal(size=(1, 2, 3)),
                                                  Ints(np.random.default_rng(12).normal(size=(2, 2, 3))), stride=2)),
    "cosine_embedding": ("cosine_embedding_loss", call(np.random.default_rng(13).normal(size=(3, 4)),
                                                       Ints(np.random.default_rng(14).normal(size=(3, 4))),
                                                       Ints(np.array([1.0, -1.0, -1.0])))),
}


@pytest.mark.parametrize("case", [pytest.param(c, id=c) for c in GRADIENTS])
def test_symbolic_gradient_matches_autograd(case):
    name, (args, kwargs) = GRADIENTS[case]
    if name == "grid_sample":   # differentiate the grid: swap it to the first (differentiated) leaf
        grid, image = args
        fn = FUNCTIONS[name]
        from verifier.exact.mirror._table import Function
        fn = Function(name, lambda gr, im, **k: FUNCTIONS[name].sym(im, gr, **k),
                      lambda gr, im, **k: F_grid(im, gr, **k), False, None, False, "grid first")
        sym_grad, torch_grad = gradients(fn, [grid, image], kwargs)
    else:
        sym_grad, torch_grad = gradients(FUNCTIONS[name], args, kwargs)
    assert mismatch(sym_grad, torch_grad, rtol=1e-9) is None, mismatch(sym_grad, torch_grad)


def F_grid(image, grid, **kwargs):
    return torch.nn.functional.grid_sample(image, grid, align_corners=False, **kwargs)


def test_max_pool_tie_goes_to_the_first_maximum():
    """Windows of 3, stride 1, over TIES pick indices 1, 1, 2, 4, 4, 5: index 6 ties in [2, 2, 2]
    and [2, 2, -1] but is never first, so it gets nothing (a last-index rule would give it both)."""
    sym_grad, torch_grad = gradients(FUNCTIONS["max_pool1d"], *call(TIES, 3, 1))
    assert sym_grad.ravel().tolist() == torch_grad.ravel().tolist()
    assert [i for i in range(8) if sym_grad[0, 0, i] != 0] == [1, 2, 4, 5]


# --- the harness catches a wrong option ----------------------------------------------------------

WRONG = {
    # (mirror, its sample, torch called with one option changed)
    "count_include_pad": ("avg_pool2d", call(g().x(1, 1, 5, 4), 3, 2, 1),
                          lambda x, *a, **k: torch.nn.functional.avg_pool2d(x, *a, count_include_pad=False, **k)),
    "align_corners": ("interpolate", call(g().x(1, 1, 4), size=7, mode="linear", align_corners=False),
                      lambda x, **k: torch.nn.functional.interpolate(x, **{**k, "align_corners": True})),
    "nearest-exact-vs-nearest": ("interpolate", call(g().x(1, 1, 3, 5), size=(5, 7), mode="nearest-exact"),
                                 lambda x, **k: torch.nn.functional.interpolate(x, **{**k, "mode": "nearest"})),
    "trilinear-align_corners": ("interpolate", call(g().x(1, 1, 2, 2, 3), size=(3, 3, 4), mode="trilinear"),
                                lambda x, **k: torch.nn.functional.interpolate(x, **{**k, "align_corners": True})),
    "area-vs-floor-windows": ("interpolate", call(g().x(1, 1, 5), size=3, mode="area"),
                              lambda x, **k: torch.nn.functional.avg_pool1d(x, 1, stride=2)[..., :3]),
    "reflect-vs-replicate": ("pad", call(g().x(1, 3, 4), (2, 2), mode="reflect"),
                             lambda x, p, mode: torch.nn.functional.pad(x, p, mode="replicate")),
    "causal": ("scaled_dot_product_attention", call(g().x(3, 2), g().x(3, 2), g().x(3, 2), is_causal=True),
               lambda q, k, v, is_causal: torch.nn.functional.scaled_dot_product_attention(q, k, v)),
}


@pytest.mark.parametrize("option", WRONG)
def test_a_changed_option_is_caught(option):
    from verifier.exact.mirror._table import Function
    name, (args, kwargs), wrong_torch = WRONG[option]
    right = FUNCTIONS[name]
    assert mismatch(*evaluate(right, args, kwargs)[:2]) is None
    wrong = Function(name, right.sym, wrong_torch, False, None, False, "wrong option")
    assert mismatch(*evaluate(wrong, args, kwargs)[:2]) is not None


@pytest.mark.parametrize("call_, message", [
    (lambda: resolve("conv2d").sym(np.zeros((1, 3, 4, 4), dtype=object), np.zeros((2, 2, 3, 3), dtype=object)),
     "does not fit"),
    (lambda: resolve("conv1d").sym(np.zeros((1, 1, 4), dtype=object), np.zeros((1, 1, 2), dtype=object),
                                   stride=2, padding="same"), "padding='same'"),
    (lambda: resolve("embedding").sym(np.array([0, 1]), np.zeros((3, 2), dtype=object), padding_idx=0),
     "padding_idx"),
    (lambda: resolve("interpolate").sym(np.zeros((1, 1, 3), dtype=object), size=4, mode="bilinear"),
     "mode 'bilinear'"),
    (lambda: resolve("pad").sym(np.zeros((2, 3), dtype=object), (3, 3), mode="reflect"), "reflect"),
    (lambda: resolve("interpolate").sym(np.zeros((1, 1, 3, 3), dtype=object), size=(2, 2), mode="bilinear",
                                        antialias=True), "antialias=True is not supported"),
    (lambda: resolve("interpolate").sym(np.zeros((1, 1, 3, 3), dtype=object), size=(4, 4), mode="trilinear"),
     "mode 'trilinear' on a 4-d input"),
    (lambda: resolve("interpolate").sym(np.zeros((1, 1, 3), dtype=object), size=4, mode="area", align_corners=True),
     "align_corners only goes with"),
    (lambda: resolve("interpolate").sym(np.zeros((1, 1, 3), dtype=object), size=4, mode="nearest-exact",
                                        recompute_scale_factor=True), "not meaningful with an explicit size"),
    (lambda: resolve("max_pool2d").sym(np.zeros((1, 1, 4, 4), dtype=object), 2, return_indices=True),
     "return_indices"),
])
def test_unsupported_forms_say_what_to_do(call_, message):
    with pytest.raises(ExpressionError) as info:
        call_()
    assert message in str(info.value)
