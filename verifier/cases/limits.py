"""Time and memory limits: what a case file or the command line may ask for, checked once, here.

A limit is refused when it could not be enforced: a time limit past what the
operating system's waits accept (``1e10`` seconds overflowed a C integer in
``select``), a memory limit too small to run anything. Both the loader
(``timeout:``, ``memory_limit:`` in a case) and the command line
(``--timeout``, ``--memory-limit``) use these checks, so the two cannot drift.
"""

from __future__ import annotations

import math
import re

from ..errors import CaseError
from .case import Case

#: The longest time limit one case × dtype may ask for: a day. Longer is a hang, not a case.
MAX_TIMEOUT = 86400.0
#: The smallest memory limit: below it a worker cannot even build a small case's tables.
MIN_MEMORY = 64 << 20
#: The largest memory limit one may write (1 PiB): far above any machine, far below an overflow.
MAX_MEMORY = 1 << 50
#: Input elements all the cases of one file may declare together (four inputs at the per-input limit).
MAX_FILE_ELEMENTS = 1 << 26
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_MEMORY = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


def timeout_problem(value, *, zero_allowed: bool) -> str | None:
    """Why ``value`` is not a usable time limit in seconds (None when it is)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"timeout is {value!r}, not a number of seconds"
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero_allowed):
        return f"timeout is {value:g}"
    if value > MAX_TIMEOUT:
        return f"timeout is {value:g} s, over the limit of {MAX_TIMEOUT:g} s (one day)"
    return None


def parse_memory(value) -> int:
    """Bytes from ``value``: a whole number of bytes, or text such as ``512M``, ``4G``, ``1.5GiB`` (binary units).

    Raises ``ValueError`` with a one-line reason when it is not a memory size
    between ``MIN_MEMORY`` and ``MAX_MEMORY``.
    """
    if isinstance(value, bool):
        raise ValueError(f"memory limit {value!r} is not a size")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError(f"memory limit {value!r} is not a finite size")
        size = int(value)
    else:
        match = _MEMORY.match(str(value))
        if match is None:
            raise ValueError(f"memory limit {str(value)!r} is not a size such as 512M, 4G or 2GiB")
        size = int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    if size < MIN_MEMORY:
        raise ValueError(f"memory limit {value!r} is below the smallest usable limit, {describe_bytes(MIN_MEMORY)}")
    if size > MAX_MEMORY:
        raise ValueError(f"memory limit {value!r} is over {describe_bytes(MAX_MEMORY)}")
    return size


def describe_bytes(size: int) -> str:
    """``4.0 GiB``, ``512 MiB``: a size as people read it."""
    for unit, name in ((1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if size >= unit:
            return f"{size / unit:.3g} {name}"
    return f"{size} B"


def case_memory_limit(value, case: str | None, line: int | None) -> int | None:
    """A case's ``memory_limit:`` field in bytes (None when not given); a ``CaseError`` when unusable."""
    if value is None:
        return None
    try:
        return parse_memory(value)
    except ValueError as exc:
        raise CaseError(str(exc), case=case, line=line,
                        hint="Give a size such as 512M or 4G (binary units), or drop it for the run's "
                             "--memory-limit.") from None


def check_file_elements(case: Case, declared: int) -> int:
    """The case's input elements; refused when they take its file's total over ``MAX_FILE_ELEMENTS``.

    Loading never draws values, but every declared element is drawn, copied and
    differentiated when the case runs: the cap keeps one file's run bounded.
    """
    elements = sum(math.prod(spec.shape) for spec in case.inputs)
    if declared + elements > MAX_FILE_ELEMENTS:
        raise CaseError(f"its inputs take the file's declared input elements to {declared + elements}, over the "
                        f"limit of {MAX_FILE_ELEMENTS} per file",
                        hint="Split the cases over several files, or use smaller shapes.")
    return elements
