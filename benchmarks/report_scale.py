"""Parent memory and report sizes of `verifier run` on large elementwise cases (issue 13 item 6, issue 17).

Writes one case file per size (x of N elements, y = sin(x)·x, random v,
float64, no second-order check), runs `python -m verifier run` on it, and
polls the *parent* process's peak resident set (VmHWM in /proc; the worker
that runs the case is another process) until it exits. Prints, per size:
the parent's peak RSS, the wall time, and the sizes of details.csv,
report.html and (with --parquet) details.parquet.

    python benchmarks/report_scale.py                 # 10^6 and 10^7 elements (the 10^7 run takes minutes)
    python benchmarks/report_scale.py --sizes 1000000 --parquet
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASE = """cases:
  - name: scale.e{n}
    inputs:
      x: {{shape: [{n}], sample: normal, seed: 3}}
    forward: x.sin() * x
    grad_output: random
    dtypes: [float64]
    checks: {{second_order: false}}
"""


def peak_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def measure(n: int, parquet: bool, work: Path) -> dict:
    path = work / f"scale{n}.yaml"
    path.write_text(CASE.format(n=n), encoding="utf-8")
    out = work / f"reports{n}"
    cmd = [sys.executable, "-m", "verifier", "run", str(path), "--report-dir", str(out), "--timeout", "0",
           "--no-progress", *(["--details-parquet"] if parquet else [])]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    peak = 0
    while proc.poll() is None:
        peak = max(peak, peak_kib(proc.pid))
        time.sleep(0.2)
    seconds = time.perf_counter() - start
    sizes = {name: (out / name).stat().st_size for name in ("details.csv", "report.html", "details.parquet")
             if (out / name).exists()}
    return {"n": n, "rc": proc.returncode, "peak_mib": peak / 1024, "seconds": seconds, **sizes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10**6, 10**7])
    parser.add_argument("--parquet", action="store_true", help="also write details.parquet")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'elements':>10} {'rc':>3} {'parent peak':>12} {'wall':>8} {'details.csv':>12} {'report.html':>12}"
              f" {'parquet':>12}")
        for n in args.sizes:
            r = measure(n, args.parquet, Path(tmp))
            print(f"{n:>10} {r['rc']:>3} {r['peak_mib']:>9.0f} MiB {r['seconds']:>7.1f}s "
                  f"{r.get('details.csv', 0):>12,} {r.get('report.html', 0):>12,} {r.get('details.parquet', 0):>12,}")


if __name__ == "__main__":
    main()
