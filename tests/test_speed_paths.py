"""The fast paths give the same exact values as the slow ones, and still catch wrong gradients.

* the compiled tape (verifier.exact.tape/sweep) against SymPy's own derivative of Σ v⊙y;
* elementwise templates (verifier.exact.formulas) against the element-by-element model;
* tapes from the disk cache (verifier.exact.cache) against freshly built ones.
No timing here: speed is shown by benchmarks/speed.py.
"""

from __future__ import annotations

import json

import mpmath
import numpy as np
import pytest
import sympy as sp
import torch
from wrong_backward import wrong_tanh

import verifier
from verifier.errors import SymbolicError
from verifier.exact import compiled as compiling
from verifier.exact import formulas as templates
from verifier.exact import mirror, sweep, symbolic, vectorised
from verifier.exact.cache import Cache, case_key
from verifier.exact.evaluation import Evaluator
from verifier.exact.tape import compile_tape, symbol_leaves
from verifier.run.runner import Runner
from verifier.verdict.compare import index_labels

DTYPES = [pytest.param("float64", id="float64"), pytest.param("float32", id="float32")]


def _case(expr, **inputs):
    spec = {name: ({"shape": list(shape), "sample": "normal", "seed": k + 1} if isinstance(shape, tuple) else shape)
            for k, (name, shape) in enumerate(inputs.items())}
    return verifier.make_case("t.case", spec, forward=expr, grad_output="random")


# --- the tape against SymPy's scalar route -------------------------------------------------------------

DENSE = [
    pytest.param("F.softmax(x, dim=0)", {"x": (12,)}, id="softmax"),
    pytest.param("F.layer_norm(x, [10])", {"x": (10,)}, id="layer_norm"),
    pytest.param("x @ w", {"x": (4, 5), "w": (5, 3)}, id="matmul"),
    pytest.param("x @ w", {"x": (4, 5), "w": {"shape": [5, 3], "sample": "normal", "seed": 9,
                                              "requires_grad": False}}, id="matmul-constant-input"),
    pytest.param("torch.logsumexp(x, dim=1)", {"x": (3, 6)}, id="logsumexp"),
    pytest.param("torch.relu(x) * torch.clamp(x, -0.5, 0.5)", {"x": (9,)}, id="kinks-off-the-kink"),
    pytest.param("torch.where(x > 0, torch.log(x), x)", {"x": (8,)}, id="piecewise-undefined-branch"),
    pytest.param("torch.atan2(x, y) + torch.erf(x) * y ** 2", {"x": (5,), "y": (5,)}, id="two-inputs"),
    pytest.param("torch.cumprod(x, dim=0)", {"x": (7,)}, id="cumprod"),
    pytest.param("torch.sign(x) * x ** 2 + x", {"x": (5,)}, id="sign-derivative-via-diff"),
    pytest.param("torch.amax(x, dim=0) + torch.prod(x)", {"x": (6,)}, id="max-and-prod"),
]


def _scalar_route(model, point, weights):
    """∂(Σ v⊙y)/∂x by SymPy's diff, evaluated with the SymPy-walking Evaluator (the original route)."""
    values = {}
    for name, syms in model.symbols.items():
        values.update(zip(syms.ravel().tolist(), np.asarray(point[name], dtype=np.float64).ravel().tolist()))
    scalar = sp.Add(*[sp.Rational(float(w)) * y for w, y in zip(np.ravel(weights), model.output.ravel())])
    with mpmath.workdps(40):
        ev = Evaluator(values)
        return {name: np.array([float(ev(sp.diff(scalar, s))) for s in model.symbols[name].ravel()])
                .reshape(model.symbols[name].shape) for name in model.wrt}


@pytest.mark.parametrize("expr, inputs", DENSE)
@pytest.mark.parametrize("dtype", DTYPES)
def test_tape_sweep_matches_sympy_diff_of_the_weighted_sum(expr, inputs, dtype):
    case = _case(expr, **inputs)
    model = symbolic.build(case)
    point = {s.name: torch.as_tensor(s.values(), dtype=getattr(torch, dtype)).double().numpy()
             for s in case.inputs}
    weights = np.random.default_rng(3).normal(size=model.output.shape)
    got = compiling.exact(model, point, weights)
    want = _scalar_route(model, point, weights)
    for name in model.wrt:
        np.testing.assert_allclose(got.vjp[name], want[name], rtol=1e-14, atol=1e-15)


