"""The audit's per-op table (audit.csv, audit.html), its totals and the grouped causes of non-passes.

One row per OpInfo: ``samples`` taken, ``unsupported`` samples (not expressible, so
never run, or refused by the mirror when run: an error saying "not supported"; the
reason of each is in ``reasons``), and over the other runs (sample × dtype) the
counts ``pass``, ``fail``, ``error`` (``timeout`` and ``out_of_memory``
included), ``worst_ratio`` (the largest error as a fraction of its allowance,
over every run of the op: above 1 is a fail), ``finding`` (a documented torch
fact, docs/torch-findings.md, that explains a fail) and ``reasons`` (why the op
is not mapped, why each sample is unsupported, what each non-pass said).

Every sample × dtype of a mapped op also lands in exactly one *class* (:data:`CLASSES`, the columns of
the same names): ``pass``; ``fact`` (a fail whose every failed check names a documented torch fact,
within the fact's measured size); ``refused`` (the verifier declined it with its reason: a sample the
case language cannot express, counted once per dtype, or a run that raised a deliberate refusal,
``errors.Refused``); ``timeout`` (or out of memory); ``unexplained`` (any other fail or error: a
false alarm, a crash or an undocumented torch finding). ``verifier audit`` exits 0 only when
``unexplained`` and ``timeout`` are both 0.
"""

from __future__ import annotations

import html
import math
import re
from collections import Counter, defaultdict
from pathlib import Path

import pandas as pd

from ..report import html_table
from ..report.csv_text import to_csv
from ..report.tables import summary
from ..report.writing import atomic_write, check_writable, write_reports

#: The class of every sample × dtype (see the module docstring), in the order the summary prints them.
CLASSES = ("pass", "fact", "refused", "timeout", "unexplained")
COLUMNS = ["op", "mapped", "samples", "unsupported", "runs", "pass", "fail", "error", "worst_ratio", "finding",
           "fact", "refused", "timeout", "unexplained", "reasons"]
#: A fail a documented torch fact explains names it in its text (verdict/torch_facts.py, docs/torch-findings.md).
_FACT = re.compile(r"known torch fact '([^']+)'")
_ERRORS = ("error", "timeout", "out_of_memory", "non_finite")


def refused(result) -> bool:
    """An error that is the verifier declining the sample (a deliberate refusal, ``errors.Refused``,
    marked by the runner as ``result.refused``), not a crash: unsupported. The message's wording
    never decides it: a crash whose text happens to say "not supported" stays an error.

    Also a sample of a ``subgradients_at_zero`` OpInfo (torch's convention at a point where the
    function has no derivative, e.g. a p-norm at the zero vector) whose exact side cannot judge it:
    the exact derivative has a pole there (error, non_finite), or the point is a kink of sqrt/power
    that the kink check cannot name (its only failed check is the kink declaration). A failed
    gradient, forward-mode or second-order check is never reclassified."""
    text = result.message or ""
    if result.status == "error" and getattr(result, "refused", False):
        return True
    if ".subgradients_at_zero." not in result.case.name:
        return False
    failed = [c.name for c in getattr(result, "checks", []) if not c.ok]
    no_exact = result.status == "error" and text.startswith("the exact ") and "cannot be evaluated" in text
    return no_exact or result.status == "non_finite" or (result.status == "fail" and failed == ["kink"])


def explained_by_fact(result) -> bool:
    """A fail whose every failed check names a documented torch fact (a fact names itself only within its
    measured size: verdict/torch_facts.py); results without check rows are read from their message."""
    if result.status not in ("fail", "non_finite"):     # non_finite: only a fact about torch's inf/nan names it
        return False
    failed = [c for c in (getattr(result, "checks", None) or []) if not c.ok and not c.skipped]
    if failed:
        return all(_FACT.search(c.detail or "") for c in failed)
    parts = (result.message or "").split("; ")
    return bool(_FACT.search(result.message or "")) and all(_FACT.search(p) for p in parts if ": " in p)


def outcome(result) -> str:
    """The class (CLASSES) of one run: pass, fact, refused, timeout or unexplained."""
    if result.status in ("pass", "skip"):
        return "pass"
    if refused(result):
        return "refused"
    if result.status in ("timeout", "out_of_memory"):
        return "timeout"
    return "fact" if explained_by_fact(result) else "unexplained"


def _ratio(result) -> float:
    value = (result.stats or {}).get("worst_ratio", float("nan"))
    return float(value) if value is not None else float("nan")


