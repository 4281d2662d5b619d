"""``verifier merge DIR… -o OUT``: report folders of the parts of one run (CI shards, pytest-xdist workers) as one report.

Each folder is read back from its files only (``summary.csv``,
``details.csv``, ``checks.csv``, ``results.json``, ``environment.json``;
nothing in them is executed) into results that the usual writer
(:func:`verifier.report.writing.write_reports`) turns into the merged
``summary.csv``, ``details.csv``, ``checks.csv``, ``report.html``,
``results.json``, ``summary.md`` and JUnit XML. The summary's numbers are
the parts' own (computed over every element where the case ran); the detail
rows are those the parts kept. Rows are ordered as one run over the same
folders orders them: by case file, then line (Python-registered cases last).

Refused, with what to do:

* a folder that is not a report folder, or whose files do not agree;
* the same case × dtype in two folders (overlapping shards, or one shard
  given twice: a merged report must not count a case twice);
* folders from different environments (``environment.json``: Python, torch,
  SymPy, NumPy, pandas, mpmath, platform) unless ``--allow-mixed``; the merged
  environment then lists every value;
* shards (``--shard K/N`` in their command) that do not cover 1..N unless
  ``--allow-partial``: a missing shard's cases would silently be absent.

What the parts do not keep is absent from the merged report.html: the heat
maps are drawn from the kept detail rows, and a case's section names no
torch/SymPy source text and no derivation numbers (the parts' own report.html has them).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import VerifierError
from ..run.checks import Check
from ..run.digest import STAT_COLUMNS, DetailPolicy, _FDSummary
from ..run.runner import CaseResult
from .diff import read_report

#: The environment entries that must agree (date and command may differ between parts).
SAME_ENVIRONMENT = ("python", "torch", "sympy", "numpy", "pandas", "mpmath", "platform")
_SHARD = re.compile(r"--shard[= ]\s*(\d+)\s*/\s*(\d+)")
_TEXT = ["message", "who_wrong", "grad_fn", "route", "family", "fd_method", "fd_note"]
_NOT_KEPT = SimpleNamespace(source="(not kept in a report folder: see the case file)")


def add_parser(sub) -> None:
    """Register ``verifier merge`` on the CLI's subparsers."""
    p = sub.add_parser("merge", help="combine report folders of shards into one report",
                       description="Combine the report folders of the parts of one run (verifier run --shard K/N, "
                                   "pytest -n N) into one report folder. Exit 1 when a merged case did not pass, 2 when "
                                   "a part had case files that did not load.")
    p.add_argument("folders", nargs="+", metavar="DIR", help="report folders written by verifier run or pytest")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="the merged report folder")
    p.add_argument("--junit-xml", metavar="PATH", default=None, help="also write JUnit XML here")
    p.add_argument("--allow-mixed", action="store_true",
                   help="merge folders from different environments (torch version, platform, ...)")
    p.add_argument("--allow-partial", action="store_true",
                   help="merge shards that do not cover every K of --shard K/N")


def command(args: argparse.Namespace) -> int:
    from .terminal import print_summary

    paths, results, load_errors = merge(args.folders, args.output, allow_mixed=args.allow_mixed,
                                        allow_partial=args.allow_partial, junit_xml=args.junit_xml,
                                        command=" ".join(["verifier merge", *args.folders, "-o", args.output]))
    print_summary(results, paths)
    if load_errors:      # as `verifier run`: cases that did not load never ran, so nothing can call this a pass
        print(f"{len(load_errors)} case file error(s) in the parts; see results.json's load_errors", file=sys.stderr)
        return 2
    return 0 if all(r.status in ("pass", "skip") for r in results) else 1


