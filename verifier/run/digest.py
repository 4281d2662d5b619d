"""A result's digest: the summary numbers over every element, and only the detail rows worth keeping.

A case × dtype has one detail row per gradient element; a 10⁷-element case
has 10⁷ rows, ~1 KB each in memory and ~250 B each in a CSV. Reports are
"tables of discrepancies", so a run keeps per case × dtype:

* the **summary numbers** (largest errors, counts per verdict and
  attribution) computed over *every* element before anything is dropped, so
  the summary never depends on what was kept;
* the **heat-map grids** (:mod:`verifier.run.heatgrid`), also over every element;
* the **detail rows** of every element that is not fine — autograd outside
  its tolerance, or a finite difference outside its own (up to
  ``MAX_FLAGGED`` of them, the largest first) — plus the ``keep`` elements
  with the largest error / allowed error, whatever their verdict.

``DetailPolicy(keep=None)`` keeps every row (``--details all``). The reduction
happens in the worker process, before a result is sent, so the parent never
holds a case's full table. With ``full_dir`` set, the worker first appends the
full table to a parquet file there (``--details-parquet``; needs pyarrow).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..verdict.attribution import KINDS
from . import heatgrid

#: Detail rows kept per case × dtype besides the flagged ones: the worst by error / allowed error.
KEEP_DEFAULT = 20
#: Rows per parquet row group: the unit the parent reads when it merges the parts.
PARQUET_ROWS = 1 << 15
#: At most this many flagged rows per case × dtype are kept (the worst first); the counts stay exact.
MAX_FLAGGED = 100_000

STAT_COLUMNS = ["max_abs_err", "max_rel_err", "max_fd_abs_err", "max_fd_rel_err", "max_ag_fd_rel_err",
                "max_ulp_err", "worst_ratio", "elements", "mismatched", "fd_outside_tol", "fd_elements", *KINDS,
                "mismatched_fd_known", "mismatched_fd_agrees"]
_MAXIMA = {"max_abs_err": "abs_err", "max_rel_err": "rel_err", "max_fd_abs_err": "fd_abs_err",
           "max_fd_rel_err": "fd_rel_err", "max_ag_fd_rel_err": "ag_fd_rel_err", "max_ulp_err": "ulp_err"}


@dataclass(frozen=True)
class DetailPolicy:
    """Which detail rows a run keeps: ``keep`` worst besides the flagged (None: all), and where full tables go."""

    keep: int | None = KEEP_DEFAULT
    full_dir: str | None = None

    @classmethod
    def parse(cls, text: str, full_dir: str | None = None) -> "DetailPolicy":
        """``all`` | ``failing`` | a number of worst rows (the ``--details`` option)."""
        text = str(text).strip().lower()
        if text == "all":
            return cls(None, full_dir)
        if text == "failing":
            return cls(0, full_dir)
        if text.isdigit():
            return cls(int(text), full_dir)
        raise ValueError(f"--details takes 'all', 'failing' or a number of worst rows to keep, not {text!r}")


def column(columns: dict, name: str, n: int) -> np.ndarray:
    """A detail column as an array of ``n`` values (a column given as one value repeats it)."""
    value = columns[name]
    if isinstance(value, pd.Categorical):
        return np.asarray(value)
    if isinstance(value, (list, np.ndarray, pd.Series, pd.api.extensions.ExtensionArray)):
        return np.asarray(value)
    return np.full(n, value, dtype=object if isinstance(value, str) else None)


def row_count(columns: dict | None) -> int:
    return 0 if not columns else len(columns["exact"])


def stats(columns: dict | None) -> dict:
    """The summary's numbers over every element (NaN maxima and zero counts when there are none)."""
    n = row_count(columns)
    out = {name: float("nan") for name in (*_MAXIMA, "worst_ratio")}
    out.update({name: 0 for name in STAT_COLUMNS if name not in out})
    if not n:
        return out
    for name, source in _MAXIMA.items():
        values = column(columns, source, n).astype(np.float64)
        values = values[~np.isnan(values)]
        out[name] = float(values.max()) if values.size else float("nan")
    attribution = column(columns, "attribution", n).astype(str)
    ok = column(columns, "ok", n).astype(bool)
    fd_ok = column(columns, "fd_ok", n).astype(bool)
    out["elements"] = n
    out["mismatched"] = int(np.sum(~ok))
    out["fd_outside_tol"] = int(np.sum(~fd_ok & (attribution != "fd_not_sampled")))
    out["fd_elements"] = int(np.sum(~np.isnan(column(columns, "finite_diff", n).astype(np.float64))))
    for kind in KINDS:
        out[kind] = int(np.sum(attribution == kind))
    ratio = badness(columns, n)
    out["worst_ratio"] = float(ratio.max()) if (ratio >= 0).any() else float("nan")
    # who is wrong where autograd and exact disagree: does the finite difference side with exact?
    fd_known = ~ok & np.isfinite(column(columns, "finite_diff", n).astype(np.float64))
    out["mismatched_fd_known"] = int(np.sum(fd_known))
    out["mismatched_fd_agrees"] = int(np.sum(fd_known & fd_ok))
    return out


