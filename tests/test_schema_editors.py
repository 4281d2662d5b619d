"""The published case schema works for editors, whose YAML language servers validate with draft-07."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import jsonschema
import pytest

from conftest import ROOT
from verifier.loading import read_yaml, schema

# Keywords whose meaning is the same in draft-07 and 2020-12 (the ones editors understand).
PORTABLE = {"$schema", "$id", "$ref", "$defs", "title", "description", "type", "properties", "required",
            "additionalProperties", "items", "minItems", "maxItems", "uniqueItems", "minProperties",
            "propertyNames", "enum", "anyOf", "allOf", "pattern", "minLength", "maxLength", "minimum",
            "maximum"}

BAD = [
    pytest.param("cases:\n  - name: a\n    inputs: {x: 1.0}\n    froward: x\n", id="unknown-field"),
    pytest.param("cases:\n  - name: a\n    forward: x\n", id="missing-inputs"),
    pytest.param("cases:\n  - name: a\n    inputs: {x: 1.0}\n    forward: x\n    dtypes: [float8]\n", id="bad-dtype"),
    pytest.param("cases:\n  - name: a b\n    inputs: {x: 1.0}\n    forward: x\n", id="bad-name"),
    pytest.param("cases:\n  - name: a\n    inputs: {x: {shape: [-1], fill: 1}}\n    forward: x\n", id="negative-shape"),
    pytest.param("cases:\n  - name: a\n    inputs: {x: 1.0}\n    torch: f(x)\n    sympy: x\n"
                 "    functions: {f: 'no colon'}\n", id="bad-functions-target"),
    pytest.param("cases:\n  - name: a\n    inputs: {x: 1.0}\n    forward: x\n    tolerance: {float32: {rtol: -1}}\n",
                 id="negative-tolerance"),
    pytest.param("cases: []\n", id="no-cases"),
]


def _keywords(node, inside_properties=False):
    if isinstance(node, dict):
        for key, value in node.items():
            if not inside_properties and key not in ("$defs",):
                yield key
            yield from _keywords(value, inside_properties=key in ("properties", "$defs") and not inside_properties)
    elif isinstance(node, list):
        for value in node:
            yield from _keywords(value)


def _validators():
    doc = schema()
    draft7 = {k: v for k, v in doc.items() if k != "$schema"}
    return jsonschema.Draft202012Validator(doc), jsonschema.Draft7Validator(draft7)


def test_the_schema_uses_only_portable_keywords():
    jsonschema.Draft7Validator.check_schema({k: v for k, v in schema().items() if k != "$schema"})
    jsonschema.Draft202012Validator.check_schema(schema())
    used = set(_keywords(schema()))
    assert used <= PORTABLE, f"keywords that draft-07 editors read differently: {sorted(used - PORTABLE)}"


@pytest.mark.parametrize("path", [pytest.param(p, id=p.name) for p in sorted((ROOT / "cases").glob("*.yaml"))])
def test_built_in_case_files_are_valid_for_both_drafts(path):
    doc = read_yaml(path)
    for validator in _validators():
        assert not list(validator.iter_errors(doc)), f"{validator.__class__.__name__} rejects {path.name}"


@pytest.mark.parametrize("text", BAD)
def test_both_drafts_reject_the_same_mistakes(tmp_path, text):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    doc = read_yaml(path)
    for validator in _validators():
        assert list(validator.iter_errors(doc)), f"{validator.__class__.__name__} accepts {text!r}"


def test_verifier_schema_prints_the_shipped_file():
    out = subprocess.run([sys.executable, "-m", "verifier", "schema"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == schema()
    shipped = ROOT / "verifier" / "schema" / "case.schema.json"
    assert json.loads(shipped.read_text()) == schema()


def test_the_skeleton_is_valid_for_editors(tmp_path):
    # what `verifier new` writes is what a user first opens in an editor
    from verifier.skeleton import skeleton
    path = tmp_path / "new.yaml"
    path.write_text(textwrap.dedent(skeleton("my.case")), encoding="utf-8")
    for validator in _validators():
        assert not list(validator.iter_errors(read_yaml(path)))
