"""Cases from Python, and where the built-in case files live.

``make_case`` takes the same fields as a YAML case and goes through the same
checks (``loading.case_from_mapping``), so a case defined in Python and the
same case in a file are equal ``Case`` objects. ``torch`` and ``sympy`` may
also be Python callables here (never in a file).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

from ..errors import CaseError
from .case import Case
from .complex_literals import as_text
from .loading import case_from_mapping

_REGISTRY: dict[str, Case] = {}


def make_case(name: str, inputs: dict[str, Any], *, forward: str | None = None,
              torch: str | Callable | None = None, sympy: str | Callable | None = None,
              **fields: Any) -> Case:
    """A ``Case`` from keyword fields named as in the case format (``expect``, ``dtypes``, ...)."""
    # Python complex numbers become the case format's "1+2j" strings (YAML and JSON have none)
    raw: dict[str, Any] = {"name": name, "inputs": as_text(inputs), **as_text(fields)}
    callables = {}
    for key, value in (("forward", forward), ("torch", torch), ("sympy", sympy)):
        if callable(value):
            callables[key] = value
        elif value is not None:
            raw[key] = value
    if callables:
        # Validate the declarative part with a stand-in expression, then put the callables in.
        stand_in = next(iter(raw["inputs"]))
        raw.setdefault("forward", stand_in)
    case = case_from_mapping(raw)
    forward_fn = callables.get("forward")
    torch_fn = callables.get("torch", forward_fn)
    sympy_fn = callables.get("sympy", forward_fn)
    if torch_fn is not None or sympy_fn is not None:
        if "forward" in callables and (torch_fn is None or sympy_fn is None):
            raise CaseError("a callable 'forward' needs both readings; give 'torch' and 'sympy'", case=name)
        case = dataclasses.replace(case, torch_fn=torch_fn or case.torch_fn, sympy_fn=sympy_fn or case.sympy_fn,
                                   source="python")
    return case


def register(case: Case) -> Case:
    """Add a case to the Python registry (names are unique)."""
    if case.name in _REGISTRY and _REGISTRY[case.name] is not case:
        raise CaseError("a case with this name is already registered", case=case.name,
                        hint="Choose a unique name.")
    _REGISTRY[case.name] = case
    return case


def registered() -> list[Case]:
    """The cases registered from Python, in registration order."""
    return list(_REGISTRY.values())


def builtin_cases_dir() -> Path:
    """The project's ``cases/`` folder (next to the package in a checkout, else ./cases)."""
    beside = Path(__file__).resolve().parents[2] / "cases"
    return beside if beside.is_dir() else Path.cwd() / "cases"
