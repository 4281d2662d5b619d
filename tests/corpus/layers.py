"""Planted bugs in the nn layers of cases/layers.yaml: one correct twin and one wrong backward per layer.

Each twin is a ``torch.autograd.Function`` whose forward is the layer as the
built-in case calls it. The correct twin's backward is the vector-Jacobian
product of that same forward; the buggy twin's backward is the VJP of a
*nearby wrong forward*: the backward got out of step with the forward, the
way hand-written layer backwards go wrong (a kernel used unflipped, the
divisor of another padding rule, statistics treated as constants, the index
one position off, align_corners of the other convention, a missing scale).
The twins run on the built-in case's own inputs and symbolic side, so a
caught bug says the case itself would catch it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch.autograd import Function

from verifier.cases.case import Expect

from .registry import case_library

CASES = Path(__file__).resolve().parents[2] / "cases" / "layers.yaml"
DTYPES = ("float64", "float32")

#: What went wrong, per kind of layer bug.
KINDS = {
    "kernel-flip": "convolution backward with the kernel flipped (convolution vs cross-correlation)",
    "index": "the gradient routed one position off (window start, pair or row order)",
    "divisor": "an average's divisor of another padding rule",
    "constant-statistics": "mean/variance/norm treated as constants (a missing product-rule term)",
    "grouping": "statistics or channels grouped wrongly",
    "convention": "the other align_corners / padding-mode / mask / norm convention",
    "factor": "a scale left out",
    "swapped": "inputs or signs swapped",
    "ignored-input": "an input (weight, second operand) ignored in the backward",
}


def _vjp(f: Callable, xs: tuple, g: torch.Tensor, needs: tuple) -> tuple:
    """(d<f(xs), g>/dx for each x that needs a gradient, None for the others)."""
    with torch.enable_grad():
        leaves = [x.detach().requires_grad_(n) if n else x for x, n in zip(xs, needs)]
        out = f(*leaves)
        wrt = [x for x, n in zip(leaves, needs) if n]
        grads = iter(torch.autograd.grad(out, wrt, g, allow_unused=True))
    return tuple((lambda d, x: torch.zeros_like(x) if d is None else d)(next(grads), x) if n else None
                 for x, n in zip(xs, needs))


def twins(forward: Callable, wrong: Callable) -> tuple[type, type]:
    """A correct Function (backward = VJP of ``forward``) and its buggy twin (VJP of ``wrong``)."""

    class Correct(Function):
        @staticmethod
        def forward(ctx, *xs):
            ctx.save_for_backward(*xs)
            return forward(*xs)

        @staticmethod
        def backward(ctx, g):
            return _vjp(forward, ctx.saved_tensors, g, ctx.needs_input_grad)

    class Buggy(Correct):
        @staticmethod
        def backward(ctx, g):
            return _vjp(wrong, ctx.saved_tensors, g, ctx.needs_input_grad)

    return Correct, Buggy


@dataclass(frozen=True)
class LayerBug:
    case: str                 # the built-in case whose inputs and symbolic side the twins use
    kind: str
    bug: str
    forward: Callable         # the layer, with the case's arguments
    wrong: Callable           # the forward whose VJP the buggy backward computes
    cases: Path = CASES       # the case file holding ``case``

    @property
    def id(self) -> str:
        return self.case.split(".", 1)[1]

    def run_case(self, buggy: bool):
        """The built-in case with the twin as its torch side (its grad_fn expectation dropped)."""
        correct, wrong = twins(self.forward, self.wrong)
        fn = wrong if buggy else correct
        return dataclasses.replace(case_library(self.cases)[self.case], torch_fn=fn.apply, expect=Expect(),
                                   name=f"{self.case}.{'buggy' if buggy else 'correct'}", dtypes=DTYPES)


def _library() -> dict:
    return case_library(CASES)


def _detached_stats(x, dims, eps, *, var=True):
    mean = x.mean(dims, keepdim=True).detach()
    v = x.var(dims, keepdim=True, unbiased=False).detach()
    return (x - mean) / torch.sqrt(v + eps)


def _floor_windows(x, size):
    """Area pooling with the adaptive windows' ends floored (torch ceils them, so windows overlap)."""
    def pool(n, m):
        p = torch.zeros(m, n, dtype=x.dtype)
        for i in range(m):
            lo, hi = (i * n) // m, max((i + 1) * n // m, (i * n) // m + 1)
            p[i, lo:hi] = 1.0 / (hi - lo)
        return p
    ph, pw = pool(x.shape[-2], size[0]), pool(x.shape[-1], size[1])
    return ph @ x @ pw.mT


def _roll(x):
    return torch.roll(x, 1, -1)


