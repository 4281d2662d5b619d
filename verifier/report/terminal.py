"""What a run prints: progress while it runs (a bar on a terminal, plain lines in CI), a short block per failure."""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
import time
from typing import Sequence

import pandas as pd
from tqdm import tqdm

from ..run.runner import CaseResult
from . import ci, tables

FAILURES_SHOWN = 20
PLAIN_EVERY = 10.0        # seconds between progress lines when stderr is not a terminal (CI logs)
_COLOURS = {"fail": "31", "non_finite": "31", "error": "33", "timeout": "33", "out_of_memory": "33", "pass": "32", "dim": "2", "bold": "1"}


def use_colour(stream) -> bool:
    """ANSI colour on a terminal, unless ``NO_COLOR`` is set (https://no-color.org); ``FORCE_COLOR`` forces it."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return bool(getattr(stream, "isatty", lambda: False)())


def _paint(text: str, style: str, colour: bool) -> str:
    return f"\033[{_COLOURS[style]}m{text}\033[0m" if colour else text


class Progress:
    """A progress bar on a terminal; plain periodic lines otherwise (CI logs see a run move).

    The label names the case still running (the oldest one not finished), not the last finished one.
    ``writing(step)`` says what is being written once the cases are done.
    """

    def __init__(self, jobs: Sequence, *, disable: bool = False, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.jobs, self.done, self.bad = list(jobs), [False] * len(jobs), 0
        self.index = {(id(case), dtype): i for i, (case, dtype) in enumerate(self.jobs)}
        self.next = 0
        self.disable = disable
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.bar = tqdm(total=len(self.jobs), desc="verifying", unit="case", file=self.stream, leave=False,
                        disable=disable or not self.tty)
        self.last_line = time.monotonic()
        self._label()
        if not disable and not self.tty:
            self._line(f"verifying {len(self.jobs)} case x dtype run(s)")

    def _running(self) -> str:
        while self.next < len(self.done) and self.done[self.next]:
            self.next += 1
        if self.next >= len(self.jobs):
            return ""
        case, dtype = self.jobs[self.next]
        return f"{case.name} [{dtype}]"

    def _label(self) -> None:
        running = self._running()
        self.bar.set_postfix_str(f"running {running}" if running else "", refresh=False)

    def _line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)
        self.last_line = time.monotonic()

    def result(self, result) -> None:
        i = self.index.get((id(result.case), result.dtype))
        if i is None:      # a result whose case object was replaced: mark the first open job of that name
            i = next((k for k, (c, d) in enumerate(self.jobs) if not self.done[k] and c.name == result.name
                      and d == result.dtype), None)
        if i is not None:
            self.done[i] = True
        self.bad += result.status not in ("pass", "skip")
        self._label()
        self.bar.update()
        finished = sum(self.done)
        if not self.disable and not self.tty and (time.monotonic() - self.last_line >= PLAIN_EVERY
                                                  or finished == len(self.jobs)):
            running = self._running()
            self._line(f"verifying: {finished}/{len(self.jobs)} done, {self.bad} not passing"
                       + (f", running {running}" if running else ""))

    def writing(self, step: str) -> None:
        if self.disable:
            return
        if self.tty:
            self.bar.set_description_str("writing reports", refresh=False)
            self.bar.set_postfix_str(step)
        else:
            self._line(f"writing reports: {step}")

    def close(self) -> None:
        self.bar.close()


def print_summary(results: Sequence[CaseResult], paths: dict, file=None, colour: bool | None = None) -> None:
    """Counts per status, then a short block per case that did not pass, then where the reports are."""
    file = file or sys.stdout
    colour = use_colour(file) if colour is None else colour
    width = max(60, min(shutil.get_terminal_size((100, 24)).columns, 160))
    summ = tables.summary(results)
    counts = tables.counts(summ)
    text = ", ".join(_paint(f"{n} {s}", s if s in _COLOURS else "dim", colour) for s, n in counts.items() if n)
    print(text or "nothing ran", file=file)
    grid = family_grid(summ)
    if not grid.empty:
        print("passed/run per family and dtype:", file=file)
        print(grid.to_string(), file=file)
    bad = [(r, row) for r, row in zip(results, summ.to_dict("records")) if r.status not in ("pass", "skip")]
    for r, row in bad[:FAILURES_SHOWN]:
        print("", file=file)
        print(failure_block(r, row, width, colour), file=file)
    if len(bad) > FAILURES_SHOWN:
        print(f"\n... and {len(bad) - FAILURES_SHOWN} more in summary.csv and report.html", file=file)
    shown = [str(paths[k]) for k in ("summary", "details", "html", "json", "markdown", "junit", "parquet")
             if k in paths]
    print(f"\nreports: {', '.join(shown)}", file=file)


def failure_block(result: CaseResult, row: dict, width: int = 100, colour: bool = False) -> str:
    """A few lines for one case that did not pass: status, case, who is wrong, why, where it is defined."""
    head = f"{result.status.upper():7s} {result.name} [{result.dtype}]"
    lines = [_paint(head, result.status, colour) + (f"  who is wrong: {row['who_wrong']}" if row.get("who_wrong")
                                                    else "")]
    wrap = textwrap.TextWrapper(width=width, initial_indent="  ", subsequent_indent="    ", break_long_words=False,
                                break_on_hyphens=False, max_lines=6, placeholder=" …")
    lines += wrap.wrap(ci.first_line(result, row))
    message = " ".join(str(result.message or "").split())
    if message and message not in ci.first_line(result, row):
        lines += wrap.wrap(message)
    source = getattr(result.case, "source", None) if result.case is not None else None
    if source:
        lines.append(_paint(f"  defined at {source}", "dim", colour))
    return "\n".join(lines)


def family_grid(summ: pd.DataFrame) -> pd.DataFrame:
    """'passed/run' per family (rows) and dtype (columns), with totals; '-' where nothing ran."""
    if summ.empty:
        return pd.DataFrame()
    order = [d for d in ("float64", "float32", "float16", "bfloat16") if d in set(summ["dtype"])]
    order += sorted(set(summ["dtype"]) - set(order))
    passed = summ.assign(ok=summ["status"].isin(["pass", "skip"]))
    groups = passed.groupby(["family", "dtype"])["ok"].agg(["sum", "size"])
    families = sorted(set(summ["family"]))
    grid = pd.DataFrame("-", index=families + ["all"], columns=order + ["all"])
    for (family, dtype), (ok, n) in groups.iterrows():
        grid.at[family, dtype] = f"{int(ok)}/{int(n)}"
    for family in families:
        sub = groups.loc[family]
        grid.at[family, "all"] = f"{int(sub['sum'].sum())}/{int(sub['size'].sum())}"
    for dtype in order:
        sub = groups.xs(dtype, level="dtype")
        grid.at["all", dtype] = f"{int(sub['sum'].sum())}/{int(sub['size'].sum())}"
    grid.at["all", "all"] = f"{int(groups['sum'].sum())}/{int(groups['size'].sum())}"
    grid.index.name = "family"
    return grid
