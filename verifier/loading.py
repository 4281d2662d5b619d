"""YAML case files → ``Case`` objects, with errors that give file, line and case.

Case files are untrusted input, so reading is safe by construction:

* PyYAML's ``SafeLoader`` (no Python tags), reading at most ``MAX_FILE_BYTES``
  of a regular file;
* before anything is constructed, the composed node graph is measured with
  its aliases expanded, so an alias bomb (``&a [*a, *a, ...]`` nested) or a
  recursive alias is refused instead of expanding into billions of nodes, and
  nesting deeper than ``MAX_YAML_DEPTH`` is refused;
* mapping keys must be strings and may not repeat;
* the JSON Schema shipped in ``verifier/schema/case.schema.json`` (validated
  with ``jsonschema``), with "did you mean" for unknown fields and values;
* then the checks a schema cannot express: non-finite numbers, shapes that
  contradict each other, fields that contradict each other, expressions that
  use unknown names.

Each case is checked on its own, so one broken case does not hide the valid
ones beside it. Every problem becomes a :class:`CaseError` naming file, line
and case; an unexpected exception while loading becomes one too (marked
``internal``), never a traceback.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping

import jsonschema
import numpy as np
import yaml

from . import mirror
from .case import Case, Expect, GradOutput, InputSpec, Tolerance
from .errors import CaseError, CaseFileError
from .language import parse

MAX_FILE_BYTES = 1 << 20          # 1 MiB per case file
MAX_ELEMENTS = 1 << 24            # per input
# A 1 MiB file holds at most ~500k plain nodes ("1,"), so a million nodes
# after alias expansion is only reached by a file that multiplies itself.
MAX_YAML_NODES = 1_000_000
# A case sits four levels down (file, cases, case, inputs) and a literal has
# at most 8 dims; deeper documents are refused before the recursive steps
# (construction, schema validation) can exhaust Python's stack.
MAX_YAML_DEPTH = 32


@lru_cache(maxsize=1)
def schema() -> dict:
    """The JSON Schema of the case file format (shipped with the package)."""
    text = resources.files("verifier").joinpath("schema/case.schema.json").read_text()
    return json.loads(text)


class _Map(dict):
    line: int = 0
    key_lines: dict


class _List(list):
    line: int = 0


class _Loader(yaml.SafeLoader):
    """SafeLoader that records line numbers, refuses duplicate keys and measures the document first."""

    def get_single_data(self):
        node = self.get_single_node()
        if node is None:
            return None
        _check_expansion(node)
        return self.construct_document(node)


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a node graph that is recursive, too deep, or too large once its aliases are expanded.

    The composer shares an aliased node rather than copying it, so the graph
    is small even when its expansion is astronomical; sizes are summed over
    the graph (memoised per node), never by expanding it.
    """
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = _children(node)
        if done:
            on_path.discard(key)
            size[key] = min(1 + sum(size[id(c)] for c in children), MAX_YAML_NODES + 1)
            depth[key] = 1 + max((depth[id(c)] for c in children), default=0)
            if depth[key] > MAX_YAML_DEPTH:
                raise CaseFileError(f"the YAML nests deeper than {MAX_YAML_DEPTH} levels",
                                    line=node.start_mark.line + 1,
                                    hint="A case needs far less; check for runaway brackets or aliases.")
            if size[key] > MAX_YAML_NODES:
                raise CaseFileError(f"the YAML expands to over {MAX_YAML_NODES} values once its aliases "
                                    f"(*name) are expanded", line=node.start_mark.line + 1,
                                    hint="This looks like an alias bomb; write the values out or use fewer aliases.")
            continue
        if key in size:
            continue
        if key in on_path:
            raise CaseFileError("a YAML alias refers to a node that contains it (a recursive alias)",
                                line=node.start_mark.line + 1, hint="Remove the alias from inside its own anchor.")
        on_path.add(key)
        stack.append((node, True))
        if len(on_path) > MAX_YAML_DEPTH:
            raise CaseFileError(f"the YAML nests deeper than {MAX_YAML_DEPTH} levels",
                                line=node.start_mark.line + 1,
                                hint="A case needs far less; check for runaway brackets or aliases.")
        stack.extend((c, False) for c in children if id(c) not in size)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _mapping(loader: _Loader, node: yaml.MappingNode) -> _Map:
    loader.flatten_mapping(node)
    out = _Map()
    out.line, out.key_lines = node.start_mark.line + 1, {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            # YAML 1.1 reads `on:`, `no:` or `1:` as a bool or a number; every key of the format is a name
            raise CaseFileError(f"a mapping key must be a name, not the {type(key).__name__} {key!r}",
                                line=key_node.start_mark.line + 1,
                                hint="Quote the key if it is meant as a name, e.g. 'on': ...")
        if key in out:
            raise CaseFileError(f"duplicate key '{key}' (first at line {out.key_lines[key]})",
                                line=key_node.start_mark.line + 1,
                                hint="Remove one of them; YAML would silently keep only the last.")
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


def _sequence(loader: _Loader, node: yaml.SequenceNode) -> _List:
    out = _List(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    return out


# YAML 1.1 reads `1e-4` (no dot) as a string; people mean a number. Copy the
# resolver table first: add_implicit_resolver would append to SafeLoader's lists.
_Loader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9]+[eE][-+]?[0-9]+$"),
                              list("-+0123456789"))
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)