LAYER_BUGS = [
    LayerBug("layers.conv1d", "kernel-flip", "weight used unflipped/flipped along the length",
             lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1, groups=2),
             lambda x, w, b: F.conv1d(x, w.flip(-1), b, stride=2, padding=1, groups=2)),
    LayerBug("layers.conv2d", "kernel-flip", "3x3 kernel flipped in both spatial dims",
             lambda x, w, b: F.conv2d(x, w, b, padding=1),
             lambda x, w, b: F.conv2d(x, w.flip(-1, -2), b, padding=1)),
    LayerBug("layers.conv3d", "kernel-flip", "kernel flipped along depth only",
             lambda x, w: F.conv3d(x, w, stride=2, padding=1),
             lambda x, w: F.conv3d(x, w.flip(-3), stride=2, padding=1)),
    LayerBug("layers.conv_transpose1d", "kernel-flip", "transposed-conv kernel flipped",
             lambda x, w, b: F.conv_transpose1d(x, w, b, stride=2, padding=1, output_padding=1),
             lambda x, w, b: F.conv_transpose1d(x, w.flip(-1), b, stride=2, padding=1, output_padding=1)),
    LayerBug("layers.conv_transpose2d", "kernel-flip", "grouped transposed-conv kernel flipped in width",
             lambda x, w: F.conv_transpose2d(x, w, stride=(2, 1), groups=2, dilation=(1, 2)),
             lambda x, w: F.conv_transpose2d(x, w.flip(-1), stride=(2, 1), groups=2, dilation=(1, 2))),
    LayerBug("layers.max_pool1d", "index", "max's gradient sent one element to the right",
             lambda x: F.max_pool1d(x, 3, stride=2, padding=1, ceil_mode=True),
             lambda x: F.max_pool1d(_roll(x), 3, stride=2, padding=1, ceil_mode=True)),
    LayerBug("layers.max_pool2d", "index", "window start off by one column",
             lambda x: F.max_pool2d(x, 2), lambda x: F.max_pool2d(_roll(x), 2)),
    LayerBug("layers.avg_pool1d", "divisor", "divides by the padded window (count_include_pad=True)",
             lambda x: F.avg_pool1d(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
             lambda x: F.avg_pool1d(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=True)),
    LayerBug("layers.avg_pool2d", "divisor", "divides by the in-input count (count_include_pad=False)",
             lambda x: F.avg_pool2d(x, 3, stride=2, padding=1),
             lambda x: F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)),
    LayerBug("layers.adaptive_avg_pool2d", "index", "adaptive windows shifted by one column",
             lambda x: F.adaptive_avg_pool2d(x, (3, 4)), lambda x: F.adaptive_avg_pool2d(_roll(x), (3, 4))),
    LayerBug("layers.adaptive_avg_pool1d", "divisor", "non-overlapping windows [0, 3), [3, 6), [6, 7) for the overlapping "
             "adaptive ones", lambda x: F.adaptive_avg_pool1d(x, 3),
             lambda x: F.avg_pool1d(x, 3, stride=3, ceil_mode=True)),
    LayerBug("layers.adaptive_max_pool2d", "index", "argmax one column off",
             lambda x: F.adaptive_max_pool2d(x, (2, 4)), lambda x: F.adaptive_max_pool2d(_roll(x), (2, 4))),
    LayerBug("layers.adaptive_max_pool1d", "index", "argmax one position off",
             lambda x: F.adaptive_max_pool1d(x, 4), lambda x: F.adaptive_max_pool1d(_roll(x), 4)),
    LayerBug("layers.batch_norm_train", "constant-statistics", "batch mean and variance held constant",
             lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
             lambda x, w, b: _detached_stats(x, (0, 2), 1e-5) * w[:, None] + b[:, None]),
    LayerBug("layers.instance_norm", "constant-statistics", "instance statistics held constant",
             lambda x, w, b: F.instance_norm(x, weight=w, bias=b),
             lambda x, w, b: _detached_stats(x, (2, 3), 1e-5) * w[:, None, None] + b[:, None, None]),
    LayerBug("layers.group_norm", "grouping", "statistics over all channels (one group) in the backward",
             lambda x, w, b: F.group_norm(x, 2, w, b), lambda x, w, b: F.group_norm(x, 1, w, b)),
    LayerBug("layers.rms_norm", "constant-statistics", "the root mean square held constant",
             lambda x, w: F.rms_norm(x, [4], w, eps=0.001),
             lambda x, w: x / torch.sqrt((x * x).mean(-1, keepdim=True) + 0.001).detach() * w),
    LayerBug("layers.embedding", "index", "rows looked up one index off in the backward",
             lambda i, w: F.embedding(i, w), lambda i, w: F.embedding((i + 1) % 4, w)),
    LayerBug("layers.pad_reflect", "convention", "replicate padding's backward for reflect padding",
             lambda x: F.pad(x, (2, 1, 1, 2), mode="reflect"),
             lambda x: F.pad(x, (2, 1, 1, 2), mode="replicate")),
    LayerBug("layers.interpolate_bilinear_corners", "convention", "align_corners=False in the backward",
             lambda x: F.interpolate(x, size=(5, 6), mode="bilinear", align_corners=True),
             lambda x: F.interpolate(x, size=(5, 6), mode="bilinear", align_corners=False)),
    LayerBug("layers.interpolate_nearest", "index", "nearest source index rounded instead of floored",
             lambda x: F.interpolate(x, size=(5, 7)),
             lambda x: F.interpolate(x, size=(5, 7), mode="nearest-exact")),
    LayerBug("layers.interpolate_nearest_exact", "index", "nearest-exact's pixel centres taken as floor(dst*scale)",
             lambda x: F.interpolate(x, size=(5, 7), mode="nearest-exact"),
             lambda x: F.interpolate(x, size=(5, 7), mode="nearest")),
    LayerBug("layers.interpolate_trilinear", "convention", "align_corners=True in the trilinear backward",
             lambda x: F.interpolate(x, scale_factor=1.5, mode="trilinear", recompute_scale_factor=True),
             lambda x: F.interpolate(x, size=(3, 4, 3), mode="trilinear", align_corners=True)),
    LayerBug("layers.interpolate_trilinear_corners", "convention", "align_corners=False in the trilinear backward",
             lambda x: F.interpolate(x, size=(3, 3, 4), mode="trilinear", align_corners=True),
             lambda x: F.interpolate(x, size=(3, 3, 4), mode="trilinear", align_corners=False)),
    LayerBug("layers.interpolate_area", "index", "area windows [floor(i L/out), floor((i+1) L/out)): no overlap",
             lambda x: F.interpolate(x, size=(3, 4), mode="area"),
             lambda x: _floor_windows(x, (3, 4))),
    LayerBug("layers.grid_sample", "convention", "grid unnormalised with align_corners=True in the backward",
             lambda x, g: F.grid_sample(x, g, align_corners=False),
             lambda x, g: F.grid_sample(x, g, align_corners=True)),
    LayerBug("layers.sdpa", "factor", "scores' 1/sqrt(d) left out of the backward",
             lambda q, k, v: F.scaled_dot_product_attention(q, k, v),
             lambda q, k, v: F.scaled_dot_product_attention(q, k, v, scale=1.0)),
    LayerBug("layers.sdpa_causal_scaled", "convention", "the causal mask forgotten in the backward",
             lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.3),
             lambda q, k, v: F.scaled_dot_product_attention(q, k, v, scale=0.3)),
    LayerBug("layers.unfold", "index", "im2col columns read one pixel off",
             lambda x: F.unfold(x, (2, 3), padding=1, stride=(2, 1)),
             lambda x: F.unfold(_roll(x), (2, 3), padding=1, stride=(2, 1))),
    LayerBug("layers.fold", "index", "col2im blocks taken in the wrong order",
             lambda x: F.fold(x, (3, 4), (2, 2)), lambda x: F.fold(_roll(x), (3, 4), (2, 2))),
    LayerBug("layers.pixel_shuffle", "swapped", "sub-pixel offsets (i, j) swapped",
             lambda x: F.pixel_shuffle(x, 2),
             lambda x: F.pixel_shuffle(x.reshape(1, 2, 2, 2, 2, 3).transpose(2, 3).reshape(1, 8, 2, 3), 2)),
    LayerBug("layers.cdist", "convention", "the 1-norm's backward for the 2-norm distance",
             lambda a, b: torch.cdist(a, b), lambda a, b: torch.cdist(a, b, p=1)),
    LayerBug("layers.pdist", "index", "pairs enumerated in reversed row order",
             lambda x: F.pdist(x), lambda x: F.pdist(x.flip(0))),
    LayerBug("layers.margin_ranking_loss", "swapped", "the two inputs' gradients swapped",
             lambda a, b, y: F.margin_ranking_loss(a, b, y, margin=0.3),
             lambda a, b, y: F.margin_ranking_loss(b, a, y, margin=0.3)),
    LayerBug("layers.hinge_embedding_loss", "swapped", "the labels' signs swapped",
             lambda x, y: F.hinge_embedding_loss(x, y, reduction="sum"),
             lambda x, y: F.hinge_embedding_loss(x, -y, reduction="sum")),
    LayerBug("layers.triplet_margin_loss", "convention", "distances of the 1-norm in the backward",
             lambda a, p, n: F.triplet_margin_loss(a, p, n, margin=2.0, swap=True),
             lambda a, p, n: F.triplet_margin_loss(a, p, n, margin=2.0, swap=True, p=1)),
    LayerBug("layers.poisson_nll_loss", "convention", "log_input=True's backward for the rate term",
             lambda x, y: F.poisson_nll_loss(x, y) + F.poisson_nll_loss(x, y, log_input=False, full=True),
             lambda x, y: 2 * F.poisson_nll_loss(x, y)),
    LayerBug("layers.gaussian_nll_loss", "constant-statistics", "the variance held constant",
             lambda x, y, v: F.gaussian_nll_loss(x, y, v, full=True),
             lambda x, y, v: F.gaussian_nll_loss(x, y, v.detach(), full=True)),
    LayerBug("layers.multilabel_soft_margin_loss", "ignored-input", "class weights ignored in the backward",
             lambda x, y, w: F.multilabel_soft_margin_loss(x, y, weight=w),
             lambda x, y, w: F.multilabel_soft_margin_loss(x, y)),
    LayerBug("layers.cosine_embedding_loss", "ignored-input", "the second input held constant",
             lambda a, b, y: F.cosine_embedding_loss(a, b, y, margin=-0.2),
             lambda a, b, y: F.cosine_embedding_loss(a, b.detach(), y, margin=-0.2)),
]
