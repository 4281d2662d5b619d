"""Numbers a case states that cannot mean what they say: checked when the file loads, not when it runs.

* A constant in an expression that is not a finite float64 (``1e999`` reads
  as infinity, ``10**400`` and ``2**2000`` cannot become a float), or that
  overflows one of the case's dtypes (``1e39`` in float32, ``70000`` in
  float16).
* Input values, ``fill`` and sampling parameters, and literal ``grad_output``
  weights beyond the largest finite value of a case dtype (they would become
  infinity when cast).
* Index and mask values that a cast would change silently: ``1.9`` as an
  int64 index (truncated to 1), ``0.5`` in a bool mask (``True``),
  ``4294967297`` as an int32 index (wraps to 1).
* A ragged literal ``grad_output``.
"""

from __future__ import annotations

import ast
import math
import operator
from typing import Any, Iterable

from ..errors import CaseError, ExpressionError
from .complex_literals import has_complex

FLOAT_MAX = {"float64": 1.7976931348623157e308, "float32": 3.4028234663852886e38, "float16": 65504.0,
             "bfloat16": 3.3895313892515355e38}
INT_RANGE = {"int64": (-2**63, 2**63 - 1), "int32": (-2**31, 2**31 - 1)}
_MAX_BITS = 1 << 14          # as the case language's constant limit: never compute a huge power to judge it
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.Pow: operator.pow}


def constant_value(node: ast.AST, memo: dict | None = None) -> float | int | None:
    """The value of a subtree made only of number literals and + - * / **; None for anything else."""
    memo = {} if memo is None else memo
    if id(node) not in memo:
        memo[id(node)] = _value(node, memo)
    return memo[id(node)]


def _value(node: ast.AST, memo: dict) -> float | int | None:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = constant_value(node.operand, memo)
        return None if value is None else (-value if isinstance(node.op, ast.USub) else value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, right = constant_value(node.left, memo), constant_value(node.right, memo)
        if left is None or right is None:
            return None
        if isinstance(left, int) and isinstance(right, int) and (
                (isinstance(node.op, ast.Pow) and right > 0 and left.bit_length() * right > _MAX_BITS)
                or (isinstance(node.op, ast.Mult) and left.bit_length() + right.bit_length() > _MAX_BITS)):
            return math.inf                    # far beyond any float: say so without computing it
        try:
            value = _OPS[type(node.op)](left, right)
        except OverflowError:
            return math.inf
        except (ZeroDivisionError, ValueError):
            return None                        # the run reports it as torch does
        return value if isinstance(value, (int, float)) else None
    return None


def check_constants(tree: ast.AST, source: str, dtypes: Iterable[str] = ("float64",)) -> None:
    """Refuse a constant (or constant arithmetic) that is no finite number in every one of ``dtypes``."""
    dtypes = [d for d in dtypes if d in FLOAT_MAX] or ["float64"]
    memo: dict = {}
    for node in ast.walk(tree):
        value = constant_value(node, memo)
        if value is None or isinstance(value, bool):
            continue
        text = " ".join((ast.get_source_segment(source.strip(), node) or "").split()) or repr(value)
        text = text if len(text) <= 60 else text[:57] + "..."
        magnitude = _magnitude(value)
        if magnitude is None:
            raise ExpressionError(f"the constant {text} is not a finite number (floats end at 1.8e308)",
                                  hint="Write a number within float64's range.")
        for dtype in dtypes:
            if magnitude > FLOAT_MAX[dtype]:
                raise ExpressionError(f"the constant {text} overflows to infinity in {dtype} "
                                      f"(largest finite value {FLOAT_MAX[dtype]:.4g})",
                                      hint=f"Use a smaller constant, or drop {dtype} from the case's dtypes.")


def _magnitude(value) -> float | None:
    try:
        magnitude = abs(float(value))
    except OverflowError:
        return None
    return magnitude if math.isfinite(magnitude) else None


def _flat(value: Any) -> list:
    if isinstance(value, (list, tuple)):
        return [item for part in value for item in _flat(part)]
    return [value]


def check_input(spec: dict, name: str, dtypes: Iterable[str]) -> str | None:
    """What is wrong with an input's numbers (a message after "input 'x' "), or None."""
    kind = spec.get("dtype") if isinstance(spec, dict) else None
    given = spec if not isinstance(spec, dict) else spec.get("value", spec.get("fill"))
    numbers = [] if given is None else _flat(given)
    if kind in INT_RANGE:
        low, high = INT_RANGE[kind]
        for v in numbers:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not v.is_integer()):
                return (f"has dtype {kind} but holds {v!r}, which is not a whole number "
                        f"(a cast would silently make it {_cast_int(v)})")
            if not low <= int(v) <= high:
                return f"has dtype {kind} but holds {int(v)}, outside {kind}'s range [{low}, {high}]"
        if "sample" in spec:
            return f"has dtype {kind} and 'sample': sampled values are not whole numbers; give 'value' or 'fill'"
        return None
    if kind == "bool":
        for v in numbers:
            if v not in (0, 1) or isinstance(v, str):
                return f"is a bool mask but holds {v!r}; give true/false (or 1/0)"
        if "sample" in spec:
            return "is a bool mask with 'sample'; give 'value' or 'fill'"
        return None
    params = [spec.get(k) for k in ("mean", "std", "low", "high")] if isinstance(spec, dict) else []
    worst = max((abs(v) for v in [*numbers, *params] if isinstance(v, (int, float, complex))
                 and math.isfinite(abs(v))), default=0.0)
    return _too_big(worst, dtypes, "holds")


def check_grad_output(value: Any, dtypes: Iterable[str]) -> str | None:
    """What is wrong with a literal ``grad_output`` (a message after "grad_output "), or None."""
    import numpy as np
    try:
        arr = np.abs(np.array(value, dtype=np.complex128 if has_complex(value) else np.float64))
    except (ValueError, TypeError):
        return "is a ragged list: every row must have the same length"
    finite = arr[np.isfinite(arr)]
    return _too_big(float(np.abs(finite).max()) if finite.size else 0.0, dtypes, "has")


def _too_big(worst: float, dtypes: Iterable[str], verb: str) -> str | None:
    for dtype in dtypes:
        if worst > FLOAT_MAX.get(dtype, math.inf):
            return (f"{verb} the number {worst:.4g}, which overflows to infinity in {dtype} "
                    f"(largest finite value {FLOAT_MAX[dtype]:.4g}); use smaller values or drop {dtype}")
    return None


def _cast_int(v) -> str:
    try:
        return str(int(v))
    except (TypeError, ValueError, OverflowError):
        return "an error"


def refuse(message: str | None, where: str, case: str | None, line: int | None) -> None:
    if message is not None:
        raise CaseError(f"{where} {message}", case=case, line=line,
                        hint="Numbers must mean what they say in every dtype the case runs in.")
