"""The pytest plugin, driven through pytester as a user runs `pytest cases/`."""

from __future__ import annotations

import textwrap

import pandas as pd
import pytest

pytest_plugins = ["pytester"]

GOOD = """
cases:
  - name: good.square
    tags: [poly]
    inputs: {x: [1.0, 2.0, 3.0]}
    forward: (x**2).sum()
    dtypes: [float64, float32]
  - name: good.tanh
    tags: [act]
    inputs: {x: {shape: [3], sample: normal}}
    forward: torch.tanh(x)
    grad_output: random
"""

# The torch side is wrong exactly where the constant mask m is 1: 3 of 12 elements.
PARTLY_WRONG = """
cases:
  - name: wrong.masked
    description: torch doubles x**2 where m is 1
    inputs:
      x: [[1.0, 2.0, 3.0, 4.0], [-1.0, -2.0, 0.5, 0.25], [1.5, 2.5, -3.5, 0.75]]
      m: {{value: [[0, 1, 0, 0], [0, 0, 0, 1], [1, 0, 0, 0]], requires_grad: false}}
    torch: (x**2 + m * x**2).sum()
    sympy: (x**2).sum()
    dtypes: [{dtype}]
"""

NOT_A_CASE_FILE = """
settings:
  cases_dir: somewhere
"""


@pytest.fixture
def cases(pytester):
    """Write case files into the pytester folder: cases(name=text, ...)."""
    def write(**files: str) -> None:
        pytester.makefile(".yaml", **{name: textwrap.dedent(text) for name, text in files.items()})
    return write


def test_collects_one_item_per_case_and_dtype(pytester, cases):
    cases(good=GOOD, other=NOT_A_CASE_FILE)
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines([
        "good.yaml::good.square[[]float64[]]",
        "good.yaml::good.square[[]float32[]]",
        "good.yaml::good.tanh[[]float64[]]",
        "3 tests collected*",
    ])
    result.stdout.no_fnmatch_line("*other.yaml*")


def test_counts_passes_and_failures(pytester, cases):
    cases(good=GOOD, wrong=PARTLY_WRONG.format(dtype="float64"))
    result = pytester.runpytest()
    result.assert_outcomes(passed=3, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED


@pytest.mark.parametrize("dtype", [pytest.param("float64", id="float64"), pytest.param("float32", id="float32")])
def test_failure_text_is_sectioned(pytester, cases, dtype):
    cases(wrong=PARTLY_WRONG.format(dtype=dtype))
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        f"Gradient check failed: case 'wrong.masked' [[]{dtype}[]]",
        "Case",
        "  name: wrong.masked",
        "  torch: (x**2 + m * x**2).sum()",
        "  sympy: (x**2).sum()",
        "Inputs",
        f"  x: shape [[]3, 4[]], {dtype}, values *",
        "  m: shape [[]3, 4[]], *constant*",
        "Gradient (autograd against exact)",
        "  Mismatched elements: 3 / 12 (25%)",
        "  Max absolute difference: 4 at x[[]0, 1[]]",
        "  Finite differences agree with exact on 0 / 3 mismatched elements",
        "First mismatching elements",
        "  element * exact * autograd * finite diff * error * tolerance",
    ])
    # element, exact, autograd, finite difference (≈ autograd: torch's own function), error, tolerance
    # (the complex step makes the finite difference exact here: it may print as 8 itself)
    result.stdout.re_match_lines([r"  x\[0, 1\]\s+4\s+8\s+(7\.99\d*|8(\.0\d*)?)\s+4\s+\S+$",
                                  r"  x\[1, 3\]\s+0\.5\s+1\s+(0\.99\d*|1(\.0\d*)?)\s+0\.5\s+\S+$",
                                  r"  x\[2, 0\]\s+3\s+6\s+(5\.99\d*|6(\.0\d*)?)\s+3\s+\S+$"])
    assert "Traceback" not in result.stdout.str()


def test_k_selects_by_name_dtype_and_tag(pytester, cases):
    cases(good=GOOD, wrong=PARTLY_WRONG.format(dtype="float64"))
    pytester.runpytest("-k", "square and not float32").assert_outcomes(passed=1)
    pytester.runpytest("-k", "act").assert_outcomes(passed=1)          # the tag of good.tanh
    pytester.runpytest("-k", "not wrong").assert_outcomes(passed=3)
    pytester.runpytest("-m", "verifier", "-k", "wrong").assert_outcomes(failed=1)


