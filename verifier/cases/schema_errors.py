"""The case format's JSON Schema and schema errors as one-line messages.

Validation uses ``jsonschema``; this module picks the error a user meant
(the deepest, the branch of an ``anyOf`` they were writing), words it, adds
"did you mean", and finds its line in the file.
"""

from __future__ import annotations

import difflib
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import CaseFileError
from .yaml_reading import _plain


@lru_cache(maxsize=1)
def schema() -> dict:
    """The JSON Schema of the case file format (shipped with the package)."""
    text = resources.files("verifier.cases").joinpath("schema/case.schema.json").read_text()
    return json.loads(text)


def _raise_first(validator, instance, path: Path | None, case: str | None) -> None:
    # unknown fields first at each level: their "did you mean" usually explains a missing one too
    errors = sorted(validator.iter_errors(instance),
                    key=lambda e: (len(e.absolute_path), e.validator != "additionalProperties", e.message))
    if not errors:
        return
    err = _deepest(errors[0])
    where = list(err.absolute_path)
    line = _line_of(instance, where)
    if err.validator == "additionalProperties":   # point at the first unknown key itself
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})), key=str)
        parent = _node_at(instance, where)
        line = (getattr(parent, "key_lines", None) or {}).get(extra[0], line) if extra else line
    raise CaseFileError(_describe(err), file=str(path) if path else None,
                        line=line, case=case, hint=_hint(err))


def _node_at(instance: Any, path) -> Any:
    node = instance
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def _deepest(err):
    """Follow an anyOf into the branch the value was evidently meant for.

    An input given as a mapping with a misspelt key fails the "literal"
    branch by type and the "mapping" branch by the unknown key; the second is
    the one worth reporting. Branches that only fail by type are the last choice.
    """
    while err.context and err.validator in ("anyOf", "oneOf"):
        level = len(err.absolute_path)

        def shallow(e, level=level):    # this branch wanted another type for the value itself
            return _type_mismatch(e) and len(e.absolute_path) == level
        if all(shallow(e) for e in err.context):
            return err
        err = min(err.context, key=lambda e: (shallow(e), _type_mismatch(e), -len(e.absolute_path)))
    return err


def _complex_text(err) -> bool:
    """A string that is no complex number ("1+2j"): worded as a type mismatch (a number was expected)."""
    return err.validator == "pattern" and "complex number" in err.schema.get("description", "")


def _type_mismatch(err) -> bool:
    if err.validator == "type" or _complex_text(err):
        return True
    if err.validator in ("anyOf", "oneOf") and err.context:
        return all(_type_mismatch(e) for e in err.context)
    return False


def _expected_types(err) -> list[str]:
    if err.validator == "type":
        value = err.validator_value
        return [value] if isinstance(value, str) else list(value)
    if _complex_text(err):
        return ["number"]
    out: list[str] = []
    for sub in err.context or ():
        out += [t for t in _expected_types(sub) if t not in out]
    return out


_TYPE_WORDS = {"number": "a number", "integer": "an integer", "array": "a list", "object": "a mapping",
               "string": "a string", "boolean": "true or false", "null": "null"}


def _kind(value) -> str:
    for types, word in ((bool, "a boolean"), (int, "an integer"), (float, "a number"), (str, "a string"),
                        (dict, "a mapping"), (list, "a list"), (type(None), "null")):
        if isinstance(value, types):
            return word
    return f"a YAML {type(value).__name__}"


def _short(value, limit: int = 60) -> str:
    """A one-line, bounded repr: a schema error must not print a 100 000-element list."""
    text = " ".join(repr(_plain(value)).split())
    return text if len(text) <= limit else text[:limit - 5] + " ...]"[-5:]


def _describe(err) -> str:
    where = "/".join(str(p) for p in err.absolute_path)
    at = f"at '{where}': " if where else ""
    if err.validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})), key=str)
        known = list(err.schema.get("properties", {}))
        words = []
        for key in extra:
            close = difflib.get_close_matches(str(key), known, n=1)
            shown = _short(key, 40).strip("'\"")
            words.append(f"unknown field '{shown}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        return at + ", ".join(words)
    if err.validator == "required":
        return at + err.message.replace("is a required property", "is a required field but is missing")
    if err.validator == "enum":
        options = [str(o) for o in err.validator_value]
        close = difflib.get_close_matches(str(err.instance), options, n=1) if isinstance(err.instance, str) else []
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return at + f"{_short(err.instance)} is not one of {', '.join(options)}{hint}"
    if _type_mismatch(err):
        words = [_TYPE_WORDS.get(t, t) for t in _expected_types(err)]
        expected = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]
        complex_hint = " (a complex number is a string such as '1+2j')" if isinstance(err.instance, str) else ""
        return at + f"expected {expected}, got {_kind(err.instance)} {_short(err.instance)}{complex_hint}"
    return at + _short_message(err.message)


def _short_message(message: str, limit: int = 200) -> str:
    text = " ".join(message.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _hint(err) -> str:
    if err.validator == "additionalProperties":
        return "Allowed fields: " + ", ".join(err.schema.get("properties", {})) + "."
    return "See docs/case-format.md or `verifier schema`."


def _line_of(instance: Any, path) -> int | None:
    line = getattr(instance, "line", None)
    node = instance
    for part in path:
        try:
            key_lines = getattr(node, "key_lines", None)
            if key_lines and part in key_lines:
                line = key_lines[part]
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
        line = getattr(node, "line", None) or line
    return line


