"""The tape built per operation (verifier.exact.lowering) against the per-element SymPy model.

Both routes must give the same exact output and Jᵀv on every built-in case
small enough for both; a wrong lowering rule must be caught by that
comparison, and a wrong torch backward on a large lowered case must fail.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
import torch
from wrong_backward import wrong_tanh

import verifier
from verifier import load_paths
from verifier.exact import compiled, lowering, mirror, tape_builder
from verifier.exact.symbolic import build
from verifier.run.runner import Runner

ROOT = Path(__file__).resolve().parent.parent


def _case(expr, **inputs):
    spec = {name: ({"shape": list(shape), "sample": "normal", "seed": k + 1} if isinstance(shape, tuple) else shape)
            for k, (name, shape) in enumerate(inputs.items())}
    return verifier.make_case("t.case", spec, forward=expr, grad_output="random")


def _both(case, seed=3):
    """(lowered, SymPy) exact results at the case's point with random weights."""
    tape, shape = lowering.lower(case)
    low = compiled.CompiledModel(case, tape, shape, False)
    slow = compiled.compile_model(build(case), case)
    assert low.output_shape == slow.output_shape
    point = {s.name: s.values() for s in case.inputs if s.dtype is None}
    v = np.random.default_rng(seed).normal(size=slow.output_shape)
    return compiled.exact(low, point, v), compiled.exact(slow, point, v)


def _gap(a, b) -> float:
    gaps = [float(np.max(np.abs(a.output - b.output), initial=0.0))]
    gaps += [float(np.max(np.abs(a.vjp[n] - b.vjp[n]) / (1 + np.abs(b.vjp[n])), initial=0.0)) for n in b.vjp]
    return max(gaps)


LABELS = {"value": [0, 2, 1, 1], "dtype": "int64", "requires_grad": False}
DENSE = [
    pytest.param("F.softmax(x, dim=0)", {"x": (12,)}, id="softmax-by-sympy-fragment"),
    pytest.param("torch.tanh(x @ w + b)", {"x": (3, 4), "w": (4, 5), "b": (5,)}, id="tanh-linear"),
    pytest.param("F.softmax(q @ k.T / 32 ** 0.5, dim=-1) @ v", {"q": (4, 3), "k": (4, 3), "v": (4, 3)},
                 id="attention"),
    pytest.param("torch.einsum('oc,chw->ohw', w[:, :, 0, 1], x[:, 0:3, 1:4]) + torch.einsum('ii->', y)",
                 {"x": (2, 4, 5), "w": (3, 2, 2, 2), "y": (3, 3)}, id="einsum-slices-and-trace"),
    pytest.param("torch.relu(x) * torch.clamp(x, -0.5, 0.5) + F.leaky_relu(x, 0.1)", {"x": (9,)},
                 id="kinks-with-parameters"),
    pytest.param("x.reshape(3, 4).permute(1, 0).sum(dim=1) * torch.cat([y, y])", {"x": (12,), "y": (2,)},
                 id="moves-by-tokens"),
    pytest.param("F.cross_entropy(torch.tanh(x @ w1 + b1) @ w2 + b2, t)",
                 {"x": (4, 5), "w1": (5, 5), "b1": (5,), "w2": (5, 3), "b2": (3,), "t": LABELS}, id="mlp-ce"),
    pytest.param("x @ y", {"x": (5,), "y": (5, 2)}, id="matmul-vector-matrix"),
    # per-slice templates (softmax family) and method / qualified spellings of the rules
    pytest.param("F.softmax(x, dim=0) + F.log_softmax(x, dim=1) * F.softmin(x, -1)", {"x": (3, 4)},
                 id="softmax-family-per-slice"),
    pytest.param("torch.logsumexp(x, 1, keepdim=True) * torch.logsumexp(x, dim=0)[0] + torch.softmax(x, 1)",
                 {"x": (3, 4)}, id="logsumexp-keepdim"),
    pytest.param("F.softmax(x, dim=1)", {"x": (2, 3, 4)}, id="softmax-middle-dim"),
    pytest.param("x.sum(dim=1) + x.mean(0)[:2] + torch.mm(x, y).sum(1) + torch.mv(x, z) + torch.bmm(a, b).sum((0, 2))",
                 {"x": (2, 3), "y": (3, 3), "z": (3,), "a": (2, 2, 3), "b": (2, 3, 2)}, id="method-spellings-mm-mv-bmm"),
    pytest.param("(x - y) / (1 + y ** 2) - x.abs() ** y + 2 ** x", {"x": (3, 4), "y": (4,)}, id="arithmetic"),
]


@pytest.mark.parametrize("expr, inputs", DENSE)
def test_lowered_tape_matches_the_sympy_route(expr, inputs):
    fast, slow = _both(_case(expr, **inputs))
    assert _gap(fast, slow) < 1e-14


