"""The built-in library and the planted-bug corpus with torch's side on a GPU, in four dtypes, beside gradcheck.

    .venv/bin/python benchmarks/device_check.py [--device cuda] [--dtypes float64,float32,float16,bfloat16]
                                                [--limit N] [--csv FILE]

For every dtype: the library's cases that declare it (pass / fail / error /
skip; on a GPU every non-pass is a false alarm or a real device bug, the
message says which check), the corpus's planted bugs (caught of those the
dtype can show) and their correct twins (false alarms), the allowances used,
the largest cross-device difference, and the wall time of the verifier against
``torch.autograd.gradcheck`` (fast mode, float64) on the same device for the
corpus. Without the device it prints why and exits 0 (``--device cpu`` is a
dry run of the script itself). The exact side and the finite differences run
on the CPU, as in every device run (docs/devices.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from verifier.cases.loading import load_paths  # noqa: E402
from verifier.cases.registry import builtin_cases_dir  # noqa: E402
from verifier.errors import VerifierError  # noqa: E402
from verifier.run.runner import Runner  # noqa: E402
from verifier.torch_side.device import describe, resolve  # noqa: E402

DTYPES = ("float64", "float32", "float16", "bfloat16")


def library(device: str, dtypes, limit: int | None) -> list[dict]:
    """One row per library case × declared dtype: its status, allowance, cross-device difference, seconds."""
    cases = load_paths([builtin_cases_dir()]).cases[:limit]
    runner, rows = Runner(device=device), []
    for case in cases:
        case = dataclasses.replace(case, device=case.device or device)
        for dtype in (d for d in case.dtypes if d in dtypes):
            r = runner.run(case, dtype)
            rows.append({"set": "library", "case": case.name, "dtype": dtype, "status": r.status,
                         "allowance": r.allowance, "cross_device": r.cross_device_max_abs_err,
                         "seconds": r.seconds, "message": r.message[:200]})
    return rows


def corpus(device: str, dtypes) -> tuple[list[dict], float]:
    """One row per planted bug × twin × dtype, and gradcheck's total seconds (fast, float64) on the device."""
    from corpus import CORPUS
    runner, rows, gradcheck_seconds = Runner(device=device), [], 0.0
    for entry in CORPUS:
        for twin, fn in (("buggy", entry.buggy), ("correct", entry.correct)):
            for dtype in dtypes:
                row = {"set": "corpus", "case": f"corpus.{entry.id}.{twin}", "twin": twin, "dtype": dtype,
                       "visible": twin == "correct" or dtype in entry.buggy_dtypes}
                try:        # an entry whose values overflow the dtype (2e13 in float16) is refused, not run
                    case = dataclasses.replace(entry.case(fn, dtypes=(dtype,)), device=device)
                except VerifierError as exc:
                    rows.append({**row, "visible": False, "status": "refused", "allowance": "",
                                 "cross_device": float("nan"), "seconds": 0.0, "message": str(exc)[:200]})
                    continue
                r = runner.run(case, dtype)
                rows.append({**row, "status": r.status, "allowance": r.allowance,
                             "cross_device": r.cross_device_max_abs_err, "seconds": r.seconds,
                             "message": r.message[:200]})
        gradcheck_seconds += _gradcheck_seconds(entry, device)
    return rows, gradcheck_seconds


def _gradcheck_seconds(entry, device: str) -> float:
    tensors = [t.detach().to(device).requires_grad_(t.requires_grad) for t in entry.tensors(torch.float64)]
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.autograd.gradcheck(entry.correct.apply, tensors, fast_mode=True, raise_exception=False)
        except Exception:   # a crash is gradcheck's answer; its time still counts
            pass
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def table(rows: list[dict], gradcheck_seconds: float) -> pd.DataFrame:
    """Per set and dtype: counts, catches, false alarms, allowances, cross-device maximum, seconds."""
    frame = pd.DataFrame(rows)
    out = []
    for (which, dtype), g in frame.groupby(["set", "dtype"], sort=False):
        row = {"set": which, "dtype": dtype, "runs": len(g),
               **{s: int((g["status"] == s).sum()) for s in ("pass", "fail", "error", "skip", "non_finite", "refused")}}
        if which == "corpus":
            bugs = g[(g["twin"] == "buggy") & g["visible"]]
            row["caught"] = f"{int((bugs['status'] != 'pass').sum())}/{len(bugs)}"
            every = g[g["twin"] == "buggy"]          # fp16/bf16 may show a bug planted for float64/float32 too
            row["buggy_not_pass"] = f"{int((every['status'] != 'pass').sum())}/{len(every)}"
            row["false_alarms"] = int((g[g["twin"] == "correct"]["status"].isin(["fail", "error", "non_finite"])).sum())
        else:
            row["caught"] = row["buggy_not_pass"] = ""
            row["false_alarms"] = int((g["status"] != "pass").sum())
        row["allowances"] = ", ".join(sorted({a for a in g["allowance"] if a}))
        row["max_cross_device"] = float(g["cross_device"].max())
        row["seconds"] = round(float(g["seconds"].sum()), 2)
        out.append(row)
    summary = pd.DataFrame(out)
    twins = frame[(frame["set"] == "corpus") & (frame["dtype"] == "float64")]
    corpus_f64 = twins[twins["twin"] == "correct"]["seconds"].sum() if len(twins) else 0.0
    summary.attrs["ratio"] = corpus_f64 / gradcheck_seconds if gradcheck_seconds else float("nan")
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N, mps; cpu for a dry run")
    parser.add_argument("--dtypes", default=",".join(DTYPES), help="comma-separated (default: all four)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N library cases")
    parser.add_argument("--csv", metavar="FILE", help="also write every run as CSV")
    args = parser.parse_args()
    try:
        device = resolve(args.device)
    except VerifierError as exc:
        print(f"device_check: nothing to measure here: {exc}")
        return 0
    dtypes = tuple(d for d in args.dtypes.split(",") if d)
    print("device:", ", ".join(f"{k}={v}" for k, v in describe(device).items()))
    start = time.perf_counter()
    rows = library(device.name, dtypes, args.limit)
    corpus_rows, gradcheck_seconds = corpus(device.name, dtypes)
    summary = table(rows + corpus_rows, gradcheck_seconds)
    print(summary.to_string(index=False))
    print(f"corpus, correct twins in float64: verifier / gradcheck (fast, float64, {device.name}) "
          f"wall time = {summary.attrs['ratio']:.1f}x ({gradcheck_seconds:.2f} s for gradcheck)")
    bad = [r for r in rows + corpus_rows if r["status"] not in ("pass", "refused") and r.get("twin") != "buggy"]
    for r in bad[:20]:
        print(f"  not a pass: {r['case']} [{r['dtype']}] {r['status']}: {r['message']}")
    print(f"({time.perf_counter() - start:.0f} s wall time)")
    if args.csv:
        pd.DataFrame(rows + corpus_rows).to_csv(args.csv, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
