"""The lowering rules of verifier.exact.lowering_ops against the per-element SymPy route.

Every rule (nll_loss, cross_entropy, conv1d/2d/3d, avg_pool1d/2d/3d, cholesky, solve_triangular)
must give the same exact output and Jᵀv as the mirror's SymPy definition in every argument form it
reads, without running that definition (no SymPy fragment); a wrong rule must be caught by the
cross-check, and a wrong torch backward on a case that uses the rule must fail while the right one
passes.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from corpus.layers import twins
from test_lowering import _both, _case, _gap

import verifier
from verifier.exact import compiled, lowering, lowering_ops
from verifier.exact.tape_builder import Nodes
from verifier.run.runner import Runner


def _labels(values):
    return {"value": values, "dtype": "int64", "requires_grad": False}


SPD = {"value": [[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0]], "requires_grad": False}
UPPER = {"value": [[2.0, 0.5, -0.3], [0.0, 1.5, 0.2], [0.0, 0.0, 1.8]]}
FORMS = [
    # losses: class indices (1-d and 2-d input, weights, ignore_index, reductions), probabilities
    ("F.cross_entropy(x, t)", {"x": (4, 3), "t": _labels([0, 2, 1, 1])}, "cross_entropy"),
    ("F.cross_entropy(x, t, weight=w, ignore_index=1)", {"x": (4, 3), "w": (3,), "t": _labels([0, 2, 1, 1])},
     "cross_entropy"),
    ("F.cross_entropy(x, t, reduction='none') * 2 + F.cross_entropy(x, t, reduction='sum')",
     {"x": (4, 3), "t": _labels([0, 2, 1, 1])}, "cross_entropy"),
    ("F.cross_entropy(x, t)", {"x": (5,), "t": _labels(3)}, "cross_entropy"),
    ("F.cross_entropy(x, t)", {"x": (2, 3, 4), "t": _labels([[0, 1, 2, 0], [2, 2, 1, 0]])}, "cross_entropy"),
    ("F.cross_entropy(x, F.softmax(y, dim=1), weight=w)", {"x": (3, 4), "y": (3, 4), "w": (4,)}, "cross_entropy"),
    ("F.nll_loss(F.log_softmax(x, 1), t, weight=w)", {"x": (4, 3), "w": (3,), "t": _labels([0, 2, 1, 1])},
     "nll_loss"),
    ("F.nll_loss(x, t, reduction='none', ignore_index=2)", {"x": (4, 3), "t": _labels([0, 2, 1, 1])}, "nll_loss"),
    # pointwise losses: the mirror's per-element formula as a template, broadcasting, reductions, parameters
    ("F.mse_loss(x, y) + F.l1_loss(x, y, reduction='sum') + F.smooth_l1_loss(x, y, beta=0.5).sum()",
     {"x": (3, 4), "y": (3, 4)}, "l1_loss"),
    ("F.huber_loss(x, y, delta=0.3, reduction='none')", {"x": (3, 4), "y": (4,)}, "huber_loss"),
    ("F.binary_cross_entropy(torch.sigmoid(x), y, weight=w)", {"x": (3, 4), "y": (3, 4), "w": (4,)},
     "binary_cross_entropy"),
    ("F.binary_cross_entropy_with_logits(x, y, weight=w, pos_weight=p)", {"x": (3, 4), "y": (3, 4), "w": (3, 1),
                                                                          "p": (4,)},
     "binary_cross_entropy_with_logits"),
    ("F.soft_margin_loss(x, y) + F.margin_ranking_loss(x, y, z, margin=0.2)", {"x": (5,), "y": (5,), "z": (5,)},
     "margin_ranking_loss"),
    ("F.hinge_embedding_loss(x, y, margin=0.7, reduction='sum')", {"x": (5,), "y": {"value": [1.0, -1.0, 1.0, -1.0, -1.0]}},
     "hinge_embedding_loss"),
    ("F.poisson_nll_loss(x, y, log_input=True, full=True)", {"x": (5,), "y": {"value": [0.0, 1.0, 2.0, 3.5, 7.0]}},
     "poisson_nll_loss"),
    # norms: orders, dims, keepdim, torch.norm's spellings, a zero row (the 2-norm's kink), ties (inf)
    ("torch.linalg.vector_norm(x, dim=1) + torch.linalg.vector_norm(x, 1, dim=1) + torch.linalg.vector_norm(x, 3, 1)",
     {"x": (3, 4)}, "vector_norm"),
    ("torch.linalg.vector_norm(x, ord='inf', dim=(0, 2), keepdim=True) * torch.norm(x)",
     {"x": (2, 3, 2)}, "vector_norm"),
    ("torch.norm(x, dim=1) + torch.norm(x, p=1, dim=1) + torch.norm(x, 'fro', dim=1, keepdim=True)[:, 0]",
     {"x": {"value": [[0.0, 0.0, 0.0], [1.0, 2.0, -2.0], [3.0, -3.0, 0.5]]}}, "norm"),
    ("torch.norm(x, p='inf', dim=1) + torch.norm(x, '-inf', 0)[:3]",
     {"x": {"value": [[0.0, 0.0, 0.0], [1.0, 2.0, -2.0], [3.0, -3.0, 0.5]]}}, "norm"),
    # attention: default scale, is_causal with a scale, a boolean mask (2-d and per head), a batch of heads
    ("F.scaled_dot_product_attention(q, k, v)", {"q": (2, 3, 4), "k": (2, 4, 4), "v": (2, 4, 3)},
     "scaled_dot_product_attention"),
    ("F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.3)", {"q": (1, 4, 2), "k": (1, 4, 2),
                                                                           "v": (1, 4, 3)},
     "scaled_dot_product_attention"),
    ("F.scaled_dot_product_attention(q, k, v, attn_mask=m)",
     {"q": (2, 3, 2), "k": (2, 4, 2), "v": (4, 2),
      "m": {"value": [[1, 0, 1, 1], [0, 1, 1, 0], [1, 1, 0, 1]], "dtype": "bool"}}, "scaled_dot_product_attention"),
    # convolutions: bias or not, stride, padding (numbers, 'same'), dilation, groups, unbatched
    ("F.conv2d(x, w, b, padding=1)", {"x": (1, 2, 5, 5), "w": (3, 2, 3, 3), "b": (3,)}, "conv2d"),
    ("F.conv2d(x, w, stride=2, padding=(1, 0), dilation=(1, 2), groups=2)", {"x": (2, 4, 6, 7), "w": (4, 2, 2, 2)},
     "conv2d"),
    ("F.conv2d(x, w, padding='same', dilation=2)", {"x": (2, 5, 6), "w": (2, 2, 2, 3)}, "conv2d"),
    ("F.conv1d(x, w, b, stride=2, padding=1, groups=2)", {"x": (2, 4, 7), "w": (6, 2, 3), "b": (6,)}, "conv1d"),
    ("F.conv3d(x, w, stride=2, padding=1)", {"x": (1, 2, 4, 3, 4), "w": (2, 2, 2, 2, 2)}, "conv3d"),
    # average pooling: padding, ceil_mode, count_include_pad, divisor_override, 1-d/3-d
    ("F.avg_pool2d(x, 3, stride=2, padding=1)", {"x": (1, 2, 5, 6)}, "avg_pool2d"),
    ("F.avg_pool2d(x, (2, 3), stride=2, padding=1, ceil_mode=True, count_include_pad=False)", {"x": (2, 5, 6)},
     "avg_pool2d"),
    ("F.avg_pool2d(x, 2, divisor_override=3)", {"x": (1, 1, 4, 4)}, "avg_pool2d"),
    ("F.avg_pool1d(x, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)", {"x": (2, 2, 8)},
     "avg_pool1d"),
    ("F.avg_pool3d(x, 2, stride=1, padding=1)", {"x": (1, 1, 3, 3, 2)}, "avg_pool3d"),
    # triangular linear algebra: symmetric part, upper, batched; left/right, unitriangular, vector rhs
    ("torch.linalg.cholesky(B @ B.T + I2)", {"B": (3, 3), "I2": SPD}, "cholesky"),
    ("torch.linalg.cholesky(B @ B.mT + 3, upper=True)", {"B": (2, 3, 3)}, "cholesky"),
    ("torch.linalg.solve_triangular(U, B, upper=True)", {"U": UPPER, "B": (3, 2)}, "solve_triangular"),
    ("torch.linalg.solve_triangular(U.T, B, upper=False, left=False)", {"U": UPPER, "B": (2, 3)},
     "solve_triangular"),
    ("torch.linalg.solve_triangular(U, B, upper=True, unitriangular=True)", {"U": UPPER, "B": (2, 3, 1)},
     "solve_triangular"),
]


@pytest.mark.parametrize("expr, inputs, name", FORMS, ids=[f"{f[2]}-{k}" for k, f in enumerate(FORMS)])
def test_each_rule_matches_the_sympy_route_without_a_fragment(expr, inputs, name, monkeypatch):
    case = _case(expr, **inputs)
    fast, slow = _both(case)
    assert _gap(fast, slow) < 1e-14
    real = lowering.LoweringReading._by_sympy

    def refuse(self, entry, args, kwargs):
        ruled = any(entry.name == n or entry.name.endswith("." + n) for n in lowering_ops.RULES)
        assert not ruled, f"{entry.name} went through a SymPy fragment"
        return real(self, entry, args, kwargs)
    monkeypatch.setattr(lowering.LoweringReading, "_by_sympy", refuse)
    lowering.lower(case)


def test_forms_a_rule_does_not_read_fall_back_to_the_mirror_and_its_words():
    """label_smoothing, 'same' padding with a stride, a class index out of range: the rule declines, the
    mirror runs and its error (what is wrong, what to do) is what the case reports."""
    for expr, inputs, words in [
            ("F.cross_entropy(x, t, label_smoothing=0.1)", {"x": (2, 3), "t": _labels([0, 1])}, "label_smoothing"),
            ("F.conv2d(x, w, stride=2, padding='same')", {"x": (1, 1, 4, 4), "w": (1, 1, 3, 3)}, "strided"),
            ("F.cross_entropy(x, t)", {"x": (2, 3), "t": _labels([0, 3])}, None)]:
        with pytest.raises(lowering.Unsupported, match=words):
            lowering.lower(_case(expr, **inputs))


def _planted(name, transform):
    """lowering._RULES[name] with its arguments transformed first: a wrong rule."""
    real = lowering._RULES[name]
    return lambda r, *a, **k: real(r, *transform(*a), **k)


WRONG_RULES = [
    ("conv2d", lambda x, w, *rest: (x, Nodes(w.ids[..., ::-1, ::-1]), *rest),
     "F.conv2d(x, w, b, padding=1)", {"x": (1, 2, 5, 5), "w": (3, 2, 3, 3), "b": (3,)}),
    ("avg_pool2d", lambda x, *rest: (Nodes(x.ids[..., ::-1]), *rest),
     "F.avg_pool2d(x, 3, stride=2, padding=1)", {"x": (1, 2, 5, 6)}),
    ("cross_entropy", lambda x, t, *rest: (x, (t + 1) % 3, *rest),
     "F.cross_entropy(x, t)", {"x": (4, 3), "t": _labels([0, 2, 1, 1])}),
    # reads the lower triangle only (torch's forward does), so the gradient misses the symmetric part
    ("cholesky", lambda a, *rest: (Nodes(np.where(np.tri(3, dtype=bool), a.ids, a.ids.T)), *rest),
     "torch.linalg.cholesky(B @ B.T + I2 + B)", {"B": (3, 3), "I2": SPD}),
    ("huber_loss", lambda x, y, *rest, **k: (x, Nodes(y.ids[..., ::-1]), *rest),
     "F.huber_loss(x, y, delta=0.3)", {"x": (3, 4), "y": (3, 4)}),
    ("vector_norm", lambda x, *rest: (Nodes(x.ids[::-1]), *rest),
     "torch.linalg.vector_norm(x, 3, dim=1)", {"x": (3, 4)}),
    ("scaled_dot_product_attention", lambda q, k, v, *rest, **kw: (q, k, Nodes(v.ids[..., ::-1, :]), *rest),
     "F.scaled_dot_product_attention(q, k, v)", {"q": (2, 3, 4), "k": (2, 4, 4), "v": (2, 4, 3)}),
    ("solve_triangular", lambda a, b, *rest: (Nodes(a.ids.T), b, *rest),
     "torch.linalg.solve_triangular(U, B, upper=True)", {"U": UPPER, "B": (3, 2)}),
]


@pytest.mark.parametrize("name, transform, expr, inputs", WRONG_RULES, ids=[w[0] for w in WRONG_RULES])
def test_a_wrong_rule_is_caught_by_the_sympy_route(name, transform, expr, inputs, monkeypatch):
    case = _case(expr, **inputs)
    right, slow = _both(case)
    assert _gap(right, slow) < 1e-14
    monkeypatch.setitem(lowering._RULES, name, _planted(name, transform))
    fast, slow = _both(case)
    assert _gap(fast, slow) > 1e-3


def _x(shape, seed):
    return {"shape": list(shape), "sample": "normal", "seed": seed}


PLANTED = [
    ("F.cross_entropy(x, t)", {"x": _x((16, 10), 1), "t": _labels([(7 * i + 3) % 10 for i in range(16)])},
     lambda x, t: F.cross_entropy(x, t), lambda x, t: F.cross_entropy(x, t, label_smoothing=0.01)),
    ("F.nll_loss(F.log_softmax(x, 1), t, weight=w)",
     {"x": _x((6, 4), 1), "t": _labels([0, 3, 1, 1, 2, 0]),
      "w": {"value": [0.5, 1.0, 2.0, 1.5], "requires_grad": False}},
     lambda x, t, w: F.nll_loss(F.log_softmax(x, 1), t, weight=w),
     lambda x, t, w: F.nll_loss(F.log_softmax(x, 1), t, weight=w, reduction="sum") / 6),
    ("F.conv2d(x, w, b, stride=2, padding=1, groups=2)", {"x": _x((1, 4, 8, 8), 1), "w": _x((4, 2, 3, 3), 2),
                                                        "b": _x((4,), 3)},
     lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, groups=2),
     lambda x, w, b: F.conv2d(x, w.flip(-1), b, stride=2, padding=1, groups=2)),
    ("F.huber_loss(x, y, delta=0.5)", {"x": _x((16, 16), 1), "y": _x((16, 16), 2)},
     lambda x, y: F.huber_loss(x, y, delta=0.5), lambda x, y: F.huber_loss(x, y, delta=0.45)),
    ("torch.norm(x, dim=1)", {"x": _x((32, 16), 1)}, lambda x: torch.norm(x, dim=1),
     lambda x: torch.norm(x * torch.linspace(1, 1.001, 16, dtype=x.dtype), dim=1)),
    ("F.scaled_dot_product_attention(q, k, v, is_causal=True)", {"q": _x((2, 8, 4), 1), "k": _x((2, 8, 4), 2),
                                                                 "v": _x((2, 8, 4), 3)},
     lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
     lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.49)),
    ("F.avg_pool2d(x, 3, stride=2, padding=1)", {"x": _x((2, 3, 9, 9), 1)},
     lambda x: F.avg_pool2d(x, 3, stride=2, padding=1),
     lambda x: F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)),
    ("torch.linalg.cholesky(B @ B.T + I2)", {"B": _x((3, 3), 1), "I2": SPD},
     lambda b, i: torch.linalg.cholesky(b @ b.T + i),
     lambda b, i: torch.linalg.cholesky(b @ b.T + i) * torch.tensor([1.0, 1.0, 1.001], dtype=b.dtype)),
    ("torch.linalg.solve_triangular(U, B, upper=True)", {"U": UPPER, "B": _x((3, 2), 1)},
     lambda u, b: torch.linalg.solve_triangular(u, b, upper=True),
     lambda u, b: torch.linalg.solve_triangular(u, b, upper=True, unitriangular=True)),
]


@pytest.mark.parametrize("expr, inputs, right, wrong", PLANTED, ids=[p[0].split("(")[0] for p in PLANTED])
def test_a_wrong_backward_on_a_lowered_case_fails_and_the_right_one_passes(expr, inputs, right, wrong):
    good = verifier.make_case("t.right", inputs, torch=right, sympy=expr, grad_output="random")
    buggy = twins(right, wrong)[1]          # forward's value, the VJP of the nearby wrong forward as backward
    bad = verifier.make_case("t.wrong", inputs, torch=lambda *xs: buggy.apply(*xs), sympy=expr, grad_output="random")
    runner = Runner(cache=False, forward_mode=False, second_order=False)
    ok, caught = runner.run(good, "float64"), runner.run(bad, "float64")
    assert ok.status == "pass", ok.message
    assert ok.route in (lowering.ROUTE, compiled.SMALL_ROUTE), ok.route
    assert caught.status == "fail", caught.message
