"""``verifier run --scheduler``: cases on a Dask cluster, with the local workers' isolation and the same report."""

from __future__ import annotations

import os
import signal
import sys
import time
from types import SimpleNamespace

import isolation_helpers as H
import numpy as np
import pandas as pd
import pytest

from verifier import make_case
from verifier.errors import VerifierError
from verifier.run.dask_backend import DaskRunner, parse_scheduler
from verifier.run.digest import DetailPolicy, digested
from verifier.run.runner import Runner
from verifier.run.wire import from_wire, to_wire

distributed = pytest.importorskip("distributed")

# A representative part of the built-in library, not all of it: on the 2 shared cores of CI the whole library
# takes minutes per run and the test runs it twice. These files hold the expected-error cases, the kinks,
# the semantic rules and the multi-input cases: every status path the summary has besides plain passes.
SUBSET = ["errors.yaml", "kinks.yaml", "semantics.yaml", "multi.yaml"]


@pytest.fixture(scope="module")
def cluster():
    """Two Dask worker processes on the loopback interface; a lost worker's task is ours to retry."""
    import dask
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        local = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                         dashboard_address=None)
    yield local
    local.close()


def _cases(*names, **fields):
    fn = {"square": H.square_sum, "hang": H.hang, "segfault": H.segfault}
    return [make_case(f"dask.{n}", {"x": [1.0, -2.0, 0.5]}, torch=fn[n], sympy="(x*x).sum()", dtypes=["float64"],
                      **fields) for n in names]


def _plain_only(value) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain_only(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain_only(v) for v in value)
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "biufc"      # complex: a complex case's small vectors
    return value is None or isinstance(value, (str, int, float, bool))


@pytest.mark.slow      # two runs of ~200 case x dtype: minutes on 2 shared cores
def test_the_built_in_library_on_a_tcp_cluster_reports_as_a_serial_run(cluster, cli, tmp_path):
    from verifier.cases.registry import builtin_cases_dir
    files = [builtin_cases_dir() / name for name in SUBSET]
    serial = cli("run", *files, "--report-dir", tmp_path / "serial", "--no-progress")
    dask = cli("run", *files, "--report-dir", tmp_path / "dask", "--no-progress", "--scheduler",
               cluster.scheduler_address)
    assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
    assert dask.returncode == serial.returncode, dask.stderr
    one, other = (pd.read_csv(tmp_path / f / "summary.csv", keep_default_na=False).drop(columns=["seconds"])
                  for f in ("serial", "dask"))
    assert len(one) > 100
    pd.testing.assert_frame_equal(one, other)            # status and message (and every number) per case × dtype
    for name in ("details.csv", "checks.csv", "summary.md"):
        assert (tmp_path / "serial" / name).read_text() == (tmp_path / "dask" / name).read_text(), name


def test_a_timeout_and_a_crash_on_a_dask_worker_become_rows_and_the_worker_lives(cluster):
    jobs = [(c, "float64") for c in [*_cases("hang", timeout=3), *_cases("segfault", "square")]]
    with DaskRunner(cluster.scheduler_address).start() as runner:
        workers_before = set(runner.client.scheduler_info()["workers"])
        results = {r.name: r for r in runner.run(jobs)}
        assert set(runner.client.scheduler_info()["workers"]) == workers_before     # no Dask worker died
    assert results["dask.hang"].status == "timeout" and "time limit of 3 s (the case's 'timeout')" in results["dask.hang"].message
    assert results["dask.segfault"].status == "error" and "SIGSEGV" in results["dask.segfault"].message
    assert results["dask.square"].status == "pass"
    assert runner.lost == []


def test_killing_a_worker_mid_run_loses_no_case(cluster):
    cases = [make_case(f"dask.slow{i}", {"x": [1.0, -2.0, 0.5]}, torch=H.sleep_two_seconds, sympy="(x*x).sum()",
                       dtypes=["float64"]) for i in range(6)]
    jobs = [(c, "float64") for c in cases]
    killed = []
    with DaskRunner(cluster.scheduler_address).start() as runner:
        pids = runner.client.run(os.getpid)                # {worker address: pid}

        def kill_one(result):
            if not killed:                                   # both workers are busy with a 2 s case now
                address, pid = sorted(pids.items())[0]
                os.kill(pid, signal.SIGKILL)
                killed.append(address)
        results = runner.run(jobs, on_result=kill_one)
    assert killed
    assert [r.name for r in results] == [c.name for c in cases]            # every case reported, in order
    assert runner.lost, "the killed worker was running a case: it must have been lost and retried"
    for r in results:        # retried on the other worker: a pass; lost twice: an error that says so
        assert r.status == "pass" or (r.status == "error" and "lost 2 times" in r.message), (r.name, r.message)
    assert sum(r.status == "pass" for r in results) >= len(results) - 1


