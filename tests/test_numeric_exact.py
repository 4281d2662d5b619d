"""The numeric-exact route (verifier/exact/numeric/, mirror/decompositions.py; docs/numeric-exact.md).

Planted bugs in hand-written decomposition backwards are caught in float64 and float32 and their
correct twins pass; gauge-dependent outputs and repeated eigenvalues are refused; the Richardson
error estimate is honest and gates the reference; nothing without a decomposition takes the route.
"""

from __future__ import annotations

import csv
import dataclasses

import mpmath
import numpy as np
import pytest
import torch
from corpus.decompositions import BUGS, DTYPES
from corpus.registry import assert_caught, assert_passes

import verifier
from verifier import Runner
from verifier.errors import SymbolicError
from verifier.exact.compiled import prepare
from verifier.exact.numeric import model as numeric_model
from verifier.exact.numeric import richardson
from verifier.exact.numeric.model import NumericModel

RUNNER = Runner(forward_mode=False, second_order=False, cache=False)
ROUTE = "numeric-exact (mpmath 60 digits, Richardson)"
ENTRIES = [pytest.param(entry, id=entry.id) for entry in BUGS]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("entry", ENTRIES)
def test_the_decomposition_bug_is_caught(entry, dtype):
    result = RUNNER.run(entry.run_case(buggy=True), dtype)
    assert_caught(result, entry.bug)
    assert result.route.startswith(ROUTE)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("entry", ENTRIES)
def test_the_correct_decomposition_twin_passes(entry, dtype):
    result = RUNNER.run(entry.run_case(buggy=False), dtype)
    assert_passes(result)
    assert result.route.startswith(ROUTE)


def _case(forward, inputs, **kw):
    return verifier.make_case("t.numeric", inputs, forward=forward, grad_output="random", **kw)


SYM3 = {"A": {"shape": [3, 3], "sample": "normal", "seed": 703, "structure": "symmetric"}}
TALL = {"A": {"shape": [4, 3], "sample": "normal", "seed": 708}}


@pytest.mark.parametrize("forward, inputs, invariant", [
    ("torch.linalg.eigh(A)", SYM3, "torch.linalg.eigvalsh(A)"),
    ("torch.linalg.eigh(A).sum()", SYM3, "|Q|"),
    # invariant under flipping both columns together, not under one: single flips catch it
    ("(torch.linalg.eigh(A)[:, 0] * torch.linalg.eigh(A)[:, 1] * A[:, 2]).sum()", SYM3, "projector"),
    ("torch.linalg.svd(A, full_matrices=False)", TALL, "torch.linalg.svdvals(A)"),
    ("torch.linalg.qr(A)", TALL, "Q Qᵀ"),
])
def test_a_gauge_dependent_output_is_refused_naming_an_invariant(forward, inputs, invariant):
    result = RUNNER.run(_case(forward, inputs), "float64")
    assert result.status == "error"
    assert "gauge of" in result.message and "not supported" in result.message and invariant in result.message


def test_two_calls_on_the_same_matrix_share_their_gauge():
    """q qᵀ built from two calls of eigh(A) is invariant: torch returns the same signs twice."""
    result = RUNNER.run(_case("torch.linalg.eigh(A)[:, 1:2] @ torch.linalg.eigh(A)[:, 1:2].mT", SYM3), "float64")
    assert result.status == "pass", result.message


@pytest.mark.parametrize("forward, value", [
    ("torch.linalg.eigvalsh(A)", [[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0]]),
    ("torch.linalg.eigh(A).abs()", [[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0]]),
    ("torch.linalg.eigvalsh(A)", [[1.0, 1e-9, 0.0], [1e-9, 1.0, 0.0], [0.0, 0.0, 3.0]]),   # gap 2e-9
    ("torch.linalg.svdvals(A)", [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 2.0]]),
    ("torch.linalg.svdvals(A)", [[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]]),      # rank 2: σ = 0
])
def test_repeated_eigenvalues_or_singular_values_are_refused(forward, value):
    result = RUNNER.run(_case(forward, {"A": {"value": value}}), "float64")
    assert result.status == "error"
    assert "not defined there" in result.message and "gap" in result.message


def test_richardson_is_within_its_estimate_and_far_below_float64():
    with mpmath.workdps(richardson.DIGITS):
        x = mpmath.mpf("0.7")
        (d,), (err,) = richardson.derivative(lambda t: [mpmath.exp(mpmath.sin(x + t))])
        truth = mpmath.cos(x) * mpmath.exp(mpmath.sin(x))
        assert abs(d - truth) <= err
        assert err < 1e-30


