"""The options of ``verifier run`` and the argument types the command line shares (dtype, seconds, memory)."""

from __future__ import annotations

import argparse

from ..cases.case import COMPLEX_DTYPES, FLOAT_DTYPES
from ..cases.limits import parse_memory, timeout_problem

RUN_DTYPES = (*FLOAT_DTYPES, *COMPLEX_DTYPES)


def add_run_options(run: argparse.ArgumentParser) -> None:
    """Everything ``verifier run`` takes beyond its paths, -k and --no-functions."""
    run.add_argument("--report-dir", default="reports", metavar="DIR", help="where reports go (default: reports/)")
    run.add_argument("--dtype", action="append", type=_dtype, metavar="DTYPE",
                     help=f"only these dtypes (repeatable): {', '.join(RUN_DTYPES)}")
    run.add_argument("--no-progress", action="store_true", help="no progress bar or progress lines")
    run.add_argument("--details", default="20", metavar="all|failing|N",
                     help="detail rows kept per case x dtype in details.csv: every flagged element plus the N "
                          "worst (default 20), 'failing' (flagged only) or 'all'")
    run.add_argument("--details-parquet", action="store_true",
                     help="also write every element of every case to details.parquet (needs pyarrow: "
                          "pip install 'verifier[parquet]')")
    run.add_argument("--junit-xml", metavar="PATH", help="write JUnit XML: a testcase per case x dtype")
    run.add_argument("--annotate", action="store_true",
                     help="print GitHub Actions ::error annotations at each failing case's source line "
                          "(default on when GITHUB_ACTIONS=true)")
    run.add_argument("--jobs", "-j", type=_count, default=1, metavar="N",
                     help="worker processes running cases in parallel (default 1; 0 runs them in this "
                          "process, without time limits)")
    run.add_argument("--timeout", type=_seconds, default=None, metavar="SECONDS",
                     help="time limit for one case x dtype before it is stopped and reported as 'timeout' "
                          "(default 300, at most 86400; 0: none); a case's own 'timeout:' field wins")
    run.add_argument("--memory-limit", type=_memory, default="auto", metavar="SIZE",
                     help="memory one worker may allocate for a case x dtype before it is stopped and reported as "
                          "'out_of_memory', e.g. 4G (default: half the machine's memory split over the workers; "
                          "0: none); a case's own 'memory_limit:' field wins")
    run.add_argument("--strict-kinks", action="store_true",
                     help="fail every kink a case does not declare with 'kink:', even where autograd lies in "
                          "the generalized gradient (by default such a kink passes, counted as at_kink)")
    run.add_argument("--device", metavar="DEVICE", help="where torch's side runs for cases without 'device:': cpu "
                     "(default), cuda, cuda:N, mps, or auto (the first present); exact and FD stay on the CPU")
    run.add_argument("--fd-device", metavar="DEVICE", help="run the finite differences' float64 forward there too")


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number of processes (0 or more), not {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    problem = timeout_problem(value, zero_allowed=True)
    if problem:
        raise argparse.ArgumentTypeError(f"expected a number of seconds up to 86400 (0 for no limit), not {text!r}")
    return value


def _memory(text: str):
    if text.strip() in ("0", "none", "auto"):
        return None if text.strip() != "auto" else "auto"
    try:
        return parse_memory(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (0 for no limit)") from None


def _dtype(text: str) -> str:
    if text not in RUN_DTYPES:
        import difflib
        close = difflib.get_close_matches(text.lower(), RUN_DTYPES, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise argparse.ArgumentTypeError(f"unknown dtype {text!r}{hint}; the dtypes are {', '.join(RUN_DTYPES)}")
    return text
