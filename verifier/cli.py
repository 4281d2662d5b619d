"""The command line: ``verifier run | list | validate | explain | new | schema | functions | diff | merge | audit``.

Exit codes: 0 every case passed; 1 a case failed, errored, timed out or ran
out of memory; 2 a usage error or a case file that does not load; 3 an
internal error (a bug in the verifier); 130 interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import sys
from pathlib import Path
from typing import Sequence

from .cases.loading import LoadResult, load_paths, schema
from .cases.registry import builtin_cases_dir, registered
from .cases.selection import compile_keyword
from .cases.user_functions import imported_modules, refuse_code
from .errors import VerifierError
from .exact import mirror
from .run.options import _dtype, _seconds, add_run_options

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
EXIT_CODES = """exit codes:
  0  every case passed (or was skipped)
  1  a case failed, errored, timed out or ran out of memory
  2  a usage error (an unknown option or dtype, no case selected) or a case file that does not load
  3  an internal error: a bug in the verifier (please report it with the traceback)
  130  interrupted (Ctrl-C)"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="verifier", description="Prove PyTorch's gradients right.",
                                epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def paths_and_k(sp):
        sp.add_argument("paths", nargs="*", metavar="PATH", help="case files or folders (default: built-in cases/)")
        sp.add_argument("-k", dest="keyword", default="", metavar="PATTERN",
                        help="select cases by name or tag, as in pytest (substrings, any case: 'py' also "
                             "matches cross_entropy): 'softmax and not log'")
        no_functions(sp)

    def no_functions(sp):
        sp.add_argument("--no-functions", action="store_true",
                        help="refuse every case that imports code through a 'functions:' field")

    run = sub.add_parser("run", help="verify cases and write reports")
    paths_and_k(run)
    add_run_options(run)
    from .run.shard import add_arguments as add_scale_arguments
    add_scale_arguments(run)
    lst = sub.add_parser("list", help="list cases with their tags")
    paths_and_k(lst)
    val = sub.add_parser("validate", help="check case files without running them")
    val.add_argument("paths", nargs="*", metavar="PATH")
    no_functions(val)
    exp = sub.add_parser("explain", help="print a case's derivation")
    exp.add_argument("name")
    exp.add_argument("paths", nargs="*", metavar="PATH")
    exp.add_argument("--dtype", default=None, type=_dtype,
                     help="the dtype to run (default float64 when the case has it)")
    exp.add_argument("--timeout", type=_seconds, default=None, metavar="SECONDS",
                     help="time limit for a case without its own 'timeout:' field (default 300; 0: none)")
    exp.add_argument("--full", action="store_true", help="every row of the numbers table (default: the first 24)")
    exp.add_argument("--rationals", action="store_true", help="weights as exact rationals in the formulas")
    exp.add_argument("--jacobian", metavar="CSV", help="write the exact Jacobian at the point to CSV")
    new = sub.add_parser("new", help="write a commented YAML case skeleton")
    new.add_argument("name")
    new.add_argument("-o", "--output", default=None,
                     help="file to write (default: cases/NAME.yaml under the current directory)")
    sub.add_parser("schema", help="print the case file JSON Schema")
    sub.add_parser("functions", help="list the supported functions and their definitions")
    from .report.diff import add_parser as add_diff_parser
    add_diff_parser(sub)
    from .report.merge import add_parser as add_merge_parser
    add_merge_parser(sub)
    from .audit.command import add_parser as add_audit_parser
    add_audit_parser(sub)
    return p


def _load(paths: Sequence[str], keyword: str = "", no_functions: bool = False, limits=(None, "auto")) -> LoadResult:
    python = [p for p in paths if str(p).endswith(".py")]
    result = load_paths([p for p in paths if p not in python] if paths else [builtin_cases_dir()])
    if not paths:
        result.cases.extend(registered())
    if python:     # imported in worker processes under the run's limits; a failure is one error row
        from .run.python_cases import add_python_files
        add_python_files(result, python, limits, no_functions)
    result.failed_imports = getattr(result, "failed_imports", [])
    if keyword:
        keep = compile_keyword(keyword)
        result.cases = [c for c in result.cases if keep(" ".join([c.name, *c.tags]))]
    if no_functions:
        refuse_code(result)
    return result


def _print_errors(result: LoadResult) -> None:
    for err in result.errors:
        print(f"error: {err}", file=sys.stderr)


def _not_loaded(errors) -> str:
    """'2 case(s) did not load, 1 file could not be read': a file error drops cases it cannot count."""
    cases = sum(1 for e in errors if getattr(e, "case", None))
    files = len(errors) - cases
    parts = [f"{cases} case(s) did not load"] if cases else []
    parts += [f"{files} file(s) could not be read (none of their cases ran)"] if files else []
    return ", ".join(parts)


