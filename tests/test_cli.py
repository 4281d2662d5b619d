"""The command line, through a subprocess, as a user runs it."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import ROOT

GOOD = """
cases:
  - name: good.square
    inputs: {x: [1.0, 2.0, 3.0]}
    forward: (x**2).sum()
  - name: good.tanh
    inputs: {x: {shape: [3], sample: normal}}
    forward: torch.tanh(x)
    grad_output: random
"""

WRONG = """
cases:
  - name: wrong.double
    description: the torch side computes 2x^2 but the symbolic side says x^2
    inputs: {x: [1.0, -2.0, 0.5]}
    torch: (2 * x**2).sum()
    sympy: (x**2).sum()
"""


def test_run_passes_and_writes_reports(cli, write_case, tmp_path):
    path = write_case(GOOD)
    out = cli("run", path, "--report-dir", tmp_path / "rep")
    assert out.returncode == 0, out.stderr
    assert "2 pass" in out.stdout
    summary = pd.read_csv(tmp_path / "rep" / "summary.csv")
    assert list(summary["status"]) == ["pass", "pass"]
    details = pd.read_csv(tmp_path / "rep" / "details.csv")
    assert len(details) == 6 and details["ok"].all()
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "2 passed" in html and "torch" in html and "good.tanh" in html


def test_a_wrong_torch_side_fails_with_the_right_element(cli, write_case, tmp_path):
    out = cli("run", write_case(WRONG), "--report-dir", tmp_path / "rep")
    assert out.returncode == 1
    details = pd.read_csv(tmp_path / "rep" / "details.csv")
    bad = details[~details["ok"]]
    assert list(bad["index"]) == ["(0,)", "(1,)", "(2,)"]
    row = bad.set_index("index").loc["(1,)"]
    assert row["exact"] == -4.0 and row["autograd"] == -8.0 and row["abs_err"] == 4.0
    assert "wrong.double" in out.stdout and "fail" in out.stdout


def test_bad_files_exit_2_and_the_valid_ones_still_run(cli, write_case, tmp_path):
    write_case(GOOD, "dir/good.yaml")
    write_case("cases:\n  - name: broken\n    inputs: {x: [1.0\n", "dir/malformed.yaml")
    write_case("cases:\n  - name: nofn\n    inputs: {x: 1.0}\n    forward: nosuch(x)\n", "dir/unknown.yaml")
    write_case("cases:\n  - name: noinputs\n    forward: x\n", "dir/missing.yaml")
    out = cli("run", tmp_path / "dir", "--report-dir", tmp_path / "rep")
    assert out.returncode == 2
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 3
    assert any("malformed.yaml:3: invalid YAML" in e for e in errors)     # the unclosed line, not past the end
    assert any("unknown.yaml:4: case 'nofn'" in e and "unknown function 'nosuch'" in e for e in errors)
    assert any("missing.yaml:2: case 'noinputs'" in e and "'inputs'" in e for e in errors)
    assert "Traceback" not in out.stderr
    summary = pd.read_csv(tmp_path / "rep" / "summary.csv")
    assert set(summary["case"]) == {"good.square", "good.tanh"} and (summary["status"] == "pass").all()


def test_runtime_errors_are_reported_and_the_rest_run(cli, write_case, tmp_path):
    text = GOOD + """
  - name: bad.broadcast
    inputs: {x: [1.0, 2.0], y: [1.0, 2.0, 3.0]}
    forward: (x * y).sum()
  - name: bad.weights
    inputs: {x: [1.0, 2.0]}
    forward: x * 2
    grad_output: [1.0, 2.0, 3.0]
"""
    out = cli("run", write_case(text), "--report-dir", tmp_path / "rep")
    assert out.returncode == 1
    summary = pd.read_csv(tmp_path / "rep" / "summary.csv").set_index("case")
    assert summary.loc["bad.broadcast", "status"] == "error"
    assert "must match the size" in summary.loc["bad.broadcast", "message"]
    assert summary.loc["bad.weights", "status"] == "error"
    assert "Mismatch in shape" in summary.loc["bad.weights", "message"]
    assert (summary.loc[["good.square", "good.tanh"], "status"] == "pass").all()


def test_k_selects_like_pytest(cli, write_case, tmp_path):
    out = cli("list", write_case(GOOD), "-k", "tanh and not square")
    assert "good.tanh" in out.stdout and "good.square" not in out.stdout


def test_unwritable_report_dir_fails_before_any_work(cli, write_case, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    out = cli("run", write_case(GOOD), "--report-dir", blocker / "sub")
    assert out.returncode == 2
    assert "cannot write reports" in out.stderr and "--report-dir" in out.stderr


def test_validate_new_schema_and_explain(cli, tmp_path):
    target = tmp_path / "my.case.yaml"
    assert cli("new", "my.case", "-o", target).returncode == 0
    assert "# " in target.read_text()
    out = cli("validate", target)
    assert out.returncode == 0 and "ok: 1 valid case(s)" in out.stdout
    schema = json.loads(cli("schema").stdout)
    assert "cases" in schema["properties"]
    out = cli("explain", "seed.weighted_backward", ROOT / "cases" / "seed.yaml")
    assert out.returncode == 0, out.stderr
    for words in ("Jacobian dy/dx", "weights v", "J^T v", "holds symbolically", "finite_diff", "MulBackward0"):
        assert words in out.stdout


def test_no_arguments_runs_the_builtin_cases(cli, tmp_path):
    out = cli("run", "-k", "seed", "--report-dir", tmp_path / "rep", cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    summary = pd.read_csv(tmp_path / "rep" / "summary.csv")
    assert {"seed.mean_of_square", "seed.nonscalar_backward"} <= set(summary["case"])


@pytest.mark.parametrize("args", [pytest.param(["frobnicate"], id="unknown-command"),
                                  pytest.param(["run", "-k", "a and"], id="bad-k")])
def test_usage_errors_exit_2(cli, args):
    assert cli(*args).returncode == 2