def test_a_large_error_estimate_refuses_the_reference(monkeypatch):
    """Two levels of a coarse step (h = 0.1): the estimate is large, so there is no reference: an error."""
    monkeypatch.setattr(richardson, "H0", mpmath.mpf("1e-1"))
    monkeypatch.setattr(richardson, "LEVELS", 2)
    result = RUNNER.run(_case("torch.linalg.matrix_exp(A)", {"A": {"shape": [3, 3], "sample": "normal",
                                                                     "seed": 709}}), "float64")
    assert result.status == "error"
    assert "Richardson error estimate" in result.message


def test_the_estimate_gate_compares_with_the_float64_allowance():
    numeric_model._require(1e-25, 1.0, "x")            # far below 1e-6 x (4e-11 + 4e-13)
    with pytest.raises(SymbolicError, match="not below"):
        numeric_model._require(1e-15, 1.0, "x")
    with pytest.raises(SymbolicError):
        numeric_model._require(float("nan"), 1.0, "x")


@pytest.mark.parametrize("forward, inputs", [
    ("torch.linalg.eigvalsh(A)", {"A": {"shape": [2, 2], "sample": "normal", "seed": 1, "structure": "symmetric"}}),
    ("torch.linalg.det(A)", {"A": {"shape": [3, 3], "sample": "normal", "seed": 2}}),
    ("torch.linalg.pinv(A)", {"A": {"shape": [2, 2], "sample": "normal", "seed": 3}}),   # past 2x2: numeric
    ("(x * 2).sum()", {"x": {"shape": [3], "sample": "normal", "seed": 4}}),
])
def test_nothing_without_a_decomposition_takes_the_route(forward, inputs):
    case = _case(forward, inputs)
    assert not isinstance(prepare(case), NumericModel)
    result = RUNNER.run(case, "float64")
    assert result.status == "pass", result.message
    assert not result.route.startswith("numeric-exact")


def test_eigvalsh_past_2x2_and_python_cases_take_the_route():
    case = _case("torch.linalg.eigvalsh(A)", SYM3)
    assert isinstance(prepare(case), NumericModel)

    import torch

    from verifier.exact import mirror
    # a Python case's symbolic side calls the mirror: on symbols it raises NumericOnly, prepare() reroutes
    python_case = verifier.make_case("t.python", {"A": SYM3["A"]}, torch=lambda A: torch.linalg.eigvalsh(A),
                                     sympy=lambda A: mirror.resolve("eigvalsh").sym(A), grad_output="random")
    model = prepare(python_case)
    assert isinstance(model, NumericModel)
    assert RUNNER.run(python_case, "float64").status == "pass"


def test_forward_mode_runs_and_second_order_says_why_it_is_skipped():
    result = Runner(cache=False).run(_case("torch.linalg.matrix_exp(A)", {"A": {"shape": [3, 3], "sample": "normal",
                                                                                  "seed": 709}}), "float32")
    checks = {c.name: c for c in result.checks}
    assert checks["forward_mode"].ok and not checks["forward_mode"].skipped
    assert checks["second_order"].skipped and "numeric-exact" in checks["second_order"].detail


def test_the_route_is_named_in_summary_csv_and_report_html(tmp_path):
    from corpus.decompositions import CASES

    from verifier.cli import main
    code = main(["run", str(CASES), "-k", "eigvalsh_3x3", "--report-dir", str(tmp_path)])
    assert code == 0
    rows = list(csv.DictReader(open(tmp_path / "summary.csv", encoding="utf-8")))
    assert rows and all(r["route"].startswith(ROUTE) for r in rows)
    assert ROUTE in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_legacy_spellings_are_refused_with_a_sentence():
    with pytest.raises(verifier.CaseError, match="torch.linalg.svd"):
        verifier.make_case("t.refused", {"A": np.eye(3).tolist()}, forward="torch.svd(A)")


GENERAL4 = {"A": {"shape": [4, 4], "sample": "normal", "seed": 711}}     # a complex pair of eigenvalues


@pytest.mark.parametrize("forward, invariant", [
    ("torch.linalg.eigvals(A).abs()", "symmetric function of the eigenvalues"),     # LAPACK's order
    ("torch.linalg.eig(A).abs()", "symmetric in the columns"),                       # column order
    ("torch.linalg.eig(A).real.sum()", "symmetric in the columns"),                  # phases (torch raises too)
])
def test_eig_outputs_that_depend_on_order_or_phase_are_refused(forward, invariant):
    """The reference itself refuses (torch's backward raises for the phase-dependent one only)."""
    case = _case(forward, GENERAL4)
    model = prepare(case)
    point = {s.name: np.asarray(s.values(), dtype=np.float64) for s in case.inputs}
    with pytest.raises(SymbolicError, match="gauge") as info:
        model.exact(point, None)
    assert invariant in info.value.hint


