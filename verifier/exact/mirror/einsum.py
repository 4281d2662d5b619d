"""The einsum mirror: general Einstein summation over object arrays.

An explicit loop over output and contracted indices builds one flat ``Add``
of ``Mul`` terms per output element; no intermediate products are formed.
"""

from __future__ import annotations

import numpy as np
import torch

from ._arrays import add_all, as_obj, mul_all, unsupported
from ._table import register


def _einsum_labels(term, ndim, n_ellipsis):
    """Labels of one einsum operand: letters, plus ('...', k) for its broadcast dims."""
    if "..." in term:
        head, tail = term.split("...")
        k = ndim - len(head) - len(tail)
        return list(head) + [("...", n_ellipsis - k + i) for i in range(k)] + list(tail)
    if len(term) != ndim:
        raise unsupported(f"einsum: subscripts '{term}' do not match an operand with {ndim} dims")
    return list(term)


def _einsum_parse(equation, shapes):
    """Operand labels, output labels and label sizes (size-1 dims broadcast) of an equation."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise unsupported(f"einsum: '{equation}' names {len(terms)} operands, got {len(shapes)}")
    n_ell = max((len(s) - len(t.replace("...", "")) for t, s in zip(terms, shapes) if "..." in t),
                default=0)
    labels = [_einsum_labels(t, len(s), n_ell) for t, s in zip(terms, shapes)]
    ellipsis = [("...", i) for i in range(n_ell)]
    if arrow:
        out = _einsum_labels(rhs, len(rhs.replace("...", "")) + n_ell, n_ell)
    else:
        letters = [lab for ls in labels for lab in ls if isinstance(lab, str)]
        out = ellipsis + sorted(c for c in set(letters) if letters.count(c) == 1)
    sizes = {}
    for ls, shape in zip(labels, shapes):
        for lab, n in zip(ls, shape):
            if sizes.get(lab, 1) not in (1, n) and n != 1:
                raise unsupported(f"einsum: label {lab!r} has sizes {sizes[lab]} and {n}")
            sizes[lab] = max(sizes.get(lab, 1), n)
    return labels, out, sizes


@register("einsum", torch=torch.einsum, analytic=True,
          doc="sum over repeated/contracted labels of products of the operands' elements")
def einsum(equation, *operands):
    """General einsum over object arrays: an explicit loop, one Add per output element.

    Accepts ``einsum(eq, a, b)`` and ``einsum(eq, [a, b])``; supports '...'
    and implicit output (sorted labels that appear once).
    """
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = operands[0]
    ops = [as_obj(op) for op in operands]
    labels, out_labels, sizes = _einsum_parse(equation, [op.shape for op in ops])
    summed = [lab for lab in sizes if lab not in out_labels]
    out_shape = tuple(sizes[lab] for lab in out_labels)
    sum_shape = tuple(sizes[lab] for lab in summed)
    order = out_labels + summed
    # For each operand, where each of its dims reads from the joint index (size-1 dims read 0).
    readers = [[order.index(lab) if n != 1 else None for lab, n in zip(ls, op.shape)]
               for ls, op in zip(labels, ops)]
    out = np.empty(out_shape, dtype=object)
    for o in np.ndindex(out_shape):
        terms = []
        for s in np.ndindex(sum_shape):
            joint = o + s
            terms.append(mul_all([op[tuple(0 if r is None else joint[r] for r in rd)]
                                  for op, rd in zip(ops, readers)]))
        out[o] = add_all(terms)
    return out
