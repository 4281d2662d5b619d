"""``verifier diff OLD NEW``: what changed between two report folders.

This is how a user compares two torch versions or two machines: run the same
cases into two folders, then diff them. Rows are matched on (case, dtype).
Each gets a ``change``:

* ``regressed`` (passed before, does not now), ``fixed`` (the reverse),
  ``status changed`` (e.g. fail → error), ``added``, ``removed``;
* with the same status, ``worse`` / ``better`` when the largest relative
  error grew or shrank by at least ``ERROR_CHANGE_FACTOR``, else ``same``.

Errors are compared as ratios new / old. Both sides are floored at the
dtype's machine epsilon first: below one rounding unit an error is noise, and
0 → 1e-17 is not an infinite change.

Writes ``diff.csv`` (every row) and ``diff.html``; prints the status changes
and the largest error changes. Exit code 1 when a case regressed, else 0.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd

from ..errors import VerifierError
from ..verdict.compare import EPSILON

ERROR_CHANGE_FACTOR = 10.0     # a decade: rounding noise between builds stays well inside it
PASSING = frozenset({"pass", "skip"})
CHANGE_ORDER = ["regressed", "fixed", "status changed", "added", "removed", "worse", "better", "same"]
DIFF_COLUMNS = ["case", "dtype", "change", "old_status", "new_status", "old_max_rel_err", "new_max_rel_err",
                "error_factor", "old_max_abs_err", "new_max_abs_err", "new_message"]
SHOWN = 15                     # rows per terminal section


@dataclass
class ReportFolder:
    """One report folder as the diff reads it: its summary and the environment it ran in."""

    path: Path
    summary: pd.DataFrame
    environment: dict = field(default_factory=dict)

    def label(self) -> str:
        env = self.environment
        parts = [f"torch {env['torch']}" if "torch" in env else "", env.get("date", "")]
        extra = ", ".join(p for p in parts if p)
        return f"{self.path}" + (f" ({extra})" if extra else "")


def read_report(path: str | Path) -> ReportFolder:
    """Read ``summary.csv`` (and ``environment.json`` when present) from a report folder."""
    path = Path(path)
    summary_csv = path / "summary.csv"
    if not summary_csv.is_file():
        raise VerifierError(f"'{path}' has no summary.csv; give a folder written by "
                            f"`verifier run --report-dir` or `pytest --verifier-report`.")
    try:
        summary = pd.read_csv(summary_csv, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise VerifierError(f"cannot read {summary_csv}: {exc}") from None
    missing = {"case", "dtype", "status"} - set(summary.columns)
    if missing:
        raise VerifierError(f"{summary_csv} lacks the column(s) {', '.join(sorted(missing))}; "
                            f"is it a verifier summary?")
    env = {}
    env_json = path / "environment.json"
    if env_json.is_file():
        try:
            env = json.loads(env_json.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            env = {}
    return ReportFolder(path, summary, env)


def compare(old: ReportFolder, new: ReportFolder) -> pd.DataFrame:
    """One row per (case, dtype) found in either folder, most important changes first."""
    keep = ["case", "dtype", "status", "max_rel_err", "max_abs_err", "message"]
    left = _columns(old.summary, keep).add_prefix("old_").rename(columns={"old_case": "case", "old_dtype": "dtype"})
    right = _columns(new.summary, keep).add_prefix("new_").rename(columns={"new_case": "case", "new_dtype": "dtype"})
    both = left.merge(right, on=["case", "dtype"], how="outer", indicator="presence")
    both["change"] = [_change(row) for row in both.itertuples()]
    both["error_factor"] = [_factor(row) for row in both.itertuples()]
    same_status = both["change"] == "same"
    grew = same_status & (both["error_factor"] >= ERROR_CHANGE_FACTOR)
    shrank = same_status & (both["error_factor"] <= 1 / ERROR_CHANGE_FACTOR)
    both.loc[grew, "change"] = "worse"
    both.loc[shrank, "change"] = "better"
    magnitude = np.abs(np.log10(both["error_factor"].astype(float).replace(0.0, np.nan))).fillna(0.0)
    both = both.assign(_rank=both["change"].map(CHANGE_ORDER.index), _size=-magnitude)
    both = both.sort_values(["_rank", "_size", "case", "dtype"], kind="stable")
    return both[DIFF_COLUMNS].reset_index(drop=True)


def _columns(summary: pd.DataFrame, keep: list[str]) -> pd.DataFrame:
    out = summary.copy()
    for col in keep:
        if col not in out:
            out[col] = np.nan
    out["message"] = out["message"].fillna("").astype(str)
    for col in ("max_rel_err", "max_abs_err"):
        out[col] = pd.to_numeric(out[col], errors="coerce")
    return out[keep]


def _change(row) -> str:
    if row.presence == "left_only":
        return "removed"
    if row.presence == "right_only":
        return "added"
    was_ok, is_ok = row.old_status in PASSING, row.new_status in PASSING
    if was_ok and not is_ok:
        return "regressed"
    if is_ok and not was_ok:
        return "fixed"
    return "same" if row.old_status == row.new_status else "status changed"


def _factor(row) -> float:
    """new / old largest error (relative; absolute when both relative errors are infinite)."""
    floor = EPSILON.get(row.dtype, EPSILON["float64"])
    old, new = row.old_max_rel_err, row.new_max_rel_err
    if math.isinf(old) and math.isinf(new):
        old, new = row.old_max_abs_err, row.new_max_abs_err
    if any(isinstance(v, float) and math.isnan(v) for v in (old, new)):
        return math.nan
    if math.isinf(old) or math.isinf(new):
        return 1.0 if old == new else (math.inf if math.isinf(new) else 0.0)
    return max(new, floor) / max(old, floor)


def counts(diff: pd.DataFrame) -> dict[str, int]:
    """Rows per change kind, every kind present (zeros included)."""
    found = diff["change"].value_counts().to_dict()
    return {kind: int(found.get(kind, 0)) for kind in CHANGE_ORDER}


def environment_changes(old: ReportFolder, new: ReportFolder) -> list[tuple[str, str, str]]:
    """(key, old, new) for the environment entries that differ (the date and command excluded)."""
    keys = [k for k in dict.fromkeys([*old.environment, *new.environment]) if k not in ("date", "command")]
    return [(k, str(old.environment.get(k, "")), str(new.environment.get(k, "")))
            for k in keys if old.environment.get(k) != new.environment.get(k)]


def terminal_text(diff: pd.DataFrame, old: ReportFolder, new: ReportFolder) -> str:
    """The diff as a terminal reads it: header, status changes, largest error changes."""
    n = counts(diff)
    lines = [f"old: {old.label()}", f"new: {new.label()}"]
    env = environment_changes(old, new)
    if env:
        lines.append("environment: " + "; ".join(f"{k} {a or '?'} -> {b or '?'}" for k, a, b in env))
    lines.append(f"{len(diff)} case runs: {n['regressed']} regressed, {n['fixed']} fixed, "
                 f"{n['status changed']} other status changes, {n['added']} added, {n['removed']} removed, "
                 f"{n['worse']} worse, {n['better']} better (errors x{ERROR_CHANGE_FACTOR:g} or more)")
    status = diff[diff["change"].isin(["regressed", "fixed", "status changed", "added", "removed"])]
    lines += ["", "Status changes:" if not status.empty else "Status changes: none"]
    if not status.empty:
        shown = status.head(SHOWN)[["case", "dtype", "change", "old_status", "new_status", "new_message"]].copy()
        shown["new_message"] = shown["new_message"].fillna("").astype(str).str.slice(0, 80)
        lines.append(_table(shown.fillna("-")))
        if len(status) > SHOWN:
            lines.append(f"... and {len(status) - SHOWN} more in diff.csv")
    changed = diff[diff["error_factor"].notna() & (diff["error_factor"] != 1.0)]
    changed = changed.reindex(np.abs(np.log10(changed["error_factor"].replace(0.0, np.nan))).fillna(np.inf)
                              .sort_values(ascending=False).index)
    lines += ["", "Largest error changes (max relative error, new / old):" if not changed.empty
              else "Largest error changes: none"]
    if not changed.empty:
        shown = changed.head(SHOWN)[["case", "dtype", "change", "old_max_rel_err", "new_max_rel_err",
                                     "error_factor"]].copy()
        for col in ("old_max_rel_err", "new_max_rel_err", "error_factor"):
            shown[col] = shown[col].map(lambda v: f"{v:.3g}")
        lines.append(_table(shown))
    return "\n".join(lines)


def _table(df: pd.DataFrame) -> str:
    with pd.option_context("display.width", 200, "display.max_colwidth", 80):
        return df.to_string(index=False)


def render_html(diff: pd.DataFrame, old: ReportFolder, new: ReportFolder, out_dir: Path) -> str:
    """``diff.html``: header, environment changes, then every row coloured by its change."""
    from .html_report import anchor as _anchor  # the details anchors of report.html
    templates = jinja2.Environment(loader=jinja2.PackageLoader("verifier.report", "templates"),
                                   autoescape=jinja2.select_autoescape(["html", "j2"]))
    new_report = new.path / "report.html"
    link = os.path.relpath(new_report, out_dir) if new_report.is_file() else None
    rows = []
    for row in diff.itertuples():
        rows.append({**row._asdict(), "href": f"{link}#case-{_anchor(row.case, row.dtype)}"
                     if link and row.change != "removed" else None,
                     "cls": row.change.replace(" ", "-")})
    return templates.get_template("diff.html.j2").render(
        old=old, new=new, counts=counts(diff), rows=rows, env=environment_changes(old, new),
        factor=ERROR_CHANGE_FACTOR, fmt=_fmt)


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def write_diff(diff: pd.DataFrame, old: ReportFolder, new: ReportFolder, out_dir: str | Path) -> dict[str, Path]:
    """Write ``diff.csv`` and ``diff.html`` into ``out_dir``."""
    from .csv_text import to_csv
    from .writing import atomic_write, check_writable
    out = check_writable(out_dir)
    paths = {"csv": out / "diff.csv", "html": out / "diff.html"}
    atomic_write(paths["csv"], to_csv(diff))
    atomic_write(paths["html"], render_html(diff, old, new, out))
    return paths


def add_parser(sub) -> None:
    """Register ``verifier diff`` on the CLI's subparsers."""
    p = sub.add_parser("diff", help="compare two report folders (e.g. two torch versions)",
                       description="List the cases whose status changed between two report folders and the "
                                   "largest error changes; write diff.csv and diff.html. Exit 1 if a case "
                                   "regressed.")
    p.add_argument("old", metavar="OLD_REPORT_DIR")
    p.add_argument("new", metavar="NEW_REPORT_DIR")
    p.add_argument("-o", "--output", metavar="DIR", default=None,
                   help="where diff.csv and diff.html go (default: NEW_REPORT_DIR)")


def command(args: argparse.Namespace) -> int:
    """Run ``verifier diff``: 0 no regression, 1 a case regressed (usage errors raise VerifierError)."""
    old, new = read_report(args.old), read_report(args.new)
    diff = compare(old, new)
    paths = write_diff(diff, old, new, args.output or args.new)
    print(terminal_text(diff, old, new))
    print(f"\nwrote {paths['csv']} and {paths['html']}")
    return 1 if counts(diff)["regressed"] else 0
