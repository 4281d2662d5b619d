"""Starting worker processes safely: the fork server, the workers' ``sys.path``, the default memory limit.

**Never the working directory.** ``python -m verifier`` (and ``python -c``)
put the current directory first on ``sys.path``; a ``yaml.py`` or
``sympy.py`` lying there would be imported instead of the real module. Case
folders come from other people, so worker processes never look there:

* the fork server is started with ``-P`` (Python 3.11+: no script or
  current directory on ``sys.path``) and, while it starts, with the parent's
  ``sys.path`` minus the current directory (Python 3.12+ hands that list to
  the server before it imports anything);
* every worker replaces its ``sys.path`` with :func:`safe_sys_path` before
  it imports anything beyond what the fork server preloaded.

A case's ``functions:`` field still imports from the case file's own folder:
:mod:`verifier.cases.user_functions` adds that folder explicitly, for the
import only.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import threading
import time
from contextlib import contextmanager
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any, Callable

from ..errors import VerifierError
from .worker import RaisedError, call_main

#: Seconds a one-shot worker may take to import torch and report ready.
STARTUP_TIMEOUT = 120.0
#: The default memory limit, as a fraction of the machine's memory shared by the run's workers.
MEMORY_FRACTION = 0.5
_PRELOAD = ["verifier.run.isolation", "verifier.run.worker", "verifier.run.runner"]
_START_LOCK = threading.Lock()


class IsolatedCallError(VerifierError):
    """A one-shot worker call did not return: it raised, died, ran out of time or of memory."""


def safe_sys_path(path: list[str] | None = None, cwd: str | None = None) -> list[str]:
    """``sys.path`` without the working directory (``''`` or its absolute path), the verifier's own root kept last.

    The verifier's root (the folder holding the ``verifier`` package) is
    appended only when nothing else on the path provides it, after every
    other entry, so it can never shadow an installed module.
    """
    path = list(sys.path if path is None else path)
    cwd = os.path.realpath(cwd or os.getcwd())
    safe = [p for p in path if p and os.path.realpath(p) != cwd]
    root = str(Path(__file__).resolve().parents[2])
    if not any(os.path.realpath(p) == root for p in safe):
        safe.append(root)
    return safe


def default_memory_limit(workers: int = 1) -> int | None:
    """``MEMORY_FRACTION`` of the machine's memory, split over ``workers`` (None where it cannot be read)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
    return int(total * MEMORY_FRACTION / max(1, workers)) if total > 0 else None


def context():
    """The multiprocessing context workers come from: a fork server started with a safe path, else spawn."""
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)    # imported once in the server; every worker forked from it starts warm
    from multiprocessing import forkserver
    with _START_LOCK, _safe_start():
        forkserver.ensure_running()          # returns at once; the server imports in the background
    return ctx


@contextmanager
def _safe_start():
    """While the fork server starts: ``-P`` on its command line and the safe path as the one it receives.

    ``ensure_running`` does not wait for the server's imports, so this lasts
    milliseconds; callers hold ``_START_LOCK`` and call it from one thread.
    """
    from multiprocessing import util

    saved_path, saved_flags = sys.path[:], util._args_from_interpreter_flags
    sys.path[:] = safe_sys_path(saved_path)
    if sys.version_info >= (3, 11):
        util._args_from_interpreter_flags = lambda: [*saved_flags(), "-P"]
    try:
        yield
    finally:
        sys.path[:] = saved_path
        util._args_from_interpreter_flags = saved_flags


def call_in_worker(fn: Callable[..., Any], args: tuple, *, timeout: float | None,
                   memory_limit: int | None) -> Any:
    """``fn(*args)`` in a fresh worker process, under a time and a memory limit.

    ``fn`` must be a module-level function. Returns its value; raises
    :class:`IsolatedCallError` saying what happened when it raised, died,
    ran past ``timeout`` seconds or needed more than ``memory_limit`` bytes.
    """
    ctx = context()
    receiver, sender = ctx.Pipe(duplex=False)
    process = ctx.Process(target=call_main, daemon=True, name="verifier-call",
                          args=(sender, fn, args, os.getpid(), safe_sys_path(), memory_limit))
    process.start()
    sender.close()
    try:
        kind, value = _receive(receiver, process, STARTUP_TIMEOUT, starting=True)
        started = time.monotonic()
        if kind == "ready":
            kind, value = _receive(receiver, process, timeout or None, starting=False)
    finally:
        if process.is_alive():
            process.kill()
        process.join(5)
        receiver.close()
    if kind == "raised":
        raise IsolatedCallError(_raised_text(value, memory_limit))
    if kind == "overdue":
        raise IsolatedCallError(f"stopped after {time.monotonic() - started:.1f} s: over the time limit of "
                                f"{timeout:g} s")
    return value


def _receive(receiver, process, timeout: float | None, *, starting: bool) -> tuple[str, Any]:
    """The next message of a one-shot worker; ("overdue", None) after ``timeout`` s; an error if it died."""
    if not wait([receiver, process.sentinel], timeout=timeout):
        if starting:
            raise IsolatedCallError(f"the worker process did not start within {timeout:g} s")
        return "overdue", None
    try:
        return receiver.recv()
    except (EOFError, OSError):
        process.join(5)
        raise IsolatedCallError(f"the worker process died: {exit_description(process.exitcode)}") from None


def _raised_text(raised: RaisedError, memory_limit: int | None) -> str:
    from .worker import _OUT_OF_MEMORY

    text = f"{raised.type_name}: {raised.message}"
    if memory_limit and _OUT_OF_MEMORY.search(text):
        from ..cases.limits import describe_bytes
        return f"out of memory: over the memory limit of {describe_bytes(memory_limit)} ({text})"
    return text


def exit_description(code: int | None) -> str:
    """How a worker process ended, in words (the out-of-memory killer's SIGKILL named)."""
    import signal

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