def test_jacobian_route_catches_a_wrong_jacobian():
    """The two routes must agree: a tape whose Jacobian entries are off is an error, not a pass."""
    case = _case("torch.tanh(x) * x.sum()", x=(3,))
    model = symbolic.build(case)
    compiled = compiling.compile_model(model, case)
    assert compiled.has_jacobian
    point = {"x": case.input("x").values()}
    compiling.exact(compiled, point, np.ones(3))          # the right tape passes
    n_out = 3
    jac = compiled.tape.roots[n_out:]
    compiled.tape.roots[n_out:] = jac[1:] + jac[:1]      # every entry moved to the wrong place
    with pytest.raises(SymbolicError, match="Jacobian route and the scalar route disagree"):
        compiling.exact(compiled, point, np.ones(3))


def test_a_wrong_derivative_rule_in_the_sweep_is_caught(monkeypatch):
    case = _case("torch.exp(x) * x", x=(4,))
    compiled = compiling.compile_model(symbolic.build(case), case)
    point = {"x": case.input("x").values()}
    right = compiling.exact(compiled, point, np.ones(4))
    original = sweep._rule
    monkeypatch.setattr(sweep, "_rule", lambda name, xs, y, a: [(a[0], 1.001 * original(name, xs, y, a)[0][1])])
    with pytest.raises(SymbolicError, match="disagree"):
        compiling.exact(compiled, point, np.ones(4))
    assert right.route == "symbolic Jacobian and reverse sweep (agree)"


def test_poisoned_branch_only_matters_when_taken():
    x = sp.Symbol("x", real=True)
    expr = sp.Piecewise((sp.log(x), x > 0), (x, True))
    tape = compile_tape([expr], {x: ("x", 0)})
    with mpmath.workdps(40):
        vals = sweep.forward(tape, [mpmath.mpf(-2)])
        assert sweep.value(vals, tape.roots[0], "output") == -2
        (grad,) = sweep.backward(tape, vals, {tape.roots[0]: mpmath.mpf(1)})
        assert grad == 1
        pole = compile_tape([1 / x], {x: ("x", 0)})
        with pytest.raises(SymbolicError, match="division by zero"):
            sweep.value(sweep.forward(pole, [mpmath.mpf(0)]), pole.roots[0], "output")


# --- elementwise templates against the element-by-element model ----------------------------------------

ELEMENTWISE = [
    pytest.param("x * torch.tanh(F.softplus(x))", {"x": (6, 7)}, id="mish"),
    pytest.param("torch.where(x > 0, x ** 2, torch.exp(x) - 1)", {"x": (40,)}, id="piecewise"),
    pytest.param("torch.clamp(x, -0.5, 0.5) + torch.relu(x) * 2", {"x": (40,)}, id="max-min-fdiff"),
    pytest.param("x * b + torch.sin(b)", {"x": (5, 8), "b": (8,)}, id="broadcast-sum-back"),
    pytest.param("torch.atan2(x, b) * torch.erf(x)", {"x": (4, 6), "b": (4, 1)}, id="two-args-and-math-erf"),
    pytest.param("F.gelu(x, approximate='tanh') / (1 + x ** 2)", {"x": (33,)}, id="gelu-tanh"),
    pytest.param("torch.sigmoid(x).log1p() * 3", {"x": (25,)}, id="method-call"),
]


