"""``report.html``: a first screen that says what failed and why, then every case, collapsed when it passed.

Order of the page (the first screen answers "did it pass, and if not, what
and why"): status counts as links; the *not passing* table (fail, error,
timeout) with the one-line reason and who is wrong, before anything else;
a sortable, filterable table of every case × dtype (plain HTML that a small
inline script makes sortable and filterable: no network at view time);
the overview (environment, attribution, checks, families) folded away; then
one ``<details>`` section per case × dtype, open when it did not pass, with
its description, source, expressions, function origins, the derivation's
numbers for small cases, heat maps and its first mismatching elements.

Size (the built-in library's report must stay under 1.5 MB; it is 1.04 MB,
``benchmarks/report_scale.py --library``): a section of a passing case shows
its worst element and, when it shows something, its autograd heat map; no
table, no derivation. The rows kept by the run (:mod:`verifier.run.digest`)
are in details.csv.
"""

from __future__ import annotations

import html
import os
from typing import Sequence

import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup

from ..run import digest
from ..run.runner import CaseResult
from ..verdict.failure import callable_name
from . import heatmap, html_table, tables

#: Detail rows shown in the section of a case that did not pass (details.csv has the rows the run kept).
ROWS_NOT_PASSING = 20
#: A passing case's heat map is drawn when an element's error reaches this fraction of its allowance.
PASSING_MAP_RATIO = 1e-2
#: Entries up to which the section prints v, Jᵀv and the output in full.
DERIVATION_UP_TO = 100
NOT_PASSING = ("fail", "non_finite", "error", "timeout", "out_of_memory")   # everything but pass and skip
_SECTION_COLUMNS = ["input", "index", "exact", "autograd", "finite_diff", "abs_err", "tolerance", "rel_err",
                    "fd_abs_err", "attribution", "ok"]
_CASE_TABLE = ["case", "dtype", "status", "who_wrong", "message", "worst_ratio", "max_rel_err", "check_max_rel_err",
               "max_fd_rel_err",
               "elements", "mismatched", "grad_fn", "family", "seconds"]
_FULL_PRECISION = ("exact", "autograd", "finite_diff")


def anchor(case: str, dtype: str) -> str:
    return f"{case}-{dtype}".replace(".", "-")


def render(results: Sequence[CaseResult], summ: pd.DataFrame, env: dict[str, str],
           load_errors: Sequence[str] = (), check_rows: pd.DataFrame | None = None) -> str:
    templates = jinja2.Environment(loader=jinja2.PackageLoader("verifier.report", "templates"),
                                   autoescape=jinja2.select_autoescape(["html", "j2"]),
                                   trim_blocks=True, lstrip_blocks=True)   # no indentation repeated 1000 times
    counts = tables.counts(summ)
    bad = summ[summ["status"].isin(NOT_PASSING)]
    return templates.get_template("report.html.j2").render(
        env=env, counts=counts, total=len(summ), load_errors=list(load_errors),
        not_passing=Markup(_table(_one_line(bad)[["case", "dtype", "status", "who_wrong", "message"]], "not-passing",
                                  link=True)) if not bad.empty else None,
        cases=Markup(_table(_one_line(summ)[_CASE_TABLE], "cases", link=True)),
        worst=Markup(_table(tables.worst(summ), "worst", link=True)),
        families=Markup(_table(tables.by_family(summ), "families")),
        attribution=tables.attribution_counts(summ), legend=heatmap.legend_css(),
        check_counts=Markup(_table(_check_counts(check_rows), "check-counts")),
        check_issues=Markup(_table(_check_issues(check_rows), "check-issues")),
        sections=[_section(r, row) for r, row in zip(results, summ.itertuples())],
    )


def _one_line(summ: pd.DataFrame, limit: int = 200) -> pd.DataFrame:
    """The summary with each message's first line, cut (the case's section has it whole)."""
    if summ.empty:
        return summ
    first = [str(m).split("\n", 1)[0] for m in summ["message"].fillna("")]
    return summ.assign(message=[m if len(m) <= limit else m[:limit - 1] + "…" for m in first])


def _table(df: pd.DataFrame, table_id: str, link: bool = False) -> str:
    """``df`` as the report's HTML table: rows coloured and tagged by status, numbers formatted, text escaped."""
    if df.empty:
        return "<p><em>none</em></p>"
    shown = df
    if link and "case" in df and "dtype" in df:
        shown = df.assign(case=[f'<a href="#case-{anchor(c, d)}">{html.escape(str(c))}</a>'
                                for c, d in zip(df["case"], df["dtype"])])
    status = shown["status"].astype(str).tolist() if "status" in shown else None
    return html_table.render(
        shown, table_id, raw=("case",) if link else (), row_colour=html_table.failing_rows(shown),
        formats={col: html_table.float_format(17 if col in _FULL_PRECISION else 3)
                 for col in shown.columns if pd.api.types.is_float_dtype(shown[col])},
        row_attrs=(lambda i: f' data-status="{html.escape(status[i])}"') if status else None)


