"""The worker side of :mod:`verifier.run.isolation`: a process that runs cases and sends results back.

A worker is forked from the fork server (see :mod:`verifier.run.isolation`),
reports ready, then loops: receive a case with its dtypes, run each with a
:class:`~verifier.run.runner.Runner`, send each result as soon as it is ready.
It ignores Ctrl-C (the parent's to handle) and ends itself once the run that
started it is gone.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the runner (torch) is imported inside the worker, not by the parent's import of this
    from .runner import CaseResult

#: Seconds between a worker's checks that the run that started it still exists.
WATCHDOG_INTERVAL = 1.0


def worker_main(conn, threads: int | None, parent: int) -> None:
    """Loop in the worker: receive a case with its dtypes, send back one result per dtype."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # Ctrl-C is the parent's to handle
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="verifier-watchdog").start()
    from .digest import digested
    from .runner import CaseResult, Runner

    if threads:
        import torch
        torch.set_num_threads(threads)
    conn.send(("ready", os.getpid()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "stop":
            return
        _, task_id, case, dtypes, details = message
        runner = Runner()                             # one per case: its model cache serves the dtypes
        for dtype in dtypes:
            try:
                result = runner.run(case, dtype)
            except BaseException as exc:  # SystemExit from a custom function, say: still a result
                result = CaseResult(case, dtype, "error", f"{type(exc).__name__}: {exc}")
            # the parent gets summary numbers and the kept rows, never a case's full table
            _send_result(conn, task_id, dtype, digested(result, details, f"{task_id}-{dtype}"))


def _watch_parent(parent: int) -> None:
    """End this worker once the run that started it is gone (killed with SIGKILL, say).

    A worker busy in a hung case never reads its pipe again, so it would not
    notice on its own; without this it would outlive the run by the length of
    the hang.
    """
    while True:
        time.sleep(WATCHDOG_INTERVAL)
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:   # the pid now belongs to someone else's process: ours is gone
            os._exit(1)


def _send_result(conn, task_id: int, dtype: str, result: "CaseResult") -> None:
    """Send a result without its case (the parent has it); drop what cannot be pickled rather than fail."""
    from .runner import CaseResult

    result.case = None
    try:
        conn.send(("result", task_id, dtype, result))
        return
    except Exception:  # an exception object or a torch value that does not pickle
        pass
    result.autograd, result.exact = None, None
    try:
        conn.send(("result", task_id, dtype, result))
    except Exception as exc:
        bare = CaseResult(None, dtype, result.status, f"{result.message} (result details lost: {exc})",
                          seconds=result.seconds)
        conn.send(("result", task_id, dtype, bare))
