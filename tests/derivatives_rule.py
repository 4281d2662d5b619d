"""The rule that turns torch's tools/autograd/derivatives.yaml into the list in tests/data/derivatives_names.csv.

1. Take every entry's operator name: ``name: op.overload(args)`` -> ``op``.
2. Drop private operators (a leading ``_``) and backward kernels (``*backward*``).
3. Map to a base name: drop a trailing ``_`` (in-place), the prefixes ``linalg_`` and
   ``special_``, the suffixes ``_ex`` and ``_forward``.
4. Keep a base name when one of its operators (or the base name) is public:
   ``torch.X``, ``torch.linalg.X``, ``torch.special.X``, ``torch.Tensor.X``, or an
   elementwise activation of ``torch.nn.functional`` (``ACTIVATIONS``).
5. Set aside what is not one of the four families (elementwise, reductions,
   shape/indexing, linalg): the nn layers and losses (checked as the nn family,
   cases/layers.yaml), random sampling, sparse/layout/backend kernels and
   complex-only views (``SET_ASIDE``, each with its reason).
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

ACTIVATIONS = {"elu", "gelu", "hardsigmoid", "hardswish", "hardtanh", "leaky_relu", "mish", "silu", "softplus",
               "softshrink", "glu", "log_sigmoid"}

_NN = ("affine_grid_generator binary_cross_entropy_with_logits channel_shuffle constant_pad_nd conv_tbc "
       "convolution embedding embedding_renorm grid_sampler_2d grid_sampler_3d max_pool2d native_batch_norm "
       "native_dropout native_group_norm native_layer_norm pixel_shuffle pixel_unshuffle")
_RANDOM = "bernoulli cauchy exponential geometric log_normal multinomial normal poisson random uniform"
_LAYOUT = ("ccol_indices col_indices crow_indices row_indices indices values sparse_compressed_tensor sparse_mask "
           "to_padded_tensor hash_tensor slice_inverse unsafe_split unsafe_split_with_sizes narrow_copy "
           "segment_reduce as_strided as_strided_scatter to_mkldnn")
_COMPLEX = "complex polar view_as_complex view_as_real conj_physical"
SET_ASIDE = {**{n: "nn layer (the nn family, cases/layers.yaml)" for n in _NN.split()},
             **{n: "random sampling" for n in _RANDOM.split()},
             **{n: "sparse, layout or backend-specific kernel" for n in _LAYOUT.split()},
             **{n: "complex-only" for n in _COMPLEX.split()}}
_BACKENDS = ("cudnn_", "miopen_", "mkldnn_")


def derivatives_yaml() -> Path | None:
    """The derivatives.yaml that ships in the installed torch wheel (torchgen/packaged), if any."""
    try:
        import torchgen
    except ImportError:
        return None
    path = Path(os.path.dirname(torchgen.__file__)) / "packaged" / "autograd" / "derivatives.yaml"
    return path if path.is_file() else None


def base_name(op: str) -> str:
    name = op[:-1] if op.endswith("_") else op
    for prefix in ("linalg_", "special_"):
        if name.startswith(prefix):
            name = name[len(prefix):]
    for suffix in ("_ex", "_forward"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name


def _public(op: str, base: str) -> bool:
    import torch
    spaces = (torch, torch.linalg, torch.special, torch.Tensor)
    return base in ACTIVATIONS or any(hasattr(ns, n) for ns in spaces for n in (op, op.rstrip("_"), base))


def derive(path: Path) -> tuple[dict[str, list[str]], dict[str, str]]:
    """(base name -> its operators, for the four families; set-aside base name -> reason)."""
    entries = yaml.safe_load(path.read_text())
    groups: dict[str, list[str]] = {}
    for entry in entries:
        op = entry["name"].split("(")[0].split(".")[0]
        if op.startswith("_") or "backward" in op:
            continue
        groups.setdefault(base_name(op), [])
        if op not in groups[base_name(op)]:
            groups[base_name(op)].append(op)
    kept, aside = {}, {}
    for base, ops in sorted(groups.items()):
        if not any(_public(op, base) for op in ops):
            continue
        if base.startswith(_BACKENDS):
            aside[base] = "sparse, layout or backend-specific kernel"
        elif base in SET_ASIDE:
            aside[base] = SET_ASIDE[base]
        else:
            kept[base] = ops
    return kept, aside
