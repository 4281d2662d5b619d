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

from pathlib import Path
from typing import TYPE_CHECKING

from ..cases.case import Case
from ..cases.python_files import FIX, stand_ins
from .launch import IsolatedCallError, call_in_worker

if TYPE_CHECKING:
    from .runner import CaseResult


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
