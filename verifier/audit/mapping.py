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
            "special": "torch.special."}
#: OpInfos whose callable takes the sample's arguments in another order than the torch function of their name
#: (the forward check would refuse each sample; refusing the op says why once).
REORDERED = {
    "einsum": "the OpInfo calls torch.einsum(equation, *tensors) from a sample holding the tensors first",
    "polygamma": "the OpInfo's sample gives x first and n as an argument; torch.polygamma takes (n, x)",
    "special.polygamma": "the OpInfo's sample gives x first and n as an argument; torch.special.polygamma "
                         "takes (n, x)",
}


@dataclass(frozen=True)
class Mapped:
    """How an OpInfo is written: ``call`` as 'torch.cumsum(' or '.expand(' (a method), and its mirror entry."""

    call: str
    entry: mirror.Function
    direct: bool          # the mirror's torch object is the OpInfo's callable: the expression runs it


def spelling(op) -> tuple[Mapped | None, str]:
    """(the op's mapping, '') or (None, why the audit cannot express it)."""
    if op.name in REORDERED:
        return None, REORDERED[op.name]
    namespace, _, last = op.name.rpartition(".")
    if namespace not in PREFIXES:
        return None, f"namespace '{namespace}' is not in the case language"
    import torch
    spaces = {"": torch, "nn.functional": torch.nn.functional, "linalg": torch.linalg, "special": torch.special}
    method = namespace == "" and not hasattr(torch, last) and hasattr(torch.Tensor, last)
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
    return Mapped(call, entry, entry.torch is op.op), ""