def cmd_run(args) -> int:
    import shutil
    import tempfile

    from .report.writing import check_writable
    from .run.digest import DetailPolicy
    from .run.isolation import DEFAULT_TIMEOUT, IsolatedRunner

    out = check_writable(args.report_dir)
    _resolve_devices(args)
    timeout = DEFAULT_TIMEOUT if args.timeout is None else args.timeout
    try:
        policy = DetailPolicy.parse(args.details)
    except ValueError as exc:
        raise VerifierError(str(exc)) from None
    if args.details_parquet:
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise VerifierError("--details-parquet needs pyarrow: pip install 'verifier[parquet]' "
                                "(or pyarrow), or leave the option out") from None
        # each worker writes its results' full tables here; write_reports merges them into details.parquet
        args.parquet_parts = tempfile.mkdtemp(prefix=".parts-", dir=out)
        policy = DetailPolicy(policy.keep, args.parquet_parts)
    try:
        # the workers start importing now, while this process loads the case files
        if args.scheduler:
            from .run.dask_backend import DaskRunner
            runner = DaskRunner(args.scheduler, timeout, args.memory_limit, details=policy, cache_dir=args.cache_dir)
        else:
            if args.cache_dir:      # the workers are forked from a server started below: they inherit it
                os.environ["VERIFIER_CACHE_DIR"] = os.path.abspath(args.cache_dir)
            runner = IsolatedRunner(args.jobs, timeout, args.memory_limit, details=policy)
        with runner.start():
            return _run(args, runner)
    finally:
        if args.details_parquet:
            shutil.rmtree(args.parquet_parts, ignore_errors=True)


def _run(args, runner) -> int:
    from .report import ci
    from .report.terminal import Progress, print_summary
    from .report.writing import atomic_write, write_reports

    loaded = _load(args.paths, args.keyword, args.no_functions, (args.timeout, args.memory_limit))
    _print_errors(loaded)
    if not loaded.cases and not loaded.errors and not loaded.failed_imports:
        print("no cases selected", file=sys.stderr)
        return EXIT_USAGE
    for module, names in imported_modules(loaded.cases).items():     # code a case file makes this run import
        print(f"imports code: {module} (functions: of {', '.join(names[:3])}"
              f"{f' and {len(names) - 3} more' if len(names) > 3 else ''})", file=sys.stderr)
    if getattr(args, "strict_kinks", False):
        loaded.cases = [dataclasses.replace(c, strict_kinks=True) for c in loaded.cases]
    device, fd_device = getattr(args, "device", None), getattr(args, "fd_device", None)
    if device or fd_device:      # a case's own `device:` wins over --device
        loaded.cases = [dataclasses.replace(c, device=c.device or device, fd_device=fd_device) for c in loaded.cases]
    if args.shard:            # this CI runner's part of the cases (run/shard.py)
        from .run.shard import select
        loaded.cases = select(loaded.cases, args.shard, args.shard_costs)
    jobs = [(c, d) for c in loaded.cases for d in c.dtypes if not args.dtype or d in args.dtype]
    if not jobs and args.dtype:   # nothing to run is not a pass, and must not replace the last report
        print(f"error: no selected case runs in {', '.join(args.dtype)}; the previous report is left as it was",
              file=sys.stderr)
        return _load_status(loaded) if loaded.errors else EXIT_USAGE
    progress = Progress(jobs, disable=args.no_progress)
    try:
        results = loaded.failed_imports + runner.run(jobs, on_result=progress.result)
        load_errors = [str(e) for e in loaded.errors]
        paths = write_reports(results, args.report_dir, load_errors=load_errors, details=runner.details,
                              parquet_parts=getattr(args, "parquet_parts", None), progress=progress.writing)
        if args.junit_xml:
            progress.writing("JUnit XML")
            paths["junit"] = Path(args.junit_xml)
            paths["junit"].parent.mkdir(parents=True, exist_ok=True)
            atomic_write(paths["junit"], ci.junit_xml(results, _summary(results)))
    finally:
        progress.close()
    print_summary(results, paths)
    _ci_extras(args, results, paths)
    if loaded.errors:
        print(f"{_not_loaded(loaded.errors)}; see the errors above.", file=sys.stderr)
        return _load_status(loaded)
    return EXIT_OK if all(r.status in ("pass", "skip") for r in results) else EXIT_FAILED


def _resolve_devices(args) -> None:
    """--device / --fd-device as the devices they name (auto resolved); a usage error when one is absent."""
    from .torch_side.device import resolve
    for option, attr in (("--device", "device"), ("--fd-device", "fd_device")):
        if getattr(args, attr, None):
            try:
                setattr(args, attr, resolve(getattr(args, attr)).name)
            except VerifierError as exc:
                raise VerifierError(f"{option}: {exc}") from None


def _summary(results):
    from .report import tables
    return tables.summary(results)


def _ci_extras(args, results, paths) -> None:
    """GitHub Actions: the Markdown summary into $GITHUB_STEP_SUMMARY, ::error annotations on stdout."""
    from .report import ci
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary and "markdown" in paths:
        try:
            with open(step_summary, "a", encoding="utf-8") as handle:
                handle.write(Path(paths["markdown"]).read_text(encoding="utf-8"))
        except OSError as exc:
            print(f"warning: cannot append to $GITHUB_STEP_SUMMARY ({step_summary}): {exc}", file=sys.stderr)
    if args.annotate or os.environ.get("GITHUB_ACTIONS") == "true":
        for line in ci.annotations(results, _summary(results)):
            print(line)


