"""A DataFrame as an HTML table: escaped cells, formatted numbers, coloured rows.

``DataFrame.style.to_html()`` costs ~10 ms a table (its template renders
every cell through Jinja2 and CSS machinery); a report has one table per case
× dtype, so for the built-in library it took most of a warm ``verifier run``.
The report needs much less: escaped text, numbers to a chosen precision, and
a background colour on some rows. This writes that directly.
"""

from __future__ import annotations

import html
from typing import Callable, Mapping

import pandas as pd

#: A failing or broken row's background (the browser test looks for this colour).
ROW_COLOURS = {"fail": "#f8d0d0", "non_finite": "#f8d0d0", "error": "#f9e0b0", "timeout": "#f9e0b0",
               "out_of_memory": "#f9e0b0"}
FAILED = ROW_COLOURS["fail"]


def render(df: pd.DataFrame, table_id: str, *, formats: Mapping[str, Callable[[object], str]] | None = None,
           raw: tuple[str, ...] = (), row_colour: Callable[[int], str] | None = None,
           row_attrs: Callable[[int], str] | None = None) -> str:
    """``<table id=... class="grid t-<id>">`` of ``df`` (no index column).

    ``formats`` turn a column's values into text (NaN is always empty);
    columns in ``raw`` hold HTML already (escaped where they were built);
    every other cell is ``str()`` of its value, escaped. ``row_colour(i)``
    gives row i's background colour ('' for none); ``row_attrs(i)`` more
    attributes of its ``<tr>`` (escaped by the caller, with a leading space).
    """
    formats = formats or {}
    columns = [_cells(df[col], formats.get(col), col in raw) for col in df.columns]
    head = "".join(f"<th>{html.escape(str(col))}</th>" for col in df.columns)
    body = []
    for i, cells in enumerate(zip(*columns)):
        colour = row_colour(i) if row_colour else ""
        style = f' style="background-color: {colour}"' if colour else ""
        attrs = row_attrs(i) if row_attrs else ""
        # </td> and </tr> are optional in HTML and the browser closes them the same: 7% of the library's report
        body.append(f"<tr{style}{attrs}>" + "".join(f"<td>{c}" for c in cells))
    return (f'<table id="T_{html.escape(table_id)}" class="grid t-{html.escape(table_id)}">'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


def _cells(series: pd.Series, fmt, raw: bool) -> list[str]:
    values = series.tolist()
    if raw:
        return [str(v) for v in values]
    fmt = fmt or str
    return ["" if v is None or v != v else html.escape(fmt(v)) for v in values]    # v != v: NaN


def float_format(digits: int) -> Callable[[object], str]:
    """``f"{v:.{digits}g}"``."""
    return lambda v: f"{v:.{digits}g}"


def failing_rows(df: pd.DataFrame) -> Callable[[int], str]:
    """Row colours: by ``ok`` (False: failing) when the table has it, else by ``status``."""
    if "ok" in df:
        ok = df["ok"].to_numpy(dtype=bool)
        return lambda i: "" if ok[i] else FAILED
    if "status" in df:
        status = df["status"].astype(str).tolist()
        return lambda i: ROW_COLOURS.get(status[i], "")
    return lambda i: ""

