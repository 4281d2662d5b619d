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
  killed and replaced.

Either way the dtypes of that case that had not run yet are run again in the
fresh worker, so every row of the report comes from a run of its own.

``workers=0`` runs everything in this process, without time limits (useful
under a debugger). Cases whose Python callables cannot be pickled (a lambda
given to ``make_case``) also run here, after the others; their message says so.

Workers are forked from a *fork server* (``multiprocessing``'s
``forkserver`` method) that has imported the verifier once and never runs a
torch operation: forking the caller itself could deadlock once torch's thread
pools have started, and a fresh ``spawn`` for every replacement would pay the
imports again (about 3 s). Where there is no fork server (Windows), workers
are spawned. Either way a script that calls :func:`run_cases` needs the
usual ``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from typing import TYPE_CHECKING, Callable, Sequence

from ..errors import VerifierError
from .worker import worker_main

if TYPE_CHECKING:  # the runner (torch) is imported only where cases run
    from ..cases.case import Case
    from .runner import CaseResult

#: Seconds one case × dtype may run (building its symbolic model included)
#: before it is stopped. Generous on purpose: the limit exists to stop a hang
#: or a blow-up, not to judge speed. ``None`` or 0 means no limit.
DEFAULT_TIMEOUT = 300.0
#: Seconds a new worker may take to import torch and report ready.
STARTUP_TIMEOUT = 120.0
#: Workers that die before ever becoming ready, in a row, before the run gives up.
MAX_START_FAILURES = 3

ResultCallback = Callable[["CaseResult"], None]


def run_cases(jobs: Sequence[tuple["Case", str]], *, workers: int = 1, timeout: float | None = DEFAULT_TIMEOUT,
              on_result: ResultCallback | None = None) -> list[CaseResult]:
    """Run every (case, dtype) job; return the results in the order of ``jobs``.

    ``workers`` processes run cases in parallel (0: in this process, no time
    limits). ``timeout`` is the default limit in seconds for one case × dtype;
    a case's own ``timeout`` field overrides it. ``on_result`` is called with
    each result as it arrives (for a progress bar).
    """
    with IsolatedRunner(workers, timeout) as runner:
        return runner.run(jobs, on_result=on_result)


class IsolatedRunner:
    """Long-lived worker processes that run cases with time limits; see the module docstring.

    ``start()`` launches the workers ahead of time, so that their imports
    overlap with the caller's own work (loading the case files); ``run()``
    may be called several times and reuses them; ``close()`` (or leaving the
    ``with`` block) kills them.
    """

    def __init__(self, workers: int = 1, timeout: float | None = DEFAULT_TIMEOUT, details=None) -> None:
        if workers < 0:
            raise VerifierError(f"the number of worker processes must be 0 or more, not {workers}")
        self.workers, self.timeout = workers, timeout
        self.details = details          # a digest.DetailPolicy: results arrive reduced (None: whole)
        self._pool = _Pool(workers, timeout, details) if workers else None
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
                result = digested(runner.run(task.case, dtype), self.details, f"inline-{index}")
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


def _limit(case: "Case", default: float | None) -> float | None:
    value = case.timeout if case.timeout is not None else default
    return value if value else None


def _context():
    if "forkserver" in mp.get_all_start_methods():
        context = mp.get_context("forkserver")
        # imported once in the server; every worker forked from it starts warm
        context.set_forkserver_preload(["verifier.run.isolation", "verifier.run.worker", "verifier.run.runner"])
        return context
    return mp.get_context("spawn")


class _Worker:
    """The parent's handle on one worker process and the task it is running."""

    def __init__(self, context, threads: int | None) -> None:
        self.conn, child = context.Pipe(duplex=True)
        self.process = context.Process(target=worker_main, args=(child, threads, os.getpid()), daemon=True,
                                       name="verifier-worker")
        self.process.start()
        child.close()                 # so that the worker's death closes the pipe
        self.ready = False
        self.task: _Task | None = None
        self.task_id = -1
        self.started = time.monotonic()   # of the current dtype, or of the process before it is ready
        self.deadline: float | None = time.monotonic() + STARTUP_TIMEOUT

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()

    def describe_exit(self) -> str:
        self.process.join(timeout=5)
        code = self.process.exitcode
        if code is None:
            return "it stopped answering"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            hint = " (the out-of-memory killer sends SIGKILL)" if name == "SIGKILL" else ""
            return f"it was killed by {name}{hint}"
        return f"it exited with code {code}"


