"""The report's HTML tables: escaped text, formatted numbers, failing rows coloured and only those."""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np
import pandas as pd

from verifier.report import html_table


class _Rows(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows, self.styles, self.ids = [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.ids.append(attrs.get("id"))
        if tag == "tr":
            self.rows.append([])
            self.styles.append(attrs.get("style", ""))
        if tag in ("td", "th"):
            self.rows[-1].append("")

    def handle_data(self, data):
        if self.rows and self.rows[-1]:
            self.rows[-1][-1] += data


def _parse(text: str) -> _Rows:
    parsed = _Rows()
    parsed.feed(text)
    return parsed


def test_cells_are_escaped_formatted_and_nan_is_empty():
    df = pd.DataFrame({"exact": [1 / 3, np.nan], "message": ["<class 'NoneType'> & more", None],
                       "kind": pd.Categorical(["all_agree", "fd_inaccurate"]), "n": [3, 4]})
    page = _parse(html_table.render(df, "d-0", formats={"exact": html_table.float_format(17)}))
    assert page.ids == ["T_d-0"]
    assert page.rows[0] == ["exact", "message", "kind", "n"]
    assert page.rows[1] == ["0.33333333333333331", "<class 'NoneType'> & more", "all_agree", "3"]
    assert page.rows[2] == ["", "", "fd_inaccurate", "4"]
    assert "<class" not in html_table.render(df, "x")          # the raw text never reaches the page


def test_only_failing_rows_are_coloured():
    df = pd.DataFrame({"index": ["(0,)", "(1,)", "(2,)"], "ok": [True, False, True]})
    page = _parse(html_table.render(df, "d", row_colour=html_table.failing_rows(df)))
    assert [html_table.FAILED in s for s in page.styles] == [False, False, True, False]   # header, 3 rows
    status = pd.DataFrame({"case": ["a", "b", "c"], "status": ["pass", "error", "fail"]})
    page = _parse(html_table.render(status, "s", row_colour=html_table.failing_rows(status)))
    assert page.styles[1] == "" and html_table.ROW_COLOURS["error"] in page.styles[2]
    assert html_table.FAILED in page.styles[3]


def test_raw_columns_pass_through():
    df = pd.DataFrame({"case": ['<a href="#case-x">x</a>'], "dtype": ["float64"]})
    assert '<a href="#case-x">x</a>' in html_table.render(df, "w", raw=("case",))
