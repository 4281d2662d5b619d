"""Attention and distances: scaled_dot_product_attention, cdist, pdist, pairwise_distance.

* ``scaled_dot_product_attention``: softmax(Q K^T * scale + mask) V over the key dim, the formula
  in the function's torch docs, scale = 1/sqrt(E) by default. A boolean mask (or is_causal's
  lower triangle, j <= i) removes the masked keys from the softmax (their weight is
  exp(-inf) = 0); a float mask is added to the scores.
* ``cdist``/``pdist``: ||x_i - y_j||_p between rows, and between the rows i < j of one matrix
  in row-major order; p-norms as in :func:`reductions.p_norm` (the 2-norm's kink at a zero
  distance gets torch's derivative 0).
* ``pairwise_distance``: ||x1 - x2 + eps||_p along the last dim (torch adds eps to the difference).
"""

from __future__ import annotations

import math

import numpy as np
import sympy
import torch
import torch.nn.functional as F
from sympy import exp

from ._arrays import add_all, as_obj, power, sym_number, unsupported
from ._table import register
from .linalg import matmul
from .reductions import norm_order, p_norm


def _mask_row(mask, i, n_keys, is_causal, lead):
    """Per key j: None (masked out), or the additive score term (0 for an allowed key)."""
    allowed = [sympy.S.Zero] * n_keys
    if is_causal:
        allowed = [sympy.S.Zero if j <= i else None for j in range(n_keys)]
    if mask is None:
        return allowed
    row = mask[lead + (i,)] if mask.ndim > 1 else mask
    row = np.broadcast_to(row, (n_keys,))
    if row.dtype == bool:
        return [a if bool(m) else None for a, m in zip(allowed, row)]
    return [None if a is None else sym_number(m) for a, m in zip(allowed, row)]


@register("scaled_dot_product_attention", torch=F.scaled_dot_product_attention,
          doc="softmax(Q K^T * scale + mask) V over the keys, scale = 1/sqrt(E); bool mask and "
              "is_causal (j <= i) drop keys")
def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False,
                                 scale=None, enable_gqa=False):
    """Attention without dropout."""
    if sym_number(dropout_p) != 0 or enable_gqa:
        raise unsupported("scaled_dot_product_attention: dropout_p > 0 and enable_gqa are not supported",
                          hint="Dropout is random; check it with dropout_p=0.")
    q, k, v = as_obj(query), as_obj(key), as_obj(value)
    if is_causal and attn_mask is not None:
        raise unsupported("scaled_dot_product_attention: give attn_mask or is_causal, not both")
    e = q.shape[-1]
    s = power(sym_number(e), sympy.Rational(-1, 2)) if scale is None else sym_number(scale)
    scores = matmul(q, np.swapaxes(k, -1, -2))
    vb = np.broadcast_to(v, scores.shape[:-2] + v.shape[-2:])
    mask = None
    if attn_mask is not None:
        mask = np.asarray(attn_mask) if not isinstance(attn_mask, np.ndarray) else attn_mask
        if mask.ndim > 1:
            mask = np.broadcast_to(mask, scores.shape)
    n_q, n_k = scores.shape[-2:]
    out = np.empty(scores.shape[:-1] + (v.shape[-1],), dtype=object)
    for lead in np.ndindex(scores.shape[:-2]):
        for i in range(n_q):
            terms = _mask_row(mask, i, n_k, is_causal, lead)
            keys = [j for j in range(n_k) if terms[j] is not None]
            if not keys:
                raise unsupported("scaled_dot_product_attention: a query row has every key masked "
                                  "(torch returns NaN there)")
            weights = [exp(scores[lead + (i, j)] * s + terms[j]) for j in keys]
            inv = 1 / add_all(weights)
            for c in range(v.shape[-1]):
                out[lead + (i, c)] = add_all([w * vb[lead + (j, c)] for w, j in zip(weights, keys)]) * inv
    return out


def _distance(a, b, p):
    return p_norm([u - w for u, w in zip(a, b)], p)


@register("cdist", torch=torch.cdist,
          doc="out[..., i, j] = ||x1[..., i, :] - x2[..., j, :]||_p")
def cdist(x1, x2, p=2.0, compute_mode="use_mm_for_euclid_dist_if_necessary"):
    """Batched p-norm distances between the rows of x1 and x2."""
    a, b = as_obj(x1), as_obj(x2)
    order = norm_order(p)
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a = np.broadcast_to(a, batch + a.shape[-2:])
    b = np.broadcast_to(b, batch + b.shape[-2:])
    out = np.empty(batch + (a.shape[-2], b.shape[-2]), dtype=object)
    for idx in np.ndindex(out.shape):
        lead, i, j = idx[:-2], idx[-2], idx[-1]
        out[idx] = _distance(a[lead + (i,)], b[lead + (j,)], order)
    return out


@register("pdist", torch=F.pdist, doc="||x_i - x_j||_p for the rows i < j, row-major")
def pdist(input, p=2):
    """Condensed pairwise distances of the rows of a 2-d input."""
    x = as_obj(input)
    if x.ndim != 2:
        raise unsupported(f"pdist: expected a 2-d input, got shape {x.shape}")
    order = norm_order(p)
    n = x.shape[0]
    out = np.empty(math.comb(n, 2), dtype=object)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    for k, (i, j) in enumerate(pairs):
        out[k] = _distance(x[i], x[j], order)
    return out


@register("pairwise_distance", torch=F.pairwise_distance,
          doc="||x1 - x2 + eps||_p along the last dim (eps = 1e-6 added to the difference, as torch)")
def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """Distances between matching rows of broadcast x1, x2."""
    a, b = np.broadcast_arrays(as_obj(x1), as_obj(x2))
    e, order = sym_number(eps), norm_order(p)
    if a.ndim == 0:
        raise unsupported("pairwise_distance: inputs need at least one dim")
    out = np.empty(a.shape[:-1], dtype=object)
    for idx in np.ndindex(out.shape):
        out[idx] = p_norm([u - w + e for u, w in zip(a[idx], b[idx])], order)
    return out[..., None] if keepdim else out