def test_a_broken_case_fails_alone_with_one_line(pytester, cases):
    cases(mixed="""
        cases:
          - name: ok.one
            inputs: {x: [1.0, 2.0]}
            forward: (x**3).sum()
          - name: bad.unknown
            inputs: {x: [1.0, 2.0]}
            forward: sofmax(x)
        """, broken="cases:\n  - name: [unclosed\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["case file error: *broken.yaml:2: invalid YAML*"])
    result.stdout.fnmatch_lines(["case file error: *mixed.yaml:7: case 'bad.unknown': in 'forward': "
                                 "unknown function 'sofmax'*"])
    assert "Traceback" not in result.stdout.str()


def test_a_case_that_cannot_run_reports_torchs_message(pytester, cases):
    cases(nobroadcast="""
        cases:
          - name: err.broadcast
            inputs: {x: [1.0, 2.0, 3.0], y: [1.0, 2.0]}
            forward: (x * y).sum()
        """)
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["Gradient check could not run: case 'err.broadcast' [[]float64[]]",
                                 "Error", "  torch raised in forward: RuntimeError: The size of tensor a*"])


def test_verifier_report_writes_the_reports_of_what_ran(pytester, cases):
    cases(good=GOOD, wrong=PARTLY_WRONG.format(dtype="float64"))
    result = pytester.runpytest("--verifier-report", "rep", "-k", "not tanh")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["verifier: 3 case run(s) reported in *summary.csv*"])
    summary = pd.read_csv(pytester.path / "rep" / "summary.csv")
    assert sorted(zip(summary["case"], summary["dtype"], summary["status"])) == [
        ("good.square", "float32", "pass"), ("good.square", "float64", "pass"), ("wrong.masked", "float64", "fail")]
    details = pd.read_csv(pytester.path / "rep" / "details.csv")
    assert int((~details["ok"]).sum()) == 3
    assert "wrong.masked" in (pytester.path / "rep" / "report.html").read_text()


def test_options_live_in_their_own_group(pytester):
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["gradient verification (verifier case files):", "  --verifier-report=DIR*"])


def test_an_unwritable_report_dir_is_a_usage_error(pytester, cases):
    cases(good=GOOD)
    (pytester.path / "afile").write_text("not a folder")
    result = pytester.runpytest("--verifier-report", "afile/sub")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--verifier-report: cannot write reports to 'afile/sub'*"])


def test_a_case_name_used_twice_fails_the_second_time(pytester, cases):
    one = "cases:\n  - name: same.name\n    inputs: {x: [1.0]}\n    forward: (x**2).sum()\n"
    cases(a_first=one, b_second=one)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["case file error: *b_second.yaml:2: case 'same.name': duplicate case name "
                                 "(also at *a_first.yaml:2)*"])


def test_the_first_line_says_how_wrong_and_who(pytester, cases):
    cases(wrong=PARTLY_WRONG.format(dtype="float64"))
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["wrong.masked[[]float64[]]: 3/12 elements wrong, max rel 1; *failed: forward*",
                                 "Gradient check failed: case 'wrong.masked' [[]float64[]]"])


def test_tb_line_prints_one_line_per_failure(pytester, cases):
    cases(wrong=PARTLY_WRONG.format(dtype="float64"))
    result = pytester.runpytest("--tb=line", "-rN")   # -rN: no short summary (under CI=true it repeats the line)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*wrong.yaml:2: wrong.masked[[]float64[]]: 3/12 elements wrong, max rel 1*"])
    assert result.stdout.str().count("3/12 elements wrong, max rel 1;") == 1
    assert "Gradient check failed" not in result.stdout.str() and "First mismatching" not in result.stdout.str()


def test_tb_short_lists_fewer_elements(pytester, cases):
    cases(wrong=PARTLY_WRONG.format(dtype="float64"))
    text = pytester.runpytest("--tb=short").stdout.str()
    assert "First mismatching elements" in text and "x[1, 3]" not in text.split("First mismatching")[1]


def test_junitxml_carries_the_numbers_and_the_first_line(pytester, cases):
    import xml.etree.ElementTree as ET
    cases(good=GOOD, wrong=PARTLY_WRONG.format(dtype="float64"))
    pytester.runpytest("--junitxml=out.xml")
    root = ET.parse(pytester.path / "out.xml").getroot()
    items = {c.get("name"): c for c in root.iter("testcase")}
    wrong = items["wrong.masked[float64]"]
    props = {p.get("name"): p.get("value") for p in wrong.iter("property")}
    assert props["mismatched"] == "3" and props["elements"] == "12" and props["status"] == "fail"
    assert wrong.find("failure").get("message").startswith("wrong.masked[float64]: 3/12 elements wrong")
    good = {p.get("name"): p.get("value") for p in items["good.square[float64]"].iter("property")}
    assert good["status"] == "pass" and good["mismatched"] == "0"
