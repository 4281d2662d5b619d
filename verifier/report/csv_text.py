"""Tables as CSV text that a spreadsheet cannot mistake for formulas.

Case names, tags and messages come from case files written by other people.
A cell such as ``=HYPERLINK("http://...")`` or ``@SUM(...)`` opened in a
spreadsheet is a formula (CSV injection). Text cells that begin with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return get a leading ``'``, which
spreadsheets read as "text"; numbers (``-1.5`` in a text column included)
are left as they are.
"""

from __future__ import annotations

import pandas as pd

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutral(value):
    """``value`` with a leading ``'`` if it is text a spreadsheet would run as a formula."""
    if not isinstance(value, str) or not value.startswith(_TRIGGERS):
        return value
    try:
        float(value)
        return value                   # a number written as text: no formula
    except ValueError:
        return "'" + value


def to_csv(df: pd.DataFrame) -> str:
    """``df.to_csv(index=False)`` with every text cell neutralised."""
    text_columns = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])      # bool is numeric
                    and not pd.api.types.is_datetime64_any_dtype(df[c])]
    if text_columns:
        df = df.assign(**{c: df[c].astype(object).map(neutral) for c in text_columns})
    return df.to_csv(index=False)
