"""``verifier run --shard K/N``: this runner's part of the cases, for a CI matrix of N runners.

Every runner computes the same partition on its own, from the same case list:

* each case has a stable key, the BLAKE2 hash of its name (never Python's
  ``hash``, which changes between processes), so the order does not depend on
  the order files were found in;
* its cost is the number of its dtypes, or, with ``--shard-costs DIR`` (a
  previous report folder), the seconds its dtypes took there (``summary.csv``);
  a case that folder does not know costs the median of those it does;
* cases are dealt, most expensive first (ties by key), each to the shard with
  the least cost so far (ties to the lowest shard): the greedy
  longest-processing-time rule, within one largest case of the best split.

A case is in exactly one shard (tests/test_shard_merge.py proves the shards
cover the list and are disjoint), with all its dtypes, so its symbolic model is
built once. The costs folder only moves cases between shards; it cannot
change a verdict. ``verifier merge`` (:mod:`verifier.report.merge`) joins the
shards' report folders into one report.
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import re
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ..errors import VerifierError

if TYPE_CHECKING:
    from ..cases.case import Case

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def add_arguments(run: argparse.ArgumentParser) -> None:
    """``--scheduler``, ``--cache-dir``, ``--shard`` and ``--shard-costs`` of ``verifier run``."""
    run.add_argument("--scheduler", metavar="ADDRESS", default=None,
                     help="run the cases on a Dask cluster: tcp://HOST:8786, or local[:N] for N worker processes "
                          "on this machine (needs pip install 'verifier[dask]'); replaces --jobs")
    run.add_argument("--cache-dir", metavar="DIR", default=None,
                     help="the symbolic cache folder (default $VERIFIER_CACHE_DIR or ~/.cache/verifier); a shared "
                          "filesystem lets Dask workers on several machines share it")
    run.add_argument("--shard", type=parse_shard, default=None, metavar="K/N",
                     help="run only part K of N of the selected cases (1 <= K <= N), for a CI matrix; join the "
                          "report folders with `verifier merge`")
    run.add_argument("--shard-costs", metavar="REPORT_DIR", default=None,
                     help="balance --shard by the seconds each case took in this previous report folder")


def parse_shard(text: str) -> tuple[int, int]:
    match = _SHARD.match(text)
    k, n = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    if not match or not 1 <= k <= n:
        raise argparse.ArgumentTypeError(f"expected K/N with 1 <= K <= N (this runner's part of N), e.g. 2/3, "
                                         f"not {text!r}")
    return k, n


def key(name: str) -> str:
    """A case's stable place in the deal: the same on every machine and Python."""
    return hashlib.blake2b(name.encode("utf-8"), digest_size=8).hexdigest()


def partition(costs: dict[str, float], n: int) -> list[list[str]]:
    """The names in ``costs`` dealt into ``n`` shards (see the module docstring); each shard in key order."""
    order = sorted(costs, key=lambda name: (-costs[name], key(name), name))
    heap = [(0.0, i) for i in range(n)]
    shards: list[list[str]] = [[] for _ in range(n)]
    for name in order:
        total, i = heapq.heappop(heap)
        shards[i].append(name)
        heapq.heappush(heap, (total + costs[name], i))
    return [sorted(s, key=lambda name: (key(name), name)) for s in shards]


def select(cases: Sequence["Case"], shard: tuple[int, int], costs_dir: str | None = None) -> list["Case"]:
    """The cases of shard ``K/N``, in their original order."""
    k, n = shard
    measured = read_costs(costs_dir) if costs_dir else {}
    known = sorted(measured.values())
    fallback = known[len(known) // 2] if known else None
    costs = {}
    for case in cases:
        if measured:
            costs[case.name] = measured.get(case.name, fallback)
        else:
            costs[case.name] = float(max(1, len(case.dtypes)))
    mine = set(partition(costs, n)[k - 1])
    return [c for c in cases if c.name in mine]


def read_costs(directory: str) -> dict[str, float]:
    """Seconds per case (its dtypes summed) from a previous report folder's ``summary.csv``."""
    import pandas as pd

    path = Path(directory) / "summary.csv"
    try:
        summary = pd.read_csv(path, usecols=["case", "seconds"], keep_default_na=False)
        seconds = pd.to_numeric(summary["seconds"], errors="coerce").fillna(0.0).clip(lower=0.0)
    except (OSError, ValueError, KeyError) as exc:
        raise VerifierError(f"--shard-costs: cannot read the seconds per case from '{path}' ({exc}); give a report "
                            f"folder written by `verifier run`, or leave the option out to balance by dtype "
                            f"counts") from None
    # a tiny floor: a case measured at 0 s still takes a turn in the deal
    return {str(name): max(float(total), 1e-3) for name, total in seconds.groupby(summary["case"].astype(str)).sum()
            .items()}
