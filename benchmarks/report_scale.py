"""Parent memory and report sizes of `verifier run` on large elementwise cases (issue 13 item 6, issue 17).

Writes one case file per size (x of N elements, y = sin(x)·x, random v,
float64, no second-order check), runs `python -m verifier run` on it, and
polls the *parent* process's peak resident set (VmHWM in /proc; the worker
that runs the case is another process) until it exits. Prints, per size:
the parent's peak RSS, the wall time, and the sizes of details.csv,
report.html and (with --parquet) details.parquet.

    python benchmarks/report_scale.py                 # 10^6 and 10^7 elements (the 10^7 run takes minutes)
    python benchmarks/report_scale.py --sizes 1000000 --parquet

``--library`` measures report.html of the built-in library run together with
two failing user cases (a wrong backward and a case that errors), as a user
who adds two cases to the library sees it: its size and what the bytes are,
and, in headless Chromium at 1280 x 900, the first contentful paint, the
load event, and the y of the first not-passing row and of the first failing
case's section (the first screen ends at y = 900). ``--report PATH`` measures
an existing report.html instead of running the library (minutes).

    python benchmarks/report_scale.py --library
    python benchmarks/report_scale.py --report reports/report.html
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


USER_CASES = """cases:
  - name: user.wrong_backward
    description: the torch reading doubles the square (a planted wrong gradient)
    inputs: {x: [[1.0, -2.0], [0.5, 3.0]]}
    torch: (2 * x**2).sum()
    sympy: (x**2).sum()
  - name: user.broken
    description: a reshape torch refuses (the case errors)
    inputs: {x: [1.0, 2.0]}
    forward: x.reshape(3)
"""

PROBE = """<script>
window.addEventListener("load", function () {
  var h = document.documentElement, paint = performance.getEntriesByName("first-contentful-paint")[0];
  var row = document.querySelector("#T_not-passing tbody tr");
  var section = document.querySelector("details.case[open]");
  h.setAttribute("data-fcp", paint ? Math.round(paint.startTime) : -1);
  h.setAttribute("data-load", Math.round(performance.now()));
  h.setAttribute("data-row-y", row ? Math.round(row.getBoundingClientRect().top) : -1);
  h.setAttribute("data-section-y", section ? Math.round(section.getBoundingClientRect().top) : -1);
  h.setAttribute("data-height", document.documentElement.scrollHeight);
});
</script>"""
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def breakdown(page: str) -> dict:
    """Where the bytes of report.html are: heat-map PNGs, case sections, the tables before them."""
    import re

    total = len(page.encode())
    first = page.find('<details class="case"')
    return {"bytes": total, "png_data": sum(map(len, re.findall(r"data:image/png;base64,[A-Za-z0-9+/=]*", page))),
            "sections": total - len(page[:first].encode()) if first >= 0 else 0,
            "before_sections": len(page[:first].encode()) if first >= 0 else total,
            "section_count": page.count('<details class="case"')}


def in_browser(report: Path, work: Path) -> dict:
    """Load the page (with PROBE) in headless Chromium at 1280 x 900; what PROBE wrote on <html>."""
    import re
    import shutil

    browser = next((b for b in map(shutil.which, BROWSERS) if b), None)
    if browser is None:
        return {}
    page = work / "probe.html"
    page.write_text(report.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    runs = []
    for _ in range(3):     # a shared machine: the best of three loads
        out = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                              "--no-first-run", f"--user-data-dir={work / 'profile'}", "--window-size=1280,900",
                              "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=300).stdout
        head = out[:out.index(">", out.index("<html")) + 1] if "<html" in out else ""
        runs.append({k: int(v) for k, v in re.findall(r'data-([a-z-]+)="(-?\d+)"', head)})
    return min(runs, key=lambda r: r.get("load", 1 << 30))


def library(report: Path | None, work: Path) -> None:
    if report is None:
        root = Path(__file__).resolve().parents[1]
        user = work / "user_cases.yaml"
        user.write_text(USER_CASES, encoding="utf-8")
        out = work / "library"
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "verifier", "run", str(root / "cases"), str(user),
                               "--report-dir", str(out), "--no-progress"], capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(root)})
        print(f"library + 2 failing user cases: exit {done.returncode}, {time.perf_counter() - start:.0f} s")
        report = out / "report.html"
    sizes = breakdown(report.read_text(encoding="utf-8"))
    print(f"report.html {sizes['bytes']:,} bytes ({sizes['bytes'] / 1e6:.2f} MB; target <= 1.5 MB), "
          f"{sizes['section_count']} case sections: {sizes['sections']:,} in sections "
          f"({sizes['png_data']:,} of them heat-map PNG data), {sizes['before_sections']:,} before them")
    seen = in_browser(report, work)
    if not seen:
        print("no headless browser found (chromium): load time and positions not measured")
        return
    print(f"headless Chromium 1280x900 (best of 3): first contentful paint {seen.get('fcp', -1)} ms "
          f"(target <= 1000), load event {seen.get('load', -1)} ms; first not-passing row at y = "
          f"{seen.get('row-y', -1)} px, first failing case's section at y = {seen.get('section-y', -1)} px "
          f"(visible without scrolling: y < 900), page {seen.get('height', -1):,} px tall")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10**6, 10**7])
    parser.add_argument("--parquet", action="store_true", help="also write details.parquet")
    parser.add_argument("--library", action="store_true",
                        help="report.html of the built-in library plus two failing user cases: size, load, y")
    parser.add_argument("--report", type=Path, default=None, help="measure this report.html (no run)")
    args = parser.parse_args()
    if args.library or args.report:
        with tempfile.TemporaryDirectory() as tmp:
            library(args.report, Path(tmp))
        return
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'elements':>10} {'rc':>3} {'parent peak':>12} {'wall':>8} {'details.csv':>12} {'report.html':>12}"
              f" {'parquet':>12}")
        for n in args.sizes:
            r = measure(n, args.parquet, Path(tmp))
            print(f"{n:>10} {r['rc']:>3} {r['peak_mib']:>9.0f} MiB {r['seconds']:>7.1f}s "
                  f"{r.get('details.csv', 0):>12,} {r.get('report.html', 0):>12,} {r.get('details.parquet', 0):>12,}")


if __name__ == "__main__":
    main()
