"""Isolation: an exception, a crash, a symbolic blow-up or a hang in one case is that case's result; the rest run."""

from __future__ import annotations

import pickle
import textwrap

import isolation_helpers as H
import pandas as pd
import pytest
from conftest import ROOT

from verifier import Runner, load_file, make_case
from verifier.run.isolation import IsolatedRunner, run_cases

SEED = ROOT / "cases" / "seed.yaml"


def good(name: str = "good.square", **fields):
    return make_case(name, {"x": [1.0, -2.0, 0.5]}, torch=H.square_sum, sympy="(x*x).sum()", **fields)


def planted(name: str, torch_fn=H.square_sum, sympy="(x*x).sum()", **fields):
    return make_case(name, {"x": [1.0, -2.0, 0.5]}, torch=torch_fn, sympy=sympy, **fields)


@pytest.mark.parametrize("bad, status, words", [
    pytest.param(planted("bad.exception", H.raise_value_error), "error",
                 "ValueError: planted failure in the torch side", id="exception"),
    pytest.param(planted("bad.system-exit", H.system_exit), "error", "SystemExit", id="sys-exit"),
    pytest.param(planted("bad.exit", H.exit_hard), "error", "died: it exited with code 3", id="os-exit"),
    pytest.param(planted("bad.segfault", H.segfault), "error", "killed by SIGSEGV", id="segfault"),
    pytest.param(planted("bad.sym-recursion", sympy=H.symbolic_recursion), "error", "too deep", id="sym-recursion"),
    pytest.param(planted("bad.sym-memory", sympy=H.symbolic_memory), "out_of_memory", "MemoryError", id="sym-memory"),
    pytest.param(planted("bad.hang", H.hang, timeout=1), "timeout", "over the time limit of 1 s", id="hang"),
    pytest.param(planted("bad.sym-forever", sympy=H.symbolic_forever, timeout=1), "timeout",
                 "the case's 'timeout'", id="sym-forever"),
])
@pytest.mark.parametrize("workers", [pytest.param(1, id="1-worker"), pytest.param(2, id="2-workers")])
def test_a_broken_case_is_its_own_result_and_the_rest_run(bad, status, words, workers):
    jobs = [(good("good.before"), "float64"), (bad, "float64"), (good("good.after"), "float32")]
    results = run_cases(jobs, workers=workers, timeout=60)
    assert [r.name for r in results] == ["good.before", bad.name, "good.after"]
    assert [r.status for r in results] == ["pass", status, "pass"]
    assert words in results[1].message
    assert results[1].case is bad and results[1].dtype == "float64"


def test_the_run_default_limit_applies_and_a_case_field_overrides_it():
    jobs = [(planted("slow.default", H.sleep_two_seconds), "float64"),
            (planted("slow.allowed", H.sleep_two_seconds, timeout=60), "float64")]
    results = run_cases(jobs, workers=1, timeout=0.5)
    assert [r.status for r in results] == ["timeout", "pass"]
    assert "--timeout" in results[0].message


def test_no_limit_lets_a_slow_case_finish():
    (result,) = run_cases([(planted("slow.unlimited", H.sleep_two_seconds), "float64")], workers=1, timeout=None)
    assert result.status == "pass" and result.seconds >= 2.0


def test_the_other_dtypes_of_a_timed_out_case_still_run_in_a_fresh_worker():
    case = planted("hang.float32-only", H.hang_in_float32, timeout=1, dtypes=["float32", "float64"])
    results = run_cases([(case, "float32"), (case, "float64")], workers=1, timeout=60)
    assert [(r.dtype, r.status) for r in results] == [("float32", "timeout"), ("float64", "pass")]
    assert not results[1].rows.empty and results[1].rows["ok"].all()


@pytest.mark.parametrize("workers", [pytest.param(0, id="in-process"), pytest.param(1, id="1-worker"),
                                     pytest.param(2, id="2-workers")])
