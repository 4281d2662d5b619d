"""YAML case files → ``Case`` objects, with errors that give file, line and case.

Case files are untrusted input, so reading is safe by construction:

* :mod:`verifier.cases.yaml_reading`: PyYAML's ``SafeLoader``, a size limit, alias
  bombs and deep nesting refused before construction, string keys that may
  not repeat, line numbers kept;
* :mod:`verifier.cases.schema_errors`: the JSON Schema shipped in
  ``verifier/cases/schema/case.schema.json`` (validated with ``jsonschema``), with
  "did you mean" for unknown fields and values;
* then the checks a schema cannot express: non-finite numbers, shapes that
  contradict each other, fields that contradict each other, expressions that
  use unknown names.

Each case is checked on its own, so one broken case does not hide the valid
ones beside it. Every problem becomes a :class:`CaseError` naming file, line
and case; an unexpected exception while loading becomes one too (marked
``internal``), never a traceback.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import jsonschema

from ..errors import CaseError, CaseFileError
from ..exact import mirror
from . import literal_ranges as ranges
from .case import Case, Expect, GradOutput, InputSpec, Tolerance
from .complex_literals import complex_in_real_run, parse_numbers
from .inputs import MAX_ELEMENTS, all_finite, input_spec, literal_shape
from .language import parse
from .limits import MAX_FILE_ELEMENTS, case_memory_limit, check_file_elements, timeout_problem
from .schema_errors import _raise_first, schema
from .yaml_reading import MAX_FILE_BYTES, _Map, _plain, key_problem, read_yaml

__all__ = ["LoadResult", "load_file", "load_paths", "case_from_mapping", "discover", "read_yaml", "schema",
           "MAX_FILE_BYTES", "MAX_ELEMENTS", "MAX_FILE_ELEMENTS"]



@dataclass
class LoadResult:
    """The cases that loaded and the errors of those that did not."""

    cases: list[Case] = field(default_factory=list)
    errors: list[CaseError] = field(default_factory=list)

    def extend(self, other: "LoadResult") -> None:
        self.cases.extend(other.cases)
        self.errors.extend(other.errors)


def load_file(path: str | Path) -> LoadResult:
    """Load every case of one YAML file; errors are collected, not raised."""
    path = Path(path)
    result = LoadResult()
    try:
        doc = read_yaml(path)
        outside = key_problem(doc, skip=doc.get("cases") if isinstance(doc, dict) else None)
        if outside is not None:           # outside every case (top level, defaults): the file cannot load
            raise outside.located(file=str(path))
        _validate_top(doc, path)
    except CaseFileError as exc:
        result.errors.append(exc)
        return result
    except Exception as exc:  # a loader bug must not become a traceback; fuzzing keeps these at zero
        result.errors.append(_internal(exc, path, None, None))
        return result
    defaults = doc.get("defaults") or {}
    declared = 0
    for raw in doc["cases"]:
        merged = _Map({**defaults, **raw}) if isinstance(raw, dict) else raw
        if isinstance(raw, _Map):
            merged.line, merged.key_lines = raw.line, raw.key_lines
        name = _label(raw)
        try:
            if (problem := key_problem(raw)) is not None:
                raise problem
            case = case_from_mapping(merged, file=str(path))
            declared += check_file_elements(case, declared)
            result.cases.append(case)
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


_CASE_VALIDATOR = None


def _known(name: str) -> bool:
    if name in mirror.REFUSED:
        mirror.resolve(name)        # raises, saying why the name is refused
    return mirror.known(name)


def case_from_mapping(raw: Any, *, file: str | None = None) -> Case:
    """Build a ``Case`` from one (defaults-merged) mapping, checking it fully."""
    global _CASE_VALIDATOR
    if _CASE_VALIDATOR is None:
        case_schema = {**schema()["$defs"]["case"], "$defs": schema()["$defs"]}
        _CASE_VALIDATOR = jsonschema.Draft202012Validator(case_schema)
    _raise_first(_CASE_VALIDATOR, raw, Path(file) if file else None, _label(raw))
    name = raw["name"]
    lines = _Lines(raw)
    inputs = tuple(input_spec(key, spec, name, lines.within("inputs", key))
                   for key, spec in raw["inputs"].items())
    dtypes = tuple(raw.get("dtypes") or ("float64",))
    if (holder := complex_in_real_run(inputs, dtypes)) is not None:     # it would lose its imaginary parts
        raise CaseError(f"input '{holder}' holds complex numbers but the case runs in the real dtype(s) "
                        f"{', '.join(d for d in dtypes if not d.startswith('complex'))}", case=name,
                        line=lines.within("inputs", holder),
                        hint="Give the case complex dtypes (dtypes: [complex128, complex64]) or declare the "
                             "input `dtype: complex128` (docs/complex.md).")
    for key, spec in raw["inputs"].items():
        ranges.refuse(ranges.check_input(spec, key, dtypes), f"input '{key}'", name, lines.within("inputs", key))
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
                       lines.of(torch_field), extra_names=custom, dtypes=dtypes)
    if "sympy" not in raw and custom:
        _refuse_torch_only_names(sympy_src, custom, name, variables, lines.of(sympy_field))
    sympy_expr = _expr(sympy_src, sympy_field, name, variables, _known, lines.of(sympy_field), dtypes=dtypes)
    grad_output = raw.get("grad_output")
    if grad_output is not None and grad_output not in ("ones", "random"):
        grad_output = parse_numbers(_plain(grad_output), "grad_output", name, lines.of("grad_output"))
        ranges.refuse(ranges.check_grad_output(grad_output, dtypes), "grad_output", name,
                      lines.of("grad_output"))
    expect_raw = dict(raw.get("expect") or {})
    for key in ("grad", "output"):        # complex numbers may be written "1+2j" (complex.md)
        if expect_raw.get(key) is not None:
            expect_raw[key] = parse_numbers(_plain(expect_raw[key]), f"expect.{key}", name, lines.of("expect"))
    _check_expect(expect_raw, inputs, name, lines)
    _check_finite_fields(raw, name, lines)
    backward = raw.get("backward") or {}
    return Case(
        name=name, inputs=inputs, torch_fn=torch_expr, sympy_fn=sympy_expr,
        description=str(raw.get("description", "")), tags=tuple(raw.get("tags") or ()),
        grad_output=_grad_output(grad_output),
        dtypes=tuple(raw.get("dtypes") or ("float64",)),
        tolerance={k: Tolerance(v.get("rtol", 0.0), v.get("atol", 0.0))
                   for k, v in (raw.get("tolerance") or {}).items()},
        expect=Expect(grad=_plain(expect_raw.get("grad")), output=_plain(expect_raw.get("output")),
                      grad_fn=None if _leaf(expect_raw) else expect_raw.get("grad_fn"),
                      error=expect_raw.get("error"), leaf=_leaf(expect_raw)),
        functions=custom,
        source=f"{file}:{getattr(raw, 'line', 0)}" if file else None,
        options={k: v for k, v in backward.items()},
        kink=raw.get("kink"),
        strict_kinks=bool(raw.get("strict_kinks", False)),
        timeout=float(raw["timeout"]) if raw.get("timeout") is not None else None,
        memory_limit=case_memory_limit(raw.get("memory_limit"), name, lines.of("memory_limit")),
        checks={k: tuple(v) if isinstance(v, list) else bool(v) for k, v in (raw.get("checks") or {}).items()},
        accept=tuple(raw.get("accept") or ()),
        device=raw.get("device"),
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


def _expr(source, field_name, case, variables, known, line=None, extra_names=(), dtypes=("float64",)):
    names = [*mirror.FUNCTIONS, *mirror.ALIASES, *mirror.qualified_names(), *extra_names]
    try:
        expr = parse(source, known_functions=known, variables=variables, function_names=names)
        ranges.check_constants(expr.tree, expr.source, dtypes)
        return expr
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
        shape = literal_shape(stated, f"expect.grad['{key}']", case)
        if shape != tuple(spec.shape):
            raise CaseError(f"expect.grad['{key}'] has shape {list(shape)} but input '{key}' has shape "
                            f"{list(spec.shape)}", case=case, line=line,
                            hint="A gradient has the shape of its input.")


def _check_finite_fields(raw: Mapping, case: str | None, lines: _Lines) -> None:
    """NaN or infinity in weights or tolerances would make every verdict meaningless."""
    literal = raw.get("grad_output")
    if literal is not None and not isinstance(literal, str) and not all_finite(literal):
        raise CaseError("grad_output has a value that is not finite (nan or inf)", case=case,
                        line=lines.of("grad_output"), hint="Weights must be finite numbers.")
    expect = raw.get("expect") or {}
    stated = [("expect.output", expect.get("output"))] + [(f"expect.grad['{k}']", v)
                                                          for k, v in (expect.get("grad") or {}).items()]
    for where, value in stated:
        if value is not None and not all_finite(value):
            raise CaseError(f"{where} has a value that is not finite (nan or inf)", case=case,
                            line=lines.of("expect"),
                            hint="State the finite value the gradient must have; a case about an overflow "
                                 "says `accept: [non_finite]` instead.")
    for dtype, tol in (raw.get("tolerance") or {}).items():
        for key, value in tol.items():
            if not math.isfinite(value):
                raise CaseError(f"tolerance.{dtype}.{key} is {value}", case=case, line=lines.of("tolerance"),
                                hint="An infinite tolerance passes anything and nan fails everything; "
                                     "give a finite number.")
    timeout = raw.get("timeout")
    problem = None if timeout is None else timeout_problem(timeout, zero_allowed=False)
    if problem:
        raise CaseError(problem, case=case, line=lines.of("timeout"),
                        hint="Give a number of seconds above 0 and at most a day; `verifier run --timeout 0` "
                             "turns time limits off.")



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


def _leaf(expect_raw) -> bool:
    """``leaf: true``, ``grad_fn: null`` or ``grad_fn: None``: the output must be a leaf (no grad_fn)."""
    grad_fn = expect_raw.get("grad_fn", "")
    return bool(expect_raw.get("leaf")) or grad_fn is None or grad_fn == "None"
