"""Speed and memory of the verifier against torch.autograd.gradcheck (slow mode), issue 5's targets.

    python benchmarks/speed.py                 # P1, P2, P3
    python benchmarks/speed.py --only softmax  # the pipeline on softmax at n = 16, 64, 256, 1024
    python benchmarks/speed.py --only P1 --repeat 5
    python benchmarks/speed.py --cases path/to/cases   # P3 on other case files

Every number is measured in this run, on this machine; ours and gradcheck's
run on the same function and input, one after the other, in the same
process. Times are the minimum over ``--repeat`` runs, as wall-clock seconds
and as CPU seconds of the process (on a shared machine the CPU time is the
steadier of the two). torch runs with ``--threads`` threads (default 1: on
small tensors extra threads only add contention, for both sides alike).

P1  dense functions with n = 1024 input elements: our full check (exact Jᵀv
    in 40-digit arithmetic, finite differences, backward, comparison rows)
    against gradcheck(fast_mode=False). "warm": the compiled symbolic graph
    comes from the disk cache, the exact values are still computed at the
    point (the values cache is off); "cold": SymPy builds the graph in the
    run. Target: warm <= 2x.
P2  an elementwise case with 10^6 elements, exact for every element (one
    scalar template, evaluated vectorised in float64, plus 16 elements in 40
    digits); finite differences SAMPLED at 8 elements (Richardson, unbatched:
    the all-at-once differences of every element would take 700 MiB more). Runs in a fresh
    process, whose peak RSS (ru_maxrss, torch's import included) is the
    memory. gradcheck's slow mode would build a 10^12-entry Jacobian; its
    time is extrapolated (n^2) from n = 1024 and 2048 and labelled so.
    Targets: <= 3 s, <= 1 GiB.
P3  every case in cases/ plus a generated representative set (elementwise,
    reductions, shape, linalg, nn), each in each of its dtypes: our Runner
    warm (the default cache: tapes, and exact values and kink reports at the
    case's point; torch's backward and finite differences run and are judged
    anew), warm with only the tapes cached, and cold (empty cache), against
    gradcheck slow mode in float64 on the same cases and inputs. Also
    `verifier run` end to end (a fresh interpreter, reports written).
    Targets: warm <= 2x, cold <= 60 s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from representative import representative_cases  # noqa: E402

import verifier  # noqa: E402
from verifier.exact.cache import Cache  # noqa: E402
from verifier.report import tables  # noqa: E402
from verifier.run.runner import Runner, _round  # noqa: E402
from verifier.torch_side.autograd import make_leaves, torch_callable  # noqa: E402

N = 1024
P1_CASES = {
    "softmax": ({"x": {"shape": [N], "sample": "normal", "seed": 1}}, "F.softmax(x, dim=0)"),
    "log_softmax": ({"x": {"shape": [N], "sample": "normal", "seed": 1}}, "F.log_softmax(x, dim=0)"),
    "logsumexp": ({"x": {"shape": [N], "sample": "normal", "seed": 1}}, "torch.logsumexp(x, dim=0)"),
    "matmul_32x32_by_32x8": ({"x": {"shape": [32, 32], "sample": "normal", "seed": 1},
                             "w": {"shape": [32, 8], "sample": "normal", "seed": 2, "requires_grad": False}},
                            "x @ w"),
    "layer_norm": ({"x": {"shape": [N], "sample": "normal", "seed": 1}}, f"F.layer_norm(x, [{N}])"),
}
P2_SHAPE = [1000, 1000]
P2_EXPR = "x * torch.tanh(F.softplus(x))"          # mish, written out: three elementwise ops
P2_FD_SAMPLES = 8


# The targets time the check issue 5 defines: exact Jᵀv, finite differences, backward, comparison.
# The forward-mode and second-order checks (issue 4) are extra work gradcheck's slow mode does not do;
# P3 also prints the suite with them on, as `verifier run` runs it.
FIRST_ORDER = {"forward_mode": False, "second_order": False}


def timed(fn, repeat: int) -> tuple[float, float, object]:
    """(min wall s, min CPU s, last result) over ``repeat`` calls."""
    walls, cpus, out = [], [], None
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return min(walls), min(cpus), out


def gradcheck_case(case, dtype: str = "float64", *, all_checks: bool = False) -> bool:
    """gradcheck slow mode on the case's torch function at its inputs (as ``dtype`` holds them, in float64).

    ``all_checks``: the like-for-like of our forward-mode and second-order
    checks too: gradcheck(check_forward_ad=True), then gradgradcheck.
    """
    values = {s.name: (_round(s.values(), dtype) if s.dtype is None else s.values()) for s in case.inputs}
    leaves = make_leaves(case, values, "float64")
    fn = torch_callable(case)
    try:
        ok = bool(torch.autograd.gradcheck(fn, tuple(leaves), fast_mode=False, raise_exception=False,
                                           check_forward_ad=all_checks))
        if all_checks:
            ok = ok and bool(torch.autograd.gradgradcheck(fn, tuple(leaves), fast_mode=False,
                                                          raise_exception=False))
        return ok
    except Exception:   # expected-error cases, ops without forward AD: torch raises; the time until then counts
        return False


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def warm_up() -> None:
    """One small case through both sides first: one-off process costs (imports, first calls) count for neither."""
    case = verifier.make_case("warm_up", {"x": {"shape": [8], "sample": "normal"}},
                              forward="F.softmax(x, dim=0) * torch.exp(x)", grad_output="random")
    Runner(cache=False).run(case, "float64")
    gradcheck_case(case)


def p1(repeat: int) -> list[dict]:
    rows = []
    for name, (inputs, expr) in P1_CASES.items():
        case = verifier.make_case(f"p1.{name}", inputs, forward=expr, grad_output="random")
        with tempfile.TemporaryDirectory() as tmp:
            cache = Cache(tmp, values=False)        # warm = the tape cached; exact values computed here
            cold_w, cold_c, res = timed(lambda: _fresh_run(case, tmp), 1)
            warm_w, warm_c, res = timed(lambda: Runner(cache=cache, **FIRST_ORDER).run(case, "float64"), repeat)
        gc_w, gc_c, ok = timed(lambda: gradcheck_case(case), repeat)
        rows.append({"target": "P1", "case": name, "status": res.status, "route": res.route,
                     "ours_s": warm_w, "ours_cpu_s": warm_c, "cold_s": cold_w, "cold_cpu_s": cold_c, "gradcheck_s": gc_w,
                     "gradcheck_cpu_s": gc_c, "ratio": warm_w / gc_w, "ratio_cpu": warm_c / gc_c,
                     "cold_ratio": cold_w / gc_w, "peak_rss_mib": rss_mib()})
    return rows


def _fresh_run(case, tmp):
    # a new directory each time: the SymPy build happens inside the timed call
    return Runner(cache=Cache(tempfile.mkdtemp(dir=tmp), values=False), **FIRST_ORDER).run(case, "float64")


def p2_child() -> dict:
    """Run in a fresh process: the P2 case once, with its time and the process's peak RSS."""
    case = verifier.make_case("p2.mish_1e6", {"x": {"shape": P2_SHAPE, "sample": "normal", "seed": 1}},
                              forward=P2_EXPR, grad_output="random")
    base = rss_mib()
    # finite differences sampled: all-at-once differences of every element cost 700 MiB here
    runner = Runner(cache=False, fd_max_elements=P2_FD_SAMPLES, fd_overrides={"elementwise": (), "batch": False},
                    **FIRST_ORDER)
    wall, cpu, res = timed(lambda: runner.run(case, "float64"), 1)
    leaves = make_leaves(case, {"x": case.input("x").values()}, "float64")
    fast_w, _, _ = timed(lambda: torch.autograd.gradcheck(torch_callable(case), tuple(leaves), fast_mode=True), 1)
    return {"status": res.status, "message": res.message, "route": res.route, "ours_s": wall, "ours_cpu_s": cpu,
            "fd_method": f"{res.rows['fd_method'].iloc[0]}; "
                         f"{int(res.rows['finite_diff'].notna().sum())} of {len(res.rows)} elements; "
                         + "; ".join(getattr(res.fd, "notes", []) or []),
            "elements": int(len(res.rows)), "checks": [f"{c.name}: {c.status}" for c in res.checks],
            "peak_rss_mib": rss_mib(), "rss_after_imports_mib": base, "gradcheck_fast_s": fast_w}


