"""Cold runs (empty cache) against torch.autograd.gradcheck's slow mode: issue 14's table in one run.

    python benchmarks/cold.py                       # every row, then `verifier run` of the library
    python benchmarks/cold.py --only tanh_sum_1e4,softmax_16
    python benchmarks/cold.py --timeout 60 --gc-timeout 120 --no-cli

Each row runs in a fresh process (its own peak RSS, bounded by ``--timeout``
seconds; a row that runs out of time is printed as "> T s"):

* **cold**: ``Runner(cache=Cache(<fresh temp dir>, values=False))`` — the
  first run of the case on a machine with an empty cache (what CI meets);
  the exact side builds everything in the timed call;
* **warm**: the same runner again: the compiled tape comes from that cache,
  the exact values are still computed at the point (values cache off);
* **gradcheck**: ``torch.autograd.gradcheck(fast_mode=False)`` on the same
  function and inputs, float64, in another fresh process (its own time
  limit, ``--gc-timeout``); rows whose n² Jacobian gradcheck cannot hold
  are marked "not run".

Both sides run the first-order check only (``forward_mode=False,
second_order=False``), float64, torch at 1 thread. Rows with an input of
10⁵ elements or more sample the finite differences at 8 elements, unbatched
(``Runner(fd_max_elements=8, fd_overrides={"elementwise": (), "batch":
False})``, as speed.py's P2); the exact comparison still covers every element. ``ratio`` is cold /
gradcheck. ``cold - warm`` is what the empty cache costs. A second line gives the same in CPU seconds of the
process (``time.process_time``): on a shared machine wall times grow with the load average, CPU
seconds much less. Peak RSS is the
row's process's ``ru_maxrss`` (torch's import included). The last lines time
``verifier run`` of the built-in library, cold (fresh VERIFIER_CACHE_DIR)
then warm.

Issue 14's targets (all cold): ratio <= 2 where gradcheck finishes; rows
gradcheck cannot run finish within 60 s; the 10⁶-element reductions
<= 3 s and <= 1 GiB; a small case <= 20 ms beyond its warm time; `verifier
run` cold <= 1.3x warm.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
HUGE = 100_000           # inputs this large get FD sampled at 8 elements (gradcheck cannot run them at all)
sys.path.insert(0, str(ROOT))


def _n(shape):
    return {"shape": list(shape), "sample": "normal"}


def _inputs(**shapes):
    return {name: {**_n(shape), "seed": k + 1} for k, (name, shape) in enumerate(shapes.items())}


def _labels(batch: int, classes: int) -> dict:
    return {"value": [(7 * i + 3) % classes for i in range(batch)], "dtype": "int64", "requires_grad": False}


_CONV = " + ".join(f"torch.einsum('oc,chw->ohw', w[:, :, {i}, {j}], x[:, {i}:{i + 16}, {j}:{j + 16}])"
                   for i in range(3) for j in range(3))


def _mlp(d: int) -> dict:
    return {**_inputs(x=(16, d), w1=(d, d), b1=(d,), w2=(d, 10), b2=(10,)), "t": _labels(16, 10)}


# name: (inputs, forward, gradcheck can run)
ROWS = {
    "tanh_sum_1e4": (_inputs(x=(10_000,)), "(torch.tanh(x) * x + torch.exp(-x ** 2)).sum()", True),
    "tanh_sum_3e4": (_inputs(x=(30_000,)), "(torch.tanh(x) * x + torch.exp(-x ** 2)).sum()", True),
    "tanh_sum_1e6": (_inputs(x=(1000, 1000)), "(torch.tanh(x) * x + torch.exp(-x ** 2)).sum()", False),
    "seed_mean_1e5": (_inputs(x=(100_000,)), "(3 * (x + 2) ** 2).mean()", False),
    "seed_mean_1e6": (_inputs(x=(1000, 1000)), "(3 * (x + 2) ** 2).mean()", False),
    "mlp_ce_d64": (_mlp(64), "F.cross_entropy(torch.tanh(x @ w1 + b1) @ w2 + b2, t)", True),
    "mlp_ce_d128": (_mlp(128), "F.cross_entropy(torch.tanh(x @ w1 + b1) @ w2 + b2, t)", True),
    "attention_s64_d32": (_inputs(q=(64, 32), k=(64, 32), v=(64, 32)),
                          "F.softmax(q @ k.T / 32 ** 0.5, dim=-1) @ v", True),
    "tanh_linear_d64": (_inputs(x=(16, 64), w=(64, 64), b=(64,)), "torch.tanh(x @ w + b)", True),
    "softmax_16": (_inputs(x=(16,)), "F.softmax(x, dim=0)", True),
    "conv2d_einsum_3to8_16x16": (_inputs(x=(3, 18, 18), w=(8, 3, 3, 3)), _CONV, True),
    "cross_entropy_linear": ({**_inputs(x=(16, 64), w=(10, 64), b=(10,)), "t": _labels(16, 10)},
                             "F.cross_entropy(F.linear(x, w, b), t)", True),
}


def _case(name: str):
    import verifier
    inputs, forward, _ = ROWS[name]
    return verifier.make_case(f"cold.{name}", inputs, forward=forward, grad_output="random")


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _warm_up(run) -> None:
    """One other small case first: one-off process costs (first calls, lazy imports) count for neither side."""
    import verifier
    run(verifier.make_case("warm_up", {"x": {"shape": [8], "sample": "normal"}},
                           forward="F.softmax(x, dim=0) * torch.exp(x)", grad_output="random"), "float64")


def child_ours(name: str) -> dict:
    """In a fresh process: the row cold (fresh cache dir), then warm (tape from that cache)."""
    import torch

    from verifier.exact.cache import Cache
    from verifier.run.runner import Runner
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:     # the cache's once-per-process costs (the engine's hash) too
        _warm_up(Runner(cache=Cache(tmp, values=False), forward_mode=False, second_order=False).run)
    case = _case(name)
    big = max(math.prod(s.shape or np.shape(s.value)) for s in case.inputs) >= HUGE
    # as benchmarks/speed.py's P2: finite differences sampled at 8 elements, unbatched, on huge inputs
    options = {"fd_max_elements": 8, "fd_overrides": {"elementwise": (), "batch": False}} if big else {}
    with tempfile.TemporaryDirectory() as tmp:
        cache = Cache(tmp, values=False)
        runner = Runner(cache=cache, forward_mode=False, second_order=False, **options)
        start, cpu = time.perf_counter(), time.process_time()
        res = runner.run(case, "float64")
        cold, cold_cpu = time.perf_counter() - start, time.process_time() - cpu
        runner = Runner(cache=cache, forward_mode=False, second_order=False, **options)
        start, cpu = time.perf_counter(), time.process_time()
        warm_res = runner.run(case, "float64")
        warm, warm_cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"cold_s": cold, "warm_s": warm, "cold_cpu_s": cold_cpu, "warm_cpu_s": warm_cpu, "status": res.status, "fd_sampled": big, "warm_status": warm_res.status,
            "route": res.route, "message": res.message[:200], "peak_rss_mib": _rss_mib()}


def child_gradcheck(name: str) -> dict:
    """In a fresh process: gradcheck's slow mode on the row's torch function, float64."""
    import torch

    from verifier.torch_side.autograd import make_leaves, torch_callable
    torch.set_num_threads(1)
    _warm_up(lambda c, _: torch.autograd.gradcheck(torch_callable(c), tuple(
        make_leaves(c, {s.name: s.values() for s in c.inputs}, "float64")), fast_mode=False))
    case = _case(name)
    leaves = make_leaves(case, {s.name: s.values() for s in case.inputs}, "float64")
    fn = torch_callable(case)
    start, cpu = time.perf_counter(), time.process_time()
    ok = bool(torch.autograd.gradcheck(fn, tuple(leaves), fast_mode=False, raise_exception=False))
    return {"gradcheck_s": time.perf_counter() - start, "gradcheck_cpu_s": time.process_time() - cpu, "gradcheck_ok": ok, "gradcheck_rss_mib": _rss_mib()}


def _spawn(args: list[str], timeout: float) -> dict | None:
    """Run this script as a child with ``args``; its JSON line, or None on timeout or failure."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                             timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return None
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        return {"error": (out.stderr.strip().splitlines() or ["no output"])[-1][:200]}
    return json.loads(lines[-1])