def _section(r: CaseResult, row) -> dict:
    rows = r.rows
    passing = r.status not in NOT_PASSING
    case = r.case
    info = []
    if case is not None:
        if case.description:
            info.append(("description", case.description))
        if case.source:
            info.append(("source", _relative(case.source)))
        torch_src, sympy_src = _text(case.torch_fn), _text(case.sympy_fn)
        info += [("forward", torch_src)] if torch_src == sympy_src else [("torch", torch_src), ("sympy", sympy_src)]
        for name, origin in (case.functions or {}).items():
            info.append(("function", f"{name} → {origin}"))
    if r.grad_fn:
        info.append(("grad_fn", r.grad_fn))
    if r.route:
        gap = getattr(r.exact, "route_gap", None)
        info.append(("exact route", r.route + ("" if gap is None else f" (the two routes differ by {gap:.3g})")))
    shown = _shown_rows(rows, passing)
    return {
        "anchor": anchor(r.name, r.dtype), "case": r.name, "dtype": r.dtype, "status": r.status,
        "open": not passing, "message": r.message, "who_wrong": row.who_wrong, "info": info,
        "derivation": [] if passing else _derivation(r),
        "heatmaps": _maps(r, rows, passing),
        "elements": int(r.stats["elements"]) if r.stats else len(rows), "kept": len(rows),
        "worst": _worst_line(rows) if passing else "",
        "table": Markup(_table(shown, f"d-{row.Index}")) if shown is not None else None, "shown": 0 if
        shown is None else len(shown),
    }


def _maps(r: CaseResult, rows: pd.DataFrame, passing: bool) -> list:
    """The section's heat maps: both sides when it did not pass; when it did, autograd's, if it shows anything.

    A passing case's map is drawn when an element comes within ``PASSING_MAP_RATIO`` of its allowance or
    lies at a kink; below that it is one pale blue and its worst-element line says all (size: the
    library's report keeps 141 of its 1,304 passing maps).
    """
    maps = heatmap.from_grids(r.heat) if r.heat is not None else heatmap.for_case(rows)
    if not passing:
        return maps
    at_kink = bool((r.stats or {}).get("at_kink", 0))
    return [m for m in maps if m.side == "autograd" and (at_kink or m.max_ratio >= PASSING_MAP_RATIO)]


def _relative(source: str) -> str:
    """``cases/x.yaml:7`` for a file under the working directory (shorter, and what a reader types), else as is."""
    cwd = os.getcwd() + os.sep
    return source[len(cwd):] if source.startswith(cwd) else source


def _text(fn) -> str:
    return getattr(fn, "source", None) or callable_name(fn)


def _shown_rows(rows: pd.DataFrame, passing: bool) -> pd.DataFrame | None:
    """The first mismatching rows of a case that did not pass, worst first (None for a passing case)."""
    if passing or rows is None or rows.empty:
        return None
    columns = {c: rows[c].to_numpy() for c in rows.columns}
    order = np.argsort(-digest.badness(columns, len(rows)), kind="stable")[:ROWS_NOT_PASSING]
    return rows.iloc[order][[c for c in _SECTION_COLUMNS if c in rows]]


def _worst_line(rows: pd.DataFrame) -> str:
    """One line on a passing case's worst element: where, how far, against what it is allowed."""
    if rows is None or rows.empty:
        return ""
    columns = {c: rows[c].to_numpy() for c in ("abs_err", "tolerance", "ok")}
    i = int(np.argmax(digest.badness(columns, len(rows))))
    r = rows.iloc[i]
    return (f"worst element {r['input']}{r['index']}: |autograd − exact| = {float(r['abs_err']):.3g}, "
            f"allowed {float(r['tolerance']):.3g}")


def _derivation(r: CaseResult) -> list[tuple[str, str]]:
    """The explain-style numbers of a small case: v, the output y, Σ v⊙y and Jᵀv (17 significant digits)."""
    ex, ag = r.exact, r.autograd
    if ex is None or ag is None or ex.output is None or np.size(ex.output) > DERIVATION_UP_TO:
        return []
    y = np.asarray(ex.output, dtype=np.float64)
    v = np.ones_like(y) if ag.weights is None else np.broadcast_to(np.asarray(ag.weights, np.float64), y.shape)
    out = [("output y", _numbers(y)), ("weights v", "none: y.backward() (y is a scalar)" if ag.weights is None
                                       else _numbers(v)),
           ("Σ v⊙y", f"{float(np.sum(v * y)):.17g}")]
    for name, j in (r.jacobian or {}).items():     # the run kept it for a small case that did not pass
        out.append((f"J = ∂y/∂{name} (exact, {j.shape[0]} × {j.shape[1]})", _numbers(j)))
    for name, g in ex.vjp.items():
        if np.size(g) <= DERIVATION_UP_TO:
            out.append((f"Jᵀv for {name} (exact)", _numbers(np.asarray(g))))
    return out      # the gap between the two exact routes is in every section's "exact route" line


def _numbers(a: np.ndarray) -> str:
    return np.array2string(np.asarray(a, dtype=np.float64), precision=17, separator=", ", max_line_width=120,
                           floatmode="maxprec", threshold=DERIVATION_UP_TO + 1)


def _check_counts(check_rows: pd.DataFrame | None) -> pd.DataFrame:
    """Check × status counts (every check row of the run)."""
    if check_rows is None or check_rows.empty:
        return pd.DataFrame()
    return (check_rows.pivot_table(index="check", columns="status", values="case", aggfunc="count", fill_value=0)
            .reset_index())


def _check_issues(check_rows: pd.DataFrame | None) -> pd.DataFrame:
    """The check rows that failed (skipped ones are counted above)."""
    if check_rows is None or check_rows.empty:
        return pd.DataFrame()
    return check_rows[check_rows["status"] == "fail"]
