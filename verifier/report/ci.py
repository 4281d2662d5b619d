"""What CI reads: ``results.json`` (schema'd), a Markdown summary, JUnit XML, GitHub annotations.

* ``results.json``: the run's counts, attribution counts, environment, and
  one entry per case × dtype with its status, reason, who is wrong, numbers
  and checks; :data:`RESULTS_SCHEMA` is its JSON Schema (``schema`` names the
  version). NaN and infinities are written as ``null`` and ``"inf"``.
* ``summary.md``: counts and the not-passing table; ``verifier run`` also
  appends it to ``$GITHUB_STEP_SUMMARY`` when that is set.
* JUnit XML (``--junit-xml PATH``): one ``<testcase>`` per case × dtype,
  its numbers as ``<properties>``, ``<failure>``/``<error>`` with the reason.
* ``::error file=…,line=…::`` lines for GitHub Actions (``--annotate``),
  from the case's source line.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Sequence

import pandas as pd

from ..run.runner import CaseResult
from . import tables

SCHEMA_ID = "verifier-results/1"
NUMBERS = ["worst_ratio", "max_rel_err", "max_abs_err", "check_max_rel_err", "check_max_abs_err", "max_fd_rel_err",
           "max_fd_abs_err", "max_ag_fd_rel_err", "max_ulp_err", "elements", "mismatched", "fd_outside_tol", "fd_elements", "seconds"]
NOT_PASSING = ("fail", "non_finite", "error", "timeout", "out_of_memory")   # everything but pass and skip
MARKDOWN_ROWS = 50

_NUMBER = {"type": ["number", "null", "string"]}   # "inf" / "-inf" as strings, NaN as null
RESULTS_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "verifier results.json",
    "type": "object",
    "required": ["schema", "counts", "attribution", "environment", "load_errors", "results"],
    "properties": {
        "schema": {"const": SCHEMA_ID},
        "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
        "attribution": {"type": "object", "additionalProperties": {"type": "integer"}},
        "environment": {"type": "object", "additionalProperties": {"type": "string"}},
        "load_errors": {"type": "array", "items": {"type": "string"}},
        "results": {"type": "array", "items": {
            "type": "object",
            "required": ["case", "dtype", "status", "message", "who_wrong", "source", "numbers", "checks"],
            "properties": {
                "case": {"type": "string"}, "dtype": {"type": "string"},
                "status": {"enum": ["pass", "fail", "non_finite", "error", "skip", "timeout", "out_of_memory"]},
                "message": {"type": "string"}, "who_wrong": {"type": "string"},
                "source": {"type": ["string", "null"]},
                "numbers": {"type": "object", "additionalProperties": _NUMBER},
                "checks": {"type": "array", "items": {
                    "type": "object", "required": ["check", "status"],
                    "properties": {"check": {"type": "string"}, "status": {"type": "string"},
                                   "detail": {"type": "string"}, "max_abs_err": _NUMBER,
                                   "max_rel_err": _NUMBER}}},
            }}},
    },
}


def _number(value):
    if value is None:
        return None
    value = float(value)
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def _source(result: CaseResult) -> str | None:
    return getattr(result.case, "source", None) if result.case is not None else None


def results_json(results: Sequence[CaseResult], summ: pd.DataFrame, env: dict, load_errors: Sequence[str]) -> str:
    entries = []
    for r, row in zip(results, summ.to_dict("records")):
        entries.append({
            "case": r.name, "dtype": r.dtype, "status": r.status, "message": r.message or "",
            "who_wrong": row["who_wrong"], "source": _source(r),
            "numbers": {k: _number(row[k]) for k in NUMBERS},
            "checks": [{"check": c.name, "status": c.status, "detail": c.detail or "",
                        "max_abs_err": _number(c.max_abs_err), "max_rel_err": _number(c.max_rel_err)}
                       for c in r.checks],
        })
    doc = {"schema": SCHEMA_ID, "counts": tables.counts(summ), "attribution": tables.attribution_counts(summ),
           "environment": {k: str(v) for k, v in env.items()}, "load_errors": [str(e) for e in load_errors],
           "results": entries}
    return json.dumps(doc, indent=1, allow_nan=False)


def _cell(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    text = text if len(text) <= limit else text[:limit - 1] + "…"
    return text.replace("|", "\\|")


def markdown(summ: pd.DataFrame, load_errors: Sequence[str] = (), report: str = "report.html") -> str:
    """The run as GitHub-flavoured Markdown: counts, then the cases that did not pass."""
    counts = tables.counts(summ)
    mark = "✅" if not any(counts[s] for s in NOT_PASSING) and not load_errors else "❌"
    head = ", ".join(f"{n} {label}" for label, n in (
        ("failed", counts["fail"]), ("non-finite", counts["non_finite"]), ("errors", counts["error"]),
        ("timeouts", counts["timeout"]), ("out of memory", counts["out_of_memory"]), ("passed", counts["pass"]),
        ("skipped", counts["skip"])) if n)
    out = [f"## {mark} verifier: {head or 'nothing ran'}", ""]
    if load_errors:
        out += [f"**{len(load_errors)} case file(s) did not load:**", ""]
        out += [f"- `{_cell(e, 300)}`" for e in load_errors] + [""]
    bad = summ[summ["status"].isin(NOT_PASSING)]
    if not bad.empty:
        out += ["| case | dtype | status | who is wrong | worst error / allowed | reason |",
                "|---|---|---|---|---|---|"]
        for row in bad.head(MARKDOWN_ROWS).itertuples():
            ratio = "" if pd.isna(row.worst_ratio) else f"{row.worst_ratio:.3g}"
            out.append(f"| `{_cell(row.case)}` | {row.dtype} | {row.status} | {_cell(row.who_wrong)} | {ratio} | "
                       f"{_cell(str(row.message).split(chr(10), 1)[0])} |")
        if len(bad) > MARKDOWN_ROWS:
            out.append(f"\n… and {len(bad) - MARKDOWN_ROWS} more (summary.csv, {report}).")
    out += ["", f"Full report: `{report}`; every case in `summary.csv`, `results.json`."]
    return "\n".join(out) + "\n"


def junit_xml(results: Sequence[CaseResult], summ: pd.DataFrame) -> str:
    """JUnit XML: one testcase per case × dtype, numbers as properties, the reason in failure/error."""
    counts = tables.counts(summ)
    suite = ET.Element("testsuite", name="verifier", tests=str(len(results)),
                       failures=str(counts["fail"] + counts["non_finite"]),
                       errors=str(counts["error"] + counts["timeout"] + counts["out_of_memory"]), skipped=str(counts["skip"]),
                       time=f"{sum(r.seconds for r in results):.3f}")
    for r, row in zip(results, summ.to_dict("records")):
        attrs = {"classname": f"verifier.{row['family']}", "name": f"{r.name}[{r.dtype}]", "time": f"{r.seconds:.3f}"}
        file, line = _file_line(_source(r))
        if file:
            attrs["file"] = file
            if line:
                attrs["line"] = str(line)
        case = ET.SubElement(suite, "testcase", attrs)
        props = ET.SubElement(case, "properties")
        for key in ("status", "who_wrong", *NUMBERS):
            value = row[key]
            if isinstance(value, float) and math.isnan(value):
                continue
            ET.SubElement(props, "property", name=key, value=str(_number(value) if key in NUMBERS else value))
        first = first_line(r, row)
        if r.status in ("fail", "non_finite"):
            ET.SubElement(case, "failure", message=first, type="GradientMismatch" if r.status == "fail"
                          else "NonFinite").text = r.message
        elif r.status in ("error", "timeout", "out_of_memory"):
            ET.SubElement(case, "error", message=first, type=r.status).text = r.message
        elif r.status == "skip":
            ET.SubElement(case, "skipped", message=r.message or "skipped")
    root = ET.Element("testsuites")
    root.append(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def first_line(result: CaseResult, row: dict) -> str:
    """One informative line: 'x: 12/12 wrong, max rel 0.5; FD agrees with exact → backward is wrong'."""
    if result.status in ("error", "timeout", "out_of_memory"):
        return f"{result.status}: {str(result.message).splitlines()[0] if result.message else ''}"[:300]
    row = {**row, **(result.stats or {})}
    parts = []
    if row.get("mismatched"):
        parts.append(f"{row['mismatched']}/{row['elements']} elements wrong, max rel {row['max_rel_err']:.3g}")
        known, agrees = row.get("mismatched_fd_known", 0), row.get("mismatched_fd_agrees", 0)
        if known and agrees == known:
            parts.append("FD agrees with exact → backward is wrong")
        elif known:
            parts.append(f"FD agrees with exact on {agrees}/{known} → autograd or the exact side is wrong")
    others = [c for c in result.checks if not c.ok and not c.skipped and c.name != "gradient"]
    if others:      # each with its own largest error, where it has one (not the gradient's 0)
        parts.append("failed: " + ", ".join(c.name + (f" (max rel {c.max_rel_err:.3g})" if c.max_rel_err is not None
                                                      and c.max_rel_err == c.max_rel_err else "")
                                            for c in others))
    return "; ".join(parts) or (str(result.message).splitlines()[0] if result.message else result.status)


def _file_line(source: str | None) -> tuple[str | None, int | None]:
    if not source or source.startswith("python:"):
        return None, None
    file, _, line = source.rpartition(":")
    return (file, int(line)) if file and line.isdigit() else (source, None)


def _escape(text: str, prop: bool = False) -> str:
    text = str(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if prop else text


def annotations(results: Sequence[CaseResult], summ: pd.DataFrame) -> list[str]:
    """GitHub Actions workflow commands, one per not-passing case × dtype, at the case's source line."""
    out = []
    for r, row in zip(results, summ.to_dict("records")):
        if r.status not in NOT_PASSING:
            continue
        file, line = _file_line(_source(r))
        where = f"file={_escape(file, True)}" + (f",line={line}" if line else "") + "," if file else ""
        title = _escape(f"verifier: {r.name} [{r.dtype}] {r.status}", True)
        out.append(f"::error {where}title={title}::{_escape(first_line(r, row))}")
    return out


def outputs(results: Sequence[CaseResult], summ: pd.DataFrame, out: Path, env: dict,
            load_errors: Sequence[str]) -> dict[str, tuple[Path, str]]:
    """The CI files every run writes beside the report: results.json and summary.md."""
    return {"json": (out / "results.json", results_json(results, summ, env, load_errors)),
            "markdown": (out / "summary.md", markdown(summ, load_errors))}
