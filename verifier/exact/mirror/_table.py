"""The registry of symbolic mirrors: the ``Function`` record, ``register`` and ``resolve``.

Family modules (``elementwise``, ``reductions``, ...) fill ``FUNCTIONS`` and
``ALIASES`` at import time through :func:`register`; the package ``__init__``
imports every family, so importing ``verifier.exact.mirror`` yields the full table.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass
from typing import Callable

from sympy.core.parameters import distribute

from verifier.errors import UnknownFunctionError

from ._arrays import to_result

_HINT = (
    "Supported functions are listed in `verifier functions` / README; "
    "to add one, add an entry in verifier/exact/mirror/<family>.py with its "
    "mathematical definition."
)


@dataclass(frozen=True)
class Function:
    """One supported function: its symbolic definition and the torch callable it mirrors.

    ``sym`` and ``torch`` accept the same call forms, with the tensor (or the
    object array) as first positional argument, so both ``torch.X(x, ...)``
    and the method form ``x.X(...)`` map to ``fn.sym(x, ...)``/``fn.torch(x, ...)``.
    """

    name: str
    sym: Callable
    torch: Callable
    elementwise: bool
    domain: tuple[float, float] | None
    analytic: bool
    doc: str


FUNCTIONS: dict[str, Function] = {}
ALIASES: dict[str, str] = {}


def register(
    name: str,
    *,
    torch: Callable,
    doc: str,
    elementwise: bool = False,
    domain: tuple[float, float] | None = None,
    analytic: bool = False,
    aliases: tuple[str, ...] = (),
):
    """Decorator: record the decorated symbolic definition under ``name``.

    The stored ``sym`` always returns an object ndarray (0-d for scalars),
    because numpy hands back bare objects for 0-d operands and the callers
    should not have to care. It runs with SymPy's distribution of numbers
    over sums switched off: otherwise ``x_i - sum(x)/n`` expands into an
    n-term sum for every i, and shared means/variances cost O(n^2).
    """

    def decorate(definition: Callable) -> Callable:
        if name in FUNCTIONS or name in ALIASES:
            raise ValueError(f"mirror '{name}' registered twice")

        @functools.wraps(definition)
        def sym(*args, **kwargs):
            with distribute(False):
                return to_result(definition(*args, **kwargs))

        FUNCTIONS[name] = Function(
            name=name,
            sym=sym,
            torch=torch,
            elementwise=elementwise,
            domain=domain,
            analytic=analytic,
            doc=doc,
        )
        for alias in aliases:
            if alias in FUNCTIONS or alias in ALIASES:
                raise ValueError(f"alias '{alias}' registered twice")
            ALIASES[alias] = name
        return definition

    return decorate


def resolve(name: str) -> Function:
    """Return the mirror for ``name`` (canonical or alias); raise UnknownFunctionError otherwise."""
    if name in FUNCTIONS:
        return FUNCTIONS[name]
    if name in ALIASES:
        return FUNCTIONS[ALIASES[name]]
    message = f"unknown function '{name}'"
    close = difflib.get_close_matches(name, [*FUNCTIONS, *ALIASES], n=1)
    if close:
        message += f"; did you mean '{close[0]}'?"
    raise UnknownFunctionError(message, hint=_HINT)
