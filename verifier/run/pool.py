"""The parent's side of the worker processes: hand out tasks, watch the clock, replace workers that die.

Used by :class:`verifier.run.isolation.IsolatedRunner`; see that module for
what a run guarantees. Each worker (:mod:`verifier.run.worker`) is forked from
the fork server that :mod:`verifier.run.launch` starts with a safe
``sys.path``. A task carries its case's time limit (enforced here, by killing
the worker) and memory limit (enforced in the worker, by ``RLIMIT_AS``).
"""

from __future__ import annotations

import os
import time
from collections import deque
from multiprocessing.connection import wait
from typing import TYPE_CHECKING, Callable

from ..cases.limits import describe_bytes
from ..errors import VerifierError
from .launch import context, exit_description, safe_sys_path
from .worker import worker_main

if TYPE_CHECKING:  # the runner (torch) is imported only where cases run
    from ..cases.case import Case
    from .isolation import _Task
    from .runner import CaseResult

#: Seconds a new worker may take to import torch and report ready.
STARTUP_TIMEOUT = 120.0
#: Workers that die before ever becoming ready, in a row, before the run gives up.
MAX_START_FAILURES = 3
#: The longest single wait for a worker (a bound far below what the system's wait accepts).
MAX_WAIT = 3600.0

ResultCallback = Callable[["CaseResult"], None]


def time_limit(case: "Case", default: float | None) -> float | None:
    """The case's time limit in seconds (its ``timeout`` field, else the run's); None for none."""
    value = case.timeout if case.timeout is not None else default
    return value if value else None


def memory_limit(case: "Case", default: int | None) -> int | None:
    """The case's memory limit in bytes (its ``memory_limit`` field, else the run's); None for none."""
    value = case.memory_limit if case.memory_limit is not None else default
    return value if value else None


class _Worker:
    """The parent's handle on one worker process and the task it is running."""

    def __init__(self, context, threads: int | None) -> None:
        self.conn, child = context.Pipe(duplex=True)
        self.process = context.Process(target=worker_main, args=(child, threads, os.getpid(), safe_sys_path()),
                                       daemon=True, name="verifier-worker")
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
        return exit_description(self.process.exitcode)


class _Pool:
    """Hands tasks to workers, enforces deadlines, replaces workers that die or time out."""

    def __init__(self, size: int, timeout: float | None, memory: int | None, details=None) -> None:
        self.size = size
        self.timeout = timeout
        self.memory = memory
        self.details = details        # a digest.DetailPolicy, applied in the worker before a result is sent
        self.results: list = []
        self.on_result: ResultCallback | None = None
        self.context = context()
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
                worker.conn.send(("run", worker.task_id, task.case, list(task.dtypes),
                                  memory_limit(task.case, self.memory), self.details))
                self._start_clock(worker)

    def _start_clock(self, worker: _Worker) -> None:
        worker.started = time.monotonic()
        limit = time_limit(worker.task.case, self.timeout)
        worker.deadline = worker.started + limit if limit else None

    def _wait(self) -> None:
        deadlines = [w.deadline for w in self.workers if w.deadline is not None]
        wait_for = min(MAX_WAIT, max(0.0, min(deadlines) - time.monotonic())) if deadlines else MAX_WAIT
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
                try:
                    message = worker.conn.recv()
                except (EOFError, OSError):
                    raise
                except Exception as exc:   # bytes that do not unpickle here: that dtype's result is lost, not the run
                    self._unreadable(worker, exc)
                    continue
                self._handle(worker, message)
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

    def _unreadable(self, worker: _Worker, exc: Exception) -> None:
        """A message that could not be unpickled: it was the result of the task's next dtype."""
        from .runner import CaseResult
        from .worker import describe_exception

        task = worker.task
        if task is None or not task.dtypes:
            return
        why = describe_exception(exc)
        self._handle(worker, ("result", worker.task_id, task.dtypes[0],
                              CaseResult(task.case, task.dtypes[0], "error",
                                         f"the worker's result could not be read back ({why.type_name}: "
                                         f"{why.message}); a verifier bug: please report the case")))

    def _record(self, index: int, task: _Task, dtype: str, result: "CaseResult") -> None:
        if result.status == "out_of_memory":
            limit = memory_limit(task.case, self.memory)
            source = "the case's 'memory_limit'" if task.case.memory_limit is not None else "the run's --memory-limit"
            where = f"over the memory limit of {describe_bytes(limit)} ({source})" if limit else "with no memory limit"
            result.message = f"out of memory: the case needed more memory, {where}; the other cases went on " \
                             f"({result.message})"
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
        limit = time_limit(task.case, self.timeout)
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
