"""Results → pandas tables: the tidy details and the summary derived from them.

The summary's error columns are a ``groupby`` over the detail rows (DESIGN,
idea 4), so the two tables can never disagree.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..run.runner import CaseResult
from ..verdict.attribution import KINDS
from ..verdict.compare import DETAIL_COLUMNS

SUMMARY_COLUMNS = [
    "case", "family", "dtype", "status", "max_abs_err", "max_rel_err", "max_fd_abs_err",
    "max_fd_rel_err", "max_ag_fd_rel_err", "elements", "mismatched", "fd_outside_tol",
    "max_ulp_err", "fd_elements", *KINDS, "forward_mode", "second_order", "fd_method", "fd_note",
    "grad_fn", "route", "seconds", "message",
]

CHECK_COLUMNS = ["case", "dtype", "check", "status", "max_abs_err", "max_rel_err", "elements", "detail"]
_COUNTS = ["elements", "mismatched", "fd_outside_tol", "fd_elements", *KINDS]


def details(results: Sequence[CaseResult]) -> pd.DataFrame:
    """All per-element rows of all results, in run order.

    Built from each result's columns in one go: one DataFrame per result and a
    ``concat`` of hundreds of them would cost more than the comparisons did.
    """
    pieces = []
    for r in results:
        if r.columns is not None:
            n = len(r.columns["exact"])
            columns = r.columns
        else:
            frame = r.rows
            n = 0 if frame is None else len(frame)
            columns = {} if not n else {c: frame[c].array if isinstance(frame[c].dtype, pd.CategoricalDtype)
                                        else frame[c].to_numpy() for c in frame.columns}
        if n:
            pieces.append((columns, n))
    if not pieces:
        return pd.DataFrame(columns=DETAIL_COLUMNS)
    names = list(dict.fromkeys(name for columns, _ in pieces for name in columns))
    return pd.DataFrame({name: _joined([columns.get(name, _MISSING) for columns, _ in pieces],
                                       [n for _, n in pieces]) for name in names})


_MISSING = object()


def _joined(values: list, sizes: list[int]):
    """One column from per-result pieces (arrays, lists, one value for all rows, or missing: NaN)."""
    if all(isinstance(v, pd.Categorical) and v.dtype == values[0].dtype for v in values):
        return pd.Categorical.from_codes(np.concatenate([v.codes for v in values]), dtype=values[0].dtype)
    first = values[0]
    if all(np.ndim(v) == 0 and not isinstance(v, list) and v is not _MISSING for v in values) \
            and all(type(v) is type(first) and v == first for v in values):
        return np.full(sum(sizes), first, dtype=object if isinstance(first, str) else None)
    return np.concatenate([_piece(v, n) for v, n in zip(values, sizes)])


def _piece(value, n: int) -> np.ndarray:
    if value is _MISSING:
        return np.full(n, np.nan)
    if isinstance(value, pd.Categorical):
        return np.asarray(value, dtype=object)
    if isinstance(value, list) or isinstance(value, str):
        return np.asarray(value if isinstance(value, list) else [value] * n, dtype=object)
    value = np.asarray(value)
    return np.full(n, value) if value.ndim == 0 else value.ravel()


def summary(results: Sequence[CaseResult], detail: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per case × dtype: status, largest errors (from the details), context."""
    detail = details(results) if detail is None else detail
    base = pd.DataFrame([{
        "case": r.name, "family": r.case.family, "dtype": r.dtype, "status": r.status,
        "grad_fn": r.grad_fn or "", "route": r.route, "seconds": round(r.seconds, 4), "message": r.message,
        "forward_mode": _check_status(r, "forward_mode"), "second_order": _check_status(r, "second_order"),
        "fd_method": getattr(r.fd, "method", "") if getattr(r, "fd", None) is not None else "",
        "fd_note": "; ".join(getattr(r.fd, "notes", []) or []) if getattr(r, "fd", None) is not None else "",
    } for r in results], columns=["case", "family", "dtype", "status", "grad_fn", "route", "seconds", "message",
                                  "forward_mode", "second_order", "fd_method", "fd_note"])
    if detail.empty:
        agg = pd.DataFrame(columns=["case", "dtype", "max_abs_err", "max_rel_err", "max_fd_abs_err",
                                    "max_fd_rel_err", "max_ag_fd_rel_err", "max_ulp_err", *_COUNTS])
    else:
        sampled = detail["attribution"] != "fd_not_sampled"
        d = detail.assign(bad=~detail["ok"].astype(bool), fd_bad=~detail["fd_ok"].astype(bool) & sampled,
                          fd_taken=detail["finite_diff"].notna(),
                          **{kind: detail["attribution"] == kind for kind in KINDS})
        agg = d.groupby(["case", "dtype"], sort=False).agg(
            max_abs_err=("abs_err", "max"), max_rel_err=("rel_err", "max"),
            max_fd_abs_err=("fd_abs_err", "max"), max_fd_rel_err=("fd_rel_err", "max"),
            max_ag_fd_rel_err=("ag_fd_rel_err", "max"), max_ulp_err=("ulp_err", "max"),
            elements=("exact", "size"), mismatched=("bad", "sum"), fd_outside_tol=("fd_bad", "sum"),
            fd_elements=("fd_taken", "sum"), **{kind: (kind, "sum") for kind in KINDS},
        ).reset_index()
    out = base.merge(agg, on=["case", "dtype"], how="left")
    for col in _COUNTS:
        out[col] = out[col].fillna(0).astype(int)
    return out[SUMMARY_COLUMNS]


