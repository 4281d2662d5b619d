"""The worker side of :mod:`verifier.run.isolation`: a process that runs cases and sends results back.

A worker is forked from the fork server (see :mod:`verifier.run.launch`),
first replaces ``sys.path`` with the safe one its parent computed (never the
working directory), reports ready, then loops: receive a case with its
dtypes and its memory limit, run each dtype with a
:class:`~verifier.run.runner.Runner`, send each result as soon as it is ready.
It ignores Ctrl-C (the parent's to handle) and ends itself once the run that
started it is gone.

What crosses back to the parent is plain data only: an exception raised by a
case (a user's ``class ShapeError(Exception)`` from a ``functions:`` module,
say) travels as a :class:`RaisedError` description, never as a pickled
exception the parent might be unable to rebuild.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the runner (torch) is imported inside the worker, not by the parent's import of this
    from .runner import CaseResult

#: Seconds between a worker's checks that the run that started it still exists.
WATCHDOG_INTERVAL = 1.0
#: What a failed allocation says: Python's MemoryError, torch's CPU allocator, C++'s bad_alloc.
_OUT_OF_MEMORY = re.compile(r"MemoryError|can't allocate memory|not enough memory|bad_alloc|"
                            r"Cannot allocate memory|out of memory", re.IGNORECASE)


@dataclass(frozen=True)
class RaisedError:
    """An exception raised inside a worker, as plain text: what the parent gets instead of the object."""

    type_name: str
    message: str
    traceback: str = ""

    def __str__(self) -> str:
        return self.message


def describe_exception(exc: BaseException) -> RaisedError:
    """``exc`` as plain text; never fails, whatever the exception's ``__str__`` does."""
    try:
        message = str(exc)
    except Exception:  # a user's exception may break even str()
        message = f"<{type(exc).__name__} whose message cannot be shown>"
    try:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    except Exception:
        text = ""
    return RaisedError(type(exc).__name__, message, text)


def worker_main(conn, threads: int | None, parent: int, sys_path: list[str]) -> None:
    """Loop in the worker: receive a case with its dtypes, send back one result per dtype."""
    _settle(parent, sys_path)
    from ..cases.python_files import resolve
    from .digest import digested
    from .runner import CaseResult, Runner

    baseline = _warm_up(threads)
    conn.send(("ready", os.getpid()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message[0] == "stop":
            return
        _, task_id, case, dtypes, memory_limit, details = message
        runner = Runner()                             # one per case: its model cache serves the dtypes
        runnable = None                               # the case itself, or a Python file's case behind a stand-in
        for dtype in dtypes:
            _limit_memory(baseline, memory_limit)
            try:
                # a Python case file's stand-in: its file is imported here (once per worker), under the limits
                runnable = runnable or resolve(case)
                result = runner.run(runnable, dtype)
            except BaseException as exc:  # SystemExit from a custom function, say: still a result
                raised = describe_exception(exc)
                result = CaseResult(case, dtype, "error", f"{raised.type_name}: {raised.message}")
            finally:
                _limit_memory(baseline, None)          # sending the result must not fail for lack of memory
            # the parent gets summary numbers and the kept rows, never a case's full table
            _send_result(conn, task_id, dtype, digested(_mark_out_of_memory(result), details, f"{task_id}-{dtype}"))


def call_main(conn, fn, args: tuple, parent: int, sys_path: list[str], memory_limit: int | None) -> None:
    """A one-shot worker (``launch.call_in_worker``): ``fn(*args)`` under the limits, its value sent back."""
    _settle(parent, sys_path)
    baseline = _warm_up(None)
    conn.send(("ready", os.getpid()))                # the parent's clock starts now, as for a case in a pool
    _limit_memory(baseline, memory_limit)
    try:
        reply = ("returned", fn(*args))
    except BaseException as exc:
        reply = ("raised", describe_exception(exc))
    _limit_memory(0, None)
    try:
        conn.send(reply)
    except Exception as exc:  # a value that does not pickle
        conn.send(("raised", describe_exception(exc)))


def _settle(parent: int, sys_path: list[str]) -> None:
    """A worker's first steps, before it imports anything more: the safe path, no Ctrl-C, the parent watch."""
    sys.path[:] = sys_path                           # never the working directory (see launch.py)
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # Ctrl-C is the parent's to handle
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="verifier-watchdog").start()


def _warm_up(threads: int | None) -> int:
    """Import torch, start its thread pool, and return the address space in use then (the baseline)."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    torch.ones(64, 64) @ torch.ones(64, 64)      # the intra-op pool's stacks and arenas belong to the baseline
    return address_space()


def address_space() -> int:
    """Bytes of virtual address space this process uses (``VmSize``); 0 where /proc cannot say."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _limit_memory(baseline: int, limit: int | None) -> None:
    """Cap the address space at ``baseline + limit`` bytes (no cap for None), where the system allows it.

    ``RLIMIT_AS`` makes an allocation over the cap fail at once (torch raises
    "can't allocate memory", NumPy and Python ``MemoryError``) instead of the
    machine swapping or the kernel's out-of-memory killer picking a process.
    """
    try:
        import resource
    except ImportError:   # not on this platform: the limit is documented as Linux/Unix only
        return
    soft = resource.RLIM_INFINITY if limit is None or not baseline else baseline + limit
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY and (soft == resource.RLIM_INFINITY or soft > hard):
        soft = hard
    try:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    except (ValueError, OSError):
        pass


def _mark_out_of_memory(result: "CaseResult") -> "CaseResult":
    """An ``error`` that was a failed allocation becomes ``out_of_memory`` (the parent adds the limit)."""
    if result.status == "error" and _OUT_OF_MEMORY.search(result.message or ""):
        result.status = "out_of_memory"
    return result


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
    """Send a result without its case (the parent has it) and with plain exceptions; drop what cannot be pickled."""
    from .runner import CaseResult

    result.case = None
    if result.autograd is not None and isinstance(result.autograd.error, BaseException):
        result.autograd.error = describe_exception(result.autograd.error)
    try:
        conn.send(("result", task_id, dtype, result))
        return
    except Exception:  # a torch value or a user's object that does not pickle
        pass
    result.autograd, result.exact = None, None
    try:
        conn.send(("result", task_id, dtype, result))
    except Exception as exc:
        bare = CaseResult(None, dtype, result.status, f"{result.message} (result details lost: "
                                                      f"{describe_exception(exc).message})", seconds=result.seconds)
        conn.send(("result", task_id, dtype, bare))
