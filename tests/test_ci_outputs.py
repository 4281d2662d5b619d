"""`verifier run` for CI: details.csv that holds discrepancies, results.json, Markdown, JUnit XML, annotations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET

import jsonschema
import pandas as pd
import pytest
from conftest import ROOT

from verifier.report.ci import RESULTS_SCHEMA

OPS = """
import torch

class Right(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * x * g

class Wrong(Right):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * x * g * torch.where(x > 1.5, 1.5, 1.0)     # wrong only where x > 1.5
"""

CASES = """
defaults:
  dtypes: [float64]
  inputs: {x: {shape: [300], sample: uniform, seed: 2, low: 0.0, high: 2.0}}
  grad_output: random
  checks: {forward_mode: false, second_order: false}
cases:
  - name: ci.right
    functions: {sq: "ci_ops:Right.apply"}
    torch: sq(x)
    sympy: x**2
  - name: ci.wrong
    description: backward scaled by 1.5 where x > 1.5
    functions: {sq: "ci_ops:Wrong.apply"}
    torch: sq(x)
    sympy: x**2
  - name: ci.broken
    inputs: {x: [1.0, 2.0]}
    forward: x.reshape(3)
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One `verifier run` with every CI output asked for; its folder, stdout and exit code."""
    base = tmp_path_factory.mktemp("ci")
    (base / "ci_ops.py").write_text(OPS, encoding="utf-8")
    (base / "cases.yaml").write_text(textwrap.dedent(CASES), encoding="utf-8")
    step = base / "step_summary.md"
    step.write_text("earlier step\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GITHUB_STEP_SUMMARY": str(step), "NO_COLOR": "1"}
    env.pop("GITHUB_ACTIONS", None)
    out = subprocess.run([sys.executable, "-m", "verifier", "run", "cases.yaml", "--report-dir", "rep",
                          "--details", "3", "--junit-xml", "ci/junit.xml", "--annotate", "--no-progress"],
                         cwd=base, env=env, capture_output=True, text=True, timeout=600)
    return base, out


def _wrong_elements(base) -> int:
    import numpy as np

    from verifier import load_file
    case = next(c for c in load_file(base / "cases.yaml").cases if c.name == "ci.wrong")
    return int(np.sum(case.input("x").values() > 1.5))


def test_exit_code_and_terminal_blocks(run):
    base, out = run
    assert out.returncode == 1, out.stderr
    assert "FAIL    ci.wrong [float64]  who is wrong: autograd (FD agrees with exact)" in out.stdout
    assert "FD agrees with exact → backward is wrong" in out.stdout
    assert "ERROR   ci.broken [float64]" in out.stdout and "cases.yaml:" in out.stdout
    assert "\033[" not in out.stdout                          # NO_COLOR


def test_details_csv_holds_every_mismatch_and_the_k_worst(run):
    base, _ = run
    details = pd.read_csv(base / "rep" / "details.csv")
    wrong = details[details["case"] == "ci.wrong"]
    assert (~wrong["ok"]).sum() == _wrong_elements(base) > 3     # every mismatching element, not just 3
    assert len(wrong) == _wrong_elements(base)                    # its 3 worst are mismatches too
    right = details[details["case"] == "ci.right"]
    assert len(right) == 3 and right["ok"].all()
    summary = pd.read_csv(base / "rep" / "summary.csv")
    row = summary.set_index("case").loc["ci.right"]
    assert row["elements"] == 300 and row["mismatched"] == 0      # the summary counts every element
    assert list(summary.columns[:6]) == ["case", "dtype", "status", "message", "who_wrong", "worst_ratio"]


def test_results_json_follows_its_schema(run):
    base, _ = run
    doc = json.loads((base / "rep" / "results.json").read_text(encoding="utf-8"))
    jsonschema.validate(doc, RESULTS_SCHEMA)
    assert doc["counts"] == {"pass": 1, "fail": 1, "non_finite": 0, "error": 1, "skip": 0, "timeout": 0, "out_of_memory": 0}
    assert doc["attribution"]["autograd_wrong"] == _wrong_elements(base)
    wrong = next(r for r in doc["results"] if r["case"] == "ci.wrong")
    assert wrong["who_wrong"] == "autograd (FD agrees with exact)"
    assert wrong["numbers"]["mismatched"] == _wrong_elements(base) and wrong["numbers"]["max_rel_err"] > 0.4
    assert wrong["source"].endswith("cases.yaml:12")


def test_markdown_summary_goes_to_the_step_summary(run):
    base, _ = run
    text = (base / "step_summary.md").read_text(encoding="utf-8")
    assert text.startswith("earlier step\n")                       # appended, not overwritten
    assert "## ❌ verifier: 1 failed, 1 errors, 1 passed" in text
    assert "| `ci.wrong` | float64 | fail | autograd (FD agrees with exact) |" in text
    assert "| `ci.broken` | float64 | error | could not run |" in text
    assert (base / "rep" / "summary.md").read_text(encoding="utf-8") in text


def test_junit_xml_has_a_testcase_per_case_with_numbers(run):
    base, _ = run
    root = ET.parse(base / "ci" / "junit.xml").getroot()
    suite = root.find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "1")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == {"ci.right[float64]", "ci.wrong[float64]", "ci.broken[float64]"}
    wrong = cases["ci.wrong[float64]"]
    props = {p.get("name"): p.get("value") for p in wrong.iter("property")}
    assert int(props["mismatched"]) == _wrong_elements(base) and float(props["max_rel_err"]) > 0.4
    failure = wrong.find("failure")
    assert failure is not None and "backward is wrong" in failure.get("message")
    assert wrong.get("file").endswith("cases.yaml") and wrong.get("line") == "12"
    assert cases["ci.broken[float64]"].find("error") is not None
    assert cases["ci.right[float64]"].find("failure") is None


def test_annotations_point_at_the_case_source(run):
    base, out = run
    lines = [line for line in out.stdout.splitlines() if line.startswith("::error ")]
    assert len(lines) == 2
    assert any("cases.yaml,line=12,title=verifier%3A ci.wrong [float64] fail::" in line for line in lines)


def test_details_all_and_parquet_hold_every_element(run):
    pytest.importorskip("pyarrow")
    base, _ = run
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("GITHUB_STEP_SUMMARY", None)
    env.pop("GITHUB_ACTIONS", None)
    out = subprocess.run([sys.executable, "-m", "verifier", "run", "cases.yaml", "--report-dir", "all", "--jobs", "1",
                          "--details", "all", "--details-parquet", "--no-progress", "-k", "ci.right or ci.wrong"],
                         cwd=base, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 1, out.stderr
    assert len(pd.read_csv(base / "all" / "details.csv")) == 600
    full = pd.read_parquet(base / "all" / "details.parquet")
    assert len(full) == 600 and (~full["ok"]).sum() == _wrong_elements(base)
    assert not list(base.joinpath("all").glob(".parts-*"))            # the workers' parts are cleaned up