def cmd_list(args) -> int:
    loaded = _load(args.paths, args.keyword, args.no_functions)
    _print_errors(loaded)
    for c in loaded.cases:
        print(f"{c.name:40s} [{', '.join(c.tags)}] {', '.join(c.dtypes)}  {c.description}")
    print(f"{len(loaded.cases)} case(s)")
    return _load_status(loaded)


def _load_status(loaded: LoadResult) -> int:
    """0 when everything loaded, 2 for a case file that does not, 3 when the loader itself failed (a bug)."""
    if any(getattr(err, "internal", False) for err in loaded.errors):
        return EXIT_INTERNAL
    return EXIT_USAGE if loaded.errors else EXIT_OK


def cmd_validate(args) -> int:
    loaded = _load(args.paths, no_functions=args.no_functions)
    _print_errors(loaded)
    status = "ok" if not loaded.errors else "FAILED"
    print(f"{status}: {len(loaded.cases)} valid case(s), {len(loaded.errors)} error(s)")
    return _load_status(loaded)


def cmd_explain(args) -> int:
    from .report.explain import explain_result
    loaded = _load(args.paths)
    matches = [c for c in loaded.cases if c.name == args.name]
    if not matches:
        _print_errors(loaded)
        print(f"error: no case named '{args.name}'; `verifier list` shows the names.", file=sys.stderr)
        return EXIT_USAGE
    from .run.isolation import DEFAULT_TIMEOUT
    from .run.launch import IsolatedCallError, call_in_worker, default_memory_limit
    from .run.pool import memory_limit, time_limit
    case = matches[0]
    timeout = time_limit(case, DEFAULT_TIMEOUT if args.timeout is None else args.timeout)
    try:   # in a worker process, under the case's limits, like `verifier run`
        explain = functools.partial(explain_result, full=args.full, rationals=args.rationals,
                                    jacobian_csv=args.jacobian)
        text, result = call_in_worker(explain, (case, args.dtype), timeout=timeout,
                                      memory_limit=memory_limit(case, default_memory_limit()))
    except IsolatedCallError as exc:
        print(f"error: case '{case.name}' could not be explained: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(text)
    return EXIT_OK if result.status in ("pass", "skip") else EXIT_FAILED


def cmd_new(args) -> int:
    from .cases.skeleton import name_problem, skeleton
    if problem := name_problem(args.name):
        print(f"error: {problem}.", file=sys.stderr)
        return EXIT_USAGE
    # ./cases/ of the current directory, never the installed checkout's
    target = Path(args.output) if args.output else Path("cases") / f"{args.name}.yaml"
    if target.exists() or target.is_symlink():
        print(f"error: {target} exists; choose another name or -o PATH.", file=sys.stderr)
        return EXIT_USAGE
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "x", encoding="utf-8") as handle:      # "x": never overwrite what appeared meanwhile
        handle.write(skeleton(args.name, str(target)))
    print(f"wrote {target}; edit it, then `verifier validate {target}`.")
    return EXIT_OK


def cmd_schema(args) -> int:
    print(json.dumps(schema(), indent=2))
    return EXIT_OK


def cmd_functions(args) -> int:
    for name, fn in sorted(mirror.FUNCTIONS.items()):
        print(f"{name:28s} {fn.doc} [{fn.qualname}]")
    for name, fn in sorted(mirror.SPELLINGS.items()):
        print(f"{name:28s} {fn.doc}")
    aliases = ", ".join(f"{a}->{t}" for a, t in sorted(mirror.ALIASES.items()))
    print(f"\naliases: {aliases}")
    names = mirror.qualified_names()
    print(f"\nfully qualified names ({len(names)}; each calls exactly that torch object): " + ", ".join(names))
    return EXIT_OK


def cmd_audit(args) -> int:
    from .audit.command import command
    return command(args)


def cmd_diff(args) -> int:
    from .report.diff import command
    return command(args)


def cmd_merge(args) -> int:
    from .report.merge import command
    return command(args)


COMMANDS = {"run": cmd_run, "list": cmd_list, "validate": cmd_validate, "explain": cmd_explain,
            "new": cmd_new, "schema": cmd_schema, "functions": cmd_functions, "diff": cmd_diff, "merge": cmd_merge,
            "audit": cmd_audit}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except VerifierError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:   # `verifier schema | head`: the reader left; not an error of ours
        sys.stdout = open(os.devnull, "w")
        return EXIT_OK
    except BaseException as exc:   # a bug of ours (or SystemExit from code a case loaded): never "a case failed"
        import traceback
        traceback.print_exc()
        print(f"internal error: {type(exc).__name__}: {exc}. This is a bug in the verifier; please report it "
              f"with the traceback above.", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
