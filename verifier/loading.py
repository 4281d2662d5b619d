"""YAML case files → ``Case`` objects, with errors that give file, line and case.

Reading is safe by construction: PyYAML's ``SafeLoader`` (no Python tags),
duplicate keys refused, a size limit, the JSON Schema shipped in
``verifier/schema/case.schema.json`` (validated with ``jsonschema``), then the
checks a schema cannot express (shapes that contradict, expressions that use
unknown names). Each case is checked on its own, so one broken case does not
hide the valid ones beside it.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

import jsonschema
import numpy as np
import yaml

from . import mirror
from .case import Case, Expect, GradOutput, InputSpec, Tolerance
from .errors import CaseError, CaseFileError
from .language import parse

MAX_FILE_BYTES = 1 << 20          # 1 MiB per case file
MAX_ELEMENTS = 1 << 24            # per input


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
    """SafeLoader that records line numbers and refuses duplicate keys."""


def _mapping(loader: _Loader, node: yaml.MappingNode) -> _Map:
    loader.flatten_mapping(node)
    out = _Map()
    out.line, out.key_lines = node.start_mark.line + 1, {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, (str, int, float, bool)) or key is None:
            raise CaseFileError(f"a mapping key must be a plain value, not {type(key).__name__}",
                                line=key_node.start_mark.line + 1)
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
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise CaseFileError(f"file is {size} bytes, over the {MAX_FILE_BYTES}-byte limit", file=str(path),
                                hint="Split it into several case files.")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CaseFileError(f"cannot read the file: {exc}", file=str(path)) from None
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except CaseFileError as exc:
        raise exc.located(file=str(path)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise CaseFileError(f"invalid YAML: {problem}", file=str(path),
                            line=mark.line + 1 if mark else None,
                            hint="Check the indentation and quoting near that line.") from None
    except RecursionError:
        raise CaseFileError("YAML nests too deeply", file=str(path)) from None


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
    defaults = doc.get("defaults") or {}
    for raw in doc["cases"]:
        merged = _Map({**defaults, **raw}) if isinstance(raw, dict) else raw
        if isinstance(raw, _Map):
            merged.line, merged.key_lines = raw.line, raw.key_lines
        try:
            result.cases.append(case_from_mapping(merged, file=str(path)))
        except CaseError as exc:
            name = raw.get("name") if isinstance(raw, dict) else None
            result.errors.append(exc.located(file=str(path), line=getattr(raw, "line", None), case=name))
    return result


def _validate_top(doc: Any, path: Path) -> None:
    if not isinstance(doc, dict):
        raise CaseFileError("a case file must hold a mapping with a 'cases' list", file=str(path),
                            hint="Start from `verifier new NAME`.")
    top = dict(schema())
    top = {**top, "properties": {**top["properties"], "cases": {"type": "array", "minItems": 1}}}
    _raise_first(jsonschema.Draft202012Validator(top), doc, path, None)


def _raise_first(validator, instance, path: Path | None, case: str | None) -> None:
    errors = sorted(validator.iter_errors(instance), key=lambda e: (len(e.absolute_path), e.message))
    if not errors:
        return
    err = _deepest(errors[0])
    where = list(err.absolute_path)
    if err.validator == "additionalProperties":   # point at the first unknown key itself
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})), key=str)
        where += extra[:1]
    raise CaseFileError(_describe(err), file=str(path) if path else None,
                        line=_line_of(instance, where), case=case, hint=_hint(err))


def _deepest(err):
    while err.context:
        err = min(err.context, key=lambda e: -len(e.absolute_path))
    return err


def _describe(err) -> str:
    where = "/".join(str(p) for p in err.absolute_path)
    at = f"at '{where}': " if where else ""
    if err.validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        known = list(err.schema.get("properties", {}))
        words = []
        for key in extra:
            close = difflib.get_close_matches(str(key), known, n=1)
            words.append(f"unknown field '{key}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        return at + ", ".join(words)
    if err.validator == "required":
        return at + err.message.replace("is a required property", "is a required field but is missing")
    return at + err.message


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
    name = raw.get("name") if isinstance(raw, dict) else None
    _raise_first(_CASE_VALIDATOR, raw, Path(file) if file else None, name)
    inputs = tuple(_input(key, spec, name) for key, spec in raw["inputs"].items())
    torch_src = raw.get("torch", raw.get("forward"))
    sympy_src = raw.get("sympy", raw.get("forward"))
    if torch_src is None or sympy_src is None:
        raise CaseError("the case has no expression: give 'forward', or both 'torch' and 'sympy'", case=name,
                        hint="e.g. forward: (3*(x+2)**2).mean()")
    variables = frozenset(spec.name for spec in inputs)
    custom = dict(raw.get("functions") or {})
    torch_expr = _expr(torch_src, "torch" if "torch" in raw else "forward", name, variables,
                       lambda f: f in custom or _known(f))
    if "sympy" not in raw and custom:
        _refuse_torch_only_names(sympy_src, custom, name, variables)
    sympy_expr = _expr(sympy_src, "sympy" if "sympy" in raw else "forward", name, variables, _known)
    expect_raw = raw.get("expect") or {}
    for key in (expect_raw.get("grad") or {}):
        if key not in variables:
            raise CaseError(f"expect.grad names '{key}', which is not an input", case=name,
                            hint=f"Inputs: {', '.join(sorted(variables))}.")
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
        checks={k: tuple(v) if isinstance(v, list) else bool(v) for k, v in (raw.get("checks") or {}).items()},
    )


def _refuse_torch_only_names(forward, custom, case, variables) -> None:
    """The symbolic side reads ``forward``: a ``functions:`` name there has no definition to read."""
    try:
        expr = parse(forward, known_functions=lambda f: f in custom or _known(f), variables=variables)
    except CaseError:
        return      # _expr reports the syntax error itself
    for fname in sorted(expr.functions & set(custom)):
        if not _known(fname):
            raise CaseError(f"in 'forward': '{fname}' comes from 'functions:', which only the torch side uses",
                            case=case, hint=f"Write 'torch: ...' with {fname}(...) and 'sympy: ...' with its "
                                            "mathematical definition instead of 'forward'.")


def _expr(source, field_name, case, variables, known):
    try:
        return parse(source, known_functions=known, variables=variables)
    except CaseError as exc:
        raise type(exc)(f"in '{field_name}': {exc.message}", case=case, hint=exc.hint) from None


def _plain(value):
    """Strip the line-tracking containers (nested lists/dicts → plain Python)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _literal_shape(value, where: str, case: str | None) -> tuple[int, ...]:
    try:
        arr = np.array(_plain(value), dtype=np.float64)
    except ValueError:
        raise CaseError(f"{where} is a ragged list: every row must have the same length", case=case) from None
    return arr.shape


