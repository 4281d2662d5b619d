"""The fully qualified names a case may write, each bound to the exact torch object it names.

A case may call a function as ``X(...)`` (the entry ``X`` of ``FUNCTIONS``,
meaning its ``qualname``), or fully qualified: ``torch.X``, ``Tensor.X`` (the
method form ``x.X(...)``), ``torch.nn.functional.X`` (also ``F.X``),
``torch.linalg.X`` or ``torch.special.X``. Each qualified name here is bound
to the object found by walking attributes from ``torch``, and shares the
mirror of the bare entry only where torch documents the same semantics and
defaults (the same native function, a method of it, or a documented alias).
A qualified name whose semantics differ has its own entry
(``torch.linalg.norm``, ``torch.linalg.diagonal``, ``torch.cross``,
``Tensor.where``: registered with ``bare=False`` in the families) or is
refused here with the reason.
"""

from __future__ import annotations

import dataclasses

from ._table import ALIASES, FUNCTIONS, NAMESPACES, REFUSED, SHARED, SPELLINGS, lookup

# Qualified names that exist in torch, share a bare name, and must not share its mirror.
_REFUSE = {
    "torch.solve": "torch.solve was removed from torch; use torch.linalg.solve",
    "Tensor.solve": "Tensor.solve was removed from torch; use torch.linalg.solve",
    "torch.kl_div": "torch.kl_div takes reduction as an integer code; use torch.nn.functional.kl_div",
    "torch.binary_cross_entropy_with_logits": ("torch.binary_cross_entropy_with_logits takes reduction as an "
                                               "integer code; use torch.nn.functional.binary_cross_entropy_with_logits"),
    "torch.layer_norm": ("torch.layer_norm is the native op (an extra cudnn_enable argument); "
                         "use torch.nn.functional.layer_norm"),
    "torch.exp_": "torch.exp_ modifies its argument in place; use x.exp_() on an intermediate result",
    # removed or differently ordered legacy forms of the linalg entries
    "torch.lstsq": "torch.lstsq was removed from torch; use torch.linalg.lstsq",
    "Tensor.lstsq": "Tensor.lstsq was removed from torch; use torch.linalg.lstsq",
    "torch.lu_solve": "torch.lu_solve takes (b, LU, pivots), not torch.linalg.lu_solve's (LU, pivots, B); "
                      "use torch.linalg.lu_solve",
    "Tensor.lu_solve": "Tensor.lu_solve takes (LU, pivots) after the right-hand side; use torch.linalg.lu_solve",
    # torch.eig / x.eig were removed (they raise, pointing at torch.linalg.eig/eigvals)
    "torch.eig": "torch.eig was removed from torch; use torch.linalg.eig or torch.linalg.eigvals",
    "Tensor.eig": "Tensor.eig was removed from torch; use torch.linalg.eig or torch.linalg.eigvals",
    "Tensor.polygamma": "x.polygamma(n) puts n after the tensor; write torch.polygamma(n, x)",
    "torch.split_with_sizes": "torch.split_with_sizes takes a list of sizes only; write torch.split",
    # the legacy decompositions: other defaults (some=True) and torch.svd's V instead of Vᵀ
    **{f"{ns}.{name}": f"{ns}.{name} is the legacy form (some=, other defaults); write torch.linalg.{name}"
       for ns in ("torch", "Tensor") for name in ("svd", "qr")},
    "Tensor.split_with_sizes": "x.split_with_sizes takes a list of sizes only; write x.split",
    "Tensor.real": "x.real is a property, not a method: write x.real (no call) or torch.real(x)",
    "Tensor.imag": "x.imag is a property, not a method: write x.imag (no call) or torch.imag(x)",
    # the native ops behind torch.nn.functional: other required arguments, reductions as integer codes
    **{f"torch.{name}": (f"torch.{name} is the native op (other required arguments or an integer reduction "
                         f"code); use torch.nn.functional.{name}")
       for name in ("adaptive_max_pool1d", "batch_norm", "instance_norm", "embedding", "cosine_embedding_loss",
                    "hinge_embedding_loss", "margin_ranking_loss", "poisson_nll_loss", "triplet_margin_loss")},
}
# Qualified names with their own entry (registered with bare=False) that the bare name's
# spellings would otherwise take.
_OWN_FOR = {"Tensor.cross": "torch.cross"}


def _bind() -> None:
    for spelling, reason in _REFUSE.items():
        REFUSED[spelling] = reason
    for spelling, target in _OWN_FOR.items():
        SPELLINGS[spelling] = dataclasses.replace(SPELLINGS[target], name=spelling, torch=lookup(spelling),
                                                  qualname=spelling)
    names = {n: n for n in FUNCTIONS} | dict(ALIASES)
    for written, canonical in sorted(names.items()):
        entry = FUNCTIONS[canonical]
        for namespace in NAMESPACES:
            spelling = f"{namespace}.{written}"
            obj = lookup(spelling)
            if obj is None or not callable(obj) or spelling in SPELLINGS or spelling in REFUSED or spelling in SHARED:
                continue
            # resolve() builds the entry from FUNCTIONS[canonical] at each look-up
            SHARED[spelling] = entry.name


_bind()