def test_ctrl_c_cancels_the_futures_still_pending(cluster):
    cases = [make_case(f"dask.stop{i}", {"x": [1.0, -2.0, 0.5]}, torch=H.sleep_two_seconds, sympy="(x*x).sum()",
                       dtypes=["float64"]) for i in range(8)]

    def interrupt(result):
        raise KeyboardInterrupt
    with DaskRunner(cluster.scheduler_address).start() as runner:
        with pytest.raises(KeyboardInterrupt):
            runner.run([(c, "float64") for c in cases], on_result=interrupt)
        deadline = time.monotonic() + 5      # the 8 cases of 2 s on 2 workers would hold the scheduler >= 8 s
        while time.monotonic() < deadline and any(k.startswith("verifier-") for k in cluster.scheduler.tasks):
            time.sleep(0.2)
        left = [k for k in cluster.scheduler.tasks if k.startswith("verifier-")]
    assert left == [], left          # nothing of the interrupted run is still queued or running


def test_a_case_lost_twice_is_an_error_row_with_the_reason():
    runner = DaskRunner("local:1")
    case = _cases("square")[0]

    class Lost:
        def result(self):
            raise distributed.KilledWorker("verifier-x", SimpleNamespace(address="tcp://127.0.0.1:1"), 0)

    from verifier.run.isolation import _group
    task = _group([(case, "float64")])[0]
    runner._attempts = {id(task): 1}
    assert runner._collect(Lost(), task, distributed) == [None]          # first loss: run it again
    runner._attempts[id(task)] = 2
    (row,) = runner._collect(Lost(), task, distributed)
    assert row.status == "error" and "lost 2 times" in row.message and row.dtype == "float64"


def test_results_cross_as_plain_columns_and_a_wrong_gradient_stays_wrong(tmp_path):
    from verifier.report import tables
    sys.path.insert(0, os.path.dirname(__file__))
    import torch
    from wrong_backward import wrong_tanh
    x = {"x": [[0.5, -1.0], [2.0, 0.25]]}
    right = make_case("wire.right", x, torch=torch.tanh, sympy="torch.tanh(x)", grad_output="random")
    wrong = make_case("wire.wrong", x, torch=lambda x: wrong_tanh(x, 2), sympy="torch.tanh(x)",
                      grad_output="random")
    runner = Runner(cache=False)
    here = [digested(runner.run(c, "float64"), DetailPolicy()) for c in (right, wrong)]
    wired = [to_wire(r) for r in here]
    assert all(_plain_only(w) for w in wired)
    back = [from_wire(w, c) for w, c in zip(wired, (right, wrong))]
    assert [r.status for r in back] == ["pass", "fail"]
    pd.testing.assert_frame_equal(tables.summary(here), tables.summary(back))
    pd.testing.assert_frame_equal(tables.details(here), tables.details(back))
    pd.testing.assert_frame_equal(tables.checks(here), tables.checks(back))
    assert back[1].jacobian is not None and here[1].jacobian is not None      # a small failing case shows J
    for name, j in here[1].jacobian.items():
        np.testing.assert_array_equal(back[1].jacobian[name], j)
    assert (back[0].device, back[0].allowance) == (here[0].device, here[0].allowance)
    with pytest.raises(ValueError, match="another verifier release"):
        from_wire({**wired[0], "wire": 99}, right)


def test_a_complex_result_crosses_whole_and_a_dropped_imaginary_part_stays_wrong():
    """Complex small vectors travel as complex (never cast to float, which would drop the imaginary part)."""
    from verifier.report import tables
    z = {"z": {"value": ["1+2j", "-0.5+0.25j"]}}
    right = make_case("wire.complex", z, forward="(z.abs()**2).sum()", dtypes=["complex128"])
    result = digested(Runner(cache=False).run(right, "complex128"), DetailPolicy())
    wired = to_wire(result)
    assert _plain_only(wired)
    back = from_wire(wired, right)
    assert back.status == result.status == "pass"
    pd.testing.assert_frame_equal(tables.summary([result]), tables.summary([back]))
    pd.testing.assert_frame_equal(tables.details([result]), tables.details([back]))
    assert wired["sides"] is not None
    for name, g in result.exact.vjp.items():       # z.grad = 2+4j at z = 1+2i (docs/complex.md)
        np.testing.assert_array_equal(back.exact.vjp[name], np.asarray(g))


@pytest.mark.parametrize("text", ["local:0", "local:x", "nowhere"])
def test_a_bad_scheduler_says_what_to_give(text):
    with pytest.raises(VerifierError, match="local"):
        parse_scheduler(text)


def test_without_dask_the_scheduler_option_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)      # import distributed now raises ImportError
    with pytest.raises(VerifierError, match=r"pip install 'verifier\[dask\]'"):
        DaskRunner("local:1").start()
