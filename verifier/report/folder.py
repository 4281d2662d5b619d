"""The report folder, checked before any case runs, and the temporary files killed runs left in it.

``verifier run`` refuses a folder it could not finish writing *before* it runs
anything: a dangling symlink given as ``--report-dir``, a path that is a
file, a report file's name taken by a folder (the final rename would fail
after the whole run), a folder that cannot be written. It also removes the
hidden temporary files (``.details.csv.<pid>.<random>.tmp``) of runs that were
killed before they could rename them: a file whose process is gone, or an
older file without a process id that is over an hour old. A live run's
temporary files are never touched.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
import time
from pathlib import Path

from ..errors import VerifierError

REPORT_FILES = ("summary.csv", "details.csv", "checks.csv", "report.html", "environment.json")
_TMP = re.compile(r"^\.(?:" + "|".join(re.escape(n) for n in REPORT_FILES) + r")\.(?:(\d+)\.)?[^/]*\.tmp$")
_ORPHAN_AGE_S = 3600          # a temporary without a process id: left alone while a run could still own it


def tmp_prefix(name: str) -> str:
    """The prefix of a report file's temporary: it names the writing process, so cleanup knows it is gone."""
    return f".{name}.{os.getpid()}."


def check_report_dir(directory: str | os.PathLike) -> Path:
    """Create ``directory`` if needed, prove the whole report can be written there, clean up; or raise."""
    path = Path(directory)
    where = f"cannot write reports to '{path}'"
    what_to_do = "Choose another folder with --report-dir."
    if path.is_symlink() and not path.exists():
        raise VerifierError(f"{where}: it is a symbolic link to '{os.readlink(path)}', which does not exist. "
                            f"Create that folder, remove the link, or choose another folder with --report-dir.")
    if path.exists() and not path.is_dir():
        raise VerifierError(f"{where}: it is a file, not a folder. {what_to_do}")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise VerifierError(f"{where}: {exc.strerror or exc}. {what_to_do}") from None
    for name in REPORT_FILES:
        try:
            mode = os.lstat(path / name).st_mode
        except OSError:
            continue
        if stat.S_ISDIR(mode):
            raise VerifierError(f"{where}: '{path / name}' is a folder, so the report cannot replace it. "
                                f"Remove it, or {what_to_do[0].lower()}{what_to_do[1:]}")
    remove_stale_temporaries(path)
    return path


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Delete report temporaries whose writer is gone; return what was removed."""
    removed = []
    try:
        entries = list(os.scandir(path))
    except OSError:
        return removed
    for item in entries:
        match = _TMP.match(item.name)
        if not match or not item.is_file(follow_symlinks=False):
            continue
        pid = match.group(1)
        try:
            stale = (not _alive(int(pid))) if pid else time.time() - item.stat(follow_symlinks=False).st_mtime > \
                _ORPHAN_AGE_S
            if stale:
                os.unlink(item.path)
                removed.append(Path(item.path))
        except OSError:
            continue
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True
