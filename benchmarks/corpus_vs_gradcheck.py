"""Which planted bugs does the verifier catch, and which does torch.autograd.gradcheck miss?

Runs every entry of the planted-bug corpus (tests/corpus/) through the
verifier in float64 and float32, and through ``torch.autograd.gradcheck`` in
float64 (fast mode, and with --full its slow mode too) on the same functions
and inputs, then prints one row per bug and the totals.

    .venv/bin/python benchmarks/corpus_vs_gradcheck.py [--full] [--csv FILE]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from corpus.gradcheck import comparison, render  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also run gradcheck's slow (full Jacobian) mode")
    parser.add_argument("--csv", metavar="FILE", help="also write the table as CSV")
    args = parser.parse_args()
    start = time.perf_counter()
    table = comparison(full=args.full)
    print(render(table))
    print(f"({time.perf_counter() - start:.1f} s wall time)")
    if args.csv:
        table.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