class _Pool:
    """Hands tasks to workers, enforces deadlines, replaces workers that die or time out."""

    def __init__(self, size: int, timeout: float | None, details=None) -> None:
        self.size, self.timeout, self.details = size, timeout, details
        self.results: list = []
        self.on_result: ResultCallback | None = None
        self.context = _context()
        cpus = os.cpu_count() or 1
        # several workers each running torch's full thread pool would fight over the cores
        self.threads = max(1, cpus // size) if size > 1 else None
        self.workers: list[_Worker] = []
        self.pending: deque[_Task] = deque()
        self.next_id = 0
        self.start_failures = 0

    def run(self, tasks: list[_Task], results: list, on_result: ResultCallback | None) -> None:
        self.results, self.on_result = results, on_result
        self.pending.extend(tasks)
        try:
            while self.pending or any(w.task for w in self.workers):
                self.staff(min(self.size, sum(1 for w in self.workers if w.task) + len(self.pending)))
                self._dispatch()
                self._wait()
        except BaseException:
            self.close()             # Ctrl-C or a failure to start: leave no worker behind
            raise

    def close(self) -> None:
        for worker in self.workers:
            worker.kill()
        self.workers = []
        self.pending.clear()

    def staff(self, wanted: int) -> None:
        while len(self.workers) < wanted:
            self.workers.append(_Worker(self.context, self.threads))

    def _dispatch(self) -> None:
        for worker in self.workers:
            if worker.ready and worker.task is None and self.pending:
                task = self.pending.popleft()
                worker.task, worker.task_id = task, self.next_id
                self.next_id += 1
                worker.conn.send(("run", worker.task_id, task.case, list(task.dtypes), self.details))
                self._start_clock(worker)

    def _start_clock(self, worker: _Worker) -> None:
        worker.started = time.monotonic()
        limit = _limit(worker.task.case, self.timeout)
        worker.deadline = worker.started + limit if limit else None

    def _wait(self) -> None:
        deadlines = [w.deadline for w in self.workers if w.deadline is not None]
        wait_for = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
        handles = {}
        for worker in self.workers:
            handles[worker.conn] = worker
            handles[worker.process.sentinel] = worker
        for handle in wait(list(handles), timeout=wait_for):
            worker = handles[handle]
            if worker in self.workers:
                self._receive(worker)
        now = time.monotonic()
        for worker in list(self.workers):
            if worker.deadline is not None and now >= worker.deadline:
                self._overdue(worker, now)

    def _receive(self, worker: _Worker) -> None:
        try:
            while worker.conn.poll():
                self._handle(worker, worker.conn.recv())
        except (EOFError, OSError):
            self._died(worker)
            return
        if not worker.process.is_alive():
            self._died(worker)

    def _handle(self, worker: _Worker, message) -> None:
        if message[0] == "ready":
            worker.ready, worker.deadline = True, None
            self.start_failures = 0
            return
        _, task_id, dtype, result = message
        task = worker.task
        if task is None or task_id != worker.task_id or dtype != task.dtypes[0]:
            return                                     # a stray message from a task already given up
        self._record(task.indices.pop(0), task, task.dtypes.pop(0), result)
        if task.dtypes:
            self._start_clock(worker)                  # each dtype gets the full limit
        else:
            worker.task, worker.deadline = None, None

    def _record(self, index: int, task: _Task, dtype: str, result: "CaseResult") -> None:
        result.case = task.case
        self.results[index] = result
        if self.on_result:
            self.on_result(result)

    def _overdue(self, worker: _Worker, now: float) -> None:
        from .runner import CaseResult

        if not worker.ready:
            self._retire(worker)
            self._start_failed(f"a worker process did not start within {STARTUP_TIMEOUT:.0f} s")
            return
        task = worker.task
        limit = _limit(task.case, self.timeout)
        source = "the case's 'timeout'" if task.case.timeout is not None else "the run's --timeout"
        result = CaseResult(task.case, task.dtypes[0], "timeout",
                            f"stopped after {now - worker.started:.1f} s: over the time limit of {limit:g} s "
                            f"({source}); the worker was killed and the other cases went on",
                            seconds=now - worker.started)
        self._give_up(worker, result)

    def _died(self, worker: _Worker) -> None:
        from .runner import CaseResult

        if not worker.ready:
            why = worker.describe_exit()
            self._retire(worker)
            self._start_failed(f"a worker process died while starting: {why}")
            return
        task = worker.task
        if task is None:                               # died between cases: nothing lost
            self._retire(worker)
            return
        now = time.monotonic()
        result = CaseResult(task.case, task.dtypes[0], "error",
                            f"the worker process running this case died: {worker.describe_exit()}; "
                            f"the other cases went on in a new worker", seconds=now - worker.started)
        self._give_up(worker, result)

    def _give_up(self, worker: _Worker, result: "CaseResult") -> None:
        """Record ``result`` for the running dtype, requeue the case's other dtypes, replace the worker."""
        task = worker.task
        index = task.indices.pop(0)
        task.dtypes.pop(0)
        self._record(index, task, result.dtype, result)
        if task.dtypes:
            self.pending.appendleft(task)
        self._retire(worker)

    def _retire(self, worker: _Worker) -> None:
        worker.task = None
        worker.kill()
        self.workers.remove(worker)

    def _start_failed(self, why: str) -> None:
        self.start_failures += 1
        if self.start_failures >= MAX_START_FAILURES:
            raise VerifierError(f"{why}, {self.start_failures} times in a row; run with --jobs 0 to run the "
                                f"cases in this process instead")