def row(name: str, timeout: float, gc_timeout: float) -> dict:
    out = {"row": name, "timeout": timeout, "gc_timeout": gc_timeout}
    ours = _spawn(["--child", name], timeout)
    out.update(ours if ours is not None else {"cold_s": None})
    if ROWS[name][2]:
        gc = _spawn(["--child-gradcheck", name], gc_timeout)
        out.update(gc if gc is not None else {"gradcheck_s": None})
    else:
        out["gradcheck_note"] = "not run (its n x n Jacobian does not fit)"
    return out


def cli(timeout: float) -> dict:
    """`verifier run` of cases/ in a fresh interpreter: cold (fresh cache dir), then warm."""
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "VERIFIER_CACHE_DIR": str(Path(tmp) / "cache")}
        for _ in range(2):
            start = time.perf_counter()
            try:
                subprocess.run([sys.executable, "-m", "verifier", "run", str(ROOT / "cases"), "--report-dir",
                                str(Path(tmp) / f"reports{len(times)}"), "--no-progress"], env=env,
                               capture_output=True, timeout=timeout, cwd=tmp)
                times.append(time.perf_counter() - start)
            except subprocess.TimeoutExpired:
                times.append(None)
        statuses = [_statuses(Path(tmp) / f"reports{k}") for k in range(2)]
    return {"cli_cold_s": times[0], "cli_warm_s": times[1], "cli_cold_statuses": statuses[0],
            "cli_warm_statuses": statuses[1]}


