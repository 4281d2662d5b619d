"""pytest plugin: every case in a YAML case file becomes a test item, one per case × dtype.

Python case files (``verifier.register(verifier.make_case(...))``) are collected too: one named on the
command line, or one named ``*_cases.py``/``cases_*.py`` in a folder pytest walks; test modules stay
pytest's. They are imported in a worker process, never in pytest's (:mod:`verifier.run.python_cases`).

Registered with the ``pytest11`` entry point, so ``pytest cases/`` works
wherever the package is installed. A YAML file is collected when it holds a
top-level ``cases:`` key (other YAML files are left alone). Items are named
``case.name[dtype]``, so ``-k``, ``--lf``, ``-x`` and the other usual options
work on them; ``-k`` also matches a case's tags. A failing item prints the
sectioned text of :mod:`verifier.verdict.failure` under one informative first line
("x: 12/12 elements wrong, max rel 0.5; FD agrees with exact → backward is
wrong"), as ``--tb`` asks; each item's numbers are ``user_properties`` (so
``--junitxml`` carries them). A case that does not load becomes
one failing item with the loader's one-line error, so the other cases still
run. ``--verifier-report DIR`` writes the same reports as ``verifier run``; under
pytest-xdist (``-n N``) each worker writes its part into a hidden folder of
DIR and the controller merges them (:mod:`verifier.report.merge`).

Items run in one worker process per pytest session, with the same isolation
as ``verifier run`` (:mod:`verifier.run.isolation`): a case's ``timeout`` (else
300 s) and ``memory_limit`` apply, and a hang, a crash or a segfault in a
custom function fails that item instead of the session.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from pathlib import Path

import pytest
from _pytest._code.code import ReprFileLocation, TerminalRepr

from .verdict.failure import describe

_RESULTS = pytest.StashKey[list]()
_RUNNER = pytest.StashKey[object]()
_LOAD_ERRORS = pytest.StashKey[list]()
_REPORT_PATHS = pytest.StashKey[dict]()
_CASE_NAMES = pytest.StashKey[dict]()
_XDIST_PARTS = pytest.StashKey[list]()
_CASES_KEY = re.compile(r"^cases\s*:", re.MULTILINE)
SNIFF_BYTES = 1 << 20   # a case file is at most 1 MiB (loading.MAX_FILE_BYTES)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("verifier", "gradient verification (verifier case files)")
    group.addoption("--verifier-report", metavar="DIR", default=None,
                    help="write summary.csv, details.csv and report.html of the verifier cases that ran into DIR")
    group.addoption("--verifier-device", metavar="DEVICE", default=None,
                    help="where torch's side runs for cases without 'device:' (cpu, cuda, cuda:N, mps, auto); "
                         "as `verifier run --device`")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "verifier: a gradient check collected from a verifier case file")
    config.stash[_RESULTS] = []
    config.stash[_LOAD_ERRORS] = []
    config.stash[_CASE_NAMES] = {}
    config.stash[_XDIST_PARTS] = []
    if config.pluginmanager.hasplugin("xdist"):        # pytest -n N: the controller gathers the workers' parts
        config.pluginmanager.register(_XdistParts(config), "verifier-xdist-parts")
    device = config.getoption("verifier_device", None)
    if device:
        from .torch_side.device import resolve
        try:
            config.option.verifier_device = resolve(device).name      # auto resolved once
        except Exception as exc:
            raise pytest.UsageError(f"--verifier-device: {exc}") from None
    directory = config.getoption("verifier_report", None)
    if directory and not hasattr(config, "workerinput"):
        from .errors import VerifierError
        from .report.writing import check_writable
        try:
            check_writable(directory)   # fail now, not after every case has run
        except VerifierError as exc:
            raise pytest.UsageError(f"--verifier-report: {exc}") from None


def is_case_file(path: Path) -> bool:
    """A ``.yaml``/``.yml`` file with a top-level ``cases:`` key (read as text, never parsed here)."""
    if path.suffix not in (".yaml", ".yml"):
        return False
    try:
        with path.open("r", encoding="utf-8", errors="replace") as handle:
            return bool(_CASES_KEY.search(handle.read(SNIFF_BYTES)))
    except OSError:
        return False


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    if is_case_file(file_path):
        return CaseFile.from_parent(parent, path=file_path)
    # a Python case file found in a folder: named *_cases.py or cases_*.py (one named on the command line
    # reaches pytest_pycollect_makemodule instead); test modules stay pytest's own
    if (file_path.suffix == ".py" and not parent.session.isinitpath(file_path)
            and (file_path.name.endswith("_cases.py") or file_path.name.startswith("cases_"))
            and not _test_module(parent, file_path) and _registers_cases(file_path)):
        return PythonCaseFile.from_parent(parent, path=file_path)
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(module_path: Path, parent):
    """``pytest my_cases.py``: a Python case file is imported in the worker, not collected as a test module."""
    if parent.session.isinitpath(module_path) and not _test_module(parent, module_path) \
            and _registers_cases(module_path):
        return PythonCaseFile.from_parent(parent, path=module_path)
    return None


def _test_module(parent, path: Path) -> bool:
    from _pytest.pathlib import fnmatch_ex
    return any(fnmatch_ex(pattern, path) for pattern in parent.config.getini("python_files"))


def _registers_cases(path: Path) -> bool:
    from .cases.python_files import is_python_case_file
    return is_python_case_file(path)


class CaseFile(pytest.File):
    """One case file: an item per case × dtype, and one per case that did not load."""

    def collect(self):
        from .cases.loading import load_file
        yield from _items(self, load_file(self.path))


class PythonCaseFile(pytest.File):
    """A ``.py`` file that registers cases: imported in a worker (never here); an item per case × dtype."""

    def collect(self):
        from .cases.loading import LoadResult
        from .errors import CaseFileError
        from .run.isolation import DEFAULT_TIMEOUT
        from .run.launch import default_memory_limit
        from .run.python_cases import load_python_file
        cases, failed = load_python_file(self.path, timeout=DEFAULT_TIMEOUT, memory_limit=default_memory_limit())
        yield from _items(self, LoadResult(cases, [CaseFileError(failed.message)] if failed else []))


def _items(collector: pytest.File, loaded):
    from .errors import CaseError
    seen = collector.config.stash[_CASE_NAMES]
    for case in loaded.cases:
        if case.name in seen:   # as `verifier run` does: names are unique across the run
            loaded.errors.append(CaseError(f"duplicate case name (also at {seen[case.name]})", file=case.source,
                                           case=case.name, hint="Case names must be unique across the run."))
            continue
        seen[case.name] = case.source
        for dtype in case.dtypes:
            yield CaseItem.from_parent(collector, name=f"{case.name}[{dtype}]", case=case, dtype=dtype)
    for index, error in enumerate(loaded.errors):
        collector.config.stash[_LOAD_ERRORS].append(str(error))
        label = error.case or f"{collector.path.name}:{error.line or index}"
        yield LoadErrorItem.from_parent(collector, name=f"{label}[load]", error=error)


class CaseFailed(Exception):
    """Raised by a case item whose result is not a pass; carries the result."""

    def __init__(self, result) -> None:
        super().__init__(result.message)
        self.result = result


class CaseItem(pytest.Item):
    """One case at one dtype."""

    def __init__(self, *, case, dtype: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.dtype = dtype
        # -k matches the item's name (case[dtype]), its file, and these: the case's tags
        self.extra_keyword_matches.update(case.tags)
        self.add_marker("verifier")

    def runtest(self) -> None:
        device, case = self.config.getoption("verifier_device", None), self.case
        if device and not case.device:                 # a case's own `device:` wins
            case = dataclasses.replace(case, device=device)
        (result,) = _runner(self.config).run([(case, self.dtype)])
        self.config.stash[_RESULTS].append(result)
        # the numbers travel with the test report: --junitxml writes them as <properties>
        self.user_properties.extend(_numbers(result).items())
        if result.status == "skip":
            pytest.skip(result.message or "skipped")
        if result.status != "pass":
            raise CaseFailed(result)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, CaseFailed):
            return CaseFailure(self, excinfo.value.result, style or self.config.getoption("tbstyle", "auto"))
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, _line(self.case.source), f"verifier case {self.case.name} [{self.dtype}]"


def _numbers(result) -> dict:
    """status, who is wrong and the summary numbers of one result (NaN left out)."""
    from .report import ci, tables
    row = tables.summary([result]).to_dict("records")[0]
    return {k: row[k] for k in ("status", "who_wrong", *ci.NUMBERS) if row[k] == row[k] and row[k] != ""}


class CaseFailure(TerminalRepr):
    """A failed case as pytest shows it: one informative line, then the sectioned text (``--tb`` decides).

    ``--tb=line`` prints ``file:line: first line``; ``--tb=short`` the first
    line and the text with its first mismatching element; any other style the whole
    text. ``reprcrash.message`` (the first line) is what ``--junitxml`` puts
    in a failure's ``message`` attribute.
    """

    def __init__(self, item, result, style: str) -> None:
        from .report import ci, tables
        row = tables.summary([result]).to_dict("records")[0]
        self.first = f"{result.name}[{result.dtype}]: {ci.first_line(result, row)}"
        self.style = style
        self.text = "" if style in ("line", "no") else describe(result, rows_shown=1 if style == "short" else 5)
        line = _line(result.case.source)
        self.reprcrash = ReprFileLocation(str(item.path), (line or 0) + 1, self.first)

    def toterminal(self, tw) -> None:
        if self.style == "line":      # pytest prints reprcrash itself in this style
            return
        tw.line(self.first, red=True, bold=True)
        for line in self.text.splitlines():
            tw.line(line)


class LoadErrorItem(pytest.Item):
    """A case (or a whole file) that did not load: fails with the loader's one-line error."""

    def __init__(self, *, error, **kwargs) -> None:
        super().__init__(**kwargs)
        self.error = error
        self.add_marker("verifier")

    def runtest(self) -> None:
        raise self.error

    def repr_failure(self, excinfo, style=None):
        return f"case file error: {self.error}"

    def reportinfo(self):
        return self.path, (self.error.line or 1) - 1, f"verifier load error: {self.name}"