@dataclass
class LoadResult:
    """The cases that loaded and the errors of those that did not."""

    cases: list[Case] = field(default_factory=list)
    errors: list[CaseError] = field(default_factory=list)

    def extend(self, other: "LoadResult") -> None:
        self.cases.extend(other.cases)
        self.errors.extend(other.errors)


def read_yaml(path: Path) -> Any:
    """Parse one file with the safe, line-tracking loader."""
    try:
        if not path.is_file():
            raise CaseFileError("not a regular file", file=str(path),
                                hint="Give case files (.yaml) or folders that hold them.")
        # stat() says 0 for /dev/zero and pipes; read one byte past the limit instead of trusting it
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise CaseFileError(f"file is over the {MAX_FILE_BYTES}-byte limit", file=str(path),
                                hint="Split it into several case files.")
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CaseFileError(f"the file is not UTF-8 text (byte {exc.start})", file=str(path),
                            hint="Save it as UTF-8.") from None
    except OSError as exc:
        raise CaseFileError(f"cannot read the file: {exc.strerror or exc}", file=str(path)) from None
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except CaseFileError as exc:
        raise exc.located(file=str(path)) from None
    except yaml.reader.ReaderError as exc:   # a character YAML does not allow (control codes, say)
        line = text.count("\n", 0, exc.position) + 1
        char = chr(exc.character) if isinstance(exc.character, int) else str(exc.character)
        code = f" (U+{ord(char):04X})" if len(char) == 1 else ""
        raise CaseFileError(f"invalid YAML: the character {char!r}{code} is not allowed in a YAML file",
                            file=str(path), line=line, hint="Remove it, or write it as an escape in a quoted string.") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        parts = [getattr(exc, "context", None), getattr(exc, "problem", None)]
        problem = " ".join(" ".join(str(p) for p in parts if p).split()) or " ".join(str(exc).split())
        raise CaseFileError(f"invalid YAML: {problem}", file=str(path),
                            line=mark.line + 1 if mark else None,
                            hint="Check the indentation and quoting near that line.") from None
    except RecursionError:
        raise CaseFileError("the YAML nests too deeply", file=str(path),
                            hint="A case needs far less; check for runaway brackets.") from None
    except Exception as exc:
        # PyYAML's constructors raise plain ValueError, IndexError, AttributeError... for a value that
        # does not fit its explicit tag (`!!float ''`, `!!timestamp 2001-12-14x`)
        raise CaseFileError(f"invalid YAML: a value does not fit its tag ({type(exc).__name__}: {exc})",
                            file=str(path), hint="Drop the !!tag, or write a value of that type.") from None