def test_eig_at_a_repeated_eigenvalue_is_refused():
    jordan = [[2.0, 1.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0]]       # 2 twice (defective)
    for forward in ("torch.linalg.eigvals(A).abs().sum()", "(torch.linalg.eig(A).abs() ** 4).sum()"):
        result = RUNNER.run(_case(forward, {"A": {"value": jordan}}), "float64")
        assert result.status == "error" and "smallest gap" in result.message, result.message


def test_explain_names_the_route_instead_of_a_symbolic_output():
    from verifier.report.explain import explain
    text = explain(_case("torch.linalg.svdvals(A)", TALL))
    assert "no symbolic output" in text and ROUTE in text
    assert "exact J^T v for A" in text


def _ill_conditioned() -> list:
    """A symmetric 3x3 matrix with eigenvalues 1, 1.001, 3 in a rotated basis: κ = 3 / 1e-3 = 3000."""
    q, _ = np.linalg.qr(np.array([[1.0, 0.3, -0.2], [0.4, 1.0, 0.5], [-0.1, 0.6, 1.0]]))
    return (q @ np.diag([1.0, 1.001, 3.0]) @ q.T).tolist()


def _scaled_eigvalsh(factor: float):
    """eigvalsh whose backward is Q diag(g) Qᵀ times ``factor`` (1: right; 1.01: a 1 % planted bug)."""
    class Eigvalsh(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            lam, q = torch.linalg.eigh(a)
            ctx.save_for_backward(q)
            return lam

        @staticmethod
        def backward(ctx, g):
            (q,) = ctx.saved_tensors
            return factor * (q @ torch.diag(g) @ q.mT)
    return Eigvalsh.apply


def test_the_condition_cap_is_per_dtype():
    """κ = 3000: float32's rtol·κ = 3e-2 could hide a 1 % wrong gradient, so float32 is refused; float64's
    1.2e-7 cannot, so float64 judges: torch's backward passes and a 1 % planted bug is caught."""
    from verifier.exact.numeric.model import kappa_max
    assert kappa_max(1e-5) == pytest.approx(100) and kappa_max(4e-11) == pytest.approx(2.5e7)
    case = _case("torch.linalg.eigvalsh(A)", {"A": {"value": _ill_conditioned(), "structure": "symmetric"}})
    refused = RUNNER.run(case, "float32")
    assert refused.status == "error" and "condition number" in refused.message and "float32" in refused.message
    assert RUNNER.run(case, "float64").status == "pass"
    assert RUNNER.run(dataclasses.replace(case, torch_fn=_scaled_eigvalsh(1.0)), "float64").status == "pass"
    wrong = RUNNER.run(dataclasses.replace(case, torch_fn=_scaled_eigvalsh(1.01)), "float64")
    assert wrong.status == "fail", wrong.message


def test_a_condition_beyond_float64s_cap_is_refused_there_too():
    """float64's cap is 1e-3 / 4e-11 = 2.5e7: κ = 3e7 is refused, 2e7 accepted, no decomposition never capped."""
    from verifier.exact.numeric.model import refuse_ill_conditioned
    with pytest.raises(SymbolicError, match="condition number is 3e\\+07"):
        refuse_ill_conditioned(3e7, 4e-11, "float64")
    refuse_ill_conditioned(2e7, 4e-11, "float64")      # within: no error
    refuse_ill_conditioned(None, 1e-5, "float32")      # no decomposition: nothing to cap

def test_an_lu_pivot_tie_is_refused_as_a_kink():
    """|a₀₀| = |a₁₀|: partial pivoting switches rows there (L and U jump), so the point is refused, never judged."""
    tie = [[1.0, 2.0, 0.0], [-1.0, 0.5, 3.0], [0.2, 1.0, 1.0]]
    for forward in ("torch.linalg.lu(A)", "torch.linalg.lu_factor(A)"):
        result = RUNNER.run(_case(forward, {"A": {"value": tie}}), "float64")
        assert result.status == "error" and "tie" in result.message and "kink" in result.message, result.message


def test_lu_and_its_legacy_spelling_take_their_own_entries():
    """torch.lu (packed LU) and torch.linalg.lu (P, L, U) differ: each resolves to its own mirror entry."""
    from verifier.exact.mirror import resolve
    assert resolve("torch.lu").name == "lu" and resolve("torch.linalg.lu").name == "torch.linalg.lu"
    assert resolve("torch.linalg.lu_factor").torch is torch.linalg.lu_factor