def _input(name: str, spec: Any, case: str | None) -> InputSpec:
    where = f"input '{name}'"
    if not isinstance(spec, dict):
        return InputSpec(name, _literal_shape(spec, where, case), value=_plain(spec))
    shape = tuple(spec["shape"]) if "shape" in spec else None
    sources = [k for k in ("value", "fill", "sample") if k in spec]
    if len(sources) != 1:
        raise CaseError(f"{where} needs exactly one of 'value', 'fill' or 'sample' (has {sources or 'none'})",
                        case=case, hint="e.g. {shape: [2, 2], sample: normal}")
    if sources[0] == "value":
        vshape = _literal_shape(spec["value"], where, case)
        if shape is not None and shape != vshape:
            raise CaseError(f"{where} says shape {list(shape)} but its value has shape {list(vshape)}", case=case,
                            hint="Drop 'shape' or make the value match it.")
        shape = vshape
    elif shape is None:
        raise CaseError(f"{where} uses '{sources[0]}' but gives no 'shape'", case=case)
    if int(np.prod(shape, dtype=np.int64)) > MAX_ELEMENTS:
        raise CaseError(f"{where} has more than {MAX_ELEMENTS} elements", case=case)
    params = {k: float(spec[k]) for k in ("mean", "std", "low", "high") if k in spec}
    domain = tuple(float(b) for b in spec["domain"]) if "domain" in spec else None
    if domain is not None and not domain[0] < domain[1]:
        raise CaseError(f"{where} has an empty domain {list(domain)}", case=case, hint="Give [low, high] with low < high.")
    dtype = spec.get("dtype")
    if dtype is not None and spec.get("requires_grad", False):
        raise CaseError(f"{where} has dtype {dtype}, which cannot require grad", case=case,
                        hint="Index tensors and masks are never differentiated; drop requires_grad.")
    result = InputSpec(name, shape, value=_plain(spec.get("value")), fill=spec.get("fill"),
                       sample=spec.get("sample"), params=params, seed=int(spec.get("seed", 0)),
                       requires_grad=bool(spec.get("requires_grad", dtype is None)), dtype=dtype, domain=domain)
    if result.sample == "uniform":
        low, high = result.uniform_bounds()
        if not low < high:
            raise CaseError(f"{where} samples uniform on an empty interval [{low}, {high})", case=case)
    if domain is not None:
        values = result.values()
        outside = values[(values <= domain[0]) | (values >= domain[1])]
        if outside.size:
            raise CaseError(f"{where} has values outside its declared domain ({domain[0]}, {domain[1]}), "
                            f"e.g. {outside.ravel()[0]}", case=case,
                            hint="Change the values or the sampling bounds so they lie inside the domain.")
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
