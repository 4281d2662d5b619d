"""``verifier run --scheduler``: cases on a ``dask.distributed`` cluster, under the local workers' isolation.

One Dask task per case (all its dtypes, so its symbolic model is built once).
On the Dask worker the task hands the case to an
:class:`~verifier.run.isolation.IsolatedRunner` with one worker process of its
own (one per Dask worker thread, kept warm between tasks): the same time and
memory limits and the same crash isolation as ``--jobs``, so a hang or a
segfault in a case becomes that case's ``timeout`` / ``error`` row and the
Dask worker lives on. The task returns the digested results as plain data
(:mod:`verifier.run.wire`), never pickled result objects; the client rebuilds
them around its own ``Case`` objects as they complete and hands each to
``on_result``.

* ``local`` / ``local:N``: a ``LocalCluster`` of N worker processes (default:
  the CPU count) with one thread each, listening on 127.0.0.1 only.
* ``tcp://HOST:PORT`` (or any address ``distributed.Client`` takes): an
  existing cluster. Its workers need the verifier (same release) installed.
* A Dask worker that dies (its machine lost, killed) loses the task it ran:
  the task is submitted again once, and if that one is lost too every dtype
  of the case gets an ``error`` row saying so. Nothing else is lost.
* Ctrl-C cancels every future still pending, then stops the run.
* ``cache_dir``: the symbolic cache folder the workers use (``VERIFIER_CACHE_DIR``
  on the worker); a shared filesystem shares it, each entry still authenticated
  with the user's secret (docs/robustness.md), so every machine needs the same one.
  A Dask worker's case processes come from a fork server that keeps the
  environment of the first run that started it: a later run with another
  ``cache_dir`` on the same long-lived worker still uses the first folder.
"""

from __future__ import annotations

import os
import threading
import uuid
from typing import TYPE_CHECKING, Sequence

from ..errors import VerifierError
from .isolation import DEFAULT_TIMEOUT, IsolatedRunner, _group, _unpicklable

if TYPE_CHECKING:
    from ..cases.case import Case
    from .pool import ResultCallback
    from .runner import CaseResult

INSTALL_HINT = "pip install 'verifier[dask]' (or dask[distributed])"
#: Submissions of one case: the first, and one more after its Dask worker was lost.
ATTEMPTS = 2


def parse_scheduler(text: str) -> tuple[str, int | None]:
    """``("local", N or None)`` for ``local[:N]``, else ``("address", None)`` with the address kept as given."""
    text = text.strip()
    if text == "local" or text.startswith("local:"):
        count = text.partition(":")[2]
        if count and (not count.isdigit() or int(count) < 1):
            raise VerifierError(f"--scheduler {text!r}: expected local or local:N with N a number of worker "
                                f"processes (1 or more), e.g. local:4")
        return "local", int(count) if count else None
    if not text or "://" not in text and ":" not in text:
        raise VerifierError(f"--scheduler {text!r}: expected a scheduler address such as tcp://HOST:8786, or "
                            f"local[:N] for a cluster on this machine")
    return text, None


def _distributed():
    try:
        import distributed
    except ImportError as exc:
        raise VerifierError(f"--scheduler needs dask.distributed, which is not installed ({exc}): "
                            f"{INSTALL_HINT}; or leave --scheduler out to run with --jobs") from None
    return distributed


