"""Python case files: `verifier run my_cases.py` and `pytest my_cases.py` import them in a worker, not the parent."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from verifier.cases.python_files import PythonRef, is_python_case_file, resolve, stand_ins

pytest_plugins = ["pytester"]

# Two cases: x² whose backward is right, and one whose custom Function returns 3x instead of 2x.
# The import writes which process imported it; the __main__ block must never run there.
MY_CASES = '''
import multiprocessing, os
import torch
import verifier
from wrong_backward import wrong_tanh       # a module beside this file: its folder is on sys.path for the import

with open(os.environ["IMPORT_LOG"], "a") as log:
    log.write(multiprocessing.current_process().name + "\\n")

def tanh_sum(x):
    return torch.tanh(x).sum()

def wrong_tanh_sum(x):
    return wrong_tanh(x, 1).sum()          # the planted bug: element 1 of the gradient is 0.1 % off

verifier.register(verifier.make_case("py.good_tanh", {"x": [1.0, -2.0, 0.5]}, torch=tanh_sum,
                                     sympy="torch.tanh(x).sum()"))
verifier.register(verifier.make_case("py.bad_tanh", {"x": [1.0, -2.0, 0.5]}, torch=wrong_tanh_sum,
                                     sympy="torch.tanh(x).sum()"))

if __name__ == "__main__":      # a script that runs itself: must not run again in a worker
    with open(os.environ["IMPORT_LOG"], "a") as log:
        log.write("MAIN BLOCK RAN\\n")
    verifier.Runner().run(verifier.registered()[0], "float64")
'''

BROKEN = '''
import verifier
x = 1
raise RuntimeError("boom while registering")
verifier.register(verifier.make_case("never.registered", {"x": [1.0]}, forward="x"))
'''

HANGS = '''
import time
import verifier
time.sleep(600)
verifier.register(verifier.make_case("never.registered", {"x": [1.0]}, forward="x"))
'''


@pytest.fixture
def files(tmp_path, monkeypatch):
    log = tmp_path / "imports.log"
    monkeypatch.setenv("IMPORT_LOG", str(log))
    (tmp_path / "my_cases.py").write_text(MY_CASES, encoding="utf-8")
    shutil.copy(Path(__file__).with_name("wrong_backward.py"), tmp_path)
    (tmp_path / "broken_cases.py").write_text(BROKEN, encoding="utf-8")
    return tmp_path, log


def test_run_imports_in_the_worker_catches_the_wrong_gradient_and_reports_a_broken_file(files, cli):
    folder, log = files
    seed = folder / "seed.yaml"
    seed.write_text("cases:\n  - name: yaml.square\n    inputs: {x: [1.0, 2.0]}\n    forward: (x**2).sum()\n")
    done = cli("run", "my_cases.py", "broken_cases.py", "seed.yaml", "--report-dir", "out", "--no-progress")
    assert done.returncode == 1, done.stderr
    summary = pd.read_csv(folder / "out" / "summary.csv").set_index("case")
    assert summary.loc["py.good_tanh", "status"] == "pass"            # the right gradient passes
    assert summary.loc["py.bad_tanh", "status"] == "fail"             # the wrong one is caught
    assert summary.loc["py.bad_tanh", "who_wrong"].startswith("autograd")
    assert summary.loc["yaml.square", "status"] == "pass"               # the rest of the run went on
    broken = summary.loc["broken_cases.py"]
    assert broken["status"] == "error"
    assert "broken_cases.py:4" in broken["message"] and "RuntimeError: boom while registering" in broken["message"]
    assert "Fix the file" in broken["message"]
    importers = log.read_text().split()
    assert importers and "MainProcess" not in importers                 # never imported by the parent
    assert "MAIN BLOCK RAN" not in log.read_text()                      # the __main__ block did not run
    assert "imports code: my_cases.py" in done.stderr


def test_an_import_that_hangs_is_stopped_by_the_time_limit(tmp_path, cli):
    (tmp_path / "slow_cases.py").write_text(HANGS, encoding="utf-8")
    (tmp_path / "ok.yaml").write_text("cases:\n  - name: yaml.ok\n    inputs: {x: [1.0]}\n    forward: (x**3).sum()\n"
                                      "    timeout: 300\n")      # its own limit: a loaded machine is no hang
    done = cli("run", "slow_cases.py", "ok.yaml", "--timeout", "3", "--report-dir", "out", "--no-progress")
    assert done.returncode == 1, done.stderr
    summary = pd.read_csv(tmp_path / "out" / "summary.csv").set_index("case")
    assert summary.loc["slow_cases.py", "status"] == "error"
    assert "over the time limit of 3 s" in summary.loc["slow_cases.py", "message"]
    assert summary.loc["yaml.ok", "status"] == "pass"


def test_no_functions_refuses_a_python_file(files, cli):
    folder, log = files
    done = cli("run", "my_cases.py", "--no-functions", "--report-dir", "out", "--no-progress")
    assert done.returncode == 2
    assert "Python case file is code; --no-functions refuses it" in done.stderr
    assert not log.exists()                                              # refused before anything imported it


def test_stand_ins_resolve_to_the_registered_callables(files):
    folder, _ = files
    cases = {c.name: c for c in stand_ins(str(folder / "my_cases.py"))}
    bad = cases["py.bad_tanh"]
    assert isinstance(bad.torch_fn, PythonRef) and str(bad.torch_fn) == "wrong_tanh_sum"
    line = MY_CASES.splitlines().index(next(x for x in MY_CASES.splitlines() if '"py.bad_tanh"' in x)) + 1
    assert bad.source == f"{(folder / 'my_cases.py').resolve()}:{line}"
    real = resolve(bad)
    assert callable(real.torch_fn) and real.torch_fn.__name__ == "wrong_tanh_sum"
    assert is_python_case_file(folder / "my_cases.py") and not is_python_case_file(folder / "imports.log")


def test_pytest_collects_a_python_case_file_named_on_the_command_line(pytester, files):
    folder, log = files
    for name in ("my_cases.py", "broken_cases.py", "wrong_backward.py"):
        pytester.path.joinpath(name).write_text((folder / name).read_text(), encoding="utf-8")
    result = pytester.runpytest_subprocess("my_cases.py", "broken_cases.py", "-p", "no:cacheprovider", "--tb=line")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*py.bad_tanh[[]float64[]]: 1/3 elements wrong*",
                                 "*broken_cases.py:4: importing it raised RuntimeError: boom while registering*"])
    assert "MainProcess" not in log.read_text().split()                 # pytest's process never imported it


def test_pytest_collects_python_case_files_in_a_folder_by_name(pytester, files):
    folder, _ = files
    sub = pytester.mkdir("suite")
    for name in ("my_cases.py", "wrong_backward.py"):
        sub.joinpath(name).write_text((folder / name).read_text(), encoding="utf-8")
    sub.joinpath("helper.py").write_text(textwrap.dedent(BROKEN), encoding="utf-8")   # not *_cases.py: left alone
    result = pytester.runpytest_subprocess("suite", "--collect-only", "-q", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["suite/my_cases.py::py.good_tanh[[]float64[]]",
                                 "suite/my_cases.py::py.bad_tanh[[]float64[]]", "2 tests collected*"])


def test_explain_runs_a_case_of_a_python_file(files, cli):
    folder, log = files
    done = cli("explain", "py.bad_tanh", "my_cases.py")
    assert done.returncode == 1, done.stderr                 # the case fails, as `run` says
    assert "Jacobian dy/dx" in done.stdout and "wrong_tanh_sum" in done.stdout
    assert "MainProcess" not in log.read_text().split()
