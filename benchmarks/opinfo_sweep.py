"""Run PyTorch's own OpInfo sample inputs through the verifier: a thin wrapper of ``verifier audit``.

The logic lives in ``verifier/audit/`` (see ``verifier audit --help`` and
docs/audit.md). This script keeps the old command working: it runs the audit
in float64 only (as the sweep always did, unless ``--dtypes`` says otherwise),
prints the totals, the non-passes grouped by cause, the unsupported samples
and the unmapped OpInfos by reason, and writes no report files.

    python benchmarks/opinfo_sweep.py                      # every mappable op, 4 samples each
    python benchmarks/opinfo_sweep.py --ops 'relu|softmax' --limit 0 --timeout 60

``op_db`` is private to PyTorch and needs the ``expecttest`` package:
``pip install -e '.[audit]'``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from verifier.audit.command import parse_dtypes, report_text  # noqa: E402
from verifier.audit.opdb import AuditUnavailable  # noqa: E402
from verifier.audit.sweep import run_audit  # noqa: E402
from verifier.audit.table import per_op  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ops", default="", help="regular expression selecting OpInfo names (default: all)")
    p.add_argument("--limit", type=int, default=4, help="samples per OpInfo (0: all; default 4)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per case (default 30)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--dtypes", default="float64", help="comma-separated dtypes (default float64)")
    args = p.parse_args(argv)
    try:
        audit = run_audit(pattern=args.ops, limit=args.limit, dtypes=parse_dtypes(args.dtypes), jobs=args.jobs,
                          timeout=args.timeout)
    except AuditUnavailable as exc:
        raise SystemExit(f"opinfo_sweep: {exc}") from None
    table = per_op(audit)
    print(report_text(audit, table))
    return 0 if not (table["unexplained"].sum() + table["timeout"].sum()) else 1     # as verifier audit


if __name__ == "__main__":
    sys.exit(main())
