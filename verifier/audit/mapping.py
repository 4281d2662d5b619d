"""Which OpInfo the audit can express: its torch name, qualified, has a mirror entry.

An OpInfo ``linalg.norm`` is the case-language call ``torch.linalg.norm(...)``,
``nn.functional.relu`` is ``torch.nn.functional.relu(...)``, a plain ``cumsum``
is ``torch.cumsum(...)`` (or the method ``x.expand(...)`` when torch has no
function of that name). The qualified name is resolved in the mirror, so a
name whose semantics differ between namespaces (``torch.cross`` and
``torch.linalg.cross``, ``torch.norm`` and ``torch.linalg.norm``) gets its own
definition, never its namesake's.

The exact side always reads the mirror. The torch side always runs the
OpInfo's own callable: directly as the case expression where the mirror's
torch object *is* that callable, otherwise through :class:`OpCall`
(``samples.py``) after a forward check that the OpInfo's callable and the
mirror's torch function agree on the sample (a wrapper that reorders the
arguments cannot pass it, so it is reported unsupported instead of failing).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..exact import mirror

#: OpInfo namespace -> the qualified prefix of the case language.
PREFIXES = {"": "torch.", "nn.functional": "torch.nn.functional.", "linalg": "torch.linalg.",
            "special": "torch.special.", "fft": "torch.fft.", "masked": "torch.masked."}
#: OpInfos whose callable takes the sample's (input, *args) in another order than the torch function of their
#: name: the positions of the sample's parts in the call (einsum's OpInfo gets (tensors, equation)).
REORDERED = {"einsum": (1, 0), "polygamma": (1, 0), "special.polygamma": (1, 0)}
#: OpInfos of Python operators and properties, written as the case language's operator or property over the
#: sample's parts ({0}: the input, {1}: the first argument); the torch side runs the OpInfo's callable.
FORMS = {"__radd__": "({1} + {0})", "__rsub__": "({1} - {0})", "__rmul__": "({1} * {0})", "__rdiv__": "({1} / {0})",
         "__rpow__": "({1} ** {0})", "__rmatmul__": "({1} @ {0})", "T": "{0}.T", "mT": "{0}.mT",
         "H": "{0}.T", "mH": "{0}.mT"}      # H and mH of a real tensor are T and mT


@dataclass(frozen=True)
class Mapped:
    """How an OpInfo is written: ``call`` as 'torch.cumsum(' or '.expand(' (a method), and its mirror entry."""

    call: str
    entry: mirror.Function
    direct: bool          # the mirror's torch object is the OpInfo's callable: the expression runs it
    order: tuple[int, ...] | None = None       # the sample's positional parts, reordered for the call
    form: str = ""                             # an operator form (FORMS); then call and entry are unused


def spelling(op) -> tuple[Mapped | None, str]:
    """(the op's mapping, '') or (None, why the audit cannot express it)."""
    if op.name in FORMS:
        return Mapped("", None, False, form=FORMS[op.name]), ""
    namespace, _, last = op.name.rpartition(".")
    if namespace not in PREFIXES:
        return None, f"namespace '{namespace}' is not in the case language"
    import torch
    spaces = {"": torch, "nn.functional": torch.nn.functional, "linalg": torch.linalg, "special": torch.special,
              "fft": torch.fft, "masked": torch.masked}
    method = namespace == "" and not callable(getattr(torch, last, None)) and hasattr(torch.Tensor, last)
    qualified = ("Tensor." + last) if method else PREFIXES[namespace] + last
    if not method and not hasattr(spaces[namespace], last):
        return None, f"{qualified} is not a torch function (an internal or Python-operator OpInfo)"
    try:
        entry = mirror.resolve(qualified)
    except Exception as exc:
        text = getattr(exc, "message", str(exc))
        return None, (f"'{last}' is not in the mirror" if text.startswith("unknown function")
                      else f"{qualified}: {text}")
    call = "." + last + "(" if method else qualified + "("
    return Mapped(call, entry, entry.torch is op.op, REORDERED.get(op.name)), ""
