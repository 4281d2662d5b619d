"""Small PNG heat maps of per-element errors, inlined in ``report.html``.

For each input of a case the report shows two maps, autograd and finite
differences, laid out like the gradient (a matrix as a matrix). A cell's
colour is its error *divided by the error it is allowed* (``tolerance`` for
autograd, the finite-difference tolerance for FD), on a log scale: white is
exact, blues deepen towards the tolerance, reds are outside it. A reader
finds the failing elements, and any pattern in them (a row, the diagonal,
the negative inputs), at a glance.

Images are encoded with Pillow. The numbers drawn (the ratio per element,
pooled to at most 64 x 64 cells by the largest ratio in each block, so a
single failing element stays visible) come from :mod:`verifier.run.heatgrid`,
computed over every element before a run drops detail rows.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import numpy as np
import pandas as pd
from PIL import Image

from ..run import heatgrid
from ..run.heatgrid import MAX_CELLS, WRAP  # noqa: F401  (the layout's constants, re-exported)

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
    if rows is None or rows.empty:
        return []
    columns = {c: rows[c].to_numpy() for c in rows.columns}
    return from_grids(heatgrid.grids(columns, len(rows)))


def from_grids(grids: list[heatgrid.HeatGrid] | None) -> list[HeatMap]:
    """The heat maps drawn from grids computed over every element (``CaseResult.heat``)."""
    return [_heatmap(g) for g in grids or []]


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


def _heatmap(g: heatgrid.HeatGrid) -> HeatMap:
    grid = g.grid.astype(float)
    h, w = grid.shape
    cell = max(2, min(16, TARGET_PIXELS // max(h, w)))
    pixels = np.repeat(np.repeat(colour(grid), cell, axis=0), cell, axis=1)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", optimize=True)
    return HeatMap(
        input=g.input, side=g.side, uri="data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"),
        width=w * cell, height=h * cell, shape=g.shape, max_ratio=g.max_ratio, outside=g.outside, note=g.note)


def legend_css() -> str:
    """A CSS linear-gradient with the same stops, for the legend beside the maps."""
    lo, hi = LOG_RANGE
    parts = []
    for x, rgb in [*PASS_STOPS, *FAIL_STOPS]:
        parts.append(f"rgb{rgb} {100 * (x - lo) / (hi - lo):.1f}%")
    return "linear-gradient(to right, " + ", ".join(parts) + ")"