def load_file(path: str | Path) -> LoadResult:
    """Load every case of one YAML file; errors are collected, not raised."""
    path = Path(path)
    result = LoadResult()
    try:
        doc = read_yaml(path)
        _validate_top(doc, path)
    except CaseFileError as exc:
        result.errors.append(exc)
        return result
    except Exception as exc:  # a loader bug must not become a traceback; fuzzing keeps these at zero
        result.errors.append(_internal(exc, path, None, None))
        return result
    defaults = doc.get("defaults") or {}
    for raw in doc["cases"]:
        merged = _Map({**defaults, **raw}) if isinstance(raw, dict) else raw
        if isinstance(raw, _Map):
            merged.line, merged.key_lines = raw.line, raw.key_lines
        name = _label(raw)
        try:
            result.cases.append(case_from_mapping(merged, file=str(path)))
        except CaseError as exc:
            result.errors.append(exc.located(file=str(path), line=getattr(raw, "line", None), case=name))
        except Exception as exc:  # see above
            result.errors.append(_internal(exc, path, getattr(raw, "line", None), name))
    return result


def _label(raw: Any) -> str | None:
    """The case's name as errors show it: short and on one line, whatever the file holds."""
    name = raw.get("name") if isinstance(raw, dict) else None
    if name is None:
        return None
    text = " ".join((name if isinstance(name, str) else repr(name)).split())
    return text if len(text) <= 60 else text[:57] + "..."


def _internal(exc: Exception, path: Path, line: int | None, case: str | None) -> CaseFileError:
    err = CaseFileError(f"could not be loaded ({type(exc).__name__}: {exc})", file=str(path), line=line,
                        case=case, hint="This is a bug in the verifier's loader; please report the file.")
    err.internal = True
    return err


def _validate_top(doc: Any, path: Path) -> None:
    if not isinstance(doc, dict):
        raise CaseFileError("a case file must hold a mapping with a 'cases' list", file=str(path),
                            hint="Start from `verifier new NAME`.")
    top = dict(schema())
    top = {**top, "properties": {**top["properties"], "cases": {"type": "array", "minItems": 1}}}
    _raise_first(jsonschema.Draft202012Validator(top), doc, path, None)


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


def _type_mismatch(err) -> bool:
    if err.validator == "type":
        return True
    if err.validator in ("anyOf", "oneOf") and err.context:
        return all(_type_mismatch(e) for e in err.context)
    return False


def _expected_types(err) -> list[str]:
    if err.validator == "type":
        value = err.validator_value
        return [value] if isinstance(value, str) else list(value)
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
        return at + f"expected {expected}, got {_kind(err.instance)} {_short(err.instance)}"
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


_CASE_VALIDATOR = None


def _known(name: str) -> bool:
    return name in mirror.FUNCTIONS or name in mirror.ALIASES


