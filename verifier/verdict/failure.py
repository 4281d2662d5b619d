"""The sectioned text of a failed case: what the pytest plugin and ``assert_gradients`` print.

It reads like xarray's and numpy's assertion messages: a summary first
("Mismatched elements: 3 / 12 (25%)", the largest differences), then the
first mismatching elements as a table, so the reader sees at once *where*
and *by how much* autograd disagrees with the exact value, and whether the
finite differences side with the exact value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd

from ..cases.case import COMPLEX_DTYPES

if TYPE_CHECKING:   # pragma: no cover
    from ..cases.case import Case, InputSpec
    from ..run.runner import CaseResult

ROWS_SHOWN = 5            # first mismatching elements listed
VALUES_SHOWN = 12         # inputs with at most this many elements are printed in full


def describe(result: "CaseResult", rows_shown: int = ROWS_SHOWN) -> str:
    """The failure text of one case × dtype result (any status)."""
    case = result.case
    verdict = {"fail": "failed", "non_finite": "met inf or nan", "error": "could not run", "timeout": "timed out",
               "out_of_memory": "ran out of memory"}.get(result.status, result.status)
    out = [f"Gradient check {verdict}: case '{case.name}' [{result.dtype}]"]
    out += _section("Case", _case_lines(result))
    out += _section("Inputs", _input_lines(case, result))
    rows = result.rows
    if result.status in ("error", "timeout", "out_of_memory"):
        out += _section("Error", [result.message or "(no message)"])
    if rows is not None and not rows.empty and not bool(rows["ok"].all()):
        out += _section("Gradient (autograd against exact)", _mismatch_summary(rows))
        out += _section("First mismatching elements", _table(rows[~rows["ok"].astype(bool)].head(rows_shown)))
    others = [f"{c.name}: {c.detail}" for c in result.checks if not c.ok and c.name != "gradient"]
    if others:
        out += _section("Other failed checks", others)
    if result.status == "fail" and not others and (rows is None or rows.empty or rows["ok"].all()):
        out += _section("Message", [result.message])
    return "\n".join(out)


def describe_all(results: Sequence["CaseResult"]) -> str:
    """The failure texts of several results, separated by blank lines."""
    return "\n\n".join(describe(r) for r in results)


def _section(title: str, lines: list[str]) -> list[str]:
    return ["", title, *("  " + line for line in lines)]


def _case_lines(result: "CaseResult") -> list[str]:
    case = result.case
    lines = [f"name: {case.name}", f"dtype: {result.dtype}"]
    if case.source:
        lines.append(f"source: {case.source}")
    if case.description:
        lines.append(f"description: {case.description}")
    torch_src, sympy_src = _source(case.torch_fn), _source(case.sympy_fn)
    if torch_src and torch_src == sympy_src:
        lines.append(f"forward: {torch_src}")
    else:
        lines += [f"torch: {torch_src}", f"sympy: {sympy_src}"]
    if result.grad_fn:
        lines.append(f"grad_fn: {result.grad_fn}")
    return lines


def _source(fn) -> str:
    """An expression's text, or a Python callable's name."""
    return getattr(fn, "source", None) or callable_name(fn)


def callable_name(fn) -> str:
    """``MyFunction.apply`` for a custom autograd Function (not ``Function.apply``), else the qualname."""
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, type):
        return f"{owner.__qualname__}.{fn.__name__}"
    return getattr(fn, "__qualname__", None) or type(fn).__name__


def _input_lines(case: "Case", result: "CaseResult") -> list[str]:
    lines = [_describe_input(spec, result.dtype) for spec in case.inputs]
    go = case.grad_output
    if go is None:
        lines.append("grad_output: none (y.backward() with no argument)")
    elif go.kind == "value":
        lines.append(f"grad_output: {_values(np.asarray(go.value, dtype=np.result_type(*np.ravel(go.value), 0.0)))}")
    else:
        lines.append(f"grad_output: {go.kind}" + (f" (seed {go.seed})" if go.kind == "random" else ""))
    return lines


def _describe_input(spec: "InputSpec", dtype: str) -> str:
    # a complex input's own dtype; a real input of a complex case has the real dtype of its parts
    kind = spec.dtype or (COMPLEX_DTYPES.get(dtype, dtype) if spec.number == "real" else spec.number or dtype)
    role = "" if spec.differentiated else ", constant"
    head = f"{spec.name}: shape {list(spec.shape)}, {kind}{role}"
    values = spec.values()
    if values.size <= VALUES_SHOWN:
        return f"{head}, values {_values(values)}"
    if spec.sample:
        params = ", ".join(f"{k} {v:g}" for k, v in spec.params.items())
        return f"{head}, sampled {spec.sample} (seed {spec.seed}{', ' + params if params else ''})"
    if spec.fill is not None:
        return f"{head}, filled with {spec.fill:g}"
    return f"{head}, values from {values.min():.6g} to {values.max():.6g}"


def _values(arr: np.ndarray) -> str:
    text = np.array2string(np.asarray(arr), precision=6, separator=", ", threshold=VALUES_SHOWN,
                           max_line_width=10**6)
    return " ".join(text.split())


def element(index: str) -> str:
    """``"(0, 1)"`` as the row index reads in Python: ``[0, 1]`` (empty for a scalar)."""
    inner = index.strip("()").rstrip(",")
    return f"[{inner}]" if inner else ""


def _mismatch_summary(rows: pd.DataFrame) -> list[str]:
    bad = int((~rows["ok"].astype(bool)).sum())
    total = len(rows)
    lines = [f"Mismatched elements: {bad} / {total} ({100.0 * bad / total:.0f}%)"]
    for col, label in (("abs_err", "Max absolute difference"), ("rel_err", "Max relative difference")):
        errs = rows[col].astype(float)
        if errs.notna().any():
            at = rows.loc[errs.replace(np.nan, -1.0).idxmax()]
            lines.append(f"{label}: {errs.max():.3g} at {at['input']}{element(str(at['index']))}")
    fd_known = rows["finite_diff"].notna() & np.isfinite(rows["finite_diff"].astype(float))
    if fd_known.any():
        bad_rows = rows[~rows["ok"].astype(bool) & fd_known]
        agree = int(bad_rows["fd_ok"].astype(bool).sum())
        lines.append(f"Finite differences agree with exact on {agree} / {len(bad_rows)} mismatched elements"
                     + (" (so autograd is the odd one out)" if agree == len(bad_rows) and agree else ""))
    return lines


def _table(rows: pd.DataFrame) -> list[str]:
    header = ["element", "exact", "autograd", "finite diff", "error", "tolerance"]
    body = [[f"{r.input}{element(str(r.index))}", _part(r, "exact"), _part(r, "autograd"), _part(r, "finite_diff"),
             _num(r.abs_err, 3), _num(r.tolerance, 3)] for r in rows.itertuples()]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" if i < 1 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return [fmt.format(*header), *(fmt.format(*b) for b in body)]


def _part(row, column: str) -> str:
    """A value of the table, with its imaginary part where the case is complex (``*_imag`` columns)."""
    imag = getattr(row, f"{column}_imag", None)
    if imag is None or imag != imag:
        return _num(getattr(row, column), 17)
    return f"{complex(getattr(row, column), imag):.17g}"


def _num(value, digits: int) -> str:
    try:
        return f"{float(value):.{digits}g}"
    except (TypeError, ValueError):
        return str(value)
