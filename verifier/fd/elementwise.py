"""Finite differences for elementwise functions: every element of an input perturbed at once.

When output element i depends on element i of an input and on no other
element of it, moving *all* elements by their own steps at once changes each
output element only through its own input element. One evaluation of the
unreduced terms v⊙f then yields one difference quotient per element, so a
whole stencil costs its number of points in evaluations, not that times n
(a 10⁶-element case needs 8 evaluations instead of 8·10⁶).

:func:`elementwise_inputs` proves the structure from the case expression
(only elementwise functions and operators, no indexing, reductions or
transposes); the runtime adds that the input has the output's shape. The
result is then checked against one-element-at-a-time differences on a few
elements, and abandoned (with a note) if they disagree.
"""

from __future__ import annotations

import ast

import numpy as np
import torch

from ..cases.language import MODULE_PREFIXES, dotted, written_name
from ..exact import mirror
from .batch import Objective
from .richardson import COMPLEX, EPS64, NOISE_ULPS, estimate

#: The noise-measuring step is 2^-MEASURE_BITS of max(1, |x|): truncation (δ³) and the slope's own
#: error times δ are both far below rounding there.
MEASURE_BITS = 20
#: Steps of the noise samples, in units of that step.
MEASURE_RATIOS = (1.0, 0.75, 0.625)
#: The largest of a few samples of the rounding, times this, estimates its size.
MEASURE_FACTOR = 2.0
#: Elements re-done one at a time to confirm the all-at-once differences.
CONFIRM_ELEMENTS = 4
#: ... and how closely they must agree, in units of the two error estimates combined.
CONFIRM_FACTOR = 8.0


def elementwise_inputs(case) -> tuple[str, ...]:
    """The differentiated inputs the case's torch expression treats elementwise (empty if unsure)."""
    tree = getattr(case.torch_fn, "tree", None)
    if tree is None or case.functions:
        return ()
    if not _elementwise(tree.body):
        return ()
    return tuple(spec.name for spec in case.inputs if spec.differentiated)


def _elementwise(node: ast.AST) -> bool:
    if isinstance(node, (ast.Name, ast.Constant)):
        return True
    if isinstance(node, ast.UnaryOp):
        return _elementwise(node.operand)
    if isinstance(node, ast.BinOp):
        return not isinstance(node.op, ast.MatMult) and _elementwise(node.left) and _elementwise(node.right)
    if isinstance(node, ast.Compare):
        return _elementwise(node.left) and all(_elementwise(c) for c in node.comparators)
    if isinstance(node, ast.Call):
        func = node.func
        receiver = []
        name = written_name(func)
        if name is None:
            return False
        if isinstance(func, ast.Attribute) and dotted(func.value) not in MODULE_PREFIXES:
            receiver = [func.value]                  # a method call: the receiver is an operand
        try:
            if not mirror.resolve(name).elementwise:
                return False
        except Exception:
            return False
        operands = receiver + list(node.args) + [kw.value for kw in node.keywords]
        return all(_elementwise(a) for a in operands)
    return False        # subscripts, .T, lists, ...: positions may move


def _terms(obj: Objective, name: str, shifts: np.ndarray, shape) -> np.ndarray:
    """(n, P): the terms v⊙f, flattened, with the input moved by each column of ``shifts``."""
    base = obj.base[name]
    cols = []
    for p in range(shifts.shape[1]):
        shift = torch.as_tensor(shifts[:, p]).reshape(shape).to(base.dtype)
        cols.append(obj.terms(name, shift).reshape(-1).numpy())
    return np.stack(cols, axis=1)


def richardson(obj: Objective, name: str, x: np.ndarray, domain):
    """Richardson estimates for every element of input ``name`` from all-at-once stencils."""
    shape = tuple(obj.base[name].shape)
    t0 = obj.base_terms.reshape(-1).numpy()

    def evaluate(stencil, rows):
        g = _terms(obj, name, np.where(rows[:, None], stencil.offsets, 0.0), shape)
        g[~rows] = np.nan
        return g

    def noise(slopes):   # per element: its own term and |x·∂g/∂x| (see finite_diff._noise)
        return NOISE_ULPS * EPS64 * np.maximum(np.abs(t0), np.nan_to_num(np.abs(x * slopes)))

    def measured(slopes):
        # Rounding inside f can exceed both sizes above (terms that cancel inside f, like 1 + erf(x)
        # in gelu's tail). A few more evaluations measure it: over a step this small,
        # t(x+δ) - t(x-δ) - 2δ·slope is rounding alone; steps in ratios that are not powers of two
        # round differently, so each pair is another sample.
        unit = np.ldexp(1.0, np.frexp(np.maximum(1.0, np.abs(x)))[1] - MEASURE_BITS)
        lo, hi = domain if domain is not None else (-np.inf, np.inf)
        unit = np.where((x - 2 * unit > lo) & (x + 2 * unit < hi), unit, 0.0)
        shifts = []
        for ratio in MEASURE_RATIOS:
            shifts += [(x + ratio * unit) - x, (x - ratio * unit) - x]
        g = _terms(obj, name, np.stack(shifts, axis=1), shape)
        gaps = [np.abs(g[:, k] - g[:, k + 1] - (shifts[k] - shifts[k + 1]) * np.nan_to_num(slopes)) / 2
                for k in range(0, len(shifts), 2)]
        return MEASURE_FACTOR * np.nan_to_num(np.max(gaps, axis=0))

    return estimate(x, domain, evaluate, t0, noise, measured)


def complex_step(cobj: Objective, name: str, x: np.ndarray, step: float, second: float, ulps: float):
    """Complex-step values for every element at once, and their error estimates (as finite_diff._complex)."""
    shape = tuple(cobj.base[name].shape)
    h = step * np.maximum(1.0, np.abs(x))
    g = _terms(cobj, name, 1j * np.stack([h, second * h], axis=1), shape)
    d = g.imag / np.stack([h, second * h], axis=1)
    value = d[:, 0]
    scale = np.max(np.abs(value)) if value.size else 0.0
    err = np.abs(d[:, 0] - d[:, 1]) + ulps * EPS64 * (np.abs(value) + scale)
    return value, err, h, np.full(x.size, COMPLEX, dtype=np.int8)


def confirm(found, reference, sel: np.ndarray) -> str:
    """'' when the all-at-once estimates agree with one-at-a-time ones on ``sel``, else why not."""
    value, err = found[0][sel], found[1][sel]
    ref, ref_err = reference[0], reference[1]
    gap = np.abs(value - ref)
    allowed = CONFIRM_FACTOR * (np.nan_to_num(err, nan=np.inf) + np.nan_to_num(ref_err, nan=np.inf))
    allowed = np.maximum(allowed, 16 * EPS64 * np.abs(ref))
    bad = ~(gap <= allowed)
    if not bad.any():
        return ""
    i = int(np.argmax(bad))
    return (f"element {int(sel[i])}: all at once {value[i]:.17g}, one at a time {ref[i]:.17g} "
            f"(the function is not elementwise in this input)")
