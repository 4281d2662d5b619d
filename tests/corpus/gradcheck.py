"""The corpus through ``torch.autograd.gradcheck`` (fast mode, float64), beside the verifier's verdicts.

gradcheck compares the backward with finite differences of the forward, in
the precision of its inputs. Fast mode checks one random projection uᵀJv per
input/output pair instead of the whole Jacobian. Its default tolerances are
``atol=1e-5, rtol=1e-3``.
"""

from __future__ import annotations

import warnings

import pandas as pd
import torch

from verifier import Runner

from .registry import CORPUS, DTYPES, Planted


def gradcheck_flags(entry: Planted, fn: type, *, fast: bool = True, seed: int = 0) -> bool:
    """True when gradcheck (float64, default tolerances; fast mode unless ``fast=False``) reports a problem."""
    torch.manual_seed(seed)              # fast mode draws its random projections from torch's generator
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ok = torch.autograd.gradcheck(fn.apply, entry.tensors(torch.float64), fast_mode=fast,
                                          raise_exception=False)
        except Exception:                # a crash inside gradcheck still counts as "flagged"
            return True
    return not ok


def verifier_flags(entry: Planted, fn: type, dtype: str) -> bool:
    """True when the verifier's verdict for ``fn`` in ``dtype`` is not ``pass``."""
    return Runner().run(entry.case(fn, dtypes=(dtype,)), dtype).status != "pass"


def comparison(*, full: bool = False) -> pd.DataFrame:
    """One row per planted bug: who caught it, and whether either raised a false alarm on the correct twin.

    ``full=True`` adds gradcheck's slow mode (every Jacobian entry) as a further column.
    """
    rows = []
    for entry in CORPUS:
        row = {"bug": entry.id, "kind": entry.kind}
        for dtype in DTYPES:
            row[f"verifier {dtype}"] = ("caught" if verifier_flags(entry, entry.buggy, dtype) else "missed") \
                if dtype in entry.buggy_dtypes else "(no bug in this dtype)"
        row["gradcheck fast float64"] = "caught" if gradcheck_flags(entry, entry.buggy) else "missed"
        if full:
            row["gradcheck full float64"] = "caught" if gradcheck_flags(entry, entry.buggy, fast=False) else "missed"
        row["false alarm on the correct twin"] = ", ".join(
            [f"verifier {d}" for d in DTYPES if verifier_flags(entry, entry.correct, d)]
            + (["gradcheck"] if gradcheck_flags(entry, entry.correct) else [])) or "none"
        rows.append(row)
    return pd.DataFrame(rows)


def render(table: pd.DataFrame) -> str:
    """The table and its totals, as printed by the test (-s) and the benchmark script."""
    lines = [table.to_string(index=False), ""]
    n = len(table)
    for column in [c for c in table.columns if c.startswith(("verifier", "gradcheck"))]:
        applicable = table[column] != "(no bug in this dtype)"
        caught = int((table.loc[applicable, column] == "caught").sum())
        lines.append(f"{column:24s} caught {caught} of {int(applicable.sum())} planted bugs, "
                     f"missed {int(applicable.sum()) - caught}")
    alarms = int((table["false alarm on the correct twin"] != "none").sum())
    lines.append(f"false alarms on the {n} correct twins: {alarms}")
    return "\n".join(lines)
