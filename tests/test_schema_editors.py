"""The published case schema works for editors, whose YAML language servers validate with draft-07."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import jsonschema
import pytest
from conftest import ROOT

from verifier.cases.loading import read_yaml, schema

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
    shipped = ROOT / "verifier" / "cases" / "schema" / "case.schema.json"
    assert json.loads(shipped.read_text()) == schema()


def test_the_skeleton_is_valid_for_editors(tmp_path):
    # what `verifier new` writes is what a user first opens in an editor
    from verifier.cases.skeleton import skeleton
    path = tmp_path / "new.yaml"
    path.write_text(textwrap.dedent(skeleton("my.case")), encoding="utf-8")
    for validator in _validators():
        assert not list(validator.iter_errors(read_yaml(path)))


# --- a real YAML language server, when one is installed ------------------------------------------

def _language_server() -> str | None:
    import os
    import shutil
    return os.environ.get("YAML_LANGUAGE_SERVER") or shutil.which("yaml-language-server")


class _LanguageServer:
    """A minimal LSP client over stdio: configure yaml.schemas, open files, collect diagnostics."""

    def __init__(self, command: str, root, settings: dict) -> None:
        import queue
        import threading
        self.proc = subprocess.Popen([command, "--stdio"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        self.inbox: queue.Queue = queue.Queue()
        self.settings = settings
        threading.Thread(target=self._read, daemon=True).start()
        self._send({"id": 1, "method": "initialize", "params": {
            "processId": None, "rootUri": root.as_uri(), "capabilities": {"workspace": {"configuration": True}}}})
        self._send({"method": "initialized", "params": {}})
        self._send({"method": "workspace/didChangeConfiguration", "params": {"settings": settings}})

    def _send(self, message: dict) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def _read(self) -> None:
        out = self.proc.stdout
        while True:
            header = b""
            while not header.endswith(b"\r\n\r\n"):
                byte = out.read(1)
                if not byte:
                    return
                header += byte
            length = next(int(line.split(b":")[1]) for line in header.split(b"\r\n")
                          if line.lower().startswith(b"content-length"))
            self.inbox.put(json.loads(out.read(length)))

    def diagnostics(self, paths, timeout: float = 60.0) -> dict[str, list[tuple[int, str]]]:
        """{file name: [(line, message), ...]} for each opened file."""
        import queue
        import time
        for path in paths:
            self._send({"method": "textDocument/didOpen", "params": {"textDocument": {
                "uri": path.as_uri(), "languageId": "yaml", "version": 1, "text": path.read_text()}}})
        found: dict = {}
        deadline = time.monotonic() + timeout
        while len(found) < len(paths) and time.monotonic() < deadline:
            try:
                message = self.inbox.get(timeout=1)
            except queue.Empty:
                continue
            if message.get("method") == "workspace/configuration":
                self._send({"id": message["id"], "result": [self.settings["yaml"]] * len(message["params"]["items"])})
            elif message.get("method") == "textDocument/publishDiagnostics":
                name = message["params"]["uri"].rsplit("/", 1)[-1]
                found[name] = [(d["range"]["start"]["line"] + 1, d["message"])
                               for d in message["params"]["diagnostics"]]
        return found

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)


@pytest.mark.skipif(_language_server() is None,
                    reason="yaml-language-server is not installed (`npm install -g yaml-language-server`, "
                           "or set YAML_LANGUAGE_SERVER to its path)")
def test_a_yaml_language_server_reports_case_errors_as_documented(tmp_path):
    (tmp_path / "cases").mkdir()
    (tmp_path / "schema.json").write_text(json.dumps(schema()))
    good = tmp_path / "cases" / "seed.yaml"
    good.write_text((ROOT / "cases" / "seed.yaml").read_text())
    bad = tmp_path / "cases" / "bad.yaml"
    bad.write_text("cases:\n  - name: bad.one\n    inputs: {x: 1.0}\n    froward: x\n    dtypes: [float8]\n")
    modeline = tmp_path / "elsewhere.yaml"       # not mapped by the settings: the modeline names the schema
    modeline.write_text("# yaml-language-server: $schema=./schema.json\ncases:\n  - name: m\n"
                        "    inputs: {x: 1.0}\n    forward: x\n    tolerance: {float32: {rtol: -1}}\n")
    settings = {"yaml": {"validate": True, "schemas": {(tmp_path / "schema.json").as_uri(): ["cases/*.yaml"]}}}
    server = _LanguageServer(_language_server(), tmp_path, settings)
    try:
        found = server.diagnostics([good, bad, modeline])
    finally:
        server.close()
    assert found["seed.yaml"] == []
    assert sorted(line for line, _ in found["bad.yaml"]) == [4, 5]
    assert any("froward" in message for _, message in found["bad.yaml"])
    assert any("float64" in message for _, message in found["bad.yaml"])
    assert [line for line, _ in found["elsewhere.yaml"]] == [6]
