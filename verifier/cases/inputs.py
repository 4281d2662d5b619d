"""One input of a case: its YAML mapping (or literal list) -> :class:`InputSpec`.

Checks what a schema cannot: the value source (exactly one of value, fill,
sample), shapes of literals, sampling parameters, domains, index and mask
values, structure, and the size limit. Nothing is drawn here: sampled values
are drawn when the case runs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import CaseError
from .case import NUMBER_DTYPES, InputSpec
from .complex_literals import has_complex, parse_numbers
from .structure import check_shape, violation
from .yaml_reading import _plain

MAX_ELEMENTS = 1 << 24            # per input


def all_finite(value) -> bool:
    try:
        value = _plain(value)
        return bool(np.isfinite(np.asarray(value, dtype=np.complex128 if has_complex(value) else np.float64)).all())
    except (ValueError, TypeError):
        return True      # ragged or odd literals get their own error where they are read


def literal_shape(value, where: str, case: str | None, line: int | None = None) -> tuple[int, ...]:
    value = _plain(value)
    try:
        arr = np.array(value, dtype=np.complex128 if has_complex(value) else np.float64)
    except (ValueError, TypeError):
        raise CaseError(f"{where} is a ragged list: every row must have the same length", case=case,
                        line=line) from None
    return arr.shape


# Which optional parameters belong to which way of giving values.
_PARAMS = {"value": (), "fill": (), "sample": ("seed",)}
_SAMPLE_PARAMS = {"normal": ("mean", "std"), "uniform": ("low", "high")}


def input_spec(name: str, spec: Any, case: str | None, line: int | None = None) -> InputSpec:
    where = f"input '{name}'"

    def fail(message: str, hint: str | None = None):
        raise CaseError(f"{where} {message}", case=case, line=line, hint=hint)

    if not isinstance(spec, dict):
        spec = parse_numbers(_plain(spec), where, case, line)
        shape = literal_shape(spec, where, case, line)
        if not all_finite(spec):
            fail("has a value that is not finite (nan or inf)", "Inputs must be finite numbers.")
        return InputSpec(name, shape, value=_plain(spec))
    if "value" in spec:
        spec = {**spec, "value": parse_numbers(_plain(spec["value"]), where, case, line)}
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
        vshape = literal_shape(spec["value"], where, case, line)
        if shape is not None and shape != vshape:
            fail(f"says shape {list(shape)} but its value has shape {list(vshape)}",
                 "Drop 'shape' or make the value match it.")
        shape = vshape
        if not all_finite(spec["value"]):
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
    number = dtype if dtype in NUMBER_DTYPES else None     # complex or real: a number, not an index (complex.md)
    dtype = None if number else dtype
    if source == "value" and has_complex(spec["value"]) and number == "real":
        fail("has dtype real but holds a complex number", "Drop 'dtype: real', or give real values.")
    if number and spec.get("structure") is not None:
        fail(f"has dtype {number} and a structure", "Structured inputs are real; drop one of the two.")
    if spec.get("domain") is not None and ((number and number != "real") or has_complex(spec.get("value"))):
        fail(f"has dtype {number} and a domain", "A domain is a real interval; drop it for a complex input.")
    structure = spec.get("structure")
    if structure is not None:
        why = "needs a floating input" if dtype is not None else check_shape(structure, shape)
        if why:
            fail(f"has structure '{structure}', which {why}",
                 "Give a floating square matrix (or a batch of them), e.g. {shape: [3, 3], sample: normal, structure: spd}.")
        broken = violation(structure, _plain(spec["value"])) if source == "value" else None
        if broken:
            fail(f"has structure '{structure}' but its value {broken}",
                 "Give a value with that structure, or sample it (sampled values are made to have it).")
    if dtype is not None and spec.get("requires_grad", False):
        fail(f"has dtype {dtype}, which cannot require grad",
             "Index tensors and masks are never differentiated; drop requires_grad.")
    result = InputSpec(name, shape, value=_plain(spec.get("value")), fill=spec.get("fill"),
                       sample=spec.get("sample"), params=params, seed=int(spec.get("seed", 0)),
                       requires_grad=bool(spec.get("requires_grad", dtype is None)), dtype=dtype, domain=domain,
                       structure=structure, number=number)
    if result.sample == "uniform":
        low, high = result.uniform_bounds()
        if not low < high:
            fail(f"samples uniform on an empty interval [{low}, {high})", "Give low < high.")
    problem = result.domain_problem_without_drawing()
    if problem:
        fail(problem, "Change the values or the sampling bounds so they lie inside the domain.")
    return result