def case_from_mapping(raw: Any, *, file: str | None = None) -> Case:
    """Build a ``Case`` from one (defaults-merged) mapping, checking it fully."""
    global _CASE_VALIDATOR
    if _CASE_VALIDATOR is None:
        case_schema = {**schema()["$defs"]["case"], "$defs": schema()["$defs"]}
        _CASE_VALIDATOR = jsonschema.Draft202012Validator(case_schema)
    _raise_first(_CASE_VALIDATOR, raw, Path(file) if file else None, _label(raw))
    name = raw["name"]
    lines = _Lines(raw)
    inputs = tuple(_input(key, spec, name, lines.within("inputs", key))
                   for key, spec in raw["inputs"].items())
    if "forward" in raw and "torch" in raw and "sympy" in raw:
        raise CaseError("'forward' is given but both 'torch' and 'sympy' override it, so it is never used",
                        case=name, line=lines.of("forward"),
                        hint="Drop 'forward', or drop one of 'torch'/'sympy' so it is read for that side.")
    torch_src = raw.get("torch", raw.get("forward"))
    sympy_src = raw.get("sympy", raw.get("forward"))
    if torch_src is None or sympy_src is None:
        raise CaseError("the case has no expression: give 'forward', or both 'torch' and 'sympy'", case=name,
                        hint="e.g. forward: (3*(x+2)**2).mean()")
    variables = frozenset(spec.name for spec in inputs)
    custom = dict(raw.get("functions") or {})
    torch_field = "torch" if "torch" in raw else "forward"
    sympy_field = "sympy" if "sympy" in raw else "forward"
    torch_expr = _expr(torch_src, torch_field, name, variables, lambda f: f in custom or _known(f),
                       lines.of(torch_field), extra_names=custom)
    if "sympy" not in raw and custom:
        _refuse_torch_only_names(sympy_src, custom, name, variables, lines.of(sympy_field))
    sympy_expr = _expr(sympy_src, sympy_field, name, variables, _known, lines.of(sympy_field))
    expect_raw = raw.get("expect") or {}
    _check_expect(expect_raw, inputs, name, lines)
    _check_finite_fields(raw, name, lines)
    backward = raw.get("backward") or {}
    return Case(
        name=name, inputs=inputs, torch_fn=torch_expr, sympy_fn=sympy_expr,
        description=str(raw.get("description", "")), tags=tuple(raw.get("tags") or ()),
        grad_output=_grad_output(raw.get("grad_output")),
        dtypes=tuple(raw.get("dtypes") or ("float64",)),
        tolerance={k: Tolerance(v.get("rtol", 0.0), v.get("atol", 0.0))
                   for k, v in (raw.get("tolerance") or {}).items()},
        expect=Expect(grad=_plain(expect_raw.get("grad")), output=_plain(expect_raw.get("output")),
                      grad_fn=expect_raw.get("grad_fn"), error=expect_raw.get("error")),
        functions=custom,
        source=f"{file}:{getattr(raw, 'line', 0)}" if file else None,
        options={k: v for k, v in backward.items()},
        kink=raw.get("kink"),
        timeout=float(raw["timeout"]) if raw.get("timeout") is not None else None,
        checks={k: tuple(v) if isinstance(v, list) else bool(v) for k, v in (raw.get("checks") or {}).items()},
    )


