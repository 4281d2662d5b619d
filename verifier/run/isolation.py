"""Run cases in worker processes that can be killed: a crash or a hang becomes a result, not the end of the run.

Each case goes to a long-lived worker process (torch, SymPy and pandas are
imported once per worker, not once per case) that runs it with
:class:`~verifier.run.runner.Runner` for each of its dtypes and sends every
result back as soon as it is ready. The parent watches the clock:

* an exception inside a case is already a result (``Runner.run`` catches it);
* a worker that dies (a segfault, ``os._exit`` in a custom function, the
  kernel's out-of-memory killer) gives that case × dtype status ``error``
  with the exit code, and a fresh worker takes over;
* a case × dtype that runs past its time limit (the case's ``timeout``
  field, else the run's default) gets status ``timeout``; its worker is
  killed and replaced;
* a case × dtype that needs more memory than its limit (the case's
  ``memory_limit`` field, else the run's default: half the machine's memory
  shared by the workers) gets status ``out_of_memory``: the worker caps its
  own address space, so the allocation fails there and the worker goes on.

Either way the dtypes of that case that had not run yet are run again in the
fresh worker, so every row of the report comes from a run of its own.

``workers=0`` runs everything in this process, without time limits (useful
under a debugger). Cases whose Python callables cannot be pickled (a lambda
given to ``make_case``) also run here, after the others; their message says so.

Workers are forked from a *fork server* (``multiprocessing``'s
``forkserver`` method, started by :mod:`verifier.run.launch` with a
``sys.path`` that never holds the working directory) that has imported the
verifier once and never runs a torch operation: forking the caller itself
could deadlock once torch's thread pools have started, and a fresh ``spawn``
for every replacement would pay the imports again (about 3 s). Where there is
no fork server (Windows), workers are spawned. The parent's side of the
workers is :mod:`verifier.run.pool`. Either way a script that calls :func:`run_cases` needs the
usual ``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import pickle
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

from ..cases.limits import timeout_problem
from ..errors import VerifierError
from .launch import default_memory_limit
from .pool import ResultCallback, _Pool

if TYPE_CHECKING:  # the runner (torch) is imported only where cases run
    from ..cases.case import Case
    from .runner import CaseResult

#: Seconds one case × dtype may run (building its symbolic model included)
#: before it is stopped. Generous on purpose: the limit exists to stop a hang
#: or a blow-up, not to judge speed. ``None`` or 0 means no limit.
DEFAULT_TIMEOUT = 300.0


def run_cases(jobs: Sequence[tuple["Case", str]], *, workers: int = 1, timeout: float | None = DEFAULT_TIMEOUT,
              memory_limit: int | None | str = "auto", on_result: ResultCallback | None = None) -> list[CaseResult]:
    """Run every (case, dtype) job; return the results in the order of ``jobs``.

    ``workers`` processes run cases in parallel (0: in this process, no time
    or memory limits). ``timeout`` is the default limit in seconds for one
    case × dtype, ``memory_limit`` the default in bytes a worker may allocate
    for it (``"auto"``: half the machine's memory split over the workers;
    None: no limit); a case's own ``timeout`` and ``memory_limit`` fields
    override them. ``on_result`` is called with each result as it arrives
    (for a progress bar).
    """
    with IsolatedRunner(workers, timeout, memory_limit) as runner:
        return runner.run(jobs, on_result=on_result)


class IsolatedRunner:
    """Long-lived worker processes that run cases with time and memory limits; see the module docstring.

    ``start()`` launches the workers ahead of time, so that their imports
    overlap with the caller's own work (loading the case files); ``run()``
    may be called several times and reuses them; ``close()`` (or leaving the
    ``with`` block) kills them.
    """

    def __init__(self, workers: int = 1, timeout: float | None = DEFAULT_TIMEOUT,
                 memory_limit: int | None | str = "auto", details=None) -> None:
        if workers < 0:
            raise VerifierError(f"the number of worker processes must be 0 or more, not {workers}")
        problem = None if timeout is None else timeout_problem(timeout, zero_allowed=True)
        if problem:
            raise VerifierError(f"{problem}; give at most a day, or 0 for no limit")
        self.workers = workers
        self.timeout = timeout
        self.memory_limit = default_memory_limit(workers) if memory_limit == "auto" else memory_limit
        self.details = details          # a digest.DetailPolicy: results arrive reduced (None: whole)
        self._pool = _Pool(workers, timeout, self.memory_limit, details) if workers else None
        self._starting: threading.Thread | None = None
        self._start_error: BaseException | None = None

    def __enter__(self) -> "IsolatedRunner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> "IsolatedRunner":
        """Start the workers in the background and return at once; ``run`` waits for them."""
        if self._pool is not None and self._starting is None:
            # Starting the first worker waits for the fork server to import torch (seconds); a
            # thread lets the caller load its case files meanwhile.
            self._starting = threading.Thread(target=self._start, name="verifier-start-workers", daemon=True)
            self._starting.start()
        return self

    def _start(self) -> None:
        try:
            self._pool.staff(self.workers)
        except BaseException as exc:  # reported by run(), in the caller's thread
            self._start_error = exc

    def _started(self) -> None:
        if self._starting is not None:
            self._starting.join()
            self._starting = None
            if self._start_error is not None:
                error, self._start_error = self._start_error, None
                raise VerifierError(f"cannot start worker processes: {error}; run with --jobs 0 to run the cases "
                                    f"in this process instead") from error

    def close(self) -> None:
        if self._pool is not None:
            if self._starting is not None:
                self._starting.join()
                self._starting = None
            self._pool.close()

    def run(self, jobs: Sequence[tuple["Case", str]], *,
            on_result: ResultCallback | None = None) -> list["CaseResult"]:
        """Run every (case, dtype) job; the results come back in the order of ``jobs``."""
        from .digest import digested
        from .runner import CaseResult, Runner

        results: list[CaseResult | None] = [None] * len(jobs)
        tasks = _group(jobs)
        inline = tasks
        if self._pool is not None:
            portable, inline = [], []
            for task in tasks:
                problem = _unpicklable(task.case)
                if problem is None:
                    portable.append(task)
                else:
                    task.note = (f"ran in the main process without a time limit: the case cannot be sent to "
                                 f"a worker ({problem}); define its functions at module level")
                    inline.append(task)
            if portable:
                self._started()
                self._pool.run(portable, results, on_result)
        runner = Runner()
        for task in inline:
            for index, dtype in zip(task.indices, task.dtypes):
                result = digested(_run_here(runner, task.case, dtype), self.details, f"inline-{index}")
                if task.note:
                    result.message = f"{result.message}; {task.note}" if result.message else task.note
                results[index] = result
                if on_result:
                    on_result(result)
        for i, result in enumerate(results):
            if result is None:   # cannot happen unless this module has a bug; never drop a case silently
                case, dtype = jobs[i]
                results[i] = CaseResult(case, dtype, "error", "no result came back from the worker (a verifier bug)")
        return results


@dataclass
class _Task:
    """One case and the dtypes (with their positions in the job list) still to run."""

    case: "Case"
    indices: list[int] = field(default_factory=list)
    dtypes: list[str] = field(default_factory=list)
    note: str = ""


def _group(jobs: Sequence[tuple["Case", str]]) -> list[_Task]:
    """One task per case (its dtypes together share one symbolic model), in order of first appearance."""
    tasks: dict[int, _Task] = {}
    for index, (case, dtype) in enumerate(jobs):
        task = tasks.setdefault(id(case), _Task(case))
        task.indices.append(index)
        task.dtypes.append(dtype)
    return list(tasks.values())


def _unpicklable(case: "Case") -> str | None:
    try:
        pickle.dumps(case)
    except Exception as exc:  # pickling raises PicklingError, AttributeError, TypeError, ...
        return f"{type(exc).__name__}: {exc}"
    return None


def _run_here(runner, case: "Case", dtype: str) -> "CaseResult":
    """``runner.run`` in this process; a custom function's ``sys.exit`` is the case's error, not the run's end."""
    from ..cases.python_files import resolve
    from .runner import CaseResult

    try:
        return runner.run(resolve(case), dtype)
    except SystemExit as exc:
        return CaseResult(case, dtype, "error", f"SystemExit: {exc}")
    except Exception as exc:  # a Python case file that no longer imports: that case's error
        return CaseResult(case, dtype, "error", f"{type(exc).__name__}: {exc}")
