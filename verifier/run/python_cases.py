"""The parent's side of Python case files: learn their cases from a worker, turn an import failure into a row.

A ``.py`` case file is imported in a one-shot worker process under the run's
time and memory limits (:func:`verifier.run.launch.call_in_worker`); what
comes back are stand-ins (:func:`verifier.cases.python_files.stand_ins`),
which the pool's workers resolve by importing the file themselves. The
parent never imports it. A file that raises on import, registers nothing,
hangs or runs out of memory becomes one ``error`` result named after the
file, so the rest of the run goes on.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..cases.case import Case
from ..cases.python_files import FIX, stand_ins
from ..errors import CaseError, CaseFileError
from .launch import IsolatedCallError, call_in_worker, default_memory_limit

if TYPE_CHECKING:
    from .runner import CaseResult


def add_python_files(result, paths, limits: tuple, no_functions: bool = False) -> None:
    """Add the cases of each Python case file in ``paths`` to ``result`` (a ``LoadResult``).

    ``limits``: the run's (timeout, memory limit) as the command line gives them (None: the default;
    "auto" memory: the default share). A file that does not import goes to ``result.failed_imports``
    as an error result; ``no_functions`` refuses every file (a Python case file is code).
    """
    from .isolation import DEFAULT_TIMEOUT

    result.failed_imports = []
    timeout, memory = limits
    timeout = DEFAULT_TIMEOUT if timeout is None else timeout or None
    memory = default_memory_limit() if memory == "auto" else memory
    for path in paths:
        if no_functions:
            result.errors.append(CaseFileError("a Python case file is code; --no-functions refuses it", file=path,
                                               hint="Leave out --no-functions to run it, or leave the file out."))
            continue
        print(f"imports code: {path} (a Python case file, in a worker process)", file=sys.stderr)
        cases, error = load_python_file(path, timeout=timeout, memory_limit=memory)
        if error is not None:
            print(f"error: {error.message}", file=sys.stderr)
            result.failed_imports.append(error)
        seen = {c.name: c.source for c in result.cases}
        for case in cases:
            if case.name in seen:
                result.errors.append(CaseError(f"duplicate case name (also at {seen[case.name]})", file=case.source,
                                               case=case.name, hint="Case names must be unique across the run."))
            else:
                result.cases.append(case)
                seen[case.name] = case.source


def load_python_file(path: str | Path, *, timeout: float | None,
                     memory_limit: int | None) -> tuple[list[Case], "CaseResult | None"]:
    """The file's stand-in cases, or ``([], an error result)`` saying what went wrong and what to do."""
    from .runner import CaseResult

    path = Path(path)
    try:
        return call_in_worker(stand_ins, (str(path),), timeout=timeout, memory_limit=memory_limit), None
    except IsolatedCallError as exc:
        text = str(exc)
        prefix = "CaseFileError: "
        if text.startswith(prefix):        # the file's own error, already "file:line: what. what to do"
            message = text[len(prefix):]
        else:                              # it hung, died or ran out of memory while importing
            message = f"{path}: importing it failed: {text}. {FIX}."
        line = _line(message, path)
        stand_in = Case(name=path.name, inputs=(), torch_fn=None, sympy_fn=None,
                        description="a Python case file that could not be imported", tags=("python-file",),
                        source=f"{path}:{line}" if line else str(path))
        return [], CaseResult(stand_in, "float64", "error", message)


def _line(message: str, path: Path) -> int | None:
    """The line number right after the file's name in an error text (``/x/my_cases.py:7: ...``)."""
    resolved = str(path.resolve())
    for name in (resolved, str(path)):
        if message.startswith(name + ":"):
            head = message[len(name) + 1:].split(":", 1)[0]
            return int(head) if head.isdigit() else None
    return None
