"""Shared fixtures: a temporary case file writer and a CLI runner."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def write_case(tmp_path):
    """Write YAML text (dedented) to a file under tmp_path and return its path."""
    def write(text: str, name: str = "case.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path
    return write


@pytest.fixture
def cli(tmp_path):
    """Run `python -m verifier ARGS` in a subprocess; returns CompletedProcess."""
    def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "verifier", *map(str, args)], cwd=cwd or tmp_path,
                              capture_output=True, text=True, timeout=600)
    return run