def _statuses(folder: Path) -> dict:
    """status -> count in the run's summary.csv (the cold and warm runs must give the same verdicts)."""
    import csv
    found = sorted(folder.rglob("summary.csv"))
    if not found:
        return {}
    counts: dict = {}
    with open(found[0], newline="") as fh:
        for rec in csv.DictReader(fh):
            counts[rec.get("status")] = counts.get(rec.get("status"), 0) + 1
    return counts


def _s(x, limit=None) -> str:
    if x is None:
        return f"> {limit:.0f} s" if limit else "-"
    return f"{x:.3f} s"


def show(r: dict) -> None:
    cold, gc = r.get("cold_s"), r.get("gradcheck_s")
    ratio = f"{cold / gc:.2f}x" if cold is not None and gc else "-"
    extra = ""
    if cold is not None and r.get("warm_s") is not None:
        extra = f"  cold - warm {1000 * (cold - r['warm_s']):.0f} ms"
    print(f"{r['row']:<26} cold {_s(cold, r['timeout']):>10}  warm {_s(r.get('warm_s')):>9}  "
          f"gradcheck {r.get('gradcheck_note') or _s(gc, r['gc_timeout']):>10}  ratio {ratio:>7}  "
          f"peak RSS {r.get('peak_rss_mib', float('nan')):.0f} MiB{extra}")
    if r.get("cold_cpu_s") is not None:
        gc_cpu = r.get("gradcheck_cpu_s")
        print(f"    CPU seconds: cold {r['cold_cpu_s']:.3f}  warm {r['warm_cpu_s']:.3f}" + (
            f"  gradcheck {gc_cpu:.3f}  ratio {r['cold_cpu_s'] / gc_cpu:.2f}x" if gc_cpu else ""))
    if "error" in r:
        print(f"    error: {r['error']}")
    elif cold is not None:
        print(f"    {r['status']}{'; FD sampled at 8' if r.get('fd_sampled') else ''}; {r['route'][:150]}" + (f"; {r['message'][:100]}" if r["message"] else ""))
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="comma-separated row names")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per row for ours (cold + warm)")
    parser.add_argument("--gc-timeout", type=float, default=120.0, help="seconds per row for gradcheck")
    parser.add_argument("--no-cli", action="store_true", help="skip `verifier run` of the library")
    parser.add_argument("--cli-only", action="store_true", help="only `verifier run` of the library, cold then warm")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    parser.add_argument("--child")
    parser.add_argument("--child-gradcheck")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child_ours(args.child)))
        return
    if args.child_gradcheck:
        print(json.dumps(child_gradcheck(args.child_gradcheck)))
        return
    names = [] if args.cli_only else args.only.split(",") if args.only else list(ROWS)
    rows = []
    for name in names:
        rows.append(row(name, args.timeout, args.gc_timeout))
        show(rows[-1])
    if args.cli_only or (not args.no_cli and not args.only):
        c = cli(max(args.timeout, 300.0))
        rows.append(c)
        ratio = (f"{c['cli_cold_s'] / c['cli_warm_s']:.2f}x" if c["cli_cold_s"] and c["cli_warm_s"] else "-")
        print(f"verifier run cases/: cold {_s(c['cli_cold_s'], 300)}  warm {_s(c['cli_warm_s'], 300)}  "
              f"cold/warm {ratio}; statuses cold {c['cli_cold_statuses']} warm {c['cli_warm_statuses']}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