class _Lines:
    """Line numbers of a case's fields (None for a case built in Python)."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def of(self, key: str) -> int | None:
        return (getattr(self.raw, "key_lines", None) or {}).get(key)

    def within(self, key: str, sub: str) -> int | None:
        inner = self.raw.get(key)
        return (getattr(inner, "key_lines", None) or {}).get(sub) or self.of(key)


def _refuse_torch_only_names(forward, custom, case, variables, line=None) -> None:
    """The symbolic side reads ``forward``: a ``functions:`` name there has no definition to read."""
    try:
        expr = parse(forward, known_functions=lambda f: f in custom or _known(f), variables=variables)
    except CaseError:
        return      # _expr reports the syntax error itself
    for fname in sorted(expr.functions & set(custom)):
        if not _known(fname):
            raise CaseError(f"in 'forward': '{fname}' comes from 'functions:', which only the torch side uses",
                            case=case, line=line, hint=f"Write 'torch: ...' with {fname}(...) and 'sympy: ...' "
                                                       "with its mathematical definition instead of 'forward'.")


def _expr(source, field_name, case, variables, known, line=None, extra_names=()):
    names = [*mirror.FUNCTIONS, *mirror.ALIASES, *extra_names]
    try:
        return parse(source, known_functions=known, variables=variables, function_names=names)
    except CaseError as exc:
        err = type(exc)(f"in '{field_name}': {exc.message}", case=case, line=line, hint=exc.hint)
        err.position = getattr(exc, "position", None)
        raise err from None


def _check_expect(expect: Mapping, inputs: tuple[InputSpec, ...], case: str | None, lines: _Lines) -> None:
    """Stated gradients name differentiated inputs, have their shapes, and do not sit beside an expected error."""
    line = lines.of("expect")
    by_name = {spec.name: spec for spec in inputs}
    if expect.get("error") is not None and (expect.get("grad") or expect.get("output") is not None):
        raise CaseError("expect.error says torch raises, but expect also states a gradient or output", case=case,
                        line=line, hint="A case that must raise has no result to state; keep one or the other.")
    for key, stated in (expect.get("grad") or {}).items():
        spec = by_name.get(key)
        if spec is None:
            raise CaseError(f"expect.grad names '{key}', which is not an input", case=case, line=line,
                            hint=f"Inputs: {', '.join(sorted(by_name))}.")
        if not spec.differentiated:
            raise CaseError(f"expect.grad states a gradient for '{key}', which is not differentiated", case=case,
                            line=line, hint="Drop it, or make the input require grad.")
        shape = _literal_shape(stated, f"expect.grad['{key}']", case)
        if shape != tuple(spec.shape):
            raise CaseError(f"expect.grad['{key}'] has shape {list(shape)} but input '{key}' has shape "
                            f"{list(spec.shape)}", case=case, line=line,
                            hint="A gradient has the shape of its input.")


def _check_finite_fields(raw: Mapping, case: str | None, lines: _Lines) -> None:
    """NaN or infinity in weights or tolerances would make every verdict meaningless."""
    literal = raw.get("grad_output")
    if literal is not None and not isinstance(literal, str) and not _all_finite(literal):
        raise CaseError("grad_output has a value that is not finite (nan or inf)", case=case,
                        line=lines.of("grad_output"), hint="Weights must be finite numbers.")
    for dtype, tol in (raw.get("tolerance") or {}).items():
        for key, value in tol.items():
            if not math.isfinite(value):
                raise CaseError(f"tolerance.{dtype}.{key} is {value}", case=case, line=lines.of("tolerance"),
                                hint="An infinite tolerance passes anything and nan fails everything; "
                                     "give a finite number.")
    timeout = raw.get("timeout")
    if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
        raise CaseError(f"timeout is {timeout}", case=case, line=lines.of("timeout"),
                        hint="Give a number of seconds above 0; `verifier run --timeout 0` turns time limits off.")


def _all_finite(value) -> bool:
    try:
        return bool(np.isfinite(np.asarray(_plain(value), dtype=np.float64)).all())
    except (ValueError, TypeError):
        return True      # ragged or odd literals get their own error where they are read


def _plain(value):
    """Strip the line-tracking containers (nested lists/dicts → plain Python)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _literal_shape(value, where: str, case: str | None, line: int | None = None) -> tuple[int, ...]:
    try:
        arr = np.array(_plain(value), dtype=np.float64)
    except (ValueError, TypeError):
        raise CaseError(f"{where} is a ragged list: every row must have the same length", case=case,
                        line=line) from None
    return arr.shape


# Which optional parameters belong to which way of giving values.
_PARAMS = {"value": (), "fill": (), "sample": ("seed",)}
_SAMPLE_PARAMS = {"normal": ("mean", "std"), "uniform": ("low", "high")}


