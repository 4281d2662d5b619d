"""Issue 13 (items 1, 4, 5, 7, 8, 9, 10): the run's processes, limits and exit codes under hostile input.

Each test names the item it proves; docs/robustness.md lists them. Threat
model: case files, the folders they lie in and the folder a run is started
from come from other people.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import isolation_helpers as H
import numpy as np
import pandas as pd
import pytest
from conftest import ROOT

from verifier import CaseError, Runner, load_file, make_case
from verifier.cases.limits import MAX_TIMEOUT, parse_memory
from verifier.errors import VerifierError
from verifier.run.isolation import IsolatedRunner, run_cases
from verifier.run.launch import safe_sys_path

pytest_plugins = ["pytester"]
SEED = ROOT / "cases" / "seed.yaml"

# A module that records every process importing it, then hands over to the real one: the "quiet" variant,
# under which a run still reports every case passed.
PLANTED = """
import importlib, os, sys
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "PLANTED.log"), "a") as log:
    log.write(f"{{os.getpid()}} {name}\\n")
del sys.modules["{name}"]
sys.path[:] = [p for p in sys.path if os.path.realpath(p or ".") != here]
sys.modules["{name}"] = importlib.import_module("{name}")
"""


def _plant(folder) -> None:
    for name in ("yaml", "sympy", "jsonschema"):
        (folder / f"{name}.py").write_text(PLANTED.format(name=name))


def _planted_pids(folder) -> set[int]:
    log = folder / "PLANTED.log"
    return {int(line.split()[0]) for line in log.read_text().splitlines()} if log.exists() else set()


# --- item 1: no code from the working directory ------------------------------------------------------------


@pytest.mark.parametrize("args", [
    pytest.param(["run", SEED, "--jobs", "1"], id="run"),
    pytest.param(["run", SEED, "--jobs", "2", "-k", "mean"], id="run-jobs-2"),
    pytest.param(["explain", "seed.mean_of_square", SEED], id="explain"),
])
def test_item1_a_planted_module_in_the_working_directory_is_never_imported(cli, tmp_path, args):
    _plant(tmp_path)
    out = cli(*args, "--report-dir", tmp_path / "rep") if args[0] == "run" else cli(*args)
    assert out.returncode == 0, out.stderr
    assert _planted_pids(tmp_path) == set(), "python -m verifier or a worker imported yaml/sympy from the cwd"


def test_item1_workers_never_import_from_the_callers_working_directory(tmp_path):
    """The plugin's case: a caller (pytest) with the working directory on sys.path; its workers stay clean."""
    _plant(tmp_path)
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(ROOT / 'tests')!r})
        if __name__ == "__main__":
            from verifier import load_file
            from verifier.run.isolation import run_cases
            cases = load_file({str(SEED)!r}).cases
            results = run_cases([(c, "float64") for c in cases], workers=2)
            print(os.getpid(), ",".join(r.status for r in results))
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    parent, statuses = out.stdout.split()
    assert set(statuses.split(",")) == {"pass"}
    assert _planted_pids(tmp_path) <= {int(parent)}, "a worker imported a module from the caller's cwd"


def test_item1_the_safe_path_drops_the_working_directory_and_keeps_the_verifier_last(tmp_path):
    path = safe_sys_path(["", str(tmp_path), "/usr/lib/python3"], cwd=str(tmp_path))
    assert "" not in path and str(tmp_path) not in path
    assert path[0] == "/usr/lib/python3" and path[-1] == str(ROOT)


# --- item 4: user exceptions come back as descriptions -----------------------------------------------------

EXCEPTIONS = """
import torch

class ShapeError(Exception):
    pass

class TwoArguments(Exception):
    def __init__(self, what, code):
        super().__init__(f"{what} (code {code})")

def _raising(exc):
    class Fn(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return 2 * x
        @staticmethod
        def backward(ctx, g):
            raise exc
    return Fn.apply

shape_error = _raising(ShapeError("planted: wrong shape"))
two_arguments = _raising(TwoArguments("planted", 7))
"""

EXCEPTION_CASES = """
defaults:
  functions: {shape_error: "userexc:shape_error", two_arguments: "userexc:two_arguments"}
cases:
  - name: ok.first
    inputs: {x: [1.0, 2.0]}
    forward: (x**2).sum()
  - name: bad.shape
    inputs: {x: [1.0, 2.0]}
    torch: shape_error(x).sum()
    sympy: (2*x).sum()
  - name: bad.two
    inputs: {x: [1.0, 2.0]}
    torch: two_arguments(x).sum()
    sympy: (2*x).sum()
  - name: ok.last
    inputs: {x: [1.0, 2.0]}
    forward: (x**3).sum()
"""