class DaskRunner:
    """The :class:`~verifier.run.isolation.IsolatedRunner` interface (``start``, ``run``, ``close``) over Dask."""

    def __init__(self, scheduler: str, timeout: float | None = DEFAULT_TIMEOUT,
                 memory_limit: int | None | str = "auto", details=None, cache_dir: str | None = None) -> None:
        self.address, self.local_workers = parse_scheduler(scheduler)
        self.timeout = timeout
        self.memory_limit = memory_limit
        self.details = details
        self.cache_dir = os.path.abspath(cache_dir) if cache_dir else None
        self.client = None
        self.cluster = None
        self._attempts: dict[int, int] = {}
        self.lost: list[str] = []           # what the run said about lost workers (for the tests and the log)

    def __enter__(self) -> "DaskRunner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> "DaskRunner":
        distributed = _distributed()
        if self.client is not None:
            return self
        if self.address == "local":
            import dask
            n = self.local_workers or os.cpu_count() or 1
            # a lost worker is ours to retry (ATTEMPTS), not the scheduler's to rerun on its own
            with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
                self.cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                                        host="127.0.0.1", dashboard_address=None)
            self.client = distributed.Client(self.cluster)
        else:
            try:
                self.client = distributed.Client(self.address, timeout=30)
            except (OSError, TimeoutError) as exc:
                raise VerifierError(f"cannot reach the Dask scheduler at {self.address}: {exc}; start one "
                                    f"(dask scheduler) or use --scheduler local:N") from None
        return self

    def close(self) -> None:
        for thing in (self.client, self.cluster):
            if thing is not None:
                try:
                    thing.close()
                except Exception:   # closing a cluster that is already gone: nothing more to do
                    pass
        self.client = self.cluster = None

    def _threads(self) -> int | None:
        """torch threads per case process: the cores shared by the local cluster's workers (remote: torch's own)."""
        if self.address != "local":
            return None
        return max(1, (os.cpu_count() or 1) // (self.local_workers or os.cpu_count() or 1))

    def run(self, jobs: Sequence[tuple["Case", str]], *,
            on_result: "ResultCallback | None" = None) -> list["CaseResult"]:
        from .runner import CaseResult

        self.start()
        distributed = _distributed()
        results: list[CaseResult | None] = [None] * len(jobs)
        tasks, inline = [], []
        for task in _group(jobs):
            (inline if _unpicklable(task.case) else tasks).append(task)
        memory = self.memory_limit
        if memory == "auto" and self.address == "local":      # the local cluster's workers share this machine
            from .launch import default_memory_limit
            memory = default_memory_limit(self.local_workers or os.cpu_count() or 1)
        args = (self.timeout, memory, self.details, self.cache_dir, self._threads())
        owner, self._attempts = {}, {}
        run_id = uuid.uuid4().hex[:12]

        def submit(task):
            attempt = self._attempts[id(task)] = self._attempts.get(id(task), 0) + 1
            future = self.client.submit(run_on_worker, task.case, list(task.dtypes), *args, pure=False,
                                        key=f"verifier-{run_id}-{task.indices[0]}-{attempt}")
            owner[future.key] = task
            return future

        def record(task, result):
            index = task.indices[task.dtypes.index(result.dtype)]
            results[index] = result
            if on_result:
                on_result(result)

        pending = distributed.as_completed([submit(t) for t in tasks])
        try:
            for future in pending:
                task = owner.pop(future.key)
                for result in self._collect(future, task, distributed):
                    if result is None:              # the worker was lost: once more, on whichever worker is left
                        pending.add(submit(task))
                        break
                    record(task, result)
                future.release()
        except BaseException:
            self.client.cancel(list(pending.futures))    # Ctrl-C: nothing keeps running for a run that is over
            raise
        if inline:
            self._inline(inline, results, on_result)
        for i, result in enumerate(results):
            if result is None:   # never drop a case silently
                case, dtype = jobs[i]
                results[i] = CaseResult(case, dtype, "error", "no result came back from the Dask worker "
                                                              "(a verifier bug: please report it)")
        return results

    def _collect(self, future, task, distributed) -> list:
        """The task's results; ``[None]`` when its worker was lost and it may run again."""
        from .runner import CaseResult
        from .wire import from_wire

        try:
            wired = future.result()
        except distributed.KilledWorker as exc:
            self.lost.append(f"{task.case.name}: {exc}")
            if self._attempts[id(task)] < ATTEMPTS:
                return [None]
            why = (f"the Dask worker running this case was lost {ATTEMPTS} times ({exc}); the other cases went "
                   f"on. A worker dies when its machine or process is lost (the case itself runs in a process "
                   f"of its own): check the workers' logs")
            return [CaseResult(task.case, d, "error", why) for d in task.dtypes]
        except Exception as exc:      # the case could not be sent to or read on the worker, say
            why = (f"the Dask task failed: {type(exc).__name__}: {exc}; the workers need the verifier (and a "
                   f"case's functions: modules) importable")
            return [CaseResult(task.case, d, "error", why) for d in task.dtypes]
        out = []
        for dtype, data in zip(task.dtypes, wired):
            try:
                out.append(from_wire(data, task.case))
            except (ValueError, KeyError, TypeError) as exc:
                out.append(CaseResult(task.case, dtype, "error", f"the Dask worker's result could not be read: {exc}"))
        return out

    def _inline(self, tasks, results, on_result) -> None:
        """Cases that cannot be sent to a worker (a lambda's callables) run here, as isolation.py does."""
        with IsolatedRunner(0, self.timeout, None, details=self.details) as here:
            for task in tasks:
                problem = _unpicklable(task.case)
                for index, result in zip(task.indices, here.run([(task.case, d) for d in task.dtypes])):
                    note = (f"ran in the main process without a time limit: the case cannot be sent to a Dask "
                            f"worker ({problem}); define its functions at module level")
                    result.message = f"{result.message}; {note}" if result.message else note
                    results[index] = result
                    if on_result:
                        on_result(result)


_LOCAL = threading.local()


def run_on_worker(case, dtypes: list[str], timeout, memory_limit, details, cache_dir, threads) -> list[dict]:
    """On a Dask worker: run ``case`` at ``dtypes`` in this thread's isolated worker process, results as plain data."""
    import multiprocessing

    from .wire import to_wire

    # Dask worker processes are daemonic, and a daemonic process may not start children; the case
    # process ends with this one anyway (worker.py's watch on its parent).
    multiprocessing.current_process()._config["daemon"] = False
    if cache_dir:
        os.environ["VERIFIER_CACHE_DIR"] = cache_dir
    key = (timeout, memory_limit, details, threads)
    runner = getattr(_LOCAL, "runner", None)
    if runner is None or _LOCAL.key != key:
        if runner is not None:
            runner.close()
        limit = memory_limit
        if limit == "auto":
            from .launch import default_memory_limit
            limit = default_memory_limit(_worker_threads())
        runner = IsolatedRunner(1, timeout, limit, details=details)
        if threads and runner._pool is not None:
            runner._pool.threads = threads
        _LOCAL.runner, _LOCAL.key = runner, key
    return [to_wire(r) for r in runner.run([(case, d) for d in dtypes])]


def _worker_threads() -> int:
    """How many tasks this Dask worker runs at once (they share the memory limit); 1 outside a worker."""
    try:
        from distributed import get_worker
        return max(1, int(get_worker().state.nthreads))
    except Exception:   # not in a worker, or an API of another release: assume one
        return 1
