"""The ``Case`` object and its parts: frozen data, no I/O.

A case from a YAML file and a case registered from Python end up as the same
``Case``; everything downstream (symbolic, autograd, finite differences,
reports) reads only this.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from ..errors import CaseError
from .structure import make as make_structured

FLOAT_DTYPES = ("float64", "float32", "float16", "bfloat16")
INDEX_DTYPES = ("int64", "int32", "bool")
#: Complex case dtypes; each has the real dtype of its parts (its epsilon and tolerances). complex32 is
#: torch's chalf, whose autograd is refused at run time (torch lacks most of its ops).
COMPLEX_DTYPES = {"complex64": "float32", "complex128": "float64", "complex32": "float16"}
#: An input's ``dtype:`` that makes it a number rather than an index: complex (at that dtype) or ``real``
#: (a real floating input of a complex case, at the case's real precision).
NUMBER_DTYPES = (*COMPLEX_DTYPES, "real")


@dataclass(frozen=True)
class InputSpec:
    """How to build one input tensor.

    Exactly one of ``value``, ``fill`` or ``sample`` gives the values.
    ``domain`` declares the open interval where the case's function is smooth
    for this input (``(0, inf)`` for log): values must lie inside it, uniform
    sampling defaults to it, and finite differences keep their stencils in it.
    ``dtype`` is ``None`` for a floating input (it then takes the case's dtype)
    or one of ``INDEX_DTYPES`` for index tensors and masks, which are never
    differentiated. ``structure`` (:mod:`verifier.cases.structure`) makes
    sampled and filled values symmetric, SPD or triangular; the sides then
    work within that structure.
    """

    name: str
    shape: tuple[int, ...]
    value: Any = None                     # nested tuples of numbers
    fill: float | None = None
    sample: str | None = None             # "normal" | "uniform"
    params: Mapping[str, float] = field(default_factory=dict)  # mean/std, low/high
    seed: int = 0
    requires_grad: bool = True
    dtype: str | None = None
    domain: tuple[float, float] | None = None   # open interval the values must lie in
    structure: str | None = None          # symmetric | spd | lower_triangular | upper_triangular (structure.py)
    number: str | None = None             # None, "real" or a COMPLEX_DTYPES key (``dtype:`` in the file; complex.md)

    def uniform_bounds(self) -> tuple[float, float]:
        """``low``/``high`` of uniform sampling: given, else the finite domain bounds, else [0, 1)."""
        lo_d, hi_d = self.domain or (-np.inf, np.inf)
        low = self.params.get("low", lo_d if np.isfinite(lo_d) else 0.0)
        high = self.params.get("high", hi_d if np.isfinite(hi_d) else low + 1.0)
        return float(low), float(high)

    @property
    def differentiated(self) -> bool:
        return self.requires_grad and self.dtype is None

    def values(self) -> np.ndarray:
        """The input's values in float64 (or its index dtype), before any cast."""
        if self.value is not None:
            arr = np.array(self.value, dtype=_literal_dtype(self.value))
        elif self.fill is not None:
            arr = np.full(self.shape, float(self.fill), dtype=np.float64)
        elif self.sample == "normal":
            rng = np.random.default_rng(self.seed)
            arr = rng.normal(self.params.get("mean", 0.0), self.params.get("std", 1.0), self.shape)
        elif self.sample == "uniform":
            rng = np.random.default_rng(self.seed)
            low, high = self.uniform_bounds()
            arr = rng.uniform(low, high, self.shape)
        else:  # pragma: no cover - loading guarantees one source
            raise ValueError(f"input '{self.name}' has no values")
        if self.structure is not None and self.value is None:
            arr = make_structured(self.structure, arr)
        if self.dtype == "bool":
            return arr.astype(bool)
        if self.dtype in ("int64", "int32"):
            return arr.astype(np.int64)
        if self.sample is not None and self.domain is not None:
            # drawn here, when the case runs (loading never samples): checked here too
            outside = self.outside_domain(arr)
            if outside is not None:
                raise CaseError(f"input '{self.name}' drew a value outside its declared domain "
                                f"({self.domain[0]}, {self.domain[1]}): {outside}",
                                hint="Change the sampling parameters (or the seed) so the values lie inside the "
                                     "domain; 'sample: uniform' stays inside it by default.")
        return arr

    def domain_problem_without_drawing(self) -> str | None:
        """What is known against the domain without drawing a sample (loading never samples).

        Literal values and a fill are checked; a uniform interval must lie in
        the domain. Values drawn from a normal distribution are checked when
        drawn, by :meth:`values`, as the case runs in its worker.
        """
        if self.domain is None:
            return None
        lo, hi = self.domain
        if self.sample == "uniform":
            low, high = self.uniform_bounds()
            if low < lo or high > hi:
                return f"samples uniform on [{low}, {high}), which is not inside its declared domain ({lo}, {hi})"
            return None
        if self.sample is None:   # a literal (as large as its file at most) or one fill value
            given = np.array([self.fill], dtype=np.float64) if self.fill is not None else self.values()
            outside = self.outside_domain(given)
            if outside is not None:
                return f"has values outside its declared domain ({lo}, {hi}), e.g. {outside}"
        return None

    def outside_domain(self, values: np.ndarray) -> float | None:
        """The first of ``values`` not strictly inside the domain, or None."""
        if self.domain is None:
            return None
        outside = values[(values <= self.domain[0]) | (values >= self.domain[1])]
        return float(outside.ravel()[0]) if outside.size else None


@dataclass(frozen=True)
class GradOutput:
    """The weights ``v`` of ``y.backward(v)``: ``ones``, ``random`` or a literal."""

    kind: str                  # "ones" | "random" | "value"
    value: Any = None
    seed: int = 0

    def values(self, shape: tuple[int, ...]) -> np.ndarray:
        if self.kind == "ones":
            return np.ones(shape)
        if self.kind == "random":
            return np.random.default_rng(self.seed).normal(size=shape)
        return np.array(self.value, dtype=_literal_dtype(self.value))


def _literal_dtype(value) -> type:
    """complex128 for a literal holding a complex number (docs/complex.md), else float64."""
    if isinstance(value, complex):
        return np.complex128
    if isinstance(value, (list, tuple)):
        return np.complex128 if any(_literal_dtype(v) is np.complex128 for v in value) else np.float64
    return np.float64


@dataclass(frozen=True)
class Tolerance:
    """Pass when ``|got - exact| <= rtol·M + atol``, element by element (M: the element's rounding bound, ≥ |exact|)."""

    rtol: float
    atol: float


@dataclass(frozen=True)
class Expect:
    """What the author states about the result; each part is checked when given."""

    grad: Mapping[str, Any] | None = None
    output: Any = None
    grad_fn: str | None = None
    error: str | None = None
    leaf: bool = False                # the output is a leaf tensor (``leaf: true``, or ``grad_fn: null``)


@dataclass(frozen=True)
class Case:
    """One verification example: inputs, the function (two readings), weights, checks."""

    name: str
    inputs: tuple[InputSpec, ...]
    torch_fn: Any                     # language.Expression or a Python callable
    sympy_fn: Any                     # language.Expression or a Python callable
    description: str = ""
    tags: tuple[str, ...] = ()
    grad_output: GradOutput | None = None
    dtypes: tuple[str, ...] = ("float64",)
    tolerance: Mapping[str, Tolerance] = field(default_factory=dict)
    expect: Expect = field(default_factory=Expect)
    functions: Mapping[str, str] = field(default_factory=dict)
    source: str | None = None         # "file:line" or "python:module"
    options: Mapping[str, Any] = field(default_factory=dict)  # extensions (backward repeat, ...)
    kink: str | None = None           # extension: the point is a kink on purpose (where, torch's convention)
    strict_kinks: bool = False        # extension: an undeclared kink fails even where autograd is right
    timeout: float | None = None      # seconds per case × dtype run; None: the run's default
    memory_limit: int | None = None   # bytes a worker may allocate for it; None: the run's default
    # optional checks (forward_mode, second_order): True/False, or the dtypes they run in
    checks: Mapping[str, Any] = field(default_factory=dict)
    # outcomes accepted as a pass (extension): "non_finite" lets inf/nan values agree when equal
    accept: tuple[str, ...] = ()
    # extension: where torch's side runs (cpu, cuda, cuda:N, mps, auto); None: the run's --device (cpu)
    device: str | None = None
    # set by `verifier run --fd-device` only: the finite differences' forward runs there too (float64)
    fd_device: str | None = None

    def check_enabled(self, name: str, dtype: str | None = None) -> bool:
        """Whether the optional check ``name`` runs for this case (at ``dtype``); on unless switched off."""
        setting = self.checks.get(name, True)
        if isinstance(setting, (list, tuple)):
            return dtype is None or dtype in setting
        return bool(setting)

    @property
    def family(self) -> str:
        """The first tag, or the name's first dotted part: used to group the summary."""
        if self.tags:
            return self.tags[0]
        return self.name.split(".", 1)[0]

    def input(self, name: str) -> InputSpec:
        for spec in self.inputs:
            if spec.name == name:
                return spec
        raise KeyError(name)


TorchFn = Callable[..., Any]