def badness(columns: dict, n: int) -> np.ndarray:
    """Each element's error / allowed error (a failing one without a finite ratio ranks first)."""
    err = column(columns, "abs_err", n).astype(np.float64)
    allowed = column(columns, "tolerance", n).astype(np.float64)
    ok = column(columns, "ok", n).astype(bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(err == 0, 0.0, err / allowed)
    ratio = np.where(np.isnan(ratio), -1.0, ratio)
    return np.where(~ok & ~(ratio < np.inf), np.inf, ratio)


def kept_rows(columns: dict, keep: int | None) -> np.ndarray | None:
    """The row positions to keep, in table order (None: all of them)."""
    n = row_count(columns)
    if keep is None or not n:
        return None
    rank = badness(columns, n)
    attribution = column(columns, "attribution", n).astype(str)
    flagged = ~column(columns, "ok", n).astype(bool) | ~column(columns, "fd_ok", n).astype(bool) & \
        (attribution != "fd_not_sampled")
    chosen = np.flatnonzero(flagged)
    if chosen.size > MAX_FLAGGED:
        chosen = chosen[np.argpartition(-rank[chosen], MAX_FLAGGED - 1)[:MAX_FLAGGED]]
    if keep:
        worst = np.argpartition(-rank, keep - 1)[:keep] if keep < n else np.arange(n)
        chosen = np.union1d(chosen, worst)
    if chosen.size >= n:
        return None
    return np.sort(chosen)


def take(columns: dict, rows: np.ndarray) -> dict:
    """The columns at ``rows`` (columns given as one value stay one value)."""
    out = {}
    for name, value in columns.items():
        if isinstance(value, list):
            out[name] = [value[i] for i in rows]
        elif isinstance(value, (np.ndarray, pd.Categorical, pd.api.extensions.ExtensionArray)) and np.ndim(value):
            out[name] = value[rows]
        elif isinstance(value, pd.Series):
            out[name] = value.to_numpy()[rows]
        else:
            out[name] = value
    return out


def write_full(columns: dict, directory: str, tag: str) -> Path:
    """The full table of one result as its own parquet file in ``directory`` (complete or absent).

    Small row groups, so that merging the parts (:func:`verifier.report.writing.merge_parquet`)
    never reads more than a few MB at once.
    """
    frame = pd.DataFrame(columns)
    for name in frame.columns:      # parquet needs one type per column: text columns as text
        if frame[name].dtype == object:
            frame[name] = frame[name].astype(str)
    path = Path(directory) / f"part-{os.getpid()}-{tag}.parquet"
    tmp = path.with_suffix(".tmp")
    frame.to_parquet(tmp, index=False, row_group_size=PARQUET_ROWS)
    os.replace(tmp, path)          # a worker killed while writing leaves no part behind
    return path


#: Results whose gradient and output have at most this many elements keep their sides' values (the
#: report's derivation shows v, Jᵀv and the output); larger ones keep only the digest.
SIDES_KEPT_UP_TO = 1000


def result_columns(result) -> dict | None:
    """A result's detail columns, from its frame when it has no columns (accumulation adds one)."""
    if result.columns is not None:
        return result.columns
    frame = result._frame
    if frame is None or frame.empty:
        return None
    return {c: frame[c].array if isinstance(frame[c].dtype, pd.CategoricalDtype) else frame[c].to_numpy()
            for c in frame.columns}


def summarise(result) -> None:
    """Fill ``result.stats`` and ``result.heat`` from every element (once)."""
    if result.stats is None:
        columns = result_columns(result)
        result.stats = stats(columns)
        result.heat = heatgrid.grids(columns, row_count(columns)) if columns else []


def apply(result, policy: DetailPolicy, tag: str = "") -> None:
    """Digest ``result`` in place: summary numbers and heat grids from every element, then only kept rows."""
    summarise(result)
    columns = result_columns(result)
    if columns is None:
        return
    if policy.full_dir:
        result.full_table = str(write_full(columns, policy.full_dir, tag or f"{id(result):x}"))
    rows = kept_rows(columns, policy.keep)
    if rows is not None:
        result.columns = take(columns, rows)
        result._frame = None
    if result.stats["elements"] > SIDES_KEPT_UP_TO or _output_size(result) > SIDES_KEPT_UP_TO:
        result.autograd, result.exact = None, None
        if result.fd is not None:
            result.fd = _FDSummary(result.fd.method, list(result.fd.notes or []))
        for name in ("forward_mode", "second_order"):    # their verdict and numbers stay; the vectors go
            check = getattr(result, name)
            if check is not None:
                setattr(result, name, dataclasses.replace(check, exact=None, torch=None, direction=None))


def _output_size(result) -> int:
    ex = result.exact
    return 0 if ex is None or getattr(ex, "output", None) is None else int(np.size(ex.output))


@dataclass
class _FDSummary:
    """What the report needs of a finite-difference result once its per-element values are gone."""

    method: str
    notes: list


def digested(result, policy: DetailPolicy | None, tag: str = ""):
    """``result`` digested by ``policy`` (unchanged when there is none); a failure to digest is reported, not raised."""
    if policy is None:
        return result
    try:
        apply(result, policy, tag)
    except Exception as exc:   # a full disk for the parquet file, say: the verdict still stands
        result.message = (f"{result.message}; " if result.message else "") + \
            f"detail rows not reduced: {type(exc).__name__}: {exc}"
    return result
