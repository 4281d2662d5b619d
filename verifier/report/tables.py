"""Results → pandas tables: the tidy details and the summary derived from them.

The summary's error columns are a ``groupby`` over the detail rows (DESIGN,
idea 4), so the two tables can never disagree.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..run import digest
from ..run.runner import CaseResult
from ..verdict.attribution import KINDS
from ..verdict.compare import DETAIL_COLUMNS

#: In the order a reader needs them: which run, its verdict and why, who is wrong, by how much, then context.
SUMMARY_COLUMNS = [
    "case", "dtype", "status", "message", "who_wrong", "worst_ratio", "max_rel_err", "max_abs_err",
    "check_max_rel_err", "check_max_abs_err", "max_fd_rel_err", "max_fd_abs_err", "max_ag_fd_rel_err", "max_ulp_err", "elements", "mismatched",
    "fd_outside_tol", "fd_elements", *KINDS, "forward_mode", "second_order", "grad_fn", "route", "family",
    "fd_method", "fd_note", "seconds", "device", "allowance", "cross_device_max_abs_err",
]
#: fd_note in the summary is cut to this many characters (a vmap fallback's error text runs to thousands).
FD_NOTE_CHARS = 120

CHECK_COLUMNS = ["case", "dtype", "check", "status", "max_abs_err", "max_rel_err", "elements", "detail"]
_COUNTS = ["elements", "mismatched", "fd_outside_tol", "fd_elements", *KINDS, "mismatched_fd_known",
           "mismatched_fd_agrees"]


def details(results: Sequence[CaseResult], keep: int | None = None) -> pd.DataFrame:
    """The detail rows of all results, in run order.

    ``keep=None``: every row each result holds (a run that digested its results
    holds only the kept ones); a number: per result only the flagged rows and
    the ``keep`` worst (:func:`verifier.run.digest.kept_rows`). Built from each
    result's columns in one go: one DataFrame per result and a ``concat`` of
    hundreds of them would cost more than the comparisons did.
    """
    pieces = []
    for r in results:
        columns = digest.result_columns(r)
        n = digest.row_count(columns)
        if n and keep is not None:
            rows = digest.kept_rows(columns, keep)
            if rows is not None:
                columns, n = digest.take(columns, rows), len(rows)
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
    """One row per case × dtype: status, largest errors, counts, context.

    The numbers come from :func:`verifier.run.digest.stats` over *every*
    element of the result (computed before a run drops the rows it does not
    keep), so they never depend on which detail rows were kept. ``detail`` is
    accepted for callers that still pass it, and unused.
    """
    rows = []
    for r in results:
        digest.summarise(r)
        fd = getattr(r, "fd", None)
        rows.append({
            "case": r.name, "family": r.case.family, "dtype": r.dtype, "status": r.status,
            "grad_fn": r.grad_fn or "", "route": r.route, "seconds": round(r.seconds, 4), "message": r.message,
            "forward_mode": _check_status(r, "forward_mode"), "second_order": _check_status(r, "second_order"),
            "fd_method": getattr(fd, "method", "") if fd is not None else "",
            "fd_note": _cut("; ".join(getattr(fd, "notes", []) or []) if fd is not None else "", FD_NOTE_CHARS),
            "device": getattr(r, "device", "cpu"), "allowance": getattr(r, "allowance", ""),
            "cross_device_max_abs_err": getattr(r, "cross_device_max_abs_err", float("nan")),
            **r.stats, **_failed_check_errors(r),
        })
        rows[-1]["who_wrong"] = who_wrong(r, r.stats)
    out = pd.DataFrame(rows, columns=list(dict.fromkeys([*SUMMARY_COLUMNS, *digest.STAT_COLUMNS])))
    for col in _COUNTS:
        out[col] = out[col].fillna(0).astype(int)
    for col in digest.STAT_COLUMNS:
        if col not in _COUNTS:
            out[col] = out[col].astype(float)
    return out[SUMMARY_COLUMNS]


def _failed_check_errors(r: CaseResult) -> dict:
    """The largest errors of the failed checks other than the gradient's (forward mode, second order, expect).

    Their own numbers, so that a row failing only there does not read "max_rel_err 0" (the gradient's);
    NaN when no such check failed with numbers. checks.csv has each check's row.
    """
    failed = [c for c in r.checks if not c.ok and c.name != "gradient"]
    values = {key: [float(getattr(c, key)) for c in failed if getattr(c, key, None) is not None
                    and not np.isnan(float(getattr(c, key)))] for key in ("max_rel_err", "max_abs_err")}
    return {f"check_{key}": max(found) if found else np.nan for key, found in values.items()}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def who_wrong(result: CaseResult, stats: dict) -> str:
    """Which side a not-passing result blames, in a few words ('' when it passed).

    ``autograd``: autograd disagrees with exact and the finite differences side
    with exact at every mismatched element where they were taken; ``exact side
    or forward``: the finite differences (of torch's forward) disagree with exact
    as well, so the symbolic reading or torch's forward is the odd one out;
    ``autograd (no FD there)``: none were taken there.
    A failing check other than the gradient names itself (forward mode, expect).
    """
    if result.status in ("error", "timeout", "out_of_memory"):
        return "could not run" if result.status == "error" else "timed out"
    if result.status != "fail":
        return ""
    parts = []
    if stats.get("mismatched"):
        known, agrees = stats.get("mismatched_fd_known", 0), stats.get("mismatched_fd_agrees", 0)
        parts.append("autograd (no FD there)" if not known else
                     "autograd (FD agrees with exact)" if agrees == known else
                     "exact side or forward (FD disagrees with exact too)" if not agrees else
                     f"unclear (FD agrees with exact at {agrees} of {known})")
    parts += [c.name for c in result.checks if not c.ok and not c.skipped and c.name != "gradient"]
    return "; ".join(parts) or "see message"


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
