"""What one Dask task costs beyond its case: a trivial case run N times through --jobs and --scheduler local.

    PYTHONPATH=. python benchmarks/dask_overhead.py [N] [WORKERS]

Prints, for the local worker processes (``IsolatedRunner``) and for a
``LocalCluster`` (``DaskRunner``), the wall time per task once the workers are
warm, the time the case itself took (``result.seconds``), their difference
(the per-task overhead: scheduling, sending the case, the result's trip back),
the size of one result on the wire, and each against ``torch.autograd.gradcheck``
of the same function. docs/scale.md quotes its output.
"""

from __future__ import annotations

import pickle
import sys
import time

import torch

from verifier import make_case
from verifier.run.dask_backend import DaskRunner
from verifier.run.digest import DetailPolicy
from verifier.run.isolation import IsolatedRunner


def _cases(n: int):
    # a distinct name per task, the same tiny function: the cost is all overhead
    return [make_case(f"trivial.{i}", {"x": [1.0, -2.0, 0.5]}, forward="(x * x).sum()", dtypes=["float64"])
            for i in range(n)]


def _timed(runner, n: int) -> tuple[float, float, list]:
    runner.run([(c, "float64") for c in _cases(2)])        # warm: workers started, imports done
    jobs = [(c, "float64") for c in _cases(n)]
    start = time.perf_counter()
    results = runner.run(jobs)
    wall = time.perf_counter() - start
    return wall, sum(r.seconds for r in results), results


def main(n: int = 40, workers: int = 2) -> None:
    x = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64, requires_grad=True)
    start = time.perf_counter()
    for _ in range(20):
        torch.autograd.gradcheck(lambda t: (t * t).sum(), (x,))
    gradcheck = (time.perf_counter() - start) / 20
    policy = DetailPolicy()
    with IsolatedRunner(workers, details=policy) as local:
        local_wall, local_case, _ = _timed(local, n)
    with DaskRunner(f"local:{workers}", details=policy).start() as dask:
        dask_wall, dask_case, results = _timed(dask, n)
    from verifier.run.wire import to_wire
    wire_bytes = len(pickle.dumps(to_wire(results[0]), protocol=5))
    print(f"{n} trivial tasks on {workers} workers; gradcheck of the same function: {gradcheck * 1e3:.2f} ms")
    for label, wall, case in (("--jobs", local_wall, local_case), ("--scheduler local", dask_wall, dask_case)):
        per_task = wall * workers / n
        overhead = per_task - case / n
        print(f"{label:18s} wall/task x workers {per_task * 1e3:7.1f} ms  case itself {case / n * 1e3:6.1f} ms  "
              f"overhead {overhead * 1e3:6.1f} ms  ({per_task / gradcheck:6.1f}x gradcheck)")
    print(f"one trivial result on the wire: {wire_bytes} bytes (pickled plain data)")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
