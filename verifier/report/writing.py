"""Tables → files: ``summary.csv``, ``details.csv``, ``checks.csv``, ``report.html``, the CI outputs.

Files are written atomically: all of them are first written in full to
temporary files in the report directory, then renamed over the old ones one
after the other (a rename within a directory is atomic). A run killed before
that point leaves the previous report exactly as it was; only a kill in the
microseconds between the renames could leave files of two runs side by side,
and each of them is still whole. tests/test_atomic.py kills writers midway.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..run import digest
from ..run.digest import DetailPolicy
from ..run.runner import CaseResult
from . import ci, folder, html_report, tables
from .csv_text import to_csv


def _environment(command: str | None = None) -> dict[str, str]:
    """Versions and context printed at the top of every report."""
    import mpmath
    import sympy
    import torch
    return {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": command or " ".join(["verifier", *sys.argv[1:]]),
        "python": platform.python_version(), "torch": torch.__version__, "sympy": sympy.__version__,
        "numpy": np.__version__, "pandas": pd.__version__, "mpmath": mpmath.__version__,
        "platform": platform.platform(),
    }


def device_environment(results: Sequence[CaseResult]) -> dict[str, str]:
    """Where torch's side ran: ``device`` (every device used), and each non-CPU device's record.

    The record (name, capability, TF32 and reduced-precision flags, as
    ``torch_side.device.describe`` read them in the worker when the case ran)
    is under plain keys for the first device other than the CPU, and under
    ``key[device]`` for any further one; ``device_allowances`` lists the
    allowances any result used (docs/devices.md).
    """
    used = list(dict.fromkeys(getattr(r, "device", "cpu") or "cpu" for r in results)) or ["cpu"]
    out = {"device": ", ".join(used)}
    seen: list[str] = []
    for r in results:
        info = getattr(r, "device_info", None)
        if info and info.get("device") not in seen:
            seen.append(info["device"])
            suffix = "" if len(seen) == 1 else f"[{info['device']}]"
            out.update({f"{k}{suffix}": str(v) for k, v in info.items() if k != "device"})
    allowances = sorted({a.strip() for r in results for a in (getattr(r, "allowance", "") or "").split(",")
                         if a.strip()})
    if allowances:
        out["device_allowances"] = ", ".join(allowances)
    return out


environment = _environment


def check_writable(directory: str | Path) -> Path:
    """Create ``directory`` if needed and prove the whole report can be written there (see folder.py)."""
    return folder.check_report_dir(directory)


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename."""
    atomic_write_all({path: text})


def atomic_write_all(files: dict[Path, str], also: Sequence[tuple[str, Path]] = ()) -> None:
    """Write every file to a temporary file beside it, flushed to disk, then rename them all into place.

    ``also``: files already staged elsewhere (temporary path, final path), renamed with the others.
    """
    staged: list[tuple[str, Path]] = list(also)
    umask = os.umask(0)
    os.umask(umask)
    try:
        for path, text in files.items():
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=folder.tmp_prefix(path.name), suffix=".tmp")
            staged.append((tmp, path))
            os.chmod(tmp, 0o666 & ~umask)    # mkstemp's 0600 would hide the report from everyone else
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())   # a crash of the machine must not rename an empty file in
        for tmp, path in staged:
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in staged:
            Path(tmp).unlink(missing_ok=True)
        raise


def write_reports(results: Sequence[CaseResult], directory: str | Path, *, command: str | None = None,
                  load_errors: Sequence[str] = (), details: DetailPolicy | None = None,
                  parquet_parts: str | Path | None = None, progress=None,
                  environment: dict | None = None) -> dict[str, Path]:
    """Write the report files and return their paths.

    ``details.csv`` holds, per case × dtype, every flagged element and the
    ``details.keep`` worst (see :mod:`verifier.run.digest`; results the run
    already digested hold only those). ``parquet_parts``: the folder where the
    workers wrote each result's full table (``DetailPolicy.full_dir``); the
    tables of the results are merged into ``details.parquet`` batch by batch. ``progress(step)`` is told what is
    being written. ``environment``: the runs' own (``verifier merge``) instead of this process's.
    """
    out = check_writable(directory)
    details = details or DetailPolicy()
    say = progress or (lambda step: None)
    if parquet_parts is not None:     # results run here (not digested by a worker): their full tables first
        for i, r in enumerate(results):
            columns = digest.result_columns(r) if r.full_table is None and r.stats is None else None
            if columns is not None:
                r.full_table = str(digest.write_full(columns, str(parquet_parts), f"here-{i}"))
    say("summary")
    summ = tables.summary(results)
    detail = tables.details(results, keep=details.keep)
    check_rows = tables.checks(results)
    paths = {"summary": out / "summary.csv", "details": out / "details.csv", "checks": out / "checks.csv",
             "html": out / "report.html"}
    env = environment if environment is not None else {**_environment(command), **device_environment(results)}
    say("report.html")
    page = html_report.render(results, summ, env, load_errors, check_rows)
    # `verifier diff` reads environment.json to say what changed between two runs (torch version, machine)
    paths["environment"] = out / "environment.json"
    files = {paths["summary"]: to_csv(summ), paths["details"]: to_csv(detail),
             paths["checks"]: to_csv(check_rows), paths["html"]: page,
             paths["environment"]: json.dumps(env, indent=2)}
    say("CI outputs")
    for name, (path, text) in ci.outputs(results, summ, out, env, load_errors).items():
        paths[name] = path
        files[path] = text
    staged = None
    if parquet_parts is not None:
        say("details.parquet")
        paths["parquet"] = out / "details.parquet"
        staged = merge_parquet([Path(r.full_table) for r in results if r.full_table], out)
    say("renaming into place")
    atomic_write_all(files, also=[(staged, paths["parquet"])] if staged else ())
    return paths


def merge_parquet(files: Sequence[Path], out: Path) -> str:
    """The per-result parquet files (in run order) as one file staged in ``out`` (its temporary path).

    Read and written a row group at a time, so a 10⁷-row table never sits in this process at once;
    columns missing from a part are null there. Only parts of results that came back are merged: a
    worker killed at its time limit may have left one.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = [f for f in files if f.exists()]
    schema = pa.unify_schemas([pq.read_schema(f) for f in files]) if files else pa.schema([])
    fd, tmp = tempfile.mkstemp(dir=out, prefix=".details.parquet.", suffix=".tmp")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    with pq.ParquetWriter(tmp, schema) as writer:
        for f in files:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=1 << 15):
                arrays = [batch.column(field.name).cast(field.type) if field.name in batch.schema.names
                          else pa.nulls(batch.num_rows, field.type) for field in schema]
                writer.write_batch(pa.record_batch(arrays, schema=schema))
    return tmp
