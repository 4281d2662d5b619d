"""What running cases in worker processes costs, on the seed cases.

Two measurements, each repeated (the minimum and the median are printed,
since other work on the machine only ever adds time):

1. the whole command line, ``verifier run cases/seed.yaml`` with
   ``--jobs 0`` (in this process, no time limits), ``--jobs 1`` (the
   default: one worker) and ``--jobs 2``;
2. inside one Python process: the plain ``Runner`` against
   ``IsolatedRunner`` the first time (the fork server starts and imports the
   verifier), with a new worker forked from that server, and warm (workers
   kept from an earlier run).

    .venv/bin/python benchmarks/isolation_overhead.py [--repeat 5] [--cases cases/seed.yaml] [--no-command-line]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(fn, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def show(label: str, times: list[float], baseline: float | None = None) -> float:
    best = min(times)
    ratio = f"   {best / baseline:5.2f}x the first row" if baseline else ""
    print(f"  {label:50s} min {best:7.3f} s   median {statistics.median(times):7.3f} s{ratio}")
    return best


def command_line(cases: Path, repeat: int) -> None:
    print(f"verifier run {cases.relative_to(ROOT)} (wall time of the whole command, {repeat} runs each)")
    baseline = None
    with tempfile.TemporaryDirectory() as reports:
        for jobs in ("0", "1", "2"):
            cmd = [sys.executable, "-m", "verifier", "run", str(cases), "--jobs", jobs, "--no-progress",
                   "--report-dir", reports]

            def once():
                subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
            best = show(f"--jobs {jobs}", timed(once, repeat), baseline)
            baseline = baseline or best


def in_process(cases: Path, repeat: int) -> None:
    from verifier import Runner, load_paths
    from verifier.run.isolation import IsolatedRunner

    loaded = load_paths([cases]).cases
    jobs = [(c, d) for c in loaded for d in c.dtypes]
    print(f"\n{len(jobs)} case x dtype runs inside one process ({repeat} runs each)")
    def plain():
        runner = Runner()                                   # one per run: its model cache serves the dtypes
        return [runner.run(c, d) for c, d in jobs]
    baseline = show("Runner (no isolation)", timed(plain, repeat))

    def cold():
        with IsolatedRunner(workers=1) as runner:
            runner.run(jobs)
    show("IsolatedRunner, first use: fork server + worker", timed(cold, 1), baseline)
    show("IsolatedRunner, new worker from the fork server", timed(cold, repeat), baseline)
    with IsolatedRunner(workers=1).start() as runner:
        runner.run(jobs)                                     # warm it up
        show("IsolatedRunner, 1 worker, warm", timed(lambda: runner.run(jobs), repeat), baseline)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cases", type=Path, default=ROOT / "cases" / "seed.yaml",
                        help="a case file or folder (default: cases/seed.yaml; try cases/ for the whole library)")
    parser.add_argument("--no-command-line", action="store_true", help="skip the command-line measurement")
    args = parser.parse_args()
    cases = args.cases.resolve()
    if not args.no_command_line:
        command_line(cases, args.repeat)
    in_process(cases, args.repeat)


if __name__ == "__main__":
    main()
