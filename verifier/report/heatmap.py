"""Small PNG heat maps of per-element errors, inlined in ``report.html``.

For each input of a case the report shows two maps, autograd and finite
differences, laid out like the gradient (a matrix as a matrix). A cell's
colour is its error *divided by the error it is allowed* (``tolerance`` for
autograd, the finite-difference tolerance for FD), on a log scale: white is
exact, blues deepen towards the tolerance, reds are outside it. A reader
finds the failing elements, and any pattern in them (a row, the diagonal,
the negative inputs), at a glance.

Images are encoded with Pillow. Large gradients are reduced by taking the
*largest* ratio in each block, so a single failing element stays visible.
"""

from __future__ import annotations

import base64
import io
import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from PIL import Image

from ..verdict.compare import FD_TOLERANCE, fd_within

MAX_CELLS = 64            # per side; larger gradients are max-pooled down to this
WRAP = 32                 # a long vector is shown in rows of this many elements
TARGET_PIXELS = 128       # longest side of an image, before the per-cell minimum
LOG_RANGE = (-8.0, 3.0)   # log10(error / allowed) spanned by the colour scale

# (log10 ratio, RGB) stops: blues up to the tolerance (ratio 1), reds beyond it.
PASS_STOPS = [(-8.0, (239, 243, 255)), (-4.0, (158, 202, 225)), (-1.0, (49, 130, 189)), (0.0, (8, 48, 107))]
FAIL_STOPS = [(0.0, (252, 146, 114)), (1.0, (222, 45, 38)), (3.0, (103, 0, 13))]
EXACT = (255, 255, 255)
MISSING = (190, 190, 190)          # padding of a wrapped vector, or no value at all


@dataclass
class HeatMap:
    """One inline image: which input and side, the data URI, and what it summarises."""

    input: str
    side: str                      # "autograd" | "finite differences"
    uri: str
    width: int
    height: int
    shape: tuple[int, ...]
    max_ratio: float
    outside: int                   # elements whose error exceeds what they are allowed
    note: str                      # how the gradient was laid out or reduced

    @property
    def title(self) -> str:
        return (f"{self.input}, {self.side}: largest error is {self.max_ratio:.3g} x the allowed error; "
                f"{self.outside} element(s) outside. {self.note}").strip()


def for_case(rows: pd.DataFrame) -> list[HeatMap]:
    """The heat maps of one case × dtype from its detail rows (all of them, not the HTML's first rows)."""
    maps = []
    if rows is None or rows.empty:
        return maps
    for name, group in rows.groupby("input", sort=False):
        shape = _shape(group["index"].astype(str).tolist())
        if shape is None or math.prod(shape) != len(group):
            continue
        exact = group["exact"].to_numpy(dtype=float)
        ok, fd_ok = group["ok"].to_numpy(dtype=bool), group["fd_ok"].to_numpy(dtype=bool)
        ag_err, fd_err = group["abs_err"].to_numpy(dtype=float), group["fd_abs_err"].to_numpy(dtype=float)
        fd_values = group["finite_diff"].to_numpy(dtype=float)
        if "fd_tolerance" in group:
            fd_allowed = group["fd_tolerance"].to_numpy(dtype=float)
        else:
            fd_allowed = np.broadcast_to(fd_within(fd_values, exact, FD_TOLERANCE)[1], exact.shape)
        ag_err, fd_err = _at_kinks(group, ok, fd_ok, ag_err, fd_err, fd_allowed)
        ag_ratio = _ratio(ag_err, group["tolerance"].to_numpy(dtype=float), ok)
        fd_ratio = _ratio(fd_err, fd_allowed, fd_ok)
        for side, ratio in (("autograd", ag_ratio), ("finite differences", fd_ratio)):
            if side == "finite differences" and np.all(np.isnan(fd_values)):
                continue
            maps.append(_heatmap(str(name), side, ratio, shape))
    return maps