def test_workers_give_the_same_results_as_the_plain_runner(workers):
    cases = load_file(SEED).cases
    jobs = [(c, d) for c in cases for d in c.dtypes]
    expected = [Runner().run(c, d) for c, d in jobs]
    got = run_cases(jobs, workers=workers, timeout=60)
    assert [(r.name, r.dtype, r.status, r.message) for r in got] == \
        [(r.name, r.dtype, r.status, r.message) for r in expected]
    for a, b in zip(got, expected):
        pd.testing.assert_frame_equal(a.rows.reset_index(drop=True), b.rows.reset_index(drop=True))
        assert a.grad_fn == b.grad_fn and a.route == b.route


def test_results_and_cases_survive_pickling():
    for case in load_file(SEED).cases:
        result = Runner().run(case, case.dtypes[0])
        back = pickle.loads(pickle.dumps(result))
        assert back.case == case and back.status == result.status
        pd.testing.assert_frame_equal(back.rows, result.rows)


def test_a_case_that_cannot_be_pickled_runs_here_and_says_so():
    case = make_case("local.lambda", {"x": [1.0, 2.0]}, torch=lambda x: (x * x).sum(), sympy="(x*x).sum()")
    (result,) = run_cases([(case, "float64")], workers=1, timeout=60)
    assert result.status == "pass"
    assert "ran in the main process without a time limit" in result.message


def test_a_runner_reuses_its_workers_across_runs():
    with IsolatedRunner(workers=1, timeout=60).start() as runner:
        first = runner.run([(good("again.one"), "float64")])
        pids = [w.process.pid for w in runner._pool.workers]
        second = runner.run([(good("again.two"), "float64")])
        assert [w.process.pid for w in runner._pool.workers] == pids
    assert first[0].status == second[0].status == "pass"
    assert runner._pool.workers == []


HELPER = '''
import os, time

def hang(x):
    time.sleep(3600)
    return x

def crash(x):
    os._exit(3)
'''

CASES = """
defaults:
  functions: {hang: "misbehave:hang", crash: "misbehave:crash"}
cases:
  - name: ok.first
    inputs: {x: [1.0, 2.0]}
    forward: (x**2).sum()
  - name: bad.hang
    inputs: {x: [1.0, 2.0]}
    torch: hang(x).sum()
    sympy: x.sum()
    dtypes: [float64, float32]
  - name: bad.crash
    inputs: {x: [1.0, 2.0]}
    torch: crash(x).sum()
    sympy: x.sum()
  - name: ok.last
    inputs: {x: [1.0, 2.0]}
    forward: (x**3).sum()
    timeout: 30
"""


def test_cli_reports_timeouts_and_crashes_and_runs_the_rest(cli, write_case, tmp_path):
    (tmp_path / "misbehave.py").write_text(textwrap.dedent(HELPER))
    path = write_case(CASES)
    out = cli("run", path, "--jobs", "2", "--timeout", "1.5", "--report-dir", tmp_path / "rep")
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    summary = pd.read_csv(tmp_path / "rep" / "summary.csv")
    got = list(zip(summary["case"], summary["dtype"], summary["status"]))
    assert got == [("ok.first", "float64", "pass"), ("bad.hang", "float64", "timeout"),
                   ("bad.hang", "float32", "timeout"), ("bad.crash", "float64", "error"),
                   ("ok.last", "float64", "pass")]
    messages = summary.set_index(["case", "dtype"])["message"]
    assert "over the time limit of 1.5 s" in messages["bad.hang", "float64"]
    assert "exited with code 3" in messages["bad.crash", "float64"]
    assert "2 timeout" in out.stdout and "1 error" in out.stdout


@pytest.mark.parametrize("option, value", [
    pytest.param("--jobs", "-1", id="negative-jobs"),
    pytest.param("--timeout", "nan", id="nan-timeout"),
])
def test_bad_run_options_are_usage_errors(cli, option, value):
    out = cli("run", SEED, option, value)
    assert out.returncode == 2
    assert option in out.stderr and "Traceback" not in out.stderr
