"""The audit's run: every selected OpInfo's samples as cases, through the ordinary isolated runner."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from ..run.isolation import run_cases
from . import opdb
from .mapping import spelling
from .opdb import DTYPES
from .samples import Unsupported, case_for


@dataclass
class OpPlan:
    """One OpInfo: whether it is mapped (and if not why), its cases and its unsupported samples' reasons."""

    label: str
    name: str
    mapped: bool
    reason: str = ""                                   # why it is not mapped
    cases: list = field(default_factory=list)
    unsupported: list = field(default_factory=list)    # one reason per unsupported sample
    samples: int = 0


@dataclass
class Audit:
    """What ``run_audit`` did: a plan per OpInfo, the results of its cases, the seconds it took."""

    plans: list[OpPlan]
    results: list
    dtypes: tuple[str, ...]
    seconds: float = 0.0


def plan(op, limit: int, dtypes) -> OpPlan:
    """The op's cases (at most ``limit`` samples; 0: all) and the reasons for the samples it cannot express."""
    mapped, why = spelling(op)
    out = OpPlan(opdb.label(op), op.name, mapped is not None, why)
    if mapped is None:
        return out
    import torch
    try:
        samples = op.sample_inputs("cpu", torch.float64, requires_grad=True, small_inputs_only=True)
        for i, sample in enumerate(samples):
            if limit and out.samples >= limit:
                break
            out.samples += 1
            try:
                out.cases.append(case_for(op, mapped, sample, i, dtypes))
            except Unsupported as exc:
                out.unsupported.append(str(exc))
            except Exception as exc:     # the audit's own trouble with this sample: said, never hidden
                out.unsupported.append(f"the audit cannot build the case ({type(exc).__name__}: {str(exc)[:80]})")
    except Exception as exc:   # torch's sample generator itself
        out.samples += 1
        out.unsupported.append(f"the OpInfo's sample generator raises ({type(exc).__name__}: {str(exc)[:80]})")
    return out


def select_ops(ops, pattern: str = ""):
    """The OpInfos with autograd whose label matches ``pattern`` (a regular expression; '' = all)."""
    chosen = re.compile(pattern) if pattern else None
    return [op for op in ops if op.supports_autograd and (chosen is None or chosen.search(opdb.label(op)))]


def run_audit(ops=None, *, pattern: str = "", limit: int = 4, dtypes=DTYPES, jobs: int = 1,
              timeout: float | None = 60.0, on_result=None, on_plan=None) -> Audit:
    """Plan every selected OpInfo (``ops``: torch's op_db by default) and run its cases in ``dtypes``.

    ``jobs`` worker processes (0: this process, no time limit), ``timeout`` seconds per case × dtype.
    """
    ops = opdb.load_op_db() if ops is None else opdb.check_entries(ops)
    plans = []
    for op in select_ops(ops, pattern):
        plans.append(plan(op, limit, dtypes))
        if on_plan is not None:
            on_plan(plans[-1])
    jobs_list = [(c, d) for p in plans for c in p.cases for d in c.dtypes]
    start = time.perf_counter()
    results = run_cases(jobs_list, workers=jobs, timeout=timeout, on_result=on_result) if jobs_list else []
    return Audit(plans, results, tuple(dtypes), time.perf_counter() - start)
