"""The heat maps' numbers: per input and side, error / allowed error laid out as a small 2-d grid.

Computed where every element is at hand (the worker, before a result's
detail rows are reduced, see :mod:`verifier.run.digest`), so a heat map shows
every element of a 10⁷-element gradient although the report keeps only its
worst rows. Large gradients are reduced by taking the *largest* ratio in each
block, so a single failing element stays visible. Drawing the grid (colours,
PNG) is :mod:`verifier.report.heatmap`'s.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from ..verdict.compare import FD_TOLERANCE, fd_within

MAX_CELLS = 64            # per side; larger gradients are max-pooled down to this
WRAP = 32                 # a long vector is shown in rows of this many elements
FAR_OUTSIDE = 1e3         # the ratio given to a failing element whose ratio is not finite


@dataclass
class HeatGrid:
    """One input × side: the pooled ratio grid and what it summarises."""

    input: str
    side: str                      # "autograd" | "finite differences"
    grid: np.ndarray               # float32, at most MAX_CELLS x MAX_CELLS; NaN: padding
    shape: tuple[int, ...]
    max_ratio: float
    outside: int                   # elements whose error exceeds what they are allowed
    note: str                      # how the gradient was laid out or reduced


def grids(columns: dict, n: int) -> list[HeatGrid]:
    """The heat grids of one case × dtype from its full detail columns (``n`` rows)."""
    if not n:
        return []
    names = _array(columns["input"], n)
    out = []
    starts = np.flatnonzero(np.r_[True, names[1:] != names[:-1]]) if n > 1 else np.array([0])
    for start, stop in zip(starts, [*starts[1:], n]):
        part = slice(int(start), int(stop))
        index = columns["index"]
        last = index[stop - 1] if isinstance(index, (list, np.ndarray)) else index
        shape = _shape(str(last))
        if shape is None or math.prod(shape) != stop - start:
            continue
        col = {name: _array(columns[name], n)[part] for name in
               ("exact", "autograd", "abs_err", "tolerance", "ok", "finite_diff", "fd_abs_err", "fd_ok",
                "fd_tolerance", "kink", "kink_left", "kink_right") if name in columns}
        exact, ok, fd_ok = col["exact"].astype(float), col["ok"].astype(bool), col["fd_ok"].astype(bool)
        fd_values = col["finite_diff"].astype(float)
        fd_allowed = col["fd_tolerance"].astype(float) if "fd_tolerance" in col else \
            np.broadcast_to(fd_within(fd_values, exact, FD_TOLERANCE)[1], exact.shape)
        ag_err, fd_err = _at_kinks(col, ok, fd_ok, col["abs_err"].astype(float), col["fd_abs_err"].astype(float),
                                   fd_allowed)
        ag = _ratio(ag_err, col["tolerance"].astype(float), ok)
        out.append(_pooled(str(names[start]), "autograd", ag, shape))
        if not np.all(np.isnan(fd_values)):
            fd = _ratio(fd_err, fd_allowed, fd_ok)
            if "attribution" in columns:        # not sampled: grey, not "far outside"
                fd[_array(columns["attribution"], n)[part].astype(str) == "fd_not_sampled"] = np.nan
            out.append(_pooled(str(names[start]), "finite differences", fd, shape))
    return out


def _at_kinks(col: dict, ok, fd_ok, ag_err, fd_err, fd_allowed):
    """The errors to paint, with kink elements measured against what is expected there.

    At a kink (``verifier/verdict/kinks.py``) autograd is judged against the
    generalized gradient [left, right] and the finite difference against the
    midpoint, so an element that passes there is not painted by its distance
    from torch's convention: autograd's error is its distance from the interval
    (the smaller of the two where it passed, the larger where it failed), the
    FD's its distance from the midpoint, at most its allowance where it passed
    (the kink verdict also allows for the curvature jump).
    """
    kink = col["kink"].astype(bool) if "kink" in col else None
    if kink is None or not kink.any():
        return ag_err, fd_err
    left, right = col["kink_left"].astype(float), col["kink_right"].astype(float)
    autograd, fd = col["autograd"].astype(float), col["finite_diff"].astype(float)
    with np.errstate(invalid="ignore"):
        lo, hi = np.fmin(left, right), np.fmax(left, right)
        outside = np.fmax(lo - autograd, autograd - hi).clip(min=0)
        outside = np.where(np.isnan(outside), np.inf, outside)
        ag_kink = np.where(ok, np.fmin(ag_err, outside), np.fmax(ag_err, outside))
        fd_kink = np.abs(fd - (left + right) / 2)
        fd_kink = np.where(fd_ok, np.fmin(fd_kink, fd_allowed), fd_kink)
    return np.where(kink, ag_kink, ag_err), np.where(kink, fd_kink, fd_err)


def _array(value, n: int) -> np.ndarray:
    """A detail column as an array of ``n`` values (one value repeats)."""
    if isinstance(value, (list, np.ndarray)) or hasattr(value, "dtype") and np.ndim(value):
        return np.asarray(value)
    return np.full(n, value, dtype=object if isinstance(value, str) else None)


def _shape(index: str) -> tuple[int, ...] | None:
    """The gradient's shape from its last row index "(i, j)" (rows are in C order)."""
    return tuple(int(v) + 1 for v in re.findall(r"-?\d+", index))


def _ratio(err: np.ndarray, allowed: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """error / allowed error; a failing element without a finite ratio counts as far outside."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = err / allowed
    ratio = np.where(err == 0, 0.0, ratio)
    return np.where(~ok & ~np.isfinite(ratio), FAR_OUTSIDE, ratio)


def _pooled(name: str, side: str, ratio: np.ndarray, shape: tuple[int, ...]) -> HeatGrid:
    grid, note = layout(ratio, shape)
    finite = ratio[np.isfinite(ratio)]
    return HeatGrid(name, side, grid.astype(np.float32), shape, float(finite.max()) if finite.size else math.nan,
                    int(np.sum(ratio > 1)), note)


def layout(ratio: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, str]:
    """A 2-d array to draw, and a note saying how ``shape`` was laid out."""
    n = ratio.size
    if len(shape) >= 2:
        grid = ratio.reshape(-1, shape[-1])
        note = "" if len(shape) == 2 else f"Shape {list(shape)} drawn as {list(grid.shape)}."
    elif n <= 2 * WRAP:
        grid, note = ratio.reshape(1, n), ""
    else:
        rows = -(-n // WRAP)
        grid = np.full(rows * WRAP, np.nan)
        grid[:n] = ratio
        grid, note = grid.reshape(rows, WRAP), f"A vector of {n} drawn in rows of {WRAP}."
    h, w = grid.shape
    bh, bw = -(-h // MAX_CELLS), -(-w // MAX_CELLS)
    if bh > 1 or bw > 1:
        padded = np.full((-(-h // bh) * bh, -(-w // bw) * bw), np.nan)
        padded[:h, :w] = grid
        blocks = padded.reshape(padded.shape[0] // bh, bh, padded.shape[1] // bw, bw)
        with np.errstate(all="ignore"):
            all_nan = np.all(np.isnan(blocks), axis=(1, 3))
            grid = np.where(all_nan, np.nan, np.nanmax(np.where(np.isnan(blocks), -np.inf, blocks), axis=(1, 3)))
        note += f" Each cell is the largest of a {bh}x{bw} block."
    return grid, note.strip()