def test_every_library_case_agrees_with_the_sympy_route():
    """Every built-in case the lowering reads: same output and Jᵀv as the per-element SymPy model."""
    loaded = load_paths([ROOT / "cases"])
    checked, worst = 0, 0.0
    for case in loaded.cases:
        try:
            lowering.lower(case)
        except lowering.Unsupported:
            continue
        try:
            build(case)
        except Exception:
            continue                          # the symbolic side cannot build (an expected-error case)
        try:
            fast, slow = _both(case)
        except verifier.errors.SymbolicError:
            continue                          # undefined at the point: both routes would say so
        worst = max(worst, _gap(fast, slow))
        assert _gap(fast, slow) < 1e-13, case.name
        checked += 1
    assert checked >= 150, checked            # most of the 214 built-in cases are read per operation


def test_comparisons_fall_back_to_the_sympy_model():
    with pytest.raises(lowering.Unsupported):
        lowering.lower(_case("torch.where(x > 0, x, 2 * x)", x=(4,)))


def test_small_cases_sweep_both_graphs_and_unreadable_ones_keep_the_jacobian_route():
    big = compiled.prepare(_case("torch.tanh(x @ w + b)", x=(8, 16), w=(16, 16), b=(16,)))
    small_case = _case("torch.tanh(x @ w + b)", x=(2, 3), w=(3, 3), b=(3,))
    small = compiled.prepare(small_case)
    other = compiled.prepare(_case("torch.where(x > 0, x, 2 * x)", x=(4,)))
    assert big.per_op and not big.has_jacobian and big.second is None
    assert small.per_op and not small.has_jacobian and small.second is not None
    assert not other.per_op and other.has_jacobian
    point = {s.name: s.values() for s in small_case.inputs}
    res = compiled.exact(small, point, np.ones(small.output_shape))
    want = compiled.exact(compiled.compile_model(build(small_case), small_case), point, np.ones(small.output_shape))
    assert res.route == compiled.SMALL_ROUTE and want.route == "symbolic Jacobian and reverse sweep (agree)"
    assert _gap(res, want) < 1e-15


def test_a_wrong_lowering_rule_on_a_small_case_is_an_error_at_run_time(monkeypatch):
    """The per-element graph is swept too: a lowering that drops a product is an error, never a verdict."""
    original = tape_builder.Builder.sums
    monkeypatch.setattr(tape_builder.Builder, "sums", lambda self, terms: original(self, terms[..., 1:]))
    case = _case("x @ w", x=(3, 4), w=(4, 2))
    model = compiled.prepare(case)
    with pytest.raises(verifier.errors.SymbolicError, match="per-operation and per-element graphs disagree"):
        compiled.exact(model, {s.name: s.values() for s in case.inputs}, np.ones(model.output_shape))
    res = Runner(cache=False, forward_mode=False, second_order=False).run(case, "float64")
    assert res.status == "error"


def test_a_wrong_sweep_rule_on_a_small_case_is_caught_by_sympy(monkeypatch):
    """Both graphs share the sweep's rules; rule_check compares them with SymPy's derivative at the point."""
    from verifier.exact import sweep
    case = _case("F.softmax(x, dim=0) * torch.tanh(x)", x=(5,))
    model = compiled.prepare(case)
    point = {"x": case.input("x").values()}
    compiled.exact(model, point, np.ones(5))                      # right rules pass
    original = sweep._rule
    monkeypatch.setattr(sweep, "_rule", lambda name, xs, y, a: [(a[0], (1.001 if name == "tanh" else 1)
                                                                 * original(name, xs, y, a)[0][1])])
    with pytest.raises(verifier.errors.SymbolicError, match="rule for tanh"):
        compiled.exact(model, point, np.ones(5))


def test_a_cached_small_tape_without_its_second_graph_is_a_miss(tmp_path):
    from verifier.exact.cache import Cache, case_key
    case = _case("F.softmax(x, dim=0)", x=(6,))
    cache = Cache(tmp_path, values=False)
    first = compiled.prepare(case, cache)
    assert first.second is not None
    again = compiled.prepare(case, cache)                          # read back: both graphs
    assert again.second is not None and again.second.ops == first.second.ops
    key = case_key(case, "tape")
    data = first.to_data()
    del data["second"]
    cache.store(key, data)                                          # an entry that lost its second route
    rejected = cache.rejected
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reread = compiled.prepare(case, cache)
    assert reread.second is not None and cache.rejected == rejected + 1


def test_a_wrong_lowering_rule_is_caught_by_the_sympy_route(monkeypatch):
    """A product rule that drops one factor pair: the exact side is wrong, and the cross-check sees it."""
    case = _case("x @ w", x=(3, 4), w=(4, 2))
    original = tape_builder.Builder.sums

    def wrong(self, terms):
        return original(self, terms[..., 1:])           # the first product of every dot product lost
    monkeypatch.setattr(tape_builder.Builder, "sums", wrong)
    fast, slow = _both(case)
    assert _gap(fast, slow) > 1e-3