def _input(name: str, spec: Any, case: str | None, line: int | None = None) -> InputSpec:
    where = f"input '{name}'"

    def fail(message: str, hint: str | None = None):
        raise CaseError(f"{where} {message}", case=case, line=line, hint=hint)

    if not isinstance(spec, dict):
        shape = _literal_shape(spec, where, case, line)
        if not _all_finite(spec):
            fail("has a value that is not finite (nan or inf)", "Inputs must be finite numbers.")
        return InputSpec(name, shape, value=_plain(spec))
    shape = tuple(int(d) for d in spec["shape"]) if "shape" in spec else None
    sources = [k for k in ("value", "fill", "sample") if k in spec]
    if len(sources) != 1:
        fail(f"needs exactly one of 'value', 'fill' or 'sample' (has {', '.join(sources) or 'none'})",
             "e.g. {shape: [2, 2], sample: normal}")
    source = sources[0]
    allowed = set(_PARAMS[source]) | set(_SAMPLE_PARAMS.get(spec.get("sample"), ()))
    stray = [k for k in ("seed", "mean", "std", "low", "high") if k in spec and k not in allowed]
    if stray:
        owner = {"seed": "sample", "mean": "sample: normal", "std": "sample: normal",
                 "low": "sample: uniform", "high": "sample: uniform"}
        fail(f"gives '{stray[0]}', which only applies with '{owner[stray[0]]}' (it uses '{source}'"
             + (f": {spec['sample']}" if source == "sample" else "") + ")",
             "Drop it, or change how the values are given.")
    if source == "value":
        vshape = _literal_shape(spec["value"], where, case, line)
        if shape is not None and shape != vshape:
            fail(f"says shape {list(shape)} but its value has shape {list(vshape)}",
                 "Drop 'shape' or make the value match it.")
        shape = vshape
        if not _all_finite(spec["value"]):
            fail("has a value that is not finite (nan or inf)", "Inputs must be finite numbers.")
    elif shape is None:
        fail(f"uses '{source}' but gives no 'shape'", "e.g. {shape: [3, 4], " + source + ": ...}")
    if math.prod(shape) > MAX_ELEMENTS:
        fail(f"has {math.prod(shape)} elements, over the limit of {MAX_ELEMENTS}", "Use a smaller shape.")
    params = {k: float(spec[k]) for k in ("mean", "std", "low", "high") if k in spec}
    if "fill" in spec:
        params_to_check = {"fill": float(spec["fill"]), **params}
    else:
        params_to_check = params
    for key, value in params_to_check.items():
        if not math.isfinite(value):
            fail(f"has {key} = {value}, which is not finite", "Give a finite number.")
    domain = tuple(float(b) for b in spec["domain"]) if "domain" in spec else None
    if domain is not None and not domain[0] < domain[1]:
        fail(f"has an empty domain {list(domain)}", "Give [low, high] with low < high.")
    dtype = spec.get("dtype")
    if dtype is not None and spec.get("requires_grad", False):
        fail(f"has dtype {dtype}, which cannot require grad",
             "Index tensors and masks are never differentiated; drop requires_grad.")
    result = InputSpec(name, shape, value=_plain(spec.get("value")), fill=spec.get("fill"),
                       sample=spec.get("sample"), params=params, seed=int(spec.get("seed", 0)),
                       requires_grad=bool(spec.get("requires_grad", dtype is None)), dtype=dtype, domain=domain)
    if result.sample == "uniform":
        low, high = result.uniform_bounds()
        if not low < high:
            fail(f"samples uniform on an empty interval [{low}, {high})", "Give low < high.")
    if domain is not None:
        values = result.values()
        outside = values[(values <= domain[0]) | (values >= domain[1])]
        if outside.size:
            fail(f"has values outside its declared domain ({domain[0]}, {domain[1]}), e.g. {outside.ravel()[0]}",
                 "Change the values or the sampling bounds so they lie inside the domain.")
    return result


def _grad_output(raw) -> GradOutput | None:
    if raw is None:
        return None
    if raw in ("ones", "random"):
        return GradOutput(raw)
    return GradOutput("value", _plain(raw))


def discover(paths: Iterable[str | Path]) -> list[Path]:
    """The YAML files under each path (a file is taken as it is), sorted."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(q for q in p.rglob("*") if q.suffix in (".yaml", ".yml") and q.is_file()))
        else:
            files.append(p)
    return files


def load_paths(paths: Iterable[str | Path]) -> LoadResult:
    """Load every case under ``paths``; duplicate names across files are errors."""
    result = LoadResult()
    for path in discover(paths):
        if not path.exists():
            result.errors.append(CaseFileError("no such file or folder", file=str(path)))
            continue
        result.extend(load_file(path))
    seen: dict[str, str] = {}
    unique = []
    for case in result.cases:
        if case.name in seen:
            result.errors.append(CaseError(f"duplicate case name (also at {seen[case.name]})",
                                           file=case.source, case=case.name,
                                           hint="Case names must be unique across the run."))
            continue
        seen[case.name] = case.source or "python"
        unique.append(case)
    result.cases = unique
    return result