def per_op(audit) -> pd.DataFrame:
    """The table above, one row per planned OpInfo, in the audit's order."""
    by_case = defaultdict(list)
    if audit.results:
        summary(audit.results)              # fills each result's stats (worst_ratio) from every element
    for r in audit.results:
        by_case[r.case.name].append(r)
    rows = []
    for p in audit.plans:
        results = [r for c in p.cases for r in by_case.get(c.name, [])]
        late = [r for r in results if refused(r)]
        results = [r for r in results if not refused(r)]
        status = Counter("error" if r.status in _ERRORS else r.status for r in results)
        ratios = [x for x in (_ratio(r) for r in results) if not math.isnan(x)]
        fails = [r for r in results if r.status == "fail"]
        # an op's finding stands only when every fail of it names a fact: one unexplained fail keeps it ""
        findings = ({m.group(1) for r in fails for m in _FACT.finditer(r.message or "")}
                    if all(_FACT.search(r.message or "") for r in fails) else set())
        reasons = [] if p.mapped else [f"not mapped: {p.reason}"]
        reasons += [f"{n}x unsupported: {why}" for why, n in Counter(p.unsupported).items()]
        reasons += [f"{n}x unsupported (refused when run): {why}"
                    for why, n in Counter(_short(r.message, 120) for r in late).items()]
        reasons += [f"{r.status} {r.dtype} {r.case.name.rsplit('.', 1)[-1]}: {_short(r.message)}"
                    for r in results if r.status not in ("pass", "skip")]
        classes = Counter(outcome(r) for r in results)
        classes["refused"] += len(late) + len(p.unsupported) * len(getattr(audit, "dtypes", ()))
        rows.append({"op": p.label, "mapped": p.mapped, "samples": p.samples,
                     "unsupported": len(p.unsupported) + len({r.case.name for r in late}),
                     "runs": len(results), "pass": status["pass"] + status["skip"], "fail": status["fail"],
                     "error": status["error"], "worst_ratio": max(ratios) if ratios else float("nan"),
                     "finding": "; ".join(sorted(findings)),
                     **{c: classes[c] for c in CLASSES[1:]}, "reasons": " | ".join(reasons)})
    return pd.DataFrame(rows, columns=COLUMNS)


def _short(message: str, limit: int = 160) -> str:
    text = " ".join((message or "").split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def totals(table: pd.DataFrame, audit) -> dict:
    """OpInfos, mapped, samples, unsupported, runs, pass, fail, error, fails explained by a finding."""
    mapped = table[table["mapped"]]
    return {"opinfos": len(table), "mapped": len(mapped), "samples": int(mapped["samples"].sum()),
            "unsupported": int(mapped["unsupported"].sum()), "runs": int(mapped["runs"].sum()),
            "pass": int(mapped["pass"].sum()), "fail": int(mapped["fail"].sum()),
            "error": int(mapped["error"].sum()), "fail_ops_with_finding": int((mapped["finding"] != "").sum()),
            **{f"class_{c}": int(mapped[c].sum()) for c in CLASSES[1:]},
            "class_pass": int(mapped["pass"].sum()),
            "seconds": round(audit.seconds, 1), "dtypes": ",".join(audit.dtypes)}


def causes(audit) -> list[tuple[int, str, list[str], str]]:
    """Non-passes grouped by cause (numbers and input names blanked): (count, status, ops, cause), largest first."""
    groups = defaultdict(list)
    for r in audit.results:
        if r.status in ("pass", "skip"):
            continue
        text = r.message or r.status
        text = text.split("; ", 1)[0] if r.status == "fail" else text
        text = re.sub(r"[-+]?\d+(\.\d+)?(e[-+]?\d+)?", "#", re.sub(r"\bt\d+\b", "tN", text))[:160]
        groups[(outcome(r), text)].append(r.case.tags[1])
    order = {c: i for i, c in enumerate(CLASSES)}
    return sorted(((len(ops), s, sorted(set(ops)), t) for (s, t), ops in groups.items()),
                  key=lambda g: (-order[g[1]], -g[0]))


def render_html(table: pd.DataFrame, numbers: dict) -> str:
    """audit.html: the totals, then the per-op table (failing rows coloured)."""
    head = ", ".join(f"{k} {html.escape(str(v))}" for k, v in numbers.items())
    colours = [html_table.ROW_COLOURS["fail"] if u else html_table.ROW_COLOURS["error"] if t else ""
               for u, t in zip(table["unexplained"], table["timeout"])]
    body = html_table.render(table, "audit", formats={"worst_ratio": html_table.float_format(3)},
                             row_colour=lambda i: colours[i])
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>verifier audit</title>"
            "<style>table{border-collapse:collapse;font:12px sans-serif}td,th{border:1px solid #ccc;"
            "padding:2px 4px;vertical-align:top}</style></head><body><h1>Audit of torch's gradients against the "
            f"exact reference</h1><p>{head}</p><p>Detailed per-case reports: <a href='report.html'>report.html"
            f"</a>.</p>{body}</body></html>")


def write(audit, directory: str | Path, command: str | None = None) -> dict[str, Path]:
    """The usual reports of the runs (summary.csv, details.csv, report.html, ...) plus audit.csv and audit.html."""
    out = check_writable(directory)
    paths = write_reports(audit.results, out, command=command) if audit.results else {}
    table = per_op(audit)
    paths["audit"], paths["audit_html"] = out / "audit.csv", out / "audit.html"
    atomic_write(paths["audit"], to_csv(table))
    atomic_write(paths["audit_html"], render_html(table, totals(table, audit)))
    return paths
