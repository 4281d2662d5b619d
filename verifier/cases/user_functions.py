"""The ``functions:`` field: the one place a case file loads code.

``functions: {name: "package.module:attr"}`` makes a user's callable (often a
custom ``torch.autograd.Function``'s ``apply``) available under ``name`` to the
*torch* side of a case. The symbolic side never calls it: it reads ``sympy:``,
or, when ``name`` is also a supported function, that function's mathematical
definition.

Nothing is imported while a file is loaded, validated or listed; the import
happens when the case runs (``verifier run``, ``verifier explain``, the pytest
plugin). The module is looked up in the case file's folder first, then in the
environment (``sys.path``), and the folder is on ``sys.path`` only for the
duration of the import.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Callable

from ..errors import CaseError
from .case import Case

_HINT = ("Give 'package.module:attr'; the module must be importable from the case file's folder "
         "or from the environment.")


def case_folder(case: Case) -> Path | None:
    """The folder of the file a case came from (None for a case made in Python)."""
    if not case.source or case.source.startswith("python"):
        return None
    return Path(case.source.rsplit(":", 1)[0]).resolve().parent


def load_functions(case: Case) -> dict[str, Callable]:
    """Import the callables named in the case's ``functions:`` field."""
    if not case.functions:
        return {}
    loaded = {}
    folder = case_folder(case)
    for name, target in case.functions.items():
        module_name, _, attr = target.partition(":")
        module = _import(module_name, folder, case, name, target)
        obj = module
        try:
            for part in attr.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            raise CaseError(f"cannot load function '{name}': module '{module_name}' "
                            f"({getattr(module, '__file__', '?')}) has no attribute '{attr}'",
                            case=case.name, hint=_HINT) from None
        if not callable(obj):
            raise CaseError(f"function '{name}' ('{target}') is a {type(obj).__name__}, not a callable",
                            case=case.name, hint="Point at a function or at a custom Function's 'apply'.")
        loaded[name] = obj
    return loaded


def _import(module_name: str, folder: Path | None, case: Case, name: str, target: str):
    top = module_name.split(".", 1)[0]
    local = folder is not None and ((folder / f"{top}.py").is_file() or (folder / top).is_dir())
    if local and top in sys.modules:
        _refuse_a_clash(sys.modules[top], top, folder, case)
    added = local and str(folder) not in sys.path
    if added:
        sys.path.insert(0, str(folder))
    try:
        return importlib.import_module(module_name)
    except Exception as exc:   # the user's module may raise anything while importing
        raise CaseError(f"cannot load function '{name}' from '{target}': "
                        f"{type(exc).__name__}: {exc}", case=case.name, hint=_HINT) from None
    finally:
        if added:
            sys.path.remove(str(folder))


def _refuse_a_clash(module, top: str, folder: Path, case: Case) -> None:
    """A module of this name is already imported from elsewhere: importing again would reuse it."""
    where = getattr(module, "__file__", None)
    if where is None:
        return
    origin = Path(where).resolve()
    if origin.parent == folder or (origin.name == "__init__.py" and origin.parent.parent == folder):
        return
    raise CaseError(f"module '{top}' is already imported from {origin}, but the case file's folder "
                    f"{folder} has its own '{top}'", case=case.name,
                    hint="Give the module in the case file's folder a unique name.")


def refuse_code(result) -> None:
    """``--no-functions``: move every case that would import code (a ``functions:`` field) to the errors."""
    kept = []
    for case in result.cases:
        if not case.functions:
            kept.append(case)
            continue
        targets = ", ".join(sorted(set(case.functions.values())))
        file, _, line = (case.source or "").rpartition(":")
        result.errors.append(CaseError(f"the case imports code through 'functions:' ({targets}), which "
                                       f"--no-functions refuses", file=file or None,
                                       line=int(line) if line.isdigit() else None, case=case.name,
                                       hint="Run without --no-functions only if you trust those modules."))
    result.cases = kept


def imported_modules(cases) -> dict[str, list[str]]:
    """The modules the cases' ``functions:`` fields import, with the cases that name each."""
    out: dict[str, list[str]] = {}
    for case in cases:
        for target in sorted(set((case.functions or {}).values())):
            out.setdefault(target.partition(":")[0], []).append(case.name)
    return out