def _line(source: str | None) -> int | None:
    if source and ":" in source:
        tail = source.rsplit(":", 1)[1]
        if tail.isdigit():
            return max(int(tail) - 1, 0)
    return None


def _runner(config: pytest.Config):
    """One isolated worker per session (started at the first item, closed when pytest ends)."""
    if _RUNNER not in config.stash:
        from .run.isolation import IsolatedRunner
        config.stash[_RUNNER] = IsolatedRunner(1)
    return config.stash[_RUNNER]


def pytest_unconfigure(config: pytest.Config) -> None:
    runner = config.stash.get(_RUNNER, None)
    if runner is not None:
        runner.close()


def pytest_sessionfinish(session: pytest.Session, exitstatus) -> None:
    config = session.config
    directory = config.getoption("verifier_report")
    results = config.stash.get(_RESULTS, [])
    if not directory:
        return
    from .report.writing import write_reports
    command = " ".join(["pytest", *map(shlex.quote, config.invocation_params.args)])
    load_errors = config.stash.get(_LOAD_ERRORS, [])
    worker = getattr(config, "workerinput", None)
    if worker is not None:    # a pytest-xdist worker: its part, in a folder the controller merges and removes
        part = Path(directory) / f".xdist-{worker.get('testrunuid', 'run')}" / str(worker.get("workerid", "gw"))
        write_reports(results, part, command=command, load_errors=load_errors)
        config.workeroutput["verifier_report_part"] = str(part)
        return
    parts = config.stash.get(_XDIST_PARTS, [])
    if parts:
        import shutil

        from .report.merge import merge
        paths, results, _ = merge(parts, directory, allow_partial=True, command=command)
        config.stash[_RESULTS] = results
        for part in {Path(p).parent for p in parts}:
            shutil.rmtree(part, ignore_errors=True)
    else:
        paths = write_reports(results, directory, command=command, load_errors=load_errors)
    config.stash[_REPORT_PATHS] = paths


class _XdistParts:
    """The controller's side of ``pytest -n N --verifier-report DIR``: where each worker wrote its part."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error) -> None:
        part = getattr(node, "workeroutput", {}).get("verifier_report_part")
        if part:
            self.config.stash[_XDIST_PARTS].append(part)


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    paths = config.stash.get(_REPORT_PATHS, None)
    if paths:
        results = config.stash.get(_RESULTS, [])
        terminalreporter.write_line(f"verifier: {len(results)} case run(s) reported in "
                                    f"{paths['summary']}, {paths['details']}, {paths['html']}")