def merge(folders: Sequence[str | Path], output: str | Path, *, allow_mixed: bool = False,
          allow_partial: bool = False, junit_xml: str | Path | None = None,
          command: str | None = None) -> tuple[dict[str, Path], list[CaseResult], list[str]]:
    """Write the merged report of ``folders`` to ``output``; return its paths, the merged results and load errors."""
    from . import ci, tables
    from .writing import atomic_write, write_reports

    if not folders:
        raise VerifierError("give at least one report folder to merge")
    parts = [_read(Path(f)) for f in folders]
    env = merged_environment(parts, allow_mixed)
    env["command"] = command or "verifier merge"
    if not allow_partial:
        _check_shards(parts)
    results, load_errors, seen = [], [], {}
    for number, part in enumerate(parts):
        for result in part["results"]:
            where = seen.setdefault((result.name, result.dtype), number)
            if where != number:
                raise VerifierError(f"case {result.name} [{result.dtype}] is in both '{parts[where]['path']}' and "
                                    f"'{part['path']}': "
                                    f"the folders overlap (the same shard given twice?); merge each part once")
            results.append(result)
        load_errors += [e for e in part["load_errors"] if e not in load_errors]
    results = [r for _, r in sorted(enumerate(results), key=lambda item: (_place(item[1]), item[0]))]
    paths = write_reports(results, output, command=command, load_errors=load_errors,
                          details=DetailPolicy(keep=None), environment=env)
    if junit_xml:
        paths["junit"] = Path(junit_xml)
        paths["junit"].parent.mkdir(parents=True, exist_ok=True)
        atomic_write(paths["junit"], ci.junit_xml(results, tables.summary(results)))
    return paths, results, load_errors


def merged_environment(parts: list[dict], allow_mixed: bool) -> dict:
    """The parts' common environment; differing entries refused, or with ``allow_mixed`` listed as ``a | b``."""
    env = dict(parts[0]["environment"])
    differ = {}
    for name in SAME_ENVIRONMENT:
        values = list(dict.fromkeys(str(p["environment"].get(name, "?")) for p in parts))
        if len(values) > 1:
            differ[name] = values
    if differ and not allow_mixed:
        lines = "; ".join(f"{name}: {' vs '.join(values)}" for name, values in differ.items())
        raise VerifierError(f"the folders come from different environments ({lines}); their verdicts are not one "
                            f"run's. Rerun the parts in one environment, or pass --allow-mixed to merge anyway")
    for name, values in differ.items():
        env[name] = " | ".join(values)
    env["merged_from"] = ", ".join(str(p["path"]) for p in parts)
    return env


def _check_shards(parts: list[dict]) -> None:
    shards = [_SHARD.search(str(p["environment"].get("command", ""))) for p in parts]
    found = {(int(m.group(1)), int(m.group(2))) for m in shards if m}
    if not found:
        return
    totals = {n for _, n in found}
    if len(totals) > 1:
        raise VerifierError(f"the folders are shards of different splits (N = {', '.join(map(str, sorted(totals)))}); "
                            f"merge the shards of one --shard K/N split")
    n = totals.pop()
    missing = sorted(set(range(1, n + 1)) - {k for k, _ in found})
    if missing:
        raise VerifierError(f"shard(s) {', '.join(f'{k}/{n}' for k in missing)} missing: their cases would be absent "
                            f"from the merged report. Give every shard's folder, or pass --allow-partial")


def _place(result: CaseResult) -> tuple:
    """A one-run's order: case files by path, then line; Python cases (no file) after them, as they came."""
    file, _, line = (result.case.source or "").rpartition(":")
    if file and line.isdigit():
        return (0, Path(file).parts, int(line))
    return (1, (), 0)


