"""What a run prints: a progress bar while it runs, a short table when it ends."""

from __future__ import annotations

import sys
from typing import Iterable, Sequence

import pandas as pd
from tqdm import tqdm

from ..run.runner import CaseResult
from . import tables

FAILURES_SHOWN = 20


def progress(jobs: Sequence, *, disable: bool = False) -> Iterable:
    """Iterate over (case, dtype) jobs with a progress bar on stderr (only on a terminal)."""
    bar = tqdm(jobs, desc="verifying", unit="case", file=sys.stderr,
               disable=True if disable else None, leave=False)
    for case, dtype in bar:
        bar.set_postfix_str(f"{case.name} [{dtype}]", refresh=False)
        yield case, dtype


def print_summary(results: Sequence[CaseResult], paths: dict, file=None) -> None:
    """Counts per status, then the cases that did not pass, then where the reports are."""
    file = file or sys.stdout
    summ = tables.summary(results)
    counts = tables.counts(summ)
    print(", ".join(f"{n} {s}" for s, n in counts.items() if n) or "nothing ran", file=file)
    grid = family_grid(summ)
    if not grid.empty:
        print("passed/run per family and dtype:", file=file)
        print(grid.to_string(), file=file)
    bad = summ[~summ["status"].isin(["pass", "skip"])]
    if not bad.empty:
        shown = bad.head(FAILURES_SHOWN)[["case", "dtype", "status", "max_rel_err", "message"]].copy()
        shown["message"] = shown["message"].str.slice(0, 100)
        with pd.option_context("display.width", 200, "display.max_colwidth", 100):
            print(shown.to_string(index=False), file=file)
        if len(bad) > FAILURES_SHOWN:
            print(f"... and {len(bad) - FAILURES_SHOWN} more in summary.csv", file=file)
    print(f"reports: {paths['summary']}, {paths['details']}, {paths['html']}", file=file)


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
