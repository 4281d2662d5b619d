"""Every documented public name imports from `verifier`, and the docs' examples run."""

from __future__ import annotations

import importlib
import re

import pytest
from conftest import ROOT

import verifier

DOC = ROOT / "docs" / "ecosystem.md"


def _documented_names() -> list[str]:
    section = DOC.read_text(encoding="utf-8").split("## Public names", 1)[1]
    return re.findall(r"`verifier\.([A-Za-z][A-Za-z0-9_]*)`", section)


def _mentioned_names() -> set[str]:
    """`verifier.X.Y` written anywhere in the README and docs (modules such as verifier.report.diff included)."""
    names = set()
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        names |= {m.rstrip(".") for m in re.findall(r"\bverifier\.([A-Za-z][A-Za-z0-9_.]*)", text)}
    return names


def test_the_documented_list_is_the_public_surface():
    documented = _documented_names()
    assert len(documented) == len(set(documented)), "a name is listed twice"
    assert sorted(documented) == sorted(verifier.__all__)


@pytest.mark.parametrize("name", _documented_names())
def test_each_documented_name_imports(name):
    namespace: dict = {}
    exec(f"from verifier import {name}", namespace)      # the import a user writes
    obj = namespace[name]
    assert obj is getattr(verifier, name)
    if callable(obj):
        assert (obj.__doc__ or "").strip(), f"verifier.{name} has no docstring"


@pytest.mark.parametrize("name", sorted(_mentioned_names()))
def test_names_the_docs_mention_exist(name):
    """The longest module prefix imports, and what follows it is an attribute (verifier.exact.cache.Cache)."""
    if name in verifier.__all__:
        return
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module("verifier." + ".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return
    pytest.fail(f"the docs mention verifier.{name}, which does not exist")


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)


@pytest.mark.parametrize("index", range(len(_python_blocks())))
def test_the_docs_python_examples_run(index, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    exec(compile(_python_blocks()[index], f"{DOC.name}[python block {index}]", "exec"), {"__name__": "docs"})
