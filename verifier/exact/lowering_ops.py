"""Lowering rules for mirror functions beyond the linear ones (used by :mod:`verifier.exact.lowering`;
convolutions, pooling and triangular linear algebra live in :mod:`verifier.exact.lowering_struct`).

Each rule writes the mirror's definition (``verifier/exact/mirror``) as tape nodes, by numpy index
arithmetic over node arrays, instead of running the mirror's SymPy definition over one symbol per
element (the fallback, :meth:`~verifier.exact.lowering.LoweringReading._by_sympy`):

* pointwise losses (``mse_loss``, ``l1_loss``, ``smooth_l1_loss``, ``huber_loss``, the binary
  cross-entropies, ``soft_margin_loss``, ``margin_ranking_loss``, ``hinge_embedding_loss``,
  ``poisson_nll_loss``): the mirror's own definition evaluated once on one symbol per tensor argument
  (SymPy's per-element formula, a template cached per parameter set), copied per element, reduced;
* ``vector_norm`` and ``torch.norm``'s vector orders: the mirror's norm of one row of ``k`` symbols
  (its kinks and ties included), flattened once per order and row length, copied per row;
* ``scaled_dot_product_attention`` (no mask, ``is_causal``, boolean masks): ``exp`` by its template,
  masked keys' weights the constant 0, one sum per query row, products with ``V``;
* ``nll_loss``, ``cross_entropy`` (class-index and probability targets): ``log_softmax`` by the
  per-slice rule, the target's entries gathered by index, ``-w_c`` products, one sum node;
* ``conv1d/2d/3d``: every output ``bias[o] + Σ_(c,k) w[o,c,k] x[n, c, p·stride − pad + k·dilation]``
  gathered at once from a padded index array (padding terms are the constant 0);
* ``avg_pool1d/2d/3d``: one sum per window times ``1/divisor``, the windows and divisors as the
  mirror computes them;
* ``cholesky`` (Cholesky–Banachiewicz on ``(A + Aᵀ)/2``) and ``solve_triangular`` (forward or back
  substitution over the triangle torch reads): the mirror's recurrences over node arrays, every
  batch matrix at once.

A rule returns ``NotImplemented`` for any argument form it does not read (a legacy keyword, a
constant weight, a target out of range, a shape error...): the mirror's SymPy definition then
runs, and reports the error in its own words. The per-element SymPy route stays the second route
of every small case (``tests/test_lowering.py`` compares both on every built-in case).
"""

from __future__ import annotations

import inspect
import math
import numbers

import numpy as np
import sympy as sp

from . import fingerprint, mirror
from .lowering_struct import STRUCT_RULES
from .mirror._arrays import sym_number
from .symbolic import _to_sympy, as_object_array
from .tape import Tape, _Compiler
from .tape_builder import Nodes, Ops, Unsupported, _axes, _param_key, template

_REDUCTIONS = ("none", "sum", "mean")


def _number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


# -- losses --------------------------------------------------------------------------------------------

def _reduce_loss(o: Ops, losses: Nodes, reduction: str) -> Nodes:
    if reduction == "none":
        return losses
    total = Nodes(o.b.sums(losses.ids.reshape(1, -1))[0])
    if reduction == "sum":
        return total
    return o.mul(total, o.const(sp.Rational(1, max(losses.ids.size, 1))))


def _nll(o: Ops, x: Nodes, target, weight, ignore_index, reduction):
    """nll_loss of log-probabilities ``x`` (class dim 1, or 0 when 1-d) as the mirror writes it."""
    if not isinstance(target, np.ndarray) or not np.issubdtype(target.dtype, np.integer):
        return NotImplemented
    if weight is not None and not isinstance(weight, Nodes) or reduction not in _REDUCTIONS:
        return NotImplemented
    ids = x.ids
    if ids.ndim == 0:
        return NotImplemented
    scores = np.moveaxis(ids, 1, -1) if ids.ndim > 1 else ids
    classes = scores.shape[-1]
    if target.shape != scores.shape[:-1] or (weight is not None and weight.shape != (classes,)):
        return NotImplemented
    t = target.astype(np.int64)
    kept = t != ignore_index
    if np.any(kept & ((t < 0) | (t >= classes))):
        return NotImplemented                       # the mirror reports the bad class index
    zero = o.b.const(0)
    picked = np.take_along_axis(scores, np.where(kept, t, 0)[..., None], axis=-1)[..., 0]
    if weight is None:
        terms = o.neg(Nodes(picked[kept]))
        w_kept = None
    else:
        w_kept = Nodes(weight.ids[t[kept]])
        terms = o.neg(o.mul(w_kept, Nodes(picked[kept])))
    losses = np.full(t.shape, zero, dtype=np.int64)
    losses[kept] = terms.ids
    if reduction != "mean":
        return _reduce_loss(o, Nodes(losses), reduction)
    if not kept.any():
        return NotImplemented                       # 0/0: the mirror says so
    total = Nodes(o.b.sums(losses.reshape(1, -1))[0])
    if w_kept is None:
        return o.mul(total, o.const(sp.Rational(1, int(kept.sum()))))
    return o.mul(total, o.pow(Nodes(o.b.sums(w_kept.ids.reshape(1, -1))[0]), sp.Integer(-1)))


