"""Device allowances: named widenings of the gradient's tolerance for how a GPU is allowed to compute.

Each allowance is derived like the defaults (``compare.py``, ``docs/numerics.md``):
the allowance for element *i* stays ``rtol·M_i + atol`` with ``M_i`` the
element's own rounding bound (in units of the unit roundoff u), so nothing is
ever scaled by another element. An allowance only changes ``rtol``, only for
the elements of a case that ran on a CUDA device with the switch on, in the
dtype the switch affects, and when torch's forward called an operation the
switch changes (``docs/devices.md``):

* ``tf32_matmul`` / ``tf32_cudnn`` — with ``torch.backends.cuda.matmul.allow_tf32``
  (or ``torch.backends.cudnn.allow_tf32`` for convolutions) float32 GEMMs round
  their factors to TF32: a 10-bit mantissa, u = 2⁻¹¹, float16's unit roundoff.
  Every product in such an operation is then off by up to 2u, so the bound
  ``u·M_i`` holds with float16's u, and the allowance is float16's rule:
  ``rtol = eps_tf32^(2/3) = (2⁻¹⁰)^(2/3) = 9.8e-3``, rounded up to 1e-2
  (instead of float32's 1e-5).
* ``fp16_reduced_reduction`` / ``bf16_reduced_reduction`` — with
  ``allow_fp16_reduced_precision_reduction`` (``bf16`` likewise) cuBLAS may
  accumulate a GEMM's partial sums in the dtype itself. ``M_i`` assumes a
  pairwise sum of K terms, ⌈log₂K⌉ roundings per term; a sequential one has
  up to K − 1 (Higham's γ_{K−1}). The dtype's rtol is multiplied by
  ``ρ(K) = (K − 1)/⌈log₂K⌉`` with K the largest dimension of any matmul
  operand (it bounds the inner dimension of the forward GEMM and of the two
  backward GEMMs). ρ(K) = 1 for K ≤ 3: no allowance there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

from ..cases.case import Tolerance

#: TF32's unit roundoff (10 explicit mantissa bits) and epsilon.
TF32_UNIT_ROUNDOFF = 2.0 ** -11
TF32_EPS = 2.0 * TF32_UNIT_ROUNDOFF
#: eps_tf32^(2/3) = 9.8e-3 rounded up to one digit: float16's default rtol, as TF32 has float16's mantissa.
TF32_RTOL = 1e-2

#: Operations whose float32 GEMMs run in TF32 under each switch (torch function names).
MATMUL_OPS = frozenset({"matmul", "__matmul__", "__rmatmul__", "mm", "bmm", "addmm", "addbmm", "baddbmm",
                        "linear", "bilinear", "einsum", "tensordot", "chain_matmul", "multi_dot"})
CONV_OPS = frozenset({"conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                      "conv_transpose3d", "conv_tbc", "convolution"})


@dataclass(frozen=True)
class Allowance:
    """One named widening: the rtol it allows (times M_i) and why it applies."""

    name: str
    rtol: float
    why: str

    def text(self) -> str:
        return f"{self.name} (rtol {self.rtol:.3g}·M_i: {self.why})"


def reduction_factor(k: int) -> float:
    """ρ(K) = (K − 1)/⌈log₂K⌉: a sequential sum's roundings per term over the pairwise ones M_i assumes."""
    if k <= 2:
        return 1.0
    return (k - 1) / math.ceil(math.log2(k))


def device_allowances(kind: str, dtype: str, flags: Mapping[str, bool],
                      ops: Mapping[str, int], tol: Tolerance) -> list[Allowance]:
    """The allowances that can apply to one case × dtype run on a device of ``kind``.

    ``flags``: the device's switches (:func:`verifier.torch_side.device.flags`);
    ``ops``: the torch functions the forward called, each with the largest
    dimension of its tensor arguments; ``tol``: the case's tolerance at ``dtype``.
    None applies off CUDA, with a switch off, in another dtype, or without an
    operation the switch changes.
    """
    if kind != "cuda":
        return []
    out = []
    matmuls = [k for name, k in ops.items() if name in MATMUL_OPS]
    convs = [name for name in ops if name in CONV_OPS]
    if dtype == "float32" and TF32_RTOL > tol.rtol:
        if matmuls and flags.get("tf32_matmul"):
            out.append(Allowance("tf32_matmul", TF32_RTOL, "float32 matmul in TF32, u = 2^-11"))
        if convs and flags.get("tf32_cudnn"):
            out.append(Allowance("tf32_cudnn", TF32_RTOL, "cuDNN convolution in TF32, u = 2^-11"))
    short = {"float16": "fp16", "bfloat16": "bf16"}.get(dtype)
    if short and matmuls and flags.get(f"{short}_reduced_precision_reduction"):
        k = max(matmuls)
        rho = reduction_factor(k)
        if rho > 1.0:
            out.append(Allowance(f"{short}_reduced_reduction", tol.rtol * rho,
                                 f"{dtype} GEMM sums of up to {k} terms in {dtype}, x{rho:.3g} over pairwise"))
    return out


def widened(tol: Tolerance, allowances: Iterable[Allowance]) -> Tolerance:
    """``tol`` with the largest allowed rtol (atol unchanged: the floor is per element and not a device's)."""
    rtol = max([tol.rtol, *(a.rtol for a in allowances)])
    return Tolerance(rtol=rtol, atol=tol.atol)


def names(allowances: Iterable[Allowance]) -> str:
    """The allowances' names, comma-separated ('' when none applies): the ``allowance`` column."""
    return ", ".join(a.name for a in allowances)