def test_a_wrong_softmax_rule_is_caught_by_the_sympy_route(monkeypatch):
    """softmax lowered with a wrong normaliser (sums over all but the first element): the cross-check sees it."""
    case = _case("F.softmax(q @ k.T, dim=-1)", q=(3, 2), k=(3, 2))
    original = tape_builder.Builder.sums
    calls = []

    def wrong(self, terms):
        calls.append(terms.shape)
        return original(self, terms[..., 1:] if len(calls) == 2 else terms)   # the 2nd sum: softmax's
    monkeypatch.setattr(tape_builder.Builder, "sums", wrong)
    fast, slow = _both(case)
    assert _gap(fast, slow) > 1e-3


def test_the_softmax_family_is_lowered_without_sympy_fragments(monkeypatch):
    """softmax, log_softmax, logsumexp and method spellings of sum/mean take their rules, not _by_sympy."""
    def refuse(self, entry, args, kwargs):
        raise AssertionError(f"{entry.name} went through a SymPy fragment")
    monkeypatch.setattr(lowering.LoweringReading, "_by_sympy", refuse)
    lowering.lower(_case("F.softmax(q @ k.T / 32 ** 0.5, dim=-1) @ v", q=(6, 3), k=(6, 3), v=(6, 3)))
    lowering.lower(_case("F.log_softmax(x, 1).sum() + torch.logsumexp(x, 0).mean() + x.sum(1).mean()", x=(3, 4)))


def test_a_wrong_elementwise_template_is_caught_by_the_sympy_route(monkeypatch):
    case = _case("torch.tanh(x) * 2", x=(6,))
    real = tape_builder.template

    def wrong(name, args, kwargs):
        return real("sin" if name == "tanh" else name, args, kwargs)
    monkeypatch.setattr(lowering, "template", wrong)
    fast, slow = _both(case)
    assert _gap(fast, slow) > 1e-3



def test_a_wrong_torch_backward_on_a_lowered_case_is_caught():
    inputs = {"x": {"shape": [8, 16], "sample": "normal", "seed": 1},
              "w": {"shape": [16, 16], "sample": "normal", "seed": 2}}
    right = verifier.make_case("t.right", inputs, torch=lambda x, w: torch.tanh(x @ w),
                               sympy="torch.tanh(x @ w)", grad_output="random")
    wrong = verifier.make_case("t.wrong", inputs, torch=lambda x, w: wrong_tanh(x @ w, 37),
                               sympy="torch.tanh(x @ w)", grad_output="random")
    runner = Runner(cache=False, forward_mode=False, second_order=False)
    ok, bad = runner.run(right, "float64"), runner.run(wrong, "float64")
    assert ok.status == "pass", ok.message
    assert ok.route == lowering.ROUTE
    assert bad.status == "fail"


def test_a_wrong_torch_backward_behind_a_lowered_softmax_is_caught():
    """attention-shaped: tanh(softmax(x @ w)) with tanh's backward 0.1 % off at one element fails; right passes."""
    inputs = {"x": {"shape": [8, 16], "sample": "normal", "seed": 1},
              "w": {"shape": [16, 16], "sample": "normal", "seed": 2}}
    sym = "torch.tanh(F.softmax(x @ w, dim=-1))"
    right = verifier.make_case("t.right", inputs, torch=lambda x, w: torch.tanh(torch.softmax(x @ w, -1)),
                               sympy=sym, grad_output="random")
    wrong = verifier.make_case("t.wrong", inputs, torch=lambda x, w: wrong_tanh(torch.softmax(x @ w, -1), 37),
                               sympy=sym, grad_output="random")
    runner = Runner(cache=False, forward_mode=False, second_order=False)
    ok, bad = runner.run(right, "float64"), runner.run(wrong, "float64")
    assert ok.status == "pass", ok.message
    assert ok.route == lowering.ROUTE
    assert bad.status == "fail"


_K = 1


def _k():
    return _K


def _scaled_tanh(x):
    return np.vectorize(lambda e: _k() * sp.tanh(e), otypes=[object])(x)


def test_a_mirror_changed_only_in_a_global_gets_a_new_template(monkeypatch):
    """The per-process template cache is keyed by what the mirror computes, not by the function's identity."""
    right = mirror.FUNCTIONS["tanh"]
    monkeypatch.setitem(mirror.FUNCTIONS, "tanh", mirror.Function(**{**right.__dict__, "sym": _scaled_tanh}))
    leaf = tape_builder.Nodes(np.zeros((), dtype=np.int64))
    first = tape_builder.template("tanh", [leaf], {})
    monkeypatch.setattr(sys.modules[__name__], "_K", 2)
    second = tape_builder.template("tanh", [leaf], {})
    assert "2/1" in second[0].extra and "2/1" not in first[0].extra