def nll_loss(r, input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    if not isinstance(input, Nodes) or size_average is not None or reduce is not None:
        return NotImplemented
    if not isinstance(ignore_index, numbers.Integral):
        return NotImplemented
    return _nll(Ops(r), input, target, weight, int(ignore_index), reduction)


def cross_entropy(r, input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean", label_smoothing=0.0):
    if not isinstance(input, Nodes) or size_average is not None or reduce is not None:
        return NotImplemented
    if not _number(label_smoothing) or label_smoothing != 0 or not isinstance(ignore_index, numbers.Integral):
        return NotImplemented
    if input.ids.ndim == 0 or reduction not in _REDUCTIONS:
        return NotImplemented
    o = Ops(r)
    cdim = 0 if input.ids.ndim == 1 else 1
    logp = r._per_slice("log_softmax", input, cdim)
    if logp is NotImplemented:
        return NotImplemented
    if isinstance(target, np.ndarray) and np.issubdtype(target.dtype, np.integer):
        return _nll(o, logp, target, weight, int(ignore_index), reduction)
    if not isinstance(target, Nodes) or (weight is not None and not isinstance(weight, Nodes)):
        return NotImplemented                       # probabilities as constants: the mirror reads them
    try:
        np.broadcast_shapes(logp.shape, target.shape)
    except ValueError:
        return NotImplemented
    terms = o.mul(logp, target)
    if weight is not None:
        shape = [1] * input.ids.ndim
        shape[cdim] = -1
        if weight.ids.size != input.shape[cdim] or weight.ids.ndim != 1:
            return NotImplemented
        terms = o.mul(terms, Nodes(weight.ids.reshape(shape)))
    if terms.ids.ndim != input.ids.ndim:
        return NotImplemented
    summed = Nodes(o.b.sums(np.moveaxis(terms.ids, cdim, -1)))
    return _reduce_loss(o, o.neg(summed), reduction)


#: Losses whose mirror applies one scalar formula per (broadcast) element, then the reduction.
POINTWISE_LOSSES = ("mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "binary_cross_entropy",
                    "binary_cross_entropy_with_logits", "soft_margin_loss", "margin_ranking_loss",
                    "hinge_embedding_loss", "poisson_nll_loss")


def _pointwise_loss(name):
    """The mirror's loss evaluated once on one symbol per tensor argument (reduction='sum' of one
    element: the per-element formula, SymPy's template, cached per parameter set), copied per broadcast
    element by index arithmetic, then the case's reduction."""
    def rule(r, *args, **kwargs):
        definition = getattr(mirror.FUNCTIONS[name].sym, "__wrapped__", None)
        try:
            bound = inspect.signature(definition).bind(*args, **kwargs)
        except (TypeError, ValueError):
            return NotImplemented
        bound.apply_defaults()
        given = bound.arguments
        if given.get("reduction") not in _REDUCTIONS or any(given.get(k) is not None for k in ("size_average", "reduce")):
            return NotImplemented
        values = list(given.values())
        if any(isinstance(v, (np.ndarray, list, tuple)) for v in values) or not isinstance(values[0], Nodes):
            return NotImplemented                   # a constant tensor argument: the mirror reads it
        try:
            np.broadcast_shapes(*[v.shape for v in values if isinstance(v, Nodes)])
        except ValueError:
            return NotImplemented
        reduction = given["reduction"]
        call = {**given, "reduction": "sum"}        # on scalars: the one element's loss
        tape, slots = template(name, [], call)
        losses = r.b.instantiate(tape, [call[k] for k in slots])
        return _reduce_loss(Ops(r), losses, reduction)
    return rule


# -- attention -----------------------------------------------------------------------------------------

def scaled_dot_product_attention(r, query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False,
                                 scale=None, enable_gqa=False):
    """The mirror's softmax(Q Kᵀ·scale) V with masked keys' weights 0: ``exp`` by its template, one sum
    per query row, products with V by index arithmetic. Float masks (added to the scores): the mirror."""
    if not all(isinstance(t, Nodes) and t.ids.ndim >= 2 for t in (query, key, value)):
        return NotImplemented
    if not _number(dropout_p) or dropout_p != 0 or enable_gqa or not isinstance(is_causal, (bool, np.bool_)):
        return NotImplemented
    if attn_mask is not None and (is_causal or not isinstance(attn_mask, np.ndarray) or attn_mask.dtype != bool):
        return NotImplemented
    if scale is not None and not _number(scale):
        return NotImplemented
    o = Ops(r)
    s = sp.Integer(query.shape[-1]) ** sp.Rational(-1, 2) if scale is None else sym_number(scale)
    scores = r._matmul(query, Nodes(np.swapaxes(key.ids, -1, -2)))
    n_q, n_k = scores.shape[-2:]
    keep = np.ones(scores.shape, dtype=bool)
    if is_causal:
        keep = np.broadcast_to(np.tril(np.ones((n_q, n_k), dtype=bool)), scores.shape)
    if attn_mask is not None:
        try:
            keep = np.broadcast_to(attn_mask, scores.shape)
        except ValueError:
            return NotImplemented
    if not keep.any(axis=-1).all():
        return NotImplemented                       # a row with every key masked: the mirror says so
    try:
        vb = np.broadcast_to(value.ids, scores.shape[:-2] + value.shape[-2:])
    except ValueError:
        return NotImplemented
    weights = np.where(keep, r.call("exp", [o.mul(scores, o.const(s))], {}).ids, r.b.const(0))
    inverse = o.pow(Nodes(r.b.sums(weights)), -1)
    prods = r.b.products([weights[..., :, None, :], np.swapaxes(vb, -1, -2)[..., None, :, :]])
    return o.mul(Nodes(r.b.sums(prods)), Nodes(inverse.ids[..., None]))


# -- norms: one template per row length ---------------------------------------------------------------

_ROWS: dict = {}        # (function, fingerprint, row length, parameters) -> small tape over the row, per process


def _row_template(name: str, k: int, params: dict) -> Tape:
    """The mirror's reduction of one row of ``k`` symbols to a scalar (``dim=None``), flattened once per
    function, row length and parameter set (SymPy's own definition, kinks and ties included)."""
    entry = mirror.resolve(name)
    try:
        what = fingerprint.digest(entry.sym)
    except fingerprint.Unkeyable:
        what = None
    key = (name, what, k, tuple((p, _param_key(v)) for p, v in sorted(params.items())))
    hit = _ROWS.get(key) if what is not None else None
    if hit is None:
        syms = [sp.Dummy(f"a{j}", real=True) for j in range(k)]
        row = np.empty(k, dtype=object)
        row[:] = syms
        value = as_object_array(entry.sym(row, **params, dim=None, keepdim=False))
        if value.shape != ():
            raise Unsupported(f"'{name}' of a row is not a scalar")
        c = _Compiler({s: ("", j) for j, s in enumerate(syms)})
        root = c.add(_to_sympy(value[()]))
        c.finish()
        hit = Tape(c.ops, c.args, c.extra, c.dargs, c.leaf_list, [root])
        if what is not None:
            _ROWS[key] = hit
    return hit


def _rows(r, name: str, x: Nodes, dim, keepdim, params: dict):
    """``name`` reduced over ``dim`` (all dims for None) row by row: the row template copied per row."""
    if not isinstance(x, Nodes) or not isinstance(keepdim, (bool, np.bool_)) or x.ids.ndim == 0:
        return NotImplemented
    if any(isinstance(v, (np.ndarray, Nodes, list, tuple)) for v in params.values()):
        return NotImplemented
    axes = _axes(dim, x.ids.ndim)
    if axes is None:
        return NotImplemented
    kept = [a for a in range(x.ids.ndim) if a not in axes]
    moved = np.transpose(x.ids, kept + axes)
    outer = moved.shape[:len(kept)]
    k = math.prod(moved.shape[len(kept):])
    if k == 0:
        return NotImplemented
    rows = moved.reshape(-1, k)
    out = r.b.copies(_row_template(name, k, params), [rows[:, j] for j in range(k)])[:, 0].reshape(outer)
    if keepdim:
        out = out.reshape(tuple(1 if a in axes else n for a, n in enumerate(x.ids.shape)))
    return Nodes(out)


def vector_norm(r, x, ord=2, dim=None, keepdim=False, *, dtype=None):
    if dtype is not None or ord is None:
        return NotImplemented
    return _rows(r, "vector_norm", x, dim, keepdim, {"ord": ord})


def norm(r, x, p="fro", dim=None, keepdim=False, out=None, dtype=None):
    """torch.norm's vector cases (a number, None, or 'fro' over at most 2 dims); matrix orders: the mirror."""
    if out is not None or dtype is not None:
        return NotImplemented
    if isinstance(p, str) and p in ("inf", "-inf"):          # the case language's infinity: a vector order
        return _rows(r, "vector_norm", x, dim, keepdim, {"ord": p})
    if isinstance(p, str):
        if p != "fro" or isinstance(dim, (tuple, list)) and len(dim) > 2:
            return NotImplemented
        p = 2
    return _rows(r, "vector_norm", x, dim, keepdim, {"ord": 2 if p is None else p})


RULES = {
    "nll_loss": nll_loss,
    "cross_entropy": cross_entropy,
    **STRUCT_RULES,
    **{name: _pointwise_loss(name) for name in POINTWISE_LOSSES},
    "vector_norm": vector_norm,
    "norm": norm,
    "scaled_dot_product_attention": scaled_dot_product_attention,
}