def _read(path: Path) -> dict:
    """One report folder as results (see the module docstring)."""
    report = read_report(path)
    try:
        doc = json.loads((path / "results.json").read_text(encoding="utf-8"))
        entries = doc["results"]
        load_errors = [str(e) for e in doc.get("load_errors", [])]
        details = _csv(path / "details.csv")
        checks = _csv(path / "checks.csv")
    except (OSError, ValueError, KeyError, TypeError, pd.errors.ParserError) as exc:
        raise VerifierError(f"'{path}' is not a whole report folder ({type(exc).__name__}: {exc}); give folders "
                            f"written by `verifier run --report-dir` or `pytest --verifier-report`") from None
    summary = report.summary
    for name in _TEXT:
        if name in summary:
            summary[name] = summary[name].astype(object).fillna("").astype(str)
    if len(entries) != len(summary):
        raise VerifierError(f"'{path}': results.json has {len(entries)} results but summary.csv {len(summary)} rows; "
                            f"the folder holds files of two runs. Rerun that part")
    rows = _grouped(details)
    check_rows = _grouped(checks)
    results = []
    for entry, row in zip(entries, summary.to_dict("records")):
        if (entry.get("case"), entry.get("dtype")) != (str(row["case"]), str(row["dtype"])):
            raise VerifierError(f"'{path}': results.json and summary.csv list different cases "
                                f"({entry.get('case')} vs {row['case']}); rerun that part")
        key = (str(row["case"]), str(row["dtype"]))
        results.append(_result(row, entry, rows.get(key), check_rows.get(key)))
    return {"path": path, "environment": report.environment, "results": results, "load_errors": load_errors}


def _csv(path: Path) -> pd.DataFrame:
    # only empty cells are missing: a text cell "nan" or "NA" stays text
    return pd.read_csv(path, keep_default_na=False, na_values=[""], low_memory=False)


def _grouped(frame: pd.DataFrame) -> dict[tuple[str, str], pd.DataFrame]:
    if frame.empty or "case" not in frame:
        return {}
    keys = list(zip(frame["case"].astype(str), frame["dtype"].astype(str)))
    positions: dict[tuple[str, str], list[int]] = {}
    for i, k in enumerate(keys):
        positions.setdefault(k, []).append(i)
    return {k: frame.iloc[p].reset_index(drop=True) for k, p in positions.items()}


def _result(row: dict, entry: dict, rows: pd.DataFrame | None, checks: pd.DataFrame | None) -> CaseResult:
    case = SimpleNamespace(name=str(row["case"]), family=row["family"], source=entry.get("source"), description="",
                           torch_fn=_NOT_KEPT, sympy_fn=_NOT_KEPT, functions=None, tags=(), dtypes=[row["dtype"]])
    result = CaseResult(case, str(row["dtype"]), str(row["status"]), row["message"], grad_fn=row["grad_fn"] or None,
                        route=row["route"], seconds=float(row["seconds"]) if row["seconds"] == row["seconds"] else 0.0)
    result.checks = [] if checks is None else [_check(c) for c in checks.to_dict("records")]
    if rows is not None:
        result._frame = rows
    result.stats = {name: row[name] for name in STAT_COLUMNS if name in row}
    result.stats.update(_fd_agreement(result._frame))
    if row["fd_method"] or row["fd_note"]:
        result.fd = _FDSummary(row["fd_method"], [row["fd_note"]] if row["fd_note"] else [])
    return result


def _check(row: dict) -> Check:
    status = str(row["status"])
    number = (lambda v: None if v != v else float(v))  # noqa: E731  (NaN: the check had no number)
    elements = row.get("elements")
    return Check(str(row["check"]), status in ("pass", "skip"), "" if row["detail"] != row["detail"] else
                 str(row["detail"]), skipped=status == "skip", non_finite=status == "non_finite",
                 max_abs_err=number(row["max_abs_err"]), max_rel_err=number(row["max_rel_err"]),
                 elements=None if elements is None or elements != elements else int(elements))


def _fd_agreement(rows: pd.DataFrame | None) -> dict:
    """Where autograd and exact disagree, does FD side with exact? From the kept rows (every flagged one is kept)."""
    if rows is None or rows.empty or "ok" not in rows:
        return {"mismatched_fd_known": 0, "mismatched_fd_agrees": 0}
    ok = rows["ok"].astype(bool).to_numpy()
    fd = pd.to_numeric(rows.get("finite_diff"), errors="coerce").to_numpy(dtype=np.float64)
    fd_ok = rows["fd_ok"].astype(bool).to_numpy() if "fd_ok" in rows else np.ones(len(rows), bool)
    known = ~ok & np.isfinite(fd)
    return {"mismatched_fd_known": int(known.sum()), "mismatched_fd_agrees": int((known & fd_ok).sum())}