def p2(repeat: int) -> list[dict]:
    out = subprocess.run([sys.executable, __file__, "--child-p2", "--threads", str(torch.get_num_threads())],
                         capture_output=True, text=True, check=True)
    row = json.loads(out.stdout.strip().splitlines()[-1])
    # gradcheck slow mode on the same function at n = 1024 and 2048; its cost grows as n^2
    times = {}
    for n in (1024, 2048):
        case = verifier.make_case("p2.small", {"x": {"shape": [n], "sample": "normal", "seed": 1}},
                                  forward=P2_EXPR)
        times[n], _, _ = timed(lambda: gradcheck_case(case), repeat)
    n_big = P2_SHAPE[0] * P2_SHAPE[1]
    estimate = times[2048] * (n_big / 2048) ** 2
    row.update({"target": "P2", "case": f"{P2_EXPR}, {n_big} elements", "gradcheck_s": estimate,
                "gradcheck_note": f"extrapolated as n^2 from {times[1024]:.3f} s (n=1024), {times[2048]:.3f} s "
                                  f"(n=2048)", "ratio": row["ours_s"] / estimate})
    return [row]


def softmax_sizes(repeat: int) -> list[dict]:
    """The pipeline on softmax(x, dim=0) at n = 16, 64, 256, 1024: cold (SymPy build) and warm (cached tape)."""
    rows = []
    for n in (16, 64, 256, 1024):
        case = verifier.make_case(f"softmax.n{n}", {"x": {"shape": [n], "sample": "normal", "seed": 1}},
                                  forward="F.softmax(x, dim=0)", grad_output="random")
        with tempfile.TemporaryDirectory() as tmp:
            cold_w, cold_c, res = timed(lambda: _fresh_run(case, tmp), 1)
            cache = Cache(tmp, values=False)
            Runner(cache=cache, **FIRST_ORDER).run(case, "float64")
            warm_w, warm_c, res = timed(lambda: Runner(cache=cache, **FIRST_ORDER).run(case, "float64"), repeat)
        gc_w, gc_c, _ = timed(lambda: gradcheck_case(case), repeat)
        rows.append({"target": "softmax", "case": f"softmax(x, dim=0), n={n}", "status": res.status,
                     "route": res.route, "ours_s": warm_w, "ours_cpu_s": warm_c, "cold_s": cold_w,
                     "cold_cpu_s": cold_c, "gradcheck_s": gc_w, "gradcheck_cpu_s": gc_c,
                     "ratio": warm_w / gc_w, "ratio_cpu": warm_c / gc_c, "cold_ratio": cold_w / gc_w,
                     "peak_rss_mib": rss_mib()})
    return rows


