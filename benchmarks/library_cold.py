"""The built-in library cold, then warm, in one process: CPU seconds and where the cold run spends them.

    python benchmarks/library_cold.py              # every case × dtype of cases/, default checks
    python benchmarks/library_cold.py --no-profile # the two totals only (cProfile adds ~1.5x to both)

Cold: ``Runner(cache=Cache(<fresh dir>))`` over every case × dtype (the first
run on a machine with an empty cache: tapes, exact values, H·w all built);
warm: a new runner over the same cache (tapes and exact values read back;
torch and the finite differences run again, as they always do). CPU
seconds of this process (``time.process_time``), which a loaded shared
machine inflates far less than wall time. With the profile on, the cold
run's cumulative CPU in the parts issue 14 tracks is printed too (cProfile
inflates code made of many small calls, SymPy's above all: read the parts
against each other, and take the totals from a ``--no-profile`` run).

One process: the warm run also finds the per-process caches (per-function
templates, torch's forward-AD setup) made by the cold run, which a second
``verifier run`` does not; ``benchmarks/cold.py --cli-only`` measures the
issue's target, this script where the time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PARTS = {      # label -> (file suffix, function name) in the profile
    "second-order exact H·w (second_order.exact_hvp)": ("torch_side/second_order.py", "exact_hvp"),
    "second-order check, all of it": ("torch_side/second_order.py", "check_second_order"),
    "model building (compiled.prepare)": ("exact/compiled.py", "prepare"),
    "forward-mode check": ("torch_side/forward_mode.py", "check_forward_mode"),
    "finite differences": ("fd/finite_diff.py", "finite_differences"),
    "exact Jᵀv sweeps and bounds (compiled.exact)": ("exact/compiled.py", "exact"),
}


def run_all(cases, cache) -> tuple[float, dict]:
    from verifier import Runner
    statuses: dict = {}
    runner = Runner(cache=cache)
    start = time.process_time()
    for case in cases:
        for dtype in case.dtypes:
            try:
                status = runner.run(case, dtype).status
            except Exception as exc:          # a case the CLI would report as an error
                status = f"raised {type(exc).__name__}"
            statuses[status] = statuses.get(status, 0) + 1
    return time.process_time() - start, statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("paths", nargs="*", default=[str(ROOT / "cases")])
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    from verifier import load_paths
    from verifier.exact.cache import Cache
    cases = load_paths([Path(p) for p in args.paths]).cases
    with tempfile.TemporaryDirectory() as tmp:
        profile = None if args.no_profile else cProfile.Profile(time.process_time)   # CPU, not wall, seconds
        if profile:
            profile.enable()
        cold, cold_status = run_all(cases, Cache(Path(tmp) / "cache"))
        if profile:
            profile.disable()
        warm, warm_status = run_all(cases, Cache(Path(tmp) / "cache"))
    runs = sum(cold_status.values())
    print(f"{runs} case × dtype runs; load average {os.getloadavg()[0]:.1f}")
    print(f"cold {cold:.1f} CPU s  warm {warm:.1f} CPU s  cold/warm {cold / warm:.2f}x"
          + ("  (cProfile on in the cold run only)" if profile else ""))
    print(f"statuses cold {cold_status}\n         warm {warm_status}")
    if profile:
        stats = pstats.Stats(profile).stats
        for label, (suffix, name) in PARTS.items():
            total = sum(v[3] for (f, _, fn), v in stats.items() if f.endswith(suffix) and fn == name)
            print(f"  {label}: {total:.1f} CPU s (cold, profiled)")


if __name__ == "__main__":
    main()
