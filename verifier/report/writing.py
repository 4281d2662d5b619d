"""Tables → files: ``summary.csv``, ``details.csv`` and ``report.html``.

Files are written atomically: all of them are first written in full to
temporary files in the report directory, then renamed over the old ones one
after the other (a rename within a directory is atomic). A run killed before
that point leaves the previous report exactly as it was; only a kill in the
microseconds between the renames could leave files of two runs side by side,
and each of them is still whole. tests/test_atomic.py kills writers midway.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Sequence

import jinja2
import numpy as np
import pandas as pd

from ..run.runner import CaseResult
from . import folder, heatmap, html_table, tables
from .csv_text import to_csv

HTML_ROWS_PER_CASE = 200   # detail rows shown per case in the HTML (the CSV has all)


def environment(command: str | None = None) -> dict[str, str]:
    """Versions and context printed at the top of every report."""
    import mpmath
    import sympy
    import torch
    return {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": command or " ".join(["verifier", *sys.argv[1:]]),
        "python": platform.python_version(), "torch": torch.__version__, "sympy": sympy.__version__,
        "numpy": np.__version__, "pandas": pd.__version__, "mpmath": mpmath.__version__,
        "platform": platform.platform(),
    }


def check_writable(directory: str | Path) -> Path:
    """Create ``directory`` if needed and prove the whole report can be written there (see folder.py)."""
    return folder.check_report_dir(directory)


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename."""
    atomic_write_all({path: text})


def atomic_write_all(files: dict[Path, str]) -> None:
    """Write every file to a temporary file beside it, flushed to disk, then rename them all into place."""
    staged: list[tuple[str, Path]] = []
    umask = os.umask(0)
    os.umask(umask)
    try:
        for path, text in files.items():
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=folder.tmp_prefix(path.name), suffix=".tmp")
            staged.append((tmp, path))
            os.chmod(tmp, 0o666 & ~umask)    # mkstemp's 0600 would hide the report from everyone else
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())   # a crash of the machine must not rename an empty file in
        for tmp, path in staged:
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in staged:
            Path(tmp).unlink(missing_ok=True)
        raise


def write_reports(results: Sequence[CaseResult], directory: str | Path, *, command: str | None = None,
                  load_errors: Sequence[str] = ()) -> dict[str, Path]:
    """Write the three report files and return their paths."""
    out = check_writable(directory)
    detail = tables.details(results)
    summ = tables.summary(results, detail)
    check_rows = tables.checks(results)
    paths = {"summary": out / "summary.csv", "details": out / "details.csv", "checks": out / "checks.csv",
             "html": out / "report.html"}
    env = environment(command)
    html = render_html(summ, detail, env, load_errors, check_rows)
    # `verifier diff` reads environment.json to say what changed between two runs (torch version, machine)
    paths["environment"] = out / "environment.json"
    atomic_write_all({paths["summary"]: to_csv(summ), paths["details"]: to_csv(detail),
                      paths["checks"]: to_csv(check_rows), paths["html"]: html,
                      paths["environment"]: json.dumps(env, indent=2)})
    return paths


def _styled(df: pd.DataFrame, table_id: str, link_cases: bool = False) -> str:
    """``df`` as the report's HTML table: failing rows coloured, numbers formatted, text escaped."""
    if df.empty:
        return "<p><em>none</em></p>"
    shown = df
    if link_cases:
        shown = df.assign(case=[f'<a href="#case-{_anchor(c, d)}">{html.escape(str(c))}</a>'
                                for c, d in zip(df["case"], df["dtype"])])
    return html_table.render(shown, table_id, formats=_formatters(shown), raw=("case",) if link_cases else (),
                             row_colour=html_table.failing_rows(shown))


# Values get every digit a float64 has; errors and tolerances three significant ones.
_FULL_PRECISION = ("exact", "autograd", "finite_diff")


def _formatters(df: pd.DataFrame) -> dict:
    return {col: html_table.float_format(17 if col in _FULL_PRECISION else 3)
            for col in df.columns if pd.api.types.is_float_dtype(df[col])}


def _short_messages(summ: pd.DataFrame, limit: int = 160) -> pd.DataFrame:
    """The summary with long messages cut (the case's details section and summary.csv have them whole)."""
    if "message" not in summ or summ.empty:
        return summ
    cut = summ["message"].fillna("").astype(str)
    return summ.assign(message=[m if len(m) <= limit else m[:limit - 1] + "…" for m in cut])


def _anchor(case: str, dtype: str) -> str:
    return f"{case}-{dtype}".replace(".", "-")


def render_html(summ: pd.DataFrame, detail: pd.DataFrame, env: dict[str, str],
                load_errors: Sequence[str] = (), check_rows: pd.DataFrame | None = None) -> str:
    """The HTML report: overview first, then the summary, then details per case."""
    templates = jinja2.Environment(loader=jinja2.PackageLoader("verifier.report", "templates"),
                                   autoescape=jinja2.select_autoescape(["html", "j2"]))
    sections = []
    groups = {key: group for key, group in detail.groupby(["case", "dtype"], sort=False)} if not detail.empty \
        else {}
    for row in summ.itertuples():
        rows = groups.get((row.case, row.dtype), detail.iloc[0:0])
        sections.append({
            "anchor": _anchor(row.case, row.dtype), "case": row.case, "dtype": row.dtype, "status": row.status,
            "message": row.message, "shown": min(len(rows), HTML_ROWS_PER_CASE), "total": len(rows),
            "table": jinja2.utils.markupsafe.Markup(_styled(rows.head(HTML_ROWS_PER_CASE), f"d-{row.Index}")),
            "heatmaps": heatmap.for_case(rows),
        })
    return templates.get_template("report.html.j2").render(
        env=env, counts=tables.counts(summ), total=len(summ),
        worst=jinja2.utils.markupsafe.Markup(_styled(tables.worst(summ), "worst", link_cases=True)),
        legend=heatmap.legend_css(),
        families=jinja2.utils.markupsafe.Markup(_styled(tables.by_family(summ), "families")),
        summary=jinja2.utils.markupsafe.Markup(_styled(_short_messages(summ), "summary", link_cases=True)),
        sections=sections, load_errors=list(load_errors),
        attribution=tables.attribution_counts(summ),
        check_counts=jinja2.utils.markupsafe.Markup(_styled(_check_counts(check_rows), "check-counts")),
        check_issues=jinja2.utils.markupsafe.Markup(_styled(_check_issues(check_rows), "check-issues")),
    )


def _check_counts(check_rows: pd.DataFrame | None) -> pd.DataFrame:
    """Check × status counts (every check row of the run)."""
    if check_rows is None or check_rows.empty:
        return pd.DataFrame()
    return (check_rows.pivot_table(index="check", columns="status", values="case", aggfunc="count", fill_value=0)
            .reset_index())


def _check_issues(check_rows: pd.DataFrame | None) -> pd.DataFrame:
    """The check rows that failed or were skipped, with why."""
    if check_rows is None or check_rows.empty:
        return pd.DataFrame()
    return check_rows[check_rows["status"] != "pass"]
