"""``verifier audit``: torch's own OpInfo samples against the exact reference, with a per-op table."""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from ..errors import VerifierError
from .opdb import DTYPES


def add_parser(sub) -> None:
    """Register ``verifier audit`` on the CLI's subparsers."""
    p = sub.add_parser(
        "audit", help="run torch's own OpInfo samples of every differentiable op against the exact reference",
        description="For every OpInfo of the installed torch with autograd (torch.testing._internal's op_db, "
                    "small_inputs_only=True; needs pip install 'verifier[audit]'), express each sample as a "
                    "case, run it in each dtype and write the usual reports plus audit.csv and audit.html: "
                    "per op, the samples, pass/fail/error/unsupported, the largest error as a fraction of "
                    "the allowance and the reason of every non-pass. Every sample x dtype is one of pass, "
                    "fail-with-fact (a documented torch finding), refused-with-reason, timeout or unexplained; "
                    "exit 1 unless unexplained and timeout are both 0.")
    p.add_argument("--ops", default="", metavar="REGEX",
                   help="only OpInfos whose name (with its variant) matches this regular expression")
    p.add_argument("--limit", type=int, default=4, metavar="N", help="samples per OpInfo (0: all; default 4)")
    p.add_argument("--dtypes", default=",".join(DTYPES), metavar="LIST",
                   help=f"comma-separated dtypes to run (default {','.join(DTYPES)}; of {', '.join(DTYPES)})")
    p.add_argument("--jobs", "-j", type=int, default=1, metavar="N",
                   help="worker processes (default 1; 0 runs in this process without time limits)")
    p.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                   help="time limit per sample x dtype (default 60)")
    p.add_argument("-o", "--output", "--report-dir", dest="output", default="reports/audit", metavar="DIR",
                   help="where the reports go (default reports/audit)")


def parse_dtypes(text: str) -> tuple[str, ...]:
    dtypes = tuple(d.strip() for d in text.split(",") if d.strip())
    bad = [d for d in dtypes if d not in DTYPES]
    if bad or not dtypes:
        raise VerifierError(f"--dtypes {text!r}: the audit runs {', '.join(DTYPES)} (comma-separated); "
                            f"not {', '.join(bad) or 'nothing'}")
    return dtypes


def command(args: argparse.Namespace) -> int:
    """Run ``verifier audit``: 0 when no sample × dtype is unexplained or timed out (table.CLASSES), else 1."""
    if args.limit < 0 or args.jobs < 0:
        raise VerifierError("--limit and --jobs take 0 or more")
    from .sweep import run_audit
    from .table import per_op, write
    dtypes = parse_dtypes(args.dtypes)
    audit = run_audit(pattern=args.ops, limit=args.limit, dtypes=dtypes, jobs=args.jobs,
                      timeout=args.timeout or None)
    paths = write(audit, args.output, command="verifier audit " + " ".join(sys.argv[2:]))
    table = per_op(audit)
    print(report_text(audit, table))
    print(f"\nwrote {paths['audit']} and {paths['audit_html']}" + (f" (and {paths['html']})" if "html" in paths
                                                                    else ""))
    return 1 if int(table["unexplained"].sum()) or int(table["timeout"].sum()) else 0


#: How the summary names each class (table.CLASSES).
LABELS = {"pass": "pass", "fact": "fail-with-fact", "refused": "refused-with-reason", "timeout": "timeout",
          "unexplained": "unexplained"}


def report_text(audit, table) -> str:
    """The totals, the non-passes grouped by cause, the unsupported samples and unmapped ops by reason."""
    import torch

    from .table import CLASSES, causes, totals
    n = totals(table, audit)
    lines = [f"torch {torch.__version__}: {n['opinfos']} OpInfos with autograd, {n['mapped']} mapped, "
             f"{n['samples']} samples, {n['unsupported']} unsupported; {n['runs']} runs ({n['dtypes']}) in "
             f"{n['seconds']:.0f} s: {n['pass']} pass, {n['fail']} fail, {n['error']} error",
             "sample x dtype by class: " + ", ".join(f"{n['class_' + c]} {LABELS[c]}" for c in CLASSES)
             + ("  (exit 0 needs 0 unexplained and 0 timeout)" if n["class_unexplained"] or n["class_timeout"]
                else "")]
    groups = causes(audit)
    if groups:
        lines.append("\nnon-passes of runs, grouped by cause (count, class, ops, cause):")
        lines += [f"  {c:4d} {s:8s} [{', '.join(ops[:6])}{', ...' if len(ops) > 6 else ''}] {t}"
                  for c, s, ops, t in groups]
    reasons = Counter(why for p in audit.plans for why in p.unsupported)
    if reasons:
        lines.append("\nunsupported samples, by reason:")
        lines += [f"  {k:4d} {why}" for why, k in reasons.most_common(20)]
    unmapped = Counter(p.reason.split(":")[0] if "mirror" not in p.reason else "not in the mirror"
                       for p in audit.plans if not p.mapped)
    if unmapped:
        lines.append("\nOpInfos not mapped, by reason (every one in audit.csv):")
        lines += [f"  {k:4d} {why}" for why, k in unmapped.most_common(12)]
    return "\n".join(lines)