def test_item4_a_user_exception_is_its_cases_error_and_the_run_goes_on(cli, write_case, tmp_path):
    (tmp_path / "userexc.py").write_text(EXCEPTIONS)
    path = write_case(EXCEPTION_CASES)
    out = cli("run", path, "--report-dir", tmp_path / "rep")
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    summary = pd.read_csv(tmp_path / "rep" / "summary.csv").set_index("case")
    assert list(summary["status"]) == ["pass", "error", "error", "pass"]
    assert "ShapeError: planted: wrong shape" in summary.loc["bad.shape", "message"]
    assert "TwoArguments: planted (code 7)" in summary.loc["bad.two", "message"]


# --- item 5: bounded time limits ---------------------------------------------------------------------------


@pytest.mark.parametrize("timeout", ["1.0e+10", ".inf", "86401"])
def test_item5_a_huge_timeout_is_a_load_error(write_case, timeout):
    path = write_case(f"cases:\n  - name: a\n    inputs: {{x: [1.0]}}\n    forward: x.sum()\n    timeout: {timeout}\n")
    result = load_file(path)
    assert not result.cases
    assert "timeout is" in str(result.errors[0]) and ":5:" in str(result.errors[0])


def test_item5_a_huge_timeout_on_the_command_line_or_in_python_is_refused(cli):
    out = cli("run", SEED, "--timeout", "1e10")
    assert out.returncode == 2 and "--timeout" in out.stderr and "Traceback" not in out.stderr
    with pytest.raises(VerifierError, match="over the limit"):
        IsolatedRunner(1, timeout=MAX_TIMEOUT * 10)


# --- item 7: a memory limit per worker ---------------------------------------------------------------------


def test_item7_a_case_over_its_memory_limit_is_out_of_memory_and_the_rest_run():
    greedy = make_case("greedy", {"x": [1.0, 2.0]}, torch=H.allocate_too_much, sympy="x.sum()",
                       memory_limit="512M")
    good = make_case("good", {"x": [1.0, -2.0]}, torch=H.square_sum, sympy="(x*x).sum()")
    results = run_cases([(greedy, "float64"), (good, "float64"), (greedy, "float32")], workers=1)
    assert [r.status for r in results] == ["out_of_memory", "pass", "out_of_memory"]
    assert "memory limit of 512 MiB (the case's 'memory_limit')" in results[0].message
    assert "can't allocate memory" in results[0].message


def test_item7_the_runs_default_applies_and_none_turns_it_off():
    greedy = make_case("greedy", {"x": [1.0, 2.0]}, torch=H.allocate_too_much, sympy="x.sum()")
    (result,) = run_cases([(greedy, "float64")], workers=1, memory_limit=parse_memory("1G"))
    assert result.status == "out_of_memory" and "1 GiB (the run's --memory-limit)" in result.message
    assert IsolatedRunner(1, memory_limit=None).memory_limit is None
    assert IsolatedRunner(2).memory_limit > 0          # "auto": a share of the machine's memory


@pytest.mark.parametrize("text, size", [("4G", 4 << 30), ("512M", 512 << 20), ("1.5GiB", 3 << 29),
                                        (1 << 30, 1 << 30)])
def test_item7_memory_sizes_parse(text, size):
    assert parse_memory(text) == size


@pytest.mark.parametrize("text", ["lots", "1k", "-5", True])
def test_item7_unusable_memory_sizes_are_refused(text):
    with pytest.raises(ValueError):
        parse_memory(text)
    with pytest.raises(CaseError):
        make_case("a", {"x": [1.0]}, forward="x.sum()", memory_limit=text)


# --- item 8: loading is cheap and bounded ------------------------------------------------------------------

BIG = """
cases:
  - name: big.normal
    inputs: {x: {shape: [16777216], sample: normal, domain: [-100, 100]}}
    forward: x.sum()
  - name: big.uniform
    inputs: {x: {shape: [16777216], sample: uniform, domain: [0, 1]}}
    forward: x.sum()
"""


