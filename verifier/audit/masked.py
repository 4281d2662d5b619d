"""PyTorch's gradcheck wrappers of the ``masked.*`` OpInfos, written into the audit's case.

PyTorch checks the masked ops through ``gradcheck_wrapper_masked_operation``
(and ``..._pointwise_operation`` for logaddexp): ``torch.where(output_mask,
op(...), 0)``, because torch documents the output at a masked-out position
(a fully masked slice of a reduction, a masked-out element of a softmax) as
undefined. The audit checks the same function: the output mask becomes one more
bool input and the case expression is ``torch.where(mask, <the op>, 0.0)`` on
both sides (the mirror's ``where`` selects by the constant mask, so the
undefined values never enter the exact side). The mask is computed by torch's
own helpers, exactly as the wrapper computes it.
"""

from __future__ import annotations

import torch

#: the wrappers this module writes into a case
WRAPPERS = ("gradcheck_wrapper_masked_operation", "gradcheck_wrapper_masked_pointwise_operation")


def output_mask(wrapper: str, op, first, args, kwargs):
    """The bool tensor the wrapper keeps (True) of the op's output, or None when it keeps everything."""
    from torch.masked import _ops  # torch's private helpers, as the wrapper itself calls them

    if wrapper == WRAPPERS[0]:
        if kwargs.get("mask") is None:
            return None
        keep = _ops._output_mask(op.op, first, *args, **kwargs)
    else:
        a, b = kwargs.get("input_mask"), kwargs.get("other_mask")
        if a is None or b is None:
            return None
        keep = _ops._input_mask(first, *args, **dict(mask=torch.logical_and(a, b), **kwargs))
    return keep.to(torch.bool)


def wrapped(text: str, mask_name: str) -> str:
    """The case expression of the wrapped op."""
    return f"torch.where({mask_name}, {text}, 0.0)"
