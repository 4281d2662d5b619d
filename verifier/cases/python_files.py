"""Python case files: a ``.py`` file that registers cases with ``verifier.register(verifier.make_case(...))``.

Such a file is code, so it is imported only where cases run: in a worker
process, under the run's time and memory limits, never in the process that
reads the command line. The parent learns the cases from *stand-ins*
(:func:`stand_ins`, called in a one-shot worker): each is the registered
``Case`` with its two readings replaced by a :class:`PythonRef`, plain data
that pickles. The worker that runs a stand-in imports the file (once per
process, :func:`resolve`) and takes the real readings from the registry.

The file is imported as a module named ``verifier_cases_<hash>``, never
``__main__``, so a script's ``if __name__ == "__main__":`` block (one that
calls ``run_cases`` or ``Runner`` itself, say) does not run again. Its own
folder is on ``sys.path`` for the import only, so it can import a helper
module lying beside it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import CaseFileError
from .case import Case
from .registry import _REGISTRY

#: Text that marks a ``.py`` file as one that registers cases (read, never run, to decide): both calls.
_REGISTERS = re.compile(r"\bregister\s*\(")
_MAKES = re.compile(r"\bmake_case\s*\(")
_IMPORTED: dict[str, list[Case]] = {}     # this process's imports: resolved path -> its registered cases
FIX = "Fix the file so that `python FILE` imports it cleanly, or leave the file out of the run"


@dataclass(frozen=True)
class PythonRef:
    """Where a Python case's readings live: the file and the case name (what the worker resolves)."""

    path: str
    name: str
    source: str            # the readings' text, for reports (``my_square``, ``BadSquare.apply``)

    def __str__(self) -> str:
        return self.source


def is_python_case_file(path: str | Path) -> bool:
    """A ``.py`` file whose text calls ``register(`` and ``make_case(`` (read as text, never imported here)."""
    path = Path(path)
    if path.suffix != ".py" or not path.is_file():
        return False
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return bool(_REGISTERS.search(text) and _MAKES.search(text))


def import_cases(path: str | Path) -> list[Case]:
    """Import ``path`` (once per process) and return the cases it registered, with their source lines.

    Raises :class:`CaseFileError` naming the file, what went wrong and what to do.
    """
    path = Path(path).resolve()
    key = str(path)
    if key in _IMPORTED:
        return _IMPORTED[key]
    before = set(_REGISTRY)
    name = "verifier_cases_" + hashlib.sha256(key.encode()).hexdigest()[:16]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CaseFileError("not a Python file that can be imported", file=key, hint=FIX)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:  # SystemExit and KeyboardInterrupt from the file are its errors too
        sys.modules.pop(name, None)
        where = _line_of(exc, key)
        raise CaseFileError(f"importing it raised {type(exc).__name__}: {exc}", file=key, line=where,
                            hint=FIX) from None
    finally:
        try:
            sys.path.remove(str(path.parent))
        except ValueError:
            pass
    text = path.read_text(encoding="utf-8", errors="replace")
    cases = [_located(_REGISTRY[n], key, text) for n in _REGISTRY if n not in before]
    if not cases:
        raise CaseFileError("importing it registered no case",
                            file=key, hint="call verifier.register(verifier.make_case(...)) at module level")
    _IMPORTED[key] = cases
    return cases


def stand_ins(path: str) -> list[Case]:
    """The file's cases as plain data the parent can hold: readings replaced by :class:`PythonRef` (in a worker)."""
    return [dataclasses.replace(c, torch_fn=PythonRef(str(Path(path).resolve()), c.name, _text(c.torch_fn)),
                                sympy_fn=PythonRef(str(Path(path).resolve()), c.name, _text(c.sympy_fn)))
            for c in import_cases(path)]


def resolve(case: Case) -> Case:
    """The runnable case behind a stand-in (importing its file here, once); any other case as it is."""
    ref = case.torch_fn
    if not isinstance(ref, PythonRef):
        return case
    real = {c.name: c for c in import_cases(ref.path)}.get(case.name)
    if real is None:
        raise CaseFileError(f"the file no longer registers case '{case.name}'", file=ref.path, case=case.name,
                            hint="the file changed while the run went on; run it again")
    return dataclasses.replace(case, torch_fn=real.torch_fn, sympy_fn=real.sympy_fn)


def _located(case: Case, path: str, text: str) -> Case:
    """The case with ``source`` = ``file:line`` of the first line naming it (its ``make_case`` call)."""
    if case.source not in (None, "python"):
        return case
    quoted = re.search(r"""["']""" + re.escape(case.name) + r"""["']""", text)
    line = text.count("\n", 0, quoted.start()) + 1 if quoted else None
    return dataclasses.replace(case, source=f"{path}:{line}" if line else path)


def _line_of(exc: BaseException, path: str) -> int | None:
    """The line of ``path`` the exception came from (the deepest frame in that file)."""
    line = getattr(exc, "lineno", None) if isinstance(exc, SyntaxError) else None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == path:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _text(fn) -> str:
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, type):
        return f"{owner.__qualname__}.{fn.__name__}"
    return getattr(fn, "source", None) or getattr(fn, "__qualname__", None) or type(fn).__name__
