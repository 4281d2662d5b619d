"""Complex numbers in case files: YAML has none, so a literal element may be a string such as ``"1+2j"``.

A string is read with Python's ``complex()`` constructor, which parses a
number and nothing else (no evaluation). Python cases may hold ``complex``
values (or complex tensors, turned into nested lists by ``api.make_case``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import CaseError


def parse_numbers(value: Any, where: str, case: str | None, line: int | None = None) -> Any:
    """``value`` with every string element read as a complex number (a complex with 0 imaginary part stays complex)."""
    if isinstance(value, (list, tuple)):
        return [parse_numbers(v, where, case, line) for v in value]
    if isinstance(value, dict):
        return {k: parse_numbers(v, f"{where}['{k}']", case, line) for k, v in value.items()}
    if isinstance(value, str):
        try:
            return complex(value.replace(" ", ""))
        except ValueError:
            raise CaseError(f"{where} holds the text {value!r}, which is not a number",
                            case=case, line=line,
                            hint="Write a complex number as a quoted string such as \"1+2j\" or \"-0.5j\", "
                                 "a real number as a plain number.") from None
    return value


def has_complex(value: Any) -> bool:
    """Whether a (nested) literal holds a complex number."""
    if isinstance(value, (list, tuple)):
        return any(has_complex(v) for v in value)
    return isinstance(value, complex)


def as_text(value: Any) -> Any:
    """``value`` with every Python complex number written as the case format's string (``"(1+2j)"``).

    numpy arrays become nested lists first (``make_case(..., {"z": np.array([1j])})``).
    """
    if isinstance(value, np.ndarray):
        return as_text(value.tolist())
    if isinstance(value, (list, tuple)):
        return [as_text(v) for v in value]
    if isinstance(value, dict):
        return {k: as_text(v) for k, v in value.items()}
    if isinstance(value, complex):
        return repr(complex(value))
    return value


def complex_in_real_run(inputs, dtypes) -> str | None:
    """The first input holding complex numbers that some of ``dtypes`` would run as a real tensor, or None."""
    real = [d for d in dtypes if not d.startswith("complex")]
    for spec in inputs:
        if real and spec.value is not None and not (spec.number or "").startswith("complex") and has_complex(spec.value):
            return spec.name
    return None