def test_item8_loading_never_draws_a_sample(write_case, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a value was drawn while loading")
    monkeypatch.setattr(np.random, "default_rng", refuse)
    result = load_file(write_case(BIG))
    assert [c.name for c in result.cases] == ["big.normal", "big.uniform"] and not result.errors


def test_item8_a_drawn_value_outside_the_domain_is_the_cases_error_when_it_runs(write_case):
    (case,) = load_file(write_case("cases:\n  - name: out\n    inputs: {x: {shape: [50], sample: normal, "
                                   "domain: [0, .inf]}}\n    forward: log(x).sum()\n")).cases
    result = Runner(cache=False).run(case, "float64")
    assert result.status == "error" and "outside its declared domain" in result.message


def test_item8_a_uniform_interval_outside_the_domain_is_refused_at_load(write_case):
    result = load_file(write_case("cases:\n  - name: u\n    inputs: {x: {shape: [4], sample: uniform, low: -1, "
                                  "high: 1, domain: [0, 2]}}\n    forward: x.sum()\n"))
    assert not result.cases and "not inside its declared domain" in str(result.errors[0])


def test_item8_the_declared_elements_of_one_file_are_capped(write_case):
    cases = "".join(f"  - name: big.{i}\n    inputs: {{x: {{shape: [16777216], fill: 1.0}}}}\n    forward: x.sum()\n"
                    for i in range(5))
    result = load_file(write_case("cases:\n" + cases))
    assert [c.name for c in result.cases] == ["big.0", "big.1", "big.2", "big.3"]
    (error,) = result.errors
    assert "case 'big.4'" in str(error) and "per file" in str(error)


# --- item 9: the plugin and explain run isolated -----------------------------------------------------------

MISBEHAVING = """
import ctypes, time

def segfault(x):
    ctypes.string_at(0)
    return x

def hang(x):
    time.sleep(3600)
    return x
"""

PLUGIN_CASES = """
defaults:
  functions: {segfault: "misbehaving:segfault", hang: "misbehaving:hang"}
cases:
  - name: ok.first
    inputs: {x: [1.0, 2.0]}
    forward: (x**2).sum()
  - name: bad.segfault
    inputs: {x: [1.0, 2.0]}
    torch: segfault(x).sum()
    sympy: x.sum()
  - name: bad.hang
    inputs: {x: [1.0, 2.0]}
    torch: hang(x).sum()
    sympy: x.sum()
    timeout: 5
  - name: ok.last
    inputs: {x: [1.0, 2.0]}
    forward: (x**3).sum()
"""


def test_item9_the_plugin_survives_a_segfault_and_honours_timeouts(pytester):
    pytester.makepyfile(misbehaving=MISBEHAVING)
    pytester.makefile(".yaml", cases=PLUGIN_CASES)
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(["*killed by SIGSEGV*", "*over the time limit of 5 s*"])


def test_item9_explain_honours_the_time_limit(cli, write_case, tmp_path):
    (tmp_path / "misbehaving.py").write_text(MISBEHAVING)
    path = write_case(PLUGIN_CASES)
    out = cli("explain", "bad.hang", path, "--timeout", "600")     # the case's own 'timeout: 5' wins, as in run
    assert out.returncode == 1 and "over the time limit of 5 s" in out.stderr and "Traceback" not in out.stderr


# --- item 10: exit codes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["flaot64", "float8", "Float32"])
def test_item10_an_unknown_dtype_is_a_usage_error_and_the_last_report_stays(cli, tmp_path, dtype):
    reports = tmp_path / "rep"
    reports.mkdir()
    (reports / "summary.csv").write_text("previous report\n")
    out = cli("run", SEED, "--dtype", dtype, "--report-dir", reports)
    assert out.returncode == 2 and "unknown dtype" in out.stderr and "Traceback" not in out.stderr
    assert (reports / "summary.csv").read_text() == "previous report\n"


def test_item10_no_case_in_the_dtype_asked_for_leaves_the_report_alone(cli, write_case, tmp_path):
    reports = tmp_path / "rep"
    reports.mkdir()
    (reports / "summary.csv").write_text("previous report\n")
    path = write_case("cases:\n  - name: a\n    inputs: {x: [1.0]}\n    forward: x.sum()\n")
    out = cli("run", path, "--dtype", "bfloat16", "--report-dir", reports)
    assert out.returncode == 2 and "previous report" in out.stderr
    assert (reports / "summary.csv").read_text() == "previous report\n"


def test_item10_a_custom_sys_exit_in_process_is_the_cases_error(cli, write_case, tmp_path):
    (tmp_path / "exiting.py").write_text("import sys\ndef leave(x):\n    sys.exit(5)\n")
    path = write_case("cases:\n  - name: bad.exit\n    functions: {leave: 'exiting:leave'}\n    inputs: {x: [1.0]}\n"
                      "    torch: leave(x)\n    sympy: x.sum()\n  - name: ok\n    inputs: {x: [1.0]}\n"
                      "    forward: (x*x).sum()\n")
    out = cli("run", path, "--jobs", "0", "--report-dir", tmp_path / "rep")
    assert out.returncode == 1, out.stderr
    summary = pd.read_csv(tmp_path / "rep" / "summary.csv")
    assert list(summary["status"]) == ["error", "pass"] and "SystemExit" in summary["message"][0]


def test_item10_an_internal_error_exits_3(monkeypatch, capsys):
    from verifier import cli

    def broken(args):
        raise RuntimeError("planted bug")
    monkeypatch.setitem(cli.COMMANDS, "list", broken)
    assert cli.main(["list"]) == cli.EXIT_INTERNAL == 3
    assert "internal error: RuntimeError: planted bug" in capsys.readouterr().err


def test_item10_the_exit_codes_are_in_the_help_and_the_readme(cli):
    out = cli("--help")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for code in ("0", "1", "2", "3"):
        assert f"\n  {code}  " in out.stdout
        assert f"`{code}`" in readme