def _at_kinks(group: pd.DataFrame, ok, fd_ok, ag_err, fd_err, fd_allowed):
    """The errors to paint, with kink elements measured against what is expected there.

    At a kink (``verifier/verdict/kinks.py``) autograd is judged against the
    generalized gradient [left, right] and the finite difference against the
    midpoint, so an element that passes there is not painted by its distance
    from torch's convention: autograd's error is its distance from the interval
    (the smaller of the two where it passed, the larger where it failed), the
    FD's its distance from the midpoint, at most its allowance where it passed
    (the kink verdict also allows for the curvature jump).
    """
    if "kink" not in group:
        return ag_err, fd_err
    kink = group["kink"].to_numpy(dtype=bool)
    if not kink.any():
        return ag_err, fd_err
    left, right = group["kink_left"].to_numpy(dtype=float), group["kink_right"].to_numpy(dtype=float)
    autograd, fd = group["autograd"].to_numpy(dtype=float), group["finite_diff"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        lo, hi = np.fmin(left, right), np.fmax(left, right)
        outside = np.fmax(lo - autograd, autograd - hi).clip(min=0)
        outside = np.where(np.isnan(outside), np.inf, outside)
        ag_kink = np.where(ok, np.fmin(ag_err, outside), np.fmax(ag_err, outside))
        fd_kink = np.abs(fd - (left + right) / 2)
        fd_kink = np.where(fd_ok, np.fmin(fd_kink, fd_allowed), fd_kink)
    return np.where(kink, ag_kink, ag_err), np.where(kink, fd_kink, fd_err)


def _shape(index: list[str]) -> tuple[int, ...] | None:
    """The gradient's shape from its row indices "(i, j)", listed in C order."""
    if not index:
        return None
    return tuple(int(v) + 1 for v in re.findall(r"-?\d+", index[-1]))


def _ratio(err: np.ndarray, allowed: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """error / allowed error; a failing element without a finite ratio counts as far outside."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = err / allowed
    ratio = np.where(err == 0, 0.0, ratio)
    return np.where(~ok & ~np.isfinite(ratio), 10.0 ** LOG_RANGE[1], ratio)


def _grid(ratio: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, str]:
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


def colour(ratio: np.ndarray) -> np.ndarray:
    """RGB (uint8) for each error/allowed ratio (NaN: missing)."""
    out = np.empty(ratio.shape + (3,), dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        lg = np.clip(np.log10(ratio), *LOG_RANGE)
    fail = ratio > 1
    for stops, mask in ((PASS_STOPS, ~fail), (FAIL_STOPS, fail)):
        xs = [s for s, _ in stops]
        for c in range(3):
            out[..., c] = np.where(mask, np.interp(lg, xs, [rgb[c] for _, rgb in stops]), out[..., c])
    out[ratio == 0] = EXACT
    out[np.isnan(ratio)] = MISSING
    return np.round(out).astype(np.uint8)


def _heatmap(name: str, side: str, ratio: np.ndarray, shape: tuple[int, ...]) -> HeatMap:
    grid, note = _grid(ratio, shape)
    h, w = grid.shape
    cell = max(2, min(16, TARGET_PIXELS // max(h, w)))
    pixels = np.repeat(np.repeat(colour(grid), cell, axis=0), cell, axis=1)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    finite = ratio[np.isfinite(ratio)]
    return HeatMap(
        input=name, side=side, uri="data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"),
        width=w * cell, height=h * cell, shape=shape, max_ratio=float(finite.max()) if finite.size else math.nan,
        outside=int(np.sum(ratio > 1)), note=note)


def legend_css() -> str:
    """A CSS linear-gradient with the same stops, for the legend beside the maps."""
    lo, hi = LOG_RANGE
    parts = []
    for x, rgb in [*PASS_STOPS, *FAIL_STOPS]:
        parts.append(f"rgb{rgb} {100 * (x - lo) / (hi - lo):.1f}%")
    return "linear-gradient(to right, " + ", ".join(parts) + ")"