@pytest.mark.parametrize("expr, inputs", ELEMENTWISE)
@pytest.mark.parametrize("dtype", DTYPES)
def test_template_matches_the_element_by_element_model(expr, inputs, dtype, monkeypatch):
    case = _case(expr, **inputs)
    assert templates.is_elementwise(case)
    slow = Runner(cache=False).run(case, dtype)
    monkeypatch.setattr(templates, "TEMPLATE_MIN_ELEMENTS", 1)
    monkeypatch.setattr(templates, "CHUNK", 16)          # several chunks, a ragged last one
    fast = Runner(cache=False).run(case, dtype)
    assert slow.status == fast.status == "pass", (slow.message, fast.message)
    assert fast.route.startswith("elementwise template") and not slow.route.startswith("elementwise")
    np.testing.assert_allclose(fast.exact.output, slow.exact.output, rtol=1e-14, atol=1e-15)
    for name in slow.exact.vjp:
        np.testing.assert_allclose(fast.exact.vjp[name], slow.exact.vjp[name], rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("expr, elementwise", [
    pytest.param("torch.exp(x) * 2 - x", True, id="arithmetic"),
    pytest.param("x.sin().abs()", True, id="methods"),
    pytest.param("F.softmax(x, dim=0)", False, id="softmax"),
    pytest.param("x.sum() * x", False, id="reduction"),
    pytest.param("x[1:] * 2", False, id="indexing"),
    pytest.param("x.T * 2", False, id="transpose"),
    pytest.param("x @ x", False, id="matmul"),
])
def test_only_elementwise_expressions_get_templates(expr, elementwise):
    assert templates.is_elementwise(_case(expr, x=(4,))) is elementwise


def test_masks_and_small_cases_keep_the_full_model():
    masked = verifier.make_case("t.mask", {"x": {"shape": [5000], "sample": "normal"},
                                           "m": {"value": [1] * 5000, "dtype": "bool"}},
                                forward="torch.where(m, x, 2 * x)")
    assert not templates.wants_template(masked)
    assert not templates.wants_template(_case("torch.exp(x)", x=(10,)))
    assert templates.wants_template(_case("torch.exp(x)", x=(100, 100)))


def test_template_catches_a_wrong_torch_gradient():
    """A large elementwise case whose backward is off by 0.1 % in one element fails."""
    inputs = {"x": {"shape": [100, 100], "sample": "normal", "seed": 4}}
    right = verifier.make_case("t.right", inputs, torch=torch.tanh, sympy="torch.tanh(x)", grad_output="random")
    wrong = verifier.make_case("t.wrong", inputs, torch=lambda x: wrong_tanh(x, 1234), sympy="torch.tanh(x)",
                               grad_output="random")
    runner = Runner(cache=False, fd_max_elements=8)
    ok, bad = runner.run(right, "float64"), runner.run(wrong, "float64")
    assert ok.status == "pass" and ok.route.startswith("elementwise template")
    assert bad.status == "fail"
    assert list(bad.rows.loc[~bad.rows["ok"], "index"]) == ["(12, 34)"]


def test_template_routes_must_agree(monkeypatch):
    case = _case("torch.exp(x) * x", x=(64,))
    monkeypatch.setattr(templates, "TEMPLATE_MIN_ELEMENTS", 1)
    model = templates.build_template(case)
    point = {"x": case.input("x").values()}
    templates.exact(model, point, None)
    original = vectorised._rule
    monkeypatch.setattr(vectorised, "_rule", lambda n, xs, y, a: [(a[0], 1.001 * original(n, xs, y, a)[0][1])])
    with pytest.raises(SymbolicError, match="reverse sweep and its symbolic derivative disagree"):
        templates.exact(model, point, None)


def test_template_sample_check_catches_inaccurate_vectorised_values(monkeypatch):
    case = _case("torch.tanh(x)", x=(64,))
    model = templates.build_template(case)
    point = {"x": case.input("x").values()}
    monkeypatch.setitem(vectorised.NP, "tanh", lambda x: np.tanh(x) * (1 + 1e-9))
    with pytest.raises(SymbolicError, match="deviates from the 40-digit value"):
        templates.exact(model, point, None)


def test_template_outside_the_domain_is_a_clear_error():
    case = verifier.make_case("t.log", {"x": {"value": [1.0, -1.0, 2.0]}}, forward="torch.log(x)")
    model = templates.build_template(case)
    with pytest.raises(SymbolicError, match=r"undefined \(NaN\) at element 1"):
        templates.exact(model, {"x": np.array([1.0, -1.0, 2.0])}, None)


# --- the disk cache ------------------------------------------------------------------------------------

CACHED = [
    pytest.param("F.softmax(x, dim=0) * 3", {"x": (20,)}, id="softmax-sweep-only"),
    pytest.param("torch.tanh(x) * x.sum()", {"x": (4,)}, id="with-jacobian"),
    pytest.param("torch.gather(x, 1, i)", {"x": (3, 4), "i": {"value": [[0, 3], [1, 1], [2, 0]],
                                                                "dtype": "int64"}}, id="index-input"),
]


@pytest.mark.parametrize("expr, inputs", CACHED)
@pytest.mark.parametrize("dtype", DTYPES)
def test_cached_tape_gives_identical_results(expr, inputs, dtype, tmp_path):
    case = _case(expr, **inputs)
    cache = Cache(tmp_path, values=False)
    cold = Runner(cache=cache).run(case, dtype)
    assert (cache.hits, cache.misses) == (0, 1)
    warm = Runner(cache=cache).run(case, dtype)
    assert cache.hits == 1
    assert cold.status == warm.status == "pass" and cold.route == warm.route
    np.testing.assert_array_equal(cold.exact.output, warm.exact.output)
    for name in cold.exact.vjp:
        np.testing.assert_array_equal(cold.exact.vjp[name], warm.exact.vjp[name])


def test_cached_model_still_builds_sympy_on_demand(tmp_path):
    case = _case("torch.exp(x)", x=(3,))
    Runner(cache=Cache(tmp_path)).run(case, "float64")
    model = Runner(cache=Cache(tmp_path)).model(case)
    assert model._model is None                         # nothing built yet
    assert str(model.output[0]) == "exp(x[0])"
    assert model.jacobian()["x"].shape == (3, 3)


def test_cache_key_follows_the_content():
    base = _case("torch.exp(x)", x=(3,))
    assert case_key(base, "tape") == case_key(_case("torch.exp(x)", x=(3,)), "tape")
    assert case_key(base, "tape") != case_key(_case("torch.exp(x) + 0", x=(3,)), "tape")
    assert case_key(base, "tape") != case_key(_case("torch.exp(x)", x=(4,)), "tape")
    idx = [verifier.make_case("t", {"x": {"shape": [3], "sample": "normal"}, "i": {"value": v, "dtype": "int64"}},
                              forward="x[i]") for v in ([0, 1], [1, 0])]
    assert case_key(idx[0], "tape") != case_key(idx[1], "tape")
    callable_case = verifier.make_case("t", {"x": [1.0]}, torch=torch.exp, sympy=lambda x: x)
    assert case_key(callable_case, "tape") is None


def test_a_swapped_mirror_is_not_served_from_the_cache(tmp_path, monkeypatch):
    """A stale tape would hide a changed definition: the key holds the mirror's code."""
    case = _case("torch.tanh(x)", x=(5,))
    cache = Cache(tmp_path)
    assert Runner(cache=cache).run(case, "float64").status == "pass"
    right = mirror.FUNCTIONS["tanh"]
    wrong = mirror._table.Function(**{**right.__dict__, "sym": lambda x: np.vectorize(
        lambda e: 1.001 * sp.tanh(e), otypes=[object])(x)})
    monkeypatch.setitem(mirror.FUNCTIONS, "tanh", wrong)
    result = Runner(cache=cache).run(case, "float64")
    assert result.status == "fail" and cache.hits == 0


def test_corrupt_cache_entries_are_misses(tmp_path):
    case = _case("torch.exp(x) * 2", x=(3,))
    cache = Cache(tmp_path, values=False)
    first = Runner(cache=cache).run(case, "float64")
    path = cache.path(case_key(case, "tape"))
    path.write_text("{not json")
    again = Runner(cache=cache).run(case, "float64")
    assert again.status == "pass" and cache.hits == 0
    np.testing.assert_array_equal(first.exact.vjp["x"], again.exact.vjp["x"])
    data = json.loads(path.read_bytes().split(b"\n", 1)[1])     # rewritten whole, after its MAC line
    data["tape"]["ops"] = "garbage"
    cache.store(case_key(case, "tape"), data)            # authentic, but not a tape
    assert Runner(cache=cache).run(case, "float64").status == "pass"


def test_cache_can_be_switched_off(monkeypatch, tmp_path):
    monkeypatch.setenv("VERIFIER_CACHE", "off")
    assert Runner().cache is None
    monkeypatch.setenv("VERIFIER_CACHE", "on")
    monkeypatch.setenv("VERIFIER_CACHE_DIR", str(tmp_path))
    assert Runner().cache.directory == tmp_path


# --- small helpers on the fast path --------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(), (4,), (2, 3), (2, 1, 3), (0,), (2, 0)], ids=str)
def test_index_labels_are_str_of_each_index(shape):
    want = [str(idx) for idx in np.ndindex(*shape)] if shape else ["()"]
    assert index_labels(shape) == want


def test_tape_round_trips_through_json():
    x, y = sp.symbols("x y", real=True)
    exprs = [sp.Max(x, y) * sp.exp(x) + sp.Rational(1, 3), sp.Piecewise((x, x > 0), (y ** 2, True)), sp.pi * y]
    tape = compile_tape(exprs, {x: ("a", 0), y: ("a", 1)})
    again = type(tape).from_data(json.loads(json.dumps(tape.to_data())))
    with mpmath.workdps(40):
        a = sweep.forward(tape, [mpmath.mpf(0.5), mpmath.mpf(-2)])
        b = sweep.forward(again, [mpmath.mpf(0.5), mpmath.mpf(-2)])
    assert [a[r] for r in tape.roots] == [b[r] for r in again.roots]
    assert symbol_leaves({"a": np.array([x, y], dtype=object)}) == {x: ("a", 0), y: ("a", 1)}


def test_detail_rows_are_one_frame_equal_to_per_input_frames():
    """element_rows builds one DataFrame; it must equal the per-input frames concatenated."""
    import pandas as pd
    case = _case("x * y", x=(3, 2), y=(2,))
    res = Runner(cache=False).run(case, "float64")
    rows = res.rows
    parts = [rows[rows["input"] == name].reset_index(drop=True) for name in ("x", "y")]
    pd.testing.assert_frame_equal(rows, pd.concat(parts, ignore_index=True))
    assert list(rows["index"]) == ["(0, 0)", "(0, 1)", "(1, 0)", "(1, 1)", "(2, 0)", "(2, 1)", "(0,)", "(1,)"]
    assert rows["ok"].dtype == bool and rows["exact"].dtype == np.float64


# --- screening for kinks before the SymPy-walking detector ---------------------------------------------

def _library(*names):
    from verifier.cases.loading import load_paths
    from verifier.cases.registry import builtin_cases_dir
    return load_paths([builtin_cases_dir() / name for name in names]).cases


@pytest.mark.parametrize("dtype", DTYPES)
def test_kink_screen_never_hides_a_candidate(dtype):
    """Wherever the full detector finds a candidate, the tape's screen says 'maybe' (so it runs)."""
    from verifier.exact import kinks
    from verifier.run.runner import _round
    checked = flagged = 0
    for case in _library("kinks.yaml", "elementwise.yaml", "reductions.yaml"):
        if case.expect.error or dtype not in case.dtypes:
            continue
        model = symbolic.build(case)
        point = {s.name: _round(s.values(), dtype) for s in case.inputs if s.dtype is None}
        weights = np.random.default_rng(0).normal(size=model.output.shape)
        try:
            ex = compiling.exact(model, point, weights)
        except SymbolicError:
            continue
        full = kinks.detect(model, point, weights)
        checked += 1
        flagged += bool(full.candidates)
        if full.candidates:
            assert ex.may_kink, (case.name, full.candidates)
    assert checked > 50 and flagged >= 8


def test_kink_screen_clears_smooth_points_and_flags_kinks():
    smooth = _case("torch.relu(x) + torch.abs(x)", x=(6,))
    model = symbolic.build(smooth)
    assert not compiling.exact(model, {"x": smooth.input("x").values()}, np.ones(6)).may_kink
    at_zero = verifier.make_case("t.k", {"x": {"value": [0.0, 1.0, -2.0]}}, forward="torch.relu(x)")
    model = symbolic.build(at_zero)
    assert compiling.exact(model, {"x": np.array([0.0, 1.0, -2.0])}, np.ones(3)).may_kink


def test_template_kink_screen(monkeypatch):
    monkeypatch.setattr(templates, "TEMPLATE_MIN_ELEMENTS", 1)
    case = verifier.make_case("t.k", {"x": {"value": [0.5, -1.0, 2.0, 0.0]}}, forward="torch.clamp(x, -1, 1)")
    model = templates.build_template(case)
    assert templates.exact(model, {"x": np.array([0.5, -1.0, 2.0, 0.0])}, None).may_kink       # x = -1 is a bound
    assert not templates.exact(model, {"x": np.array([0.5, -0.3, 2.0, 0.0])}, None).may_kink


def test_undefined_value_in_an_untaken_branch_is_fine():
    x = sp.Symbol("x", real=True)
    expr = sp.Piecewise((sp.zoo, x < -5), (x ** 2, True))
    tape = compile_tape([expr], {x: ("x", 0)})
    with mpmath.workdps(40):
        vals = sweep.forward(tape, [mpmath.mpf(3)])
        assert sweep.value(vals, tape.roots[0], "output") == 9
        with pytest.raises(SymbolicError, match="undefined value"):
            sweep.value(sweep.forward(tape, [mpmath.mpf(-6)]), tape.roots[0], "output")


def test_cached_values_and_kinks_are_the_computed_ones(tmp_path):
    """With values cached, a re-run reads exact Jᵀv and the kink report; torch still runs and is judged."""
    from verifier.cases.loading import load_paths
    from verifier.cases.registry import builtin_cases_dir
    cases = [c for c in load_paths([builtin_cases_dir() / "kinks.yaml"]).cases if not c.expect.error][:4]
    cases.append(_case("F.softmax(x, dim=0)", x=(6,)))
    for case in cases:
        for dtype in case.dtypes[:2]:
            cold = Runner(cache=Cache(tmp_path)).run(case, dtype)
            cache = Cache(tmp_path)
            warm = Runner(cache=cache).run(case, dtype)
            assert cache.misses == 0 and cache.hits >= 2, case.name      # tape and values
            assert warm.status == cold.status and warm.message == cold.message
            assert warm.route == cold.route
            import pandas as pd
            pd.testing.assert_frame_equal(warm.rows, cold.rows)


def test_cached_values_still_catch_a_wrong_torch_gradient(tmp_path):
    inputs = {"x": {"shape": [5], "sample": "normal", "seed": 2}}
    right = verifier.make_case("t.same", inputs, forward="torch.sin(x) * 2", grad_output="random")
    wrong = verifier.make_case("t.same", inputs, torch="torch.sin(x) * 2.002", sympy="torch.sin(x) * 2",
                               grad_output="random")
    assert Runner(cache=Cache(tmp_path)).run(right, "float64").status == "pass"
    cache = Cache(tmp_path)
    result = Runner(cache=cache).run(wrong, "float64")
    assert cache.hits >= 2 and result.status == "fail"


def test_values_are_keyed_by_the_point(tmp_path):
    case = _case("torch.exp(x) * x", x=(4,))
    cache = Cache(tmp_path)
    a = Runner(cache=cache, forward_mode=False, second_order=False).run(case, "float64")
    b = Runner(cache=cache, forward_mode=False, second_order=False).run(case, "float32")   # another rounding
    assert not np.array_equal(a.exact.vjp["x"], b.exact.vjp["x"])
    assert len(list(tmp_path.rglob("*.json"))) == 3                      # one tape, two sets of values


@pytest.mark.parametrize("dtype", DTYPES)
def test_rows_without_kinks_equal_what_annotate_makes(dtype):
    """The runner adds the kink columns itself when nothing is at a kink; the frame must be annotate()'s."""
    import pandas as pd

    from verifier.exact import kinks
    from verifier.run.runner import _NO_KINK
    case = _case("x * y + torch.relu(x)", x=(3, 2), y=(2,))
    res = Runner(cache=False).run(case, dtype)
    assert not res.kinks.elements
    plain = res.rows.drop(columns=list(_NO_KINK))
    from verifier.verdict import kinks as kink_verdict
    pd.testing.assert_frame_equal(res.rows, kink_verdict.annotate(plain, kinks.KinkReport()))
    assert list(_NO_KINK) == kinks.KINK_COLUMNS        # a new kink column must be added here too


# --- forward mode from the tape ------------------------------------------------------------------------

@pytest.mark.parametrize("expr, inputs", DENSE)
def test_tape_jvp_matches_the_sympy_tangent_sweep(expr, inputs):
    from verifier.exact import tangent
    case = _case(expr, **inputs)
    model = symbolic.build(case)
    compiled = compiling.compile_model(model, case)
    point = {s.name: s.values() for s in case.inputs if s.dtype is None}
    u = {name: np.random.default_rng(5).normal(size=model.symbols[name].shape) for name in model.wrt}
    if tangent.at_kink(model, point):
        assert compiled.kink_text(point)                       # the screen never clears a kink
        return
    np.testing.assert_allclose(compiled.exact_jvp(point, u), tangent.exact_jvp(model, point, u),
                               rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("expr, inputs", ELEMENTWISE)
def test_template_jvp_matches_the_element_by_element_one(expr, inputs, monkeypatch):
    from verifier.exact import tangent
    monkeypatch.setattr(templates, "CHUNK", 16)
    case = _case(expr, **inputs)
    model = symbolic.build(case)
    template = templates.build_template(case)
    point = {s.name: s.values() for s in case.inputs if s.dtype is None}
    u = {name: np.random.default_rng(5).normal(size=model.symbols[name].shape) for name in model.wrt}
    assert template.kink_text(point) == ""
    np.testing.assert_allclose(template.exact_jvp(point, u), tangent.exact_jvp(model, point, u),
                               rtol=1e-13, atol=1e-14)


def test_tape_jvp_catches_a_wrong_forward_mode(monkeypatch):
    """The forward-mode check on a compiled model still fails a wrong jvp."""
    class WrongJvp(torch.autograd.Function):
        @staticmethod
        def forward(x):
            return torch.sin(x)

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_forward(inputs[0])
            ctx.save_for_backward(inputs[0])

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * torch.cos(x)

        @staticmethod
        def jvp(ctx, t):
            (x,) = ctx.saved_tensors
            return 1.001 * t * torch.cos(x)

    inputs = {"x": {"shape": [6], "sample": "normal", "seed": 3}}
    wrong = verifier.make_case("t.jvp", inputs, torch=WrongJvp.apply, sympy="torch.sin(x)", grad_output="random")
    right = verifier.make_case("t.jvp", inputs, torch=torch.sin, sympy="torch.sin(x)", grad_output="random")
    runner = Runner(cache=False)
    assert isinstance(runner.model(right), compiling.CompiledModel)
    assert runner.run(right, "float64").status == "pass"
    bad = runner.run(wrong, "float64")
    assert bad.status == "fail" and "forward_mode" in bad.message


# --- the detail table from the results' columns --------------------------------------------------------

def test_details_from_columns_equal_the_per_result_frames_concatenated():
    """tables.details joins the results' columns in one go; it must equal concat of each result's frame."""
    import pickle

    import pandas as pd

    from verifier.report import tables
    cases = _library("semantics.yaml", "kinks.yaml", "multi.yaml", "errors.yaml")
    runner = Runner(cache=False, forward_mode=False, second_order=False)
    results = [runner.run(c, d) for c in cases for d in c.dtypes[:2]]
    assert any("accumulated" in r.rows for r in results) and any(r.kinks and r.kinks.elements for r in results)
    assert any(r.status == "error" or r.case.expect.error for r in results)
    fresh = [runner.run(c, d) for c in cases for d in c.dtypes[:2]]       # frames never built
    joined = tables.details(fresh)
    frames = pd.concat([r.rows for r in results if not r.rows.empty], ignore_index=True)
    pd.testing.assert_frame_equal(joined, frames)
    # a result crosses a process boundary as its columns, and rebuilds the same frame there
    again = pickle.loads(pickle.dumps(results[0]))
    assert again._frame is None or results[0].columns is None
    pd.testing.assert_frame_equal(again.rows, results[0].rows)


def test_a_wrong_gradient_fails_from_the_columns_as_it_did_from_the_frame():
    class Doubled(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 3

        @staticmethod
        def backward(ctx, g):
            return g * 3 * torch.tensor([1.0, 1.0, 1.001], dtype=g.dtype)

    case = verifier.make_case("t.wrong", {"x": {"shape": [3], "sample": "normal", "seed": 1}},
                              forward=lambda x: Doubled.apply(x), sympy="3*x", grad_output="ones")
    res = Runner(cache=False).run(case, "float64")
    assert res.status == "fail" and "mismatched elements: 1 / 3" in res.message
    assert list(res.rows["ok"]) == [True, True, False] and res.checks[0].elements == 3
    assert res.checks[0].max_rel_err == pytest.approx(1e-3, rel=1e-6)