def suite_cases(cases_dir: Path) -> list:
    from verifier.cases.loading import load_paths
    loaded = load_paths([cases_dir]) if cases_dir.exists() else None
    cases = list(loaded.cases) if loaded else []
    return cases + representative_cases()


def p3(cases_dir: Path, repeat: int) -> list[dict]:
    cases = suite_cases(cases_dir)
    pairs = [(c, d) for c in cases for d in c.dtypes]
    with tempfile.TemporaryDirectory() as tmp:
        tapes_only = Cache(Path(tmp) / "tapes", values=False)
        full = Cache(Path(tmp) / "full")

        def ours(cache, **checks):
            # the run and its tables (details, summary, checks): what the reports are written from
            runner = Runner(cache=cache, **(checks or FIRST_ORDER))
            results = [runner.run(c, d) for c, d in pairs]
            detail = tables.details(results)
            tables.summary(results, detail), tables.checks(results)
            return [r.status for r in results]

        cold_w, cold_c, statuses = timed(lambda: ours(tapes_only), 1)
        tape_w, tape_c, statuses = timed(lambda: ours(tapes_only), repeat)
        ours(full)
        warm_w, warm_c, statuses = timed(lambda: ours(full), repeat)
        ours(full, forward_mode=True, second_order=True)
        all_w, all_c, _ = timed(lambda: ours(full, forward_mode=True, second_order=True), repeat)
        cli_cold, cli_warm = cli_runs(cases_dir)
    gc_w, gc_c, _ = timed(lambda: [gradcheck_case(c, d) for c, d in pairs], repeat)
    gc_all_w, gc_all_c, _ = timed(lambda: [gradcheck_case(c, d, all_checks=True) for c, d in pairs], repeat)
    counts = {s: statuses.count(s) for s in sorted(set(statuses))}
    return [{"target": "P3", "case": f"{len(cases)} cases ({len(cases) - len(representative_cases())} from "
                                     f"{cases_dir.name}/), {len(pairs)} case x dtype runs",
             "status": counts, "ours_s": warm_w, "ours_cpu_s": warm_c, "cold_s": cold_w, "cold_cpu_s": cold_c,
             "tapes_only_s": tape_w, "tapes_only_cpu_s": tape_c, "all_checks_s": all_w, "all_checks_cpu_s": all_c,
             "gradcheck_all_s": gc_all_w, "gradcheck_all_cpu_s": gc_all_c,
             "gradcheck_s": gc_w, "gradcheck_cpu_s": gc_c, "ratio": warm_w / gc_w, "ratio_cpu": warm_c / gc_c,
             "cli_cold_s": cli_cold, "cli_warm_s": cli_warm, "peak_rss_mib": rss_mib()}]