def _check_status(result: CaseResult, name: str) -> str:
    for check in result.checks:
        if check.name == name:
            return check.status
    return ""


def checks(results: Sequence[CaseResult]) -> pd.DataFrame:
    """One row per case × dtype × check (gradient, forward, expect.*, forward_mode, second_order, ...)."""
    rows = [{"case": r.name, "dtype": r.dtype, "check": c.name, "status": c.status,
             "max_abs_err": c.max_abs_err, "max_rel_err": c.max_rel_err, "elements": c.elements,
             "detail": c.detail} for r in results for c in r.checks]
    return pd.DataFrame(rows, columns=CHECK_COLUMNS)


def attribution_counts(summary_df: pd.DataFrame) -> dict[str, int]:
    """Gradient elements per attribution kind over the whole run (zeros included)."""
    return {kind: int(summary_df[kind].sum()) if kind in summary_df and not summary_df.empty else 0
            for kind in KINDS}


def counts(summary_df: pd.DataFrame) -> dict[str, int]:
    """Cases per status, every status present (zeros included)."""
    statuses = ["pass", "fail", "non_finite", "error", "skip", "timeout", "out_of_memory"]
    found = summary_df["status"].value_counts().to_dict() if not summary_df.empty else {}
    return {s: int(found.get(s, 0)) for s in statuses}


def by_family(summary_df: pd.DataFrame) -> pd.DataFrame:
    """Counts per family × dtype × status, for the report's overview."""
    if summary_df.empty:
        return pd.DataFrame()
    return (summary_df.pivot_table(index=["family", "dtype"], columns="status", values="case",
                                   aggfunc="count", fill_value=0).reset_index())


def worst(summary_df: pd.DataFrame, n: int = 5) -> pd.DataFrame:
    """The ``n`` case × dtype rows with the largest autograd relative error."""
    cols = ["case", "dtype", "status", "max_rel_err", "max_abs_err"]
    if summary_df.empty:
        return pd.DataFrame(columns=cols)
    ranked = summary_df.assign(_k=summary_df["max_rel_err"].replace(np.inf, np.finfo(float).max).fillna(-1))
    return ranked.sort_values("_k", ascending=False).head(n)[cols]
