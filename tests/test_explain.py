"""`verifier explain`: decimals, a size limit, the forward value and Σ v⊙y, both routes, float64, exit code."""

from __future__ import annotations

import pandas as pd
from conftest import ROOT

from verifier import make_case
from verifier.cases.loading import load_file
from verifier.cli import main
from verifier.report.explain import explain, explain_result

SEED = ROOT / "cases" / "seed.yaml"


def _seed(name: str):
    return next(c for c in load_file(SEED).cases if c.name == name)


def test_the_seed_lesson_in_decimals_with_its_scalar():
    text = explain(_seed("seed.weighted_backward"))
    assert "(float64)" in text.splitlines()[0]
    assert "scalar Σ v⊙y = 3.702" in text
    assert "forward value y (exact, float64 point): [3, 6, 9, 12]" in text
    assert "the two routes" in text and "holds symbolically" in text
    assert "36028797018963968" not in text                          # no rationals unless asked
    assert "36028797018963968" in explain(_seed("seed.weighted_backward"), rationals=True)


def test_a_large_case_prints_a_bounded_table():
    case = make_case("explain.big", {"x": {"shape": [12, 12], "sample": "normal"}}, forward="(x**2).sum()")
    full = explain(case, full=True)
    short = explain(case)
    assert len(short.splitlines()) < 120 < len(full.splitlines())
    assert "120 more rows (0 mismatching in all); --full prints every row" in short


def test_a_wrong_gradient_exits_1_and_a_right_one_0(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text("cases:\n  - name: e.wrong\n    inputs: {x: [1.0, 2.0]}\n    torch: (2 * x**2).sum()\n"
                    "    sympy: (x**2).sum()\n  - name: e.right\n    inputs: {x: [1.0, 2.0]}\n"
                    "    forward: (x**2).sum()\n", encoding="utf-8")
    assert main(["explain", "e.wrong", str(path)]) == 1
    assert "result: fail" in capsys.readouterr().out
    assert main(["explain", "e.right", str(path)]) == 0


def test_jacobian_csv_holds_the_exact_jacobian(tmp_path):
    path = tmp_path / "j.csv"
    case = make_case("explain.jac", {"x": [1.0, 2.0, 3.0]}, forward="x**2", grad_output="ones")
    _, result = explain_result(case, jacobian_csv=path)
    assert result.status == "pass"
    jac = pd.read_csv(path)
    assert len(jac) == 9
    diagonal = jac[jac["output_index"] == jac["input_index"]]["value"].tolist()
    assert diagonal == [2.0, 4.0, 6.0] and (jac[jac["output_index"] != jac["input_index"]]["value"] == 0).all()
