"""The registry of symbolic mirrors: the ``Function`` record, ``register`` and ``resolve``.

Family modules (``elementwise``, ``reductions``, ...) fill ``FUNCTIONS`` and
``ALIASES`` at import time through :func:`register`; ``spellings`` then adds
``SPELLINGS``, the fully qualified names (``torch.linalg.norm``,
``Tensor.sum``, ...) a case may write. The package ``__init__`` imports every
family, so importing ``verifier.exact.mirror`` yields the full table.

Every entry's ``torch`` is the very object its ``qualname`` names (found by
walking attributes from the ``torch`` module, never a wrapper), so the torch
side runs exactly the function that was written. What the case language
cannot say directly (infinity is written ``'inf'``; torch.max with a dim
returns (values, indices)) is done by ``prepare``/``finish`` around that call.
"""

from __future__ import annotations

import dataclasses
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
    qualname: str = ""                       # the dotted torch name ``torch`` is, e.g. "torch.linalg.norm"
    prepare: Callable | None = None          # (args, kwargs) -> (args, kwargs), before the torch call
    finish: Callable | None = None           # torch's result -> the expression's value
    canonical: str = ""                      # the FUNCTIONS entry whose definition this one shares

    def call_torch(self, *args, **kwargs):
        """Call ``torch`` with ``prepare`` before and ``finish`` after."""
        if self.prepare is not None:
            args, kwargs = self.prepare(args, kwargs)
        out = self.torch(*args, **kwargs)
        return out if self.finish is None else self.finish(out)


FUNCTIONS: dict[str, Function] = {}
ALIASES: dict[str, str] = {}
SPELLINGS: dict[str, Function] = {}      # fully qualified name -> its own entry (``bare=False``)
SHARED: dict[str, str] = {}              # fully qualified name -> the FUNCTIONS key whose mirror it shares
REFUSED: dict[str, str] = {}             # fully qualified name -> why it is not supported

# Where a qualified name's first part points; ``Tensor.X`` is the method form ``x.X(...)``.
NAMESPACES = ("torch.nn.functional", "torch.linalg", "torch.special", "torch.fft", "torch", "Tensor")


def lookup(qualname: str):
    """The torch object a dotted name names, by walking attributes from ``torch`` (no eval).

    ``Tensor.X`` walks from ``torch.Tensor``. Returns None when any part is missing.
    """
    import torch

    head, *rest = qualname.split(".")
    obj = {"torch": torch, "Tensor": torch.Tensor}.get(head)
    for part in rest:
        if obj is None or part.startswith("_"):
            return None
        obj = getattr(obj, part, None)
    return obj


def _qualname_of(torch_fn: Callable, names: tuple[str, ...]) -> str:
    """The first ``namespace.name`` (name one of ``names``) whose object *is* ``torch_fn``."""
    for namespace in NAMESPACES:
        for n in names:
            if lookup(f"{namespace}.{n}") is torch_fn:
                return f"{namespace}.{n}"
    raise ValueError(f"mirror '{names[0]}': its torch callable {torch_fn!r} is not torch.<name>, "
                     "Tensor.<name>, F.<name>, torch.linalg.<name> or torch.special.<name>; pass qualname=")


def register(
    name: str,
    *,
    torch: Callable,
    doc: str,
    elementwise: bool = False,
    domain: tuple[float, float] | None = None,
    analytic: bool = False,
    aliases: tuple[str, ...] = (),
    qualname: str | None = None,
    prepare: Callable | None = None,
    finish: Callable | None = None,
    bare: bool = True,
):
    """Decorator: record the decorated symbolic definition under ``name``.

    The stored ``sym`` always returns an object ndarray (0-d for scalars),
    because numpy hands back bare objects for 0-d operands and the callers
    should not have to care. It runs with SymPy's distribution of numbers
    over sums switched off: otherwise ``x_i - sum(x)/n`` expands into an
    n-term sum for every i, and shared means/variances cost O(n^2).

    ``torch`` must be a torch object itself; ``qualname`` (found when not
    given) is its dotted name, and a bare ``name`` in a case means it. With
    ``bare=False`` the ``name`` is the qualified name (``torch.linalg.norm``)
    and the entry goes into ``SPELLINGS`` only: a function whose semantics
    differ from the bare name's (torch.norm and torch.linalg.norm).
    """

    def decorate(definition: Callable) -> Callable:
        if name in FUNCTIONS or name in ALIASES or name in SPELLINGS:
            raise ValueError(f"mirror '{name}' registered twice")

        @functools.wraps(definition)
        def sym(*args, **kwargs):
            with distribute(False):
                return to_result(definition(*args, **kwargs))

        where = qualname or (name if not bare else
                             _qualname_of(torch, (name, *aliases, getattr(torch, "__name__", name))))
        if lookup(where) is not torch:
            raise ValueError(f"mirror '{name}': {where} is not its torch callable")
        (FUNCTIONS if bare else SPELLINGS)[name] = Function(
            name=name,
            sym=sym,
            torch=torch,
            elementwise=elementwise,
            domain=domain,
            analytic=analytic,
            doc=doc,
            qualname=where,
            prepare=prepare,
            finish=finish,
            canonical=name,
        )
        for alias in aliases:
            if alias in FUNCTIONS or alias in ALIASES:
                raise ValueError(f"alias '{alias}' registered twice")
            ALIASES[alias] = name
        return definition

    return decorate


def known(name: str) -> bool:
    """Whether ``name`` (bare, alias or fully qualified) has an entry."""
    return name in FUNCTIONS or name in ALIASES or name in SPELLINGS or name in SHARED


def qualified_names() -> list[str]:
    """Every fully qualified name a case may write, sorted."""
    return sorted({*SPELLINGS, *SHARED})


def _spelled(entry: Function, name: str) -> Function:
    """``entry`` (looked up now, so a replaced FUNCTIONS entry takes effect) called through ``name``."""
    if entry.qualname == name:
        return entry
    return dataclasses.replace(entry, name=name, torch=lookup(name), qualname=name)


def resolve(name: str) -> Function:
    """Return the mirror for ``name`` (canonical, alias or fully qualified); raise UnknownFunctionError otherwise.

    A bare name means its entry's ``qualname``; ``torch.X``, ``Tensor.X`` (a
    method), ``torch.nn.functional.X``, ``torch.linalg.X`` and
    ``torch.special.X`` each mean that exact torch callable.
    """
    if name in FUNCTIONS:
        return FUNCTIONS[name]
    if name in ALIASES:
        return FUNCTIONS[ALIASES[name]]
    if name in SPELLINGS:
        return SPELLINGS[name]
    if name in SHARED:
        return _spelled(FUNCTIONS[SHARED[name]], name)
    if name in REFUSED:
        raise UnknownFunctionError(f"'{name}' is not supported: {REFUSED[name]}", hint=_HINT)
    message = f"unknown function '{name}'"
    pool = qualified_names() if "." in name else [*FUNCTIONS, *ALIASES]
    close = difflib.get_close_matches(name, pool, n=1)
    if close:
        message += f"; did you mean '{close[0]}'?"
    if "." in name:
        namespace = name.rsplit(".", 1)[0]
        here = sorted(s.rsplit(".", 1)[1] for s in qualified_names() if s.rsplit(".", 1)[0] == namespace)
        if here:
            message += f"; {namespace} supports: {', '.join(here)}"
    raise UnknownFunctionError(message, hint=_HINT)
