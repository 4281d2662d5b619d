"""Reports are replaced atomically: a run killed midway leaves the previous report whole and readable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT

from verifier import Runner, load_file, make_case
from verifier.report import writing as report_module
from verifier.report.writing import write_reports

FILES = ("summary.csv", "details.csv", "report.html", "environment.json")


def previous_report(directory: Path) -> dict[str, bytes]:
    """Write a real report (the seed cases) and return its bytes."""
    cases = load_file(ROOT / "cases" / "seed.yaml").cases
    write_reports([Runner().run(c, d) for c in cases for d in c.dtypes], directory, command="previous run")
    return {name: (directory / name).read_bytes() for name in FILES}


def assert_intact(directory: Path, before: dict[str, bytes]) -> None:
    for name in FILES:
        assert (directory / name).read_bytes() == before[name], f"{name} changed"
    summary = pd.read_csv(directory / "summary.csv")
    assert "seed.mean_of_square" in set(summary["case"]) and (summary["status"] == "pass").all()
    assert len(pd.read_csv(directory / "details.csv")) > 0
    assert (directory / "report.html").read_text().rstrip().endswith("</html>")


def wait_for(marker: Path, proc: subprocess.Popen, seconds: float = 120) -> None:
    end = time.monotonic() + seconds
    while not marker.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the process ended before reaching the kill point:\n{proc.stderr.read()}")
        if time.monotonic() > end:
            proc.kill()
            raise AssertionError("the process never reached the kill point")
        time.sleep(0.05)


# A writer in a subprocess: it runs a different case (so a finished write would
# change every file), then stops at a chosen point inside write_reports, says so
# through the marker file, and waits to be killed.
WRITER = '''
import os, sys, time
from pathlib import Path
import verifier
from verifier.report import writing as report

directory, marker, point = sys.argv[1], Path(sys.argv[2]), sys.argv[3]

def stop_here():
    marker.write_text("reached")
    time.sleep(3600)

if point == "while-writing-details":
    real_fdopen = os.fdopen
    class Half:
        def __init__(self, handle):
            self.handle = handle
        def write(self, text):
            if len(text) > 1000 and "case,dtype,input" in text[:200]:
                self.handle.write(text[: len(text) // 2])
                self.handle.flush()
                stop_here()
            return self.handle.write(text)
        def __getattr__(self, name):
            return getattr(self.handle, name)
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            return self.handle.__exit__(*exc)
    report.os.fdopen = lambda *a, **k: Half(real_fdopen(*a, **k))
elif point == "before-the-renames":
    report.os.replace = lambda *a, **k: stop_here()

case = verifier.make_case("other.case", {"x": {"shape": [40], "sample": "normal"}}, forward="torch.tanh(x)",
                          grad_output="random")
result = verifier.Runner().run(case, "float64")
report.write_reports([result], directory, command="the killed run")
print("finished writing: the kill point was never reached", file=sys.stderr)
'''


@pytest.mark.parametrize("point", [pytest.param("while-writing-details", id="while-writing"),
                                   pytest.param("before-the-renames", id="before-renaming")])
def test_a_writer_killed_midway_leaves_the_previous_report(tmp_path, point):
    reports = tmp_path / "reports"
    before = previous_report(reports)
    marker = tmp_path / "marker"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(reports), str(marker), point],
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for(marker, proc)
        staged = sorted(p.name for p in reports.iterdir() if p.name.endswith(".tmp"))
        assert len(staged) >= 2, "the writer had not started its temporary files"
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert_intact(reports, before)


def test_a_failed_write_leaves_the_previous_report_and_no_temporary_files(tmp_path, monkeypatch):
    reports = tmp_path / "reports"
    before = previous_report(reports)
    real_fdopen = os.fdopen
    opened = []

    def disk_full_on_second_file(*args, **kwargs):
        opened.append(args)
        if len(opened) == 2:
            raise OSError(28, "No space left on device")
        return real_fdopen(*args, **kwargs)

    monkeypatch.setattr(report_module.os, "fdopen", disk_full_on_second_file)
    case = make_case("other.case", {"x": [1.0, 2.0]}, forward="(x**2).sum()")
    with pytest.raises(OSError, match="No space left"):
        write_reports([Runner().run(case, "float64")], reports)
    assert_intact(reports, before)
    assert not [p for p in reports.iterdir() if p.name.endswith(".tmp")]


def test_a_finished_write_replaces_every_file(tmp_path):
    reports = tmp_path / "reports"
    before = previous_report(reports)
    case = make_case("other.case", {"x": [1.0, 2.0]}, forward="(x**2).sum()")
    write_reports([Runner().run(case, "float64")], reports)
    for name in FILES:
        assert (reports / name).read_bytes() != before[name]
    assert list(pd.read_csv(reports / "summary.csv")["case"]) == ["other.case"]
    assert not [p for p in reports.iterdir() if p.name.endswith(".tmp")]


HANGING_CASE = """
cases:
  - name: quick.first
    inputs: {x: [1.0, 2.0]}
    forward: (x**2).sum()
  - name: slow.second
    inputs: {x: [1.0, 2.0]}
    functions: {stall: "stall_helper:record_pid_then_hang"}
    torch: stall(x)
    sympy: x.sum()
"""


def test_a_run_killed_mid_case_keeps_the_previous_report_and_leaves_no_worker(tmp_path, write_case):
    reports = tmp_path / "reports"
    before = previous_report(reports)
    helper = (ROOT / "tests" / "isolation_helpers.py").read_text()
    (tmp_path / "stall_helper.py").write_text(helper)
    path = write_case(textwrap.dedent(HANGING_CASE))
    marker = tmp_path / "worker.pid"
    env = {**os.environ, "VERIFIER_TEST_MARKER": str(marker)}
    proc = subprocess.Popen([sys.executable, "-m", "verifier", "run", str(path), "--report-dir", str(reports),
                             "--no-progress"], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(marker, proc)
        worker = int(marker.read_text())
    finally:
        proc.kill()                  # SIGKILL: no cleanup code of the run gets to run
        proc.wait(timeout=30)
    assert_intact(reports, before)
    # the worker notices that its run is gone and ends itself (verifier.run.isolation's watchdog)
    end = time.monotonic() + 30
    while _alive(worker) and time.monotonic() < end:
        time.sleep(0.2)
    assert not _alive(worker), f"worker {worker} outlived the killed run"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    if status.exists():             # a zombie has ended; it only waits for its parent to reap it
        return status.read_text().split(")")[-1].split()[0] != "Z"
    return True