def cli_runs(cases_dir: Path) -> tuple[float | None, float | None]:
    """`verifier run` on cases_dir in a fresh interpreter: (cold, warm) wall seconds (reports written)."""
    if not cases_dir.exists():
        return None, None
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "VERIFIER_CACHE_DIR": str(Path(tmp) / "cache")}
        for _ in range(2):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "verifier", "run", str(cases_dir), "--report-dir",
                            str(Path(tmp) / "reports"), "--no-progress"], env=env, capture_output=True)
            out.append(time.perf_counter() - start)
    return out[0], out[1]


def show(rows: list[dict]) -> None:
    def f(x, unit="s"):
        return "-" if x is None else f"{x:.3f} {unit}" if isinstance(x, float) else str(x)
    print(f"\ntorch {torch.__version__}, {torch.get_num_threads()} thread(s), float64, "
          f"times = min over repeats (wall; CPU in brackets)")
    for r in rows:
        print(f"\n[{r['target']}] {r['case']}: {r.get('status')}")
        print(f"  ours {f(r['ours_s'])} [{f(r.get('ours_cpu_s'))}]   gradcheck slow mode {f(r['gradcheck_s'])} "
              f"[{f(r.get('gradcheck_cpu_s'))}]   ratio {r['ratio']:.2f}x"
              + (f" [{r['ratio_cpu']:.2f}x]" if "ratio_cpu" in r else ""))
        if "cold_s" in r:
            print(f"  cold (symbolic work in the run) {f(r['cold_s'])}"
                  + (f" [{f(r['cold_cpu_s'])}]" if "cold_cpu_s" in r else "")
                  + (f", ratio {r['cold_ratio']:.2f}x" if "cold_ratio" in r else ""))
        if "tapes_only_s" in r:
            print(f"  warm with only the tapes cached (exact values and kink reports computed at the point): "
                  f"{f(r['tapes_only_s'])} [{f(r['tapes_only_cpu_s'])}], ratio "
                  f"{r['tapes_only_s'] / r['gradcheck_s']:.2f}x [{r['tapes_only_cpu_s'] / r['gradcheck_cpu_s']:.2f}x]")
        if "all_checks_s" in r:
            print(f"  warm with forward-mode and second-order checks on too (as `verifier run`): "
                  f"{f(r['all_checks_s'])} [{f(r['all_checks_cpu_s'])}], ratio to gradcheck slow mode "
                  f"{r['all_checks_s'] / r['gradcheck_s']:.2f}x [{r['all_checks_cpu_s'] / r['gradcheck_cpu_s']:.2f}x]")
            print(f"    like for like: gradcheck(check_forward_ad=True) + gradgradcheck, slow mode, "
                  f"{f(r['gradcheck_all_s'])} [{f(r['gradcheck_all_cpu_s'])}], ratio "
                  f"{r['all_checks_s'] / r['gradcheck_all_s']:.2f}x "
                  f"[{r['all_checks_cpu_s'] / r['gradcheck_all_cpu_s']:.2f}x]")
        if "cli_cold_s" in r:
            print(f"  `verifier run` end to end: cold {f(r['cli_cold_s'])}, warm {f(r['cli_warm_s'])}")
        if "gradcheck_note" in r:
            print(f"  gradcheck slow mode {r['gradcheck_note']}; gradcheck fast mode (one random projection): "
                  f"{f(r['gradcheck_fast_s'])}")
            print(f"  finite differences: {r['fd_method']}; exact side: {r['route']}")
            print(f"  peak RSS {r['peak_rss_mib']:.0f} MiB (after imports {r['rss_after_imports_mib']:.0f} MiB)")
        else:
            print(f"  peak RSS so far {r['peak_rss_mib']:.0f} MiB")
        if r.get("route") and r["target"] in ("P1", "softmax"):
            print(f"  exact side: {r['route']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="P1,P2,P3")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cases", type=Path, default=ROOT / "cases")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    ap.add_argument("--child-p2", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.child_p2:
        print(json.dumps(p2_child()))
        return
    warm_up()
    rows = []
    only = {t.strip().upper() for t in args.only.split(",")}
    if "P1" in only:
        rows += p1(args.repeat)
    if "P2" in only:
        rows += p2(args.repeat)
    if "P3" in only:
        rows += p3(args.cases, args.repeat)
    if "SOFTMAX" in only:
        rows += softmax_sizes(args.repeat)
    show(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=str))


if __name__ == "__main__":
    main()
