"""PyTorch's OpInfo database, imported with a clear message when it is missing or has changed.

``torch.testing._internal.common_methods_invocations.op_db`` is private to
PyTorch: it needs the ``expecttest`` package (the ``audit`` extra) and may
move or change shape between torch versions. Everything the audit reads from
an OpInfo is listed in ``NEEDED``; an entry without those attributes is a
changed database, reported as such rather than as a crash halfway.
"""

from __future__ import annotations

import functools

from ..errors import VerifierError

OP_DB = "torch.testing._internal.common_methods_invocations.op_db"
#: The OpInfo attributes the audit reads; op_db entries without them mean torch changed the database.
#: The dtypes the audit runs (and its default).
DTYPES = ("float64", "float32")
NEEDED = ("name", "variant_test_name", "op", "sample_inputs", "supports_autograd", "gradcheck_wrapper")


class AuditUnavailable(VerifierError):
    """torch's OpInfo database cannot be used; the message says why and what to do."""


def _import_op_db():
    try:
        import expecttest  # noqa: F401  (torch's op_db imports it)
    except ImportError:
        raise AuditUnavailable("the audit needs the 'expecttest' package to import torch's OpInfo database "
                               f"({OP_DB}): pip install 'verifier[audit]' (or pip install expecttest)") from None
    try:
        from torch.testing._internal.common_methods_invocations import op_db
    except Exception as exc:  # a private module: it may move between torch versions
        import torch
        raise AuditUnavailable(f"cannot import {OP_DB} ({type(exc).__name__}: {exc}); it is private to torch "
                               f"{torch.__version__} and may have moved: run the audit with a torch whose "
                               f"OpInfo database imports, or report the torch version") from None
    return op_db


def check_entries(ops) -> list:
    """``ops`` as a list, or AuditUnavailable naming the first entry that lacks an attribute the audit reads."""
    ops = list(ops)
    if not ops:
        raise AuditUnavailable(f"{OP_DB} is empty: torch changed its OpInfo database; report the torch version")
    for op in ops:
        missing = [a for a in NEEDED if not hasattr(op, a)]
        if missing:
            raise AuditUnavailable(f"the OpInfo {getattr(op, 'name', op)!r} has no {', '.join(missing)}: torch "
                                   f"changed its OpInfo database; the audit reads {', '.join(NEEDED)}")
    return ops


@functools.lru_cache(maxsize=1)
def load_op_db() -> tuple:
    """torch's OpInfo entries (checked with :func:`check_entries`), imported once per process."""
    return tuple(check_entries(_import_op_db()))


def find(name: str, variant: str):
    """The op_db entry with this name and variant (a worker process finds its op this way)."""
    for op in load_op_db():
        if op.name == name and op.variant_test_name == variant:
            return op
    raise AuditUnavailable(f"no OpInfo {name!r} (variant {variant!r}) in {OP_DB}")


def label(op) -> str:
    """The op's name with its variant: 'linalg.norm.subgradients_at_zero'."""
    return op.name + (f".{op.variant_test_name}" if op.variant_test_name else "")
