"""The complex planted-bug twins (tests/corpus/complex.py): the verifier against torch.autograd.gradcheck.

Each twin runs through the verifier in complex128 and complex64 and through
``torch.autograd.gradcheck`` (complex128, fast mode and, with --full, slow
mode) on the same functions and inputs; one row per bug, then the counts of
bugs caught and of false alarms on the correct twins.

    .venv/bin/python benchmarks/complex_vs_gradcheck.py [--full]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import pandas as pd  # noqa: E402
import torch  # noqa: E402
from corpus.complex import COMPLEX_CORPUS, COMPLEX_DTYPES  # noqa: E402

from verifier import Runner  # noqa: E402


def gradcheck_flags(entry, fn, *, fast: bool) -> bool:
    """True when gradcheck reports a problem (a crash inside gradcheck counts; building the inputs must not)."""
    tensors = entry.tensors(torch.complex128)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return not torch.autograd.gradcheck(fn.apply, tensors, fast_mode=fast, raise_exception=False)
        except Exception:
            return True


def verifier_flags(entry, fn, dtype: str) -> bool:
    return Runner().run(entry.case(fn, dtypes=(dtype,)), dtype).status != "pass"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also run gradcheck's slow (full Jacobian) mode")
    args = parser.parse_args()
    start = time.perf_counter()
    modes = [("fast", True)] + ([("full", False)] if args.full else [])
    rows = []
    for entry in COMPLEX_CORPUS:
        row = {"bug": entry.id, "kind": entry.kind}
        for dtype in COMPLEX_DTYPES:
            row[f"verifier {dtype}"] = "caught" if verifier_flags(entry, entry.buggy, dtype) else "missed"
        for mode, fast in modes:
            row[f"gradcheck {mode} complex128"] = "caught" if gradcheck_flags(entry, entry.buggy, fast=fast) else "missed"
        alarms = [f"verifier {d}" for d in COMPLEX_DTYPES if verifier_flags(entry, entry.correct, d)]
        alarms += [f"gradcheck {m}" for m, fast in modes if gradcheck_flags(entry, entry.correct, fast=fast)]
        row["false alarm on the correct twin"] = ", ".join(alarms) or "none"
        rows.append(row)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    for column in table.columns[2:-1]:
        print(f"{column}: caught {int((table[column] == 'caught').sum())} / {len(table)}")
    print(f"false alarms: {int((table['false alarm on the correct twin'] != 'none').sum())} / {len(table)} twins")
    print(f"({time.perf_counter() - start:.1f} s wall time)")


if __name__ == "__main__":
    main()
